/* int8 neural-network kernels, bit-exact with TensorFlow Lite Micro's reference kernels.
 *
 * Layout is NHWC with batch 1; weights are [out_c][k_h][k_w][in_c] (conv), [1][k_h][k_w][out_c]
 * (depthwise) and [out][in] (fully connected), exactly as stored in the .tflite. Each kernel
 * lives in its own nk_<name>.c. The inner dot products have a portable C path and a Cortex-M4
 * DSP path (dual 16-bit MAC, SMLAD) selected when __ARM_FEATURE_DSP is defined and
 * NK_KERNELS_NO_DSP is not; both give identical results (exact integer sums). No heap and no
 * static buffers: the fast kernels' scratch memory is the caller's (see nk_*_fast_scratch_bytes). */
#ifndef NK_KERNELS_H
#define NK_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__ARM_FEATURE_DSP) && !defined(NK_KERNELS_NO_DSP)
#define NK_KERNELS_DSP 1
#else
#define NK_KERNELS_DSP 0
#endif

/* Geometry and quantisation of a convolution / depthwise convolution / pooling layer. */
typedef struct {
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t pad_h, pad_w; /* top / left padding (TFLite's SAME rule; 0 for VALID) */
    int32_t depth_mult;   /* depthwise only: out_c = in_c * depth_mult */
    int32_t in_offset;    /* -input zero point */
    int32_t out_offset;   /* output zero point */
    int32_t act_min, act_max;
} nk_conv_params_t;

/* sum_i w[i] * (x[i] + x_offset) over n contiguous elements. */
int32_t nk_dot_s8(const int8_t *x, const int8_t *w, int32_t n, int32_t x_offset);

/* Conv2D, per-output-channel multiplier/shift, optional bias (NULL = none). */
void nk_conv2d_s8(const nk_conv_params_t *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                  const int32_t *mult, const int32_t *shift, int8_t *out);

/* Depthwise Conv2D with depth multiplier, per-output-channel multiplier/shift. */
void nk_dwconv2d_s8(const nk_conv_params_t *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                    const int32_t *mult, const int32_t *shift, int8_t *out);

/* Fully connected: out[b][o] for batches x in_len inputs; per_channel selects mult[o]/shift[o]
 * instead of mult[0]/shift[0]. */
typedef struct {
    int32_t batches, in_len, out_len;
    int32_t in_offset, out_offset;
    int32_t act_min, act_max;
    int32_t per_channel;
} nk_fc_params_t;
void nk_fully_connected_s8(const nk_fc_params_t *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                           const int32_t *mult, const int32_t *shift, int8_t *out);

/* Pools use in_*, out_*, k_*, stride_*, pad_*, act_min/act_max of nk_conv_params_t (in_c = out_c). */
void nk_avgpool_s8(const nk_conv_params_t *p, const int8_t *in, int8_t *out);
void nk_maxpool_s8(const nk_conv_params_t *p, const int8_t *in, int8_t *out);

/* MEAN over the middle axis of a [outer][reduce][inner] view (covers H,W of NHWC), as TFLite
 * Micro: with identical input/output quantisation sum / n truncated; otherwise
 * requantize(sum - in_zp * n, mult, shift) + out_zp with 1/n folded into mult/shift. */
typedef struct {
    int32_t outer, reduce, inner;
    int32_t same_quant;
    int32_t in_zp, out_zp;
    int32_t mult, shift;
} nk_mean_params_t;
void nk_mean_s8(const nk_mean_params_t *p, const int8_t *in, int8_t *out);

/* Softmax over the last axis, int8 in / int8 out (output scale 1/256, zero point -128). */
typedef struct {
    int32_t rows, depth;
    int32_t input_multiplier, input_left_shift;
    int32_t diff_min;
} nk_softmax_params_t;
void nk_softmax_s8(const nk_softmax_params_t *p, const int8_t *in, int8_t *out);

/* Elementwise ADD of two same-shape int8 tensors with TFLite's two-input rescaling. */
typedef struct {
    int32_t size;
    int32_t in1_offset, in2_offset, out_offset;
    int32_t left_shift;
    int32_t in1_mult, in1_shift, in2_mult, in2_shift, out_mult, out_shift;
    int32_t act_min, act_max;
} nk_add_params_t;
void nk_add_s8(const nk_add_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out);

/* ---- Fast kernels (used by the compiler when their preconditions hold; same results) ----
 *
 * They take a *folded* bias: bias_f[oc] = bias[oc] + in_offset * sum(weights of oc), computed at
 * compile time, so the inner loops multiply raw int8 inputs (no per-MAC offset). Taps outside the
 * image then read the input zero point (-in_offset), whose products cancel the folded term exactly,
 * as TFLite's skipped taps do. The compiler also checks nk_requantize_bounded's preconditions
 * (every |accumulator| < 2^30, every shift <= -1); where they fail it emits the reference kernel. */

/* Largest receptive field (k_h * k_w * in_c) nk_conv2d_fast_s8 gathers into its patches; larger
 * ones run a slower per-tap loop (still exact). 1x1 stride-1 unpadded convs need no patch. */
#define NK_CONV_PATCH_MAX 1152

/* Scratch memory of the fast kernels: the caller passes a buffer of at least
 * nk_<kernel>_fast_scratch_bytes(p) bytes (any alignment; NULL when that is 0), which the kernel may
 * overwrite and which must not overlap `in` or `out`. The compiler reserves it in the model's arena
 * for the one layer that uses it, like TFLite Micro's scratch buffers, calling these functions through
 * the nanokws._frontend extension (lower.fast_scratch_bytes). The kernels keep no static buffers of
 * their own. Their constant data (weight layouts, folded biases, the per-channel table) is written at
 * compile time by nk_kernels_pack.h's functions, on the host only. */

/* 1 when nk_conv2d_fast_s8 reads its input pixels in place (1x1, stride 1, unpadded). */
static inline int nk_conv2d_fast_in_place(const nk_conv_params_t *p) {
    return p->k_h == 1 && p->k_w == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_h == 0 &&
           p->pad_w == 0 && p->in_h == p->out_h && p->in_w == p->out_w;
}

/* Output pixels per matrix-product pass of nk_conv2d_fast_s8 (columns of nk_gemm_cols_s8). */
#define NK_GEMM_COLS 3

/* 1 when nk_conv2d_fast_s8 reads through a strip: not in place and kernel rows of whole 4-byte
 * groups (k_w * in_c a multiple of 4, as the 10x4 one-channel stem). The strip holds the k_h input
 * rows of one output row, zero-point padded to the width the outputs reach, nk_conv_strip_pitch
 * bytes apart. */
static inline int nk_conv2d_fast_strip(const nk_conv_params_t *p) {
    return !nk_conv2d_fast_in_place(p) && (p->k_w * p->in_c) % 4 == 0;
}
static inline int32_t nk_conv_strip_pitch(const nk_conv_params_t *p) {
    return ((p->out_w - 1) * p->stride_w + p->k_w) * p->in_c;
}

/* nk_conv2d_fast_s8's scratch, for receptive fields of k = k_h * k_w * in_c <= NK_CONV_PATCH_MAX
 * (larger ones run a per-tap loop and need none): the columns of a pixel triple expanded to 16-bit
 * lanes (6k bytes, nk_gemm_expand) plus 3 bytes to align them to a word, and, unless the conv reads
 * its input in place, the strip (k_h rows of nk_conv_strip_pitch bytes) or the three gathered
 * receptive fields (3k bytes). */
static inline int32_t nk_conv2d_fast_scratch_bytes(const nk_conv_params_t *p) {
    const int32_t k = p->k_h * p->k_w * p->in_c;
    if (k > NK_CONV_PATCH_MAX) {
        return 0;
    }
    const int32_t rest = nk_conv2d_fast_in_place(p) ? 0
                         : nk_conv2d_fast_strip(p)  ? p->k_h * nk_conv_strip_pitch(p)
                                                    : NK_GEMM_COLS * k;
    return 2 * NK_GEMM_COLS * k + 3 + rest;
}

/* Byte index of weight (row oc, input i) in nk_gemm_cols_s8's layout for out_c rows of k inputs
 * (rows in pairs, four inputs of the even row then four of the odd row, leftovers last; an odd last
 * row as is). nk_conv2d_fast_pack (nk_kernels_pack.h) writes the weights in this order. */
static inline int32_t nk_gemm_index(int32_t oc, int32_t i, int32_t k, int32_t out_c) {
    const int32_t k4 = k & ~3, r = oc & 1;
    if (oc == out_c - 1 && !r) {
        return oc * k + i;
    }
    const int32_t base = (oc - r) * k;
    return i < k4 ? base + (i >> 2) * 8 + r * 4 + (i & 3) : base + 2 * k4 + r * (k - k4) + (i - k4);
}

/* Per-output-channel constants of nk_conv2d_fast_s8, NK_RQ_WORDS int32 per channel, channels in
 * order (nk_conv2d_fast_pack in nk_kernels_pack.h writes them with nk_conv_rq_fill): the
 * folded bias, the multiplier, the rounding constant (2 out_offset + 1) 2^(e-1) of the fast output
 * stage (nk_rq_fast in nk_quant.h; 0 when e > 22) and the right shift e = -shift >= 1. */
#define NK_RQ_WORDS 4
#define NK_RQ_BIAS 0
#define NK_RQ_MULT 1
#define NK_RQ_ROUND 2
#define NK_RQ_RIGHT 3
static inline void nk_conv_rq_fill(int32_t *rq, const int32_t *bias_f, const int32_t *mult,
                                   const int32_t *shift, int32_t out_offset, int32_t n) {
    for (int32_t i = 0; i < n; ++i, rq += NK_RQ_WORDS) {
        const int32_t e = -shift[i];
        rq[NK_RQ_BIAS] = bias_f[i];
        rq[NK_RQ_MULT] = mult[i];
        rq[NK_RQ_ROUND] = e >= 1 && e <= 22 ? (int32_t)((uint32_t)(2 * out_offset + 1) << (e - 1)) : 0;
        rq[NK_RQ_RIGHT] = e;
    }
}

/* CONV_2D as a matrix product over triples of output pixels x pairs of output channels; weights
 * ([out_c][k_h * k_w * in_c] rows of the .tflite) in the nk_gemm_index layout; rq: the channels'
 * constants (NK_RQ_WORDS each, bias folded); scratch: nk_conv2d_fast_scratch_bytes(p) bytes. */
void nk_conv2d_fast_s8(const nk_conv_params_t *p, const int8_t *in, const int8_t *w, const int32_t *rq,
                       int8_t *out, int8_t *scratch);

/* Three input columns c0, c1, c2 (k int8 each) expanded for nk_gemm_cols_s8 into x (6k bytes, word
 * aligned): per four inputs the 16-bit lane pairs (x0,x2), (x1,x3) of c0, then of c1, then of c2;
 * the k % 4 leftovers as single 16-bit lanes, c0's, then c1's, then c2's. */
void nk_gemm_expand(const int8_t *c0, const int8_t *c1, const int8_t *c2, int32_t k, int32_t *x);

/* Requantised products of three expanded input columns (nk_gemm_expand) with out_c weight rows:
 * o0[oc] from column 0, o1[oc] from column 1, o2[oc] from column 2 (o1, o2 may be NULL: not stored). */
typedef struct {
    int32_t k, out_c;
    int32_t out_offset, act_min, act_max;
    int32_t rq_fast; /* 1: act_min/max are -128/127 and every right shift is in [1, 22] (nk_gemm_rq_fast) */
} nk_gemm_params_t;

/* 1 when every output channel of a fast conv takes nk_rq_fast (nk_quant.h): the activation range is
 * all of int8 and every right shift is in [1, 22] (the compiler already guarantees >= 1). */
static inline int32_t nk_gemm_rq_fast(int32_t act_min, int32_t act_max, const int32_t *rq, int32_t n) {
    if (act_min != -128 || act_max != 127) {
        return 0;
    }
    for (int32_t i = 0; i < n; ++i, rq += NK_RQ_WORDS) {
        if (rq[NK_RQ_RIGHT] < 1 || rq[NK_RQ_RIGHT] > 22) {
            return 0;
        }
    }
    return 1;
}
void nk_gemm_cols_s8(const nk_gemm_params_t *g, const int32_t *x, const int8_t *w, const int32_t *rq,
                     int8_t *o0, int8_t *o1, int8_t *o2);

/* Limits of nk_dwconv2d_fast_s8's per-pixel tap table and zero-point row; beyond them it runs a
 * slower per-tap loop (still exact). */
#define NK_DW_MAX_TAPS 64
#define NK_DW_MAX_CH 1024

/* 3x3 kernels take one of three paths (nk_dwconv2d_fast.c):
 *  - rows (nk_dw3x3_uses_rows): a streaming layer's new row, i.e. one output row, stride 1 along it,
 *    no tap outside the input. Four channels at a time at fixed tap offsets, each group's weights and
 *    constants set up once, no scratch. QEMU, the shipped DS-CNN's streaming rows of 17, 7, 5 and 3
 *    outputs: 19.1 k, 13.8 k, 10.8 k and 7.8 k instructions, against 30.9 k by the plane and 19.7 k,
 *    14.1 k and 8.5 k by the four-channel path (docs/bench/model_O2_soft.json, streaming.layers; the
 *    others: docs/candidates/ds_cnn_stream_w74_nb/bench/model_O2_soft_rows_*.json);
 *  - the plane (nk_dw3x3_uses_plane): one channel at a time through an int8 plane, when its setup
 *    (the channel's input copied, its taps unpacked) is shared by NK_DW3_PLANE_MIN_OUTPUTS or more
 *    outputs per channel;
 *  - otherwise the four-channel path with a per-pixel tap table (as for other kernel sizes). */
#define NK_DW3_PLANE_MIN_OUTPUTS 16
static inline int nk_dw3x3_uses_rows(const nk_conv_params_t *p) {
    return p->k_h == 3 && p->k_w == 3 && p->out_h == 1 && p->stride_w == 1 && p->pad_h == 0 &&
           p->pad_w == 0 && p->in_h >= 3 && p->in_w >= p->out_w + 2;
}
static inline int nk_dw3x3_uses_plane(const nk_conv_params_t *p) {
    return p->k_h == 3 && p->k_w == 3 && !nk_dw3x3_uses_rows(p) &&
           p->out_h * p->out_w >= NK_DW3_PLANE_MIN_OUTPUTS;
}

/* Row pitch of the 3x3 path's plane: a fixed NK_DW3_PITCH when a row of len bytes fits (the MAC
 * loop then addresses the three rows with immediate offsets), else len. */
#define NK_DW3_PITCH 32
static inline int32_t nk_dw3x3_pitch(int32_t len) { return len <= NK_DW3_PITCH ? NK_DW3_PITCH : len; }

/* nk_dwconv2d_fast_s8's scratch. 3x3: one channel's zero-point padded input plane, covering the rows
 * and columns the outputs read ((out - 1) * stride + 3 each way; rows along the longer output
 * axis, nk_dw3x3_pitch apart), plus one byte of slack for its word loads. Otherwise a row of in_c input zero points, which taps outside the image point at; 0
 * when no tap falls outside (no padding on any side) or beyond the limits above (per-tap loop). */
static inline int32_t nk_dwconv2d_fast_scratch_bytes(const nk_conv_params_t *p) {
    if (nk_dw3x3_uses_plane(p)) {
        const int32_t len_h = (p->out_h - 1) * p->stride_h + 3, len_w = (p->out_w - 1) * p->stride_w + 3;
        return p->out_h > p->out_w ? len_w * nk_dw3x3_pitch(len_h) + 1 : len_h * nk_dw3x3_pitch(len_w) + 1;
    }
    const int border = p->pad_h > 0 || p->pad_w > 0 || (p->out_h - 1) * p->stride_h + p->k_h > p->in_h ||
                       (p->out_w - 1) * p->stride_w + p->k_w > p->in_w;
    return !border || p->k_h * p->k_w > NK_DW_MAX_TAPS || p->in_c > NK_DW_MAX_CH ? 0 : p->in_c;
}

/* Byte index, in nk_dwconv2d_fast_s8's weight layout, of channel c's weight for tap t (of taps):
 * channels in groups of four, each group's taps consecutive ([group][tap][4]); the last in_c % 4
 * channels follow as [channel][tap]. nk_dwconv2d_fast_pack (nk_kernels_pack.h) writes the weights in
 * this order. */
static inline int32_t nk_dw_fast_index(int32_t c, int32_t t, int32_t taps, int32_t channels) {
    const int32_t main_c = channels & ~3;
    if (c < main_c) {
        return (c >> 2) * taps * 4 + t * 4 + (c & 3);
    }
    return main_c * taps + (c - main_c) * taps + t;
}

/* DEPTHWISE_CONV_2D with depth multiplier 1, weights in the nk_dw_fast_index layout, bias_f folded
 * (never NULL); scratch: nk_dwconv2d_fast_scratch_bytes(p) bytes. 3x3: a channel at a time, tap
 * pairs per SMLAD; other sizes: four channels at a time (one 32-bit load per tap). */
void nk_dwconv2d_fast_s8(const nk_conv_params_t *p, const int8_t *in, const int8_t *w, const int32_t *bias_f,
                         const int32_t *mult, const int32_t *shift, int8_t *out, int8_t *scratch);

#ifdef __cplusplus
}
#endif

#endif /* NK_KERNELS_H */
