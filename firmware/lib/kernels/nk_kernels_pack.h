/* Compile-time preparation of the fast kernels' constant data: the one definition of their weight
 * layouts, folded biases, per-channel requantisation tables and preconditions, which the model
 * compiler calls on the host through the nanokws._frontend extension (tools/nanokws/compiler/lower.py)
 * and writes into nk_model.c. The scratch sizes are nk_*_fast_scratch_bytes in nk_kernels.h.
 *
 * Host only: the nk_*_pack.c files compile to nothing unless NK_KERNELS_PACK is defined (setup.py
 * defines it for the extension), so the board and the firmware programs never carry them. */
#ifndef NK_KERNELS_PACK_H
#define NK_KERNELS_PACK_H

#include <stdint.h>

#include "nk_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    NK_PACK_OK = 0,
    NK_PACK_ARG_ERROR = -1, /* a geometry or argument the kernel does not take (sizes, depth multiplier) */
    NK_PACK_UNBOUNDED = -2, /* nk_requantize_bounded's preconditions fail: the reference kernel must run */
} nk_pack_status_t;

/* Preconditions of nk_requantize_bounded (nk_quant.h), which the fast kernels use: every
 * |accumulator| < NK_FAST_ACC_LIMIT and every shift <= -1. */
#define NK_FAST_ACC_LIMIT ((int64_t)1 << 30)

/* Folded bias of `rows` output channels of k weights each, weight (r, i) at w[r * row_step + i * k_step]
 * (conv [out_c][k]: row_step k, k_step 1; depthwise [taps][channels]: row_step 1, k_step channels):
 * bias_f[r] = bias[r] + in_offset * sum_i w(r, i) (bias NULL: 0), the input offset's whole
 * contribution added once at compile time instead of once per MAC. Wide, so it cannot overflow. */
nk_pack_status_t nk_fast_fold_bias(const int8_t *w, int32_t rows, int32_t k, int32_t row_step, int32_t k_step,
                                   const int32_t *bias, int32_t in_offset, int64_t *bias_f);

/* NK_PACK_OK when nk_requantize_bounded is exact for every output of these weights (laid out as in
 * nk_fast_fold_bias) and folded biases: no accumulator (raw int8 inputs in [-128, 127] times the
 * weights, plus bias_f) reaches NK_FAST_ACC_LIMIT, and every shift is a right shift (<= -1);
 * NK_PACK_UNBOUNDED otherwise. */
nk_pack_status_t nk_fast_check_bounded(const int8_t *w, int32_t rows, int32_t k, int32_t row_step,
                                       int32_t k_step, const int64_t *bias_f, const int32_t *shift);

/* order[j] = the source index (into [out_c][k] weight rows) of byte j of nk_gemm_cols_s8's layout
 * (nk_gemm_index's inverse); out_c * k entries. */
nk_pack_status_t nk_gemm_order(int32_t out_c, int32_t k, int32_t *order);

/* nk_conv2d_fast_s8's constants for a CONV_2D with the .tflite's weights w ([out_c][k_h][k_w][in_c]),
 * bias (NULL: none) and per-channel mult/shift: w_packed (out_c * k_h * k_w * in_c bytes, the
 * nk_gemm_index layout) and rq (NK_RQ_WORDS * out_c words, nk_conv_rq_fill of the folded bias).
 * NK_PACK_UNBOUNDED (nothing written) when the fast kernel's preconditions fail. */
nk_pack_status_t nk_conv2d_fast_pack(const nk_conv_params_t *p, const int8_t *w, const int32_t *bias,
                                     const int32_t *mult, const int32_t *shift, int8_t *w_packed,
                                     int32_t *rq);

/* order[j] = the source index (into [taps][channels] weights) of byte j of nk_dwconv2d_fast_s8's
 * layout (nk_dw_fast_index's inverse); taps * channels entries. */
nk_pack_status_t nk_dw_fast_order(int32_t taps, int32_t channels, int32_t *order);

/* nk_dwconv2d_fast_s8's constants for a DEPTHWISE_CONV_2D of depth multiplier 1 with the .tflite's
 * weights w ([1][k_h][k_w][out_c]), bias (NULL: none) and per-channel shift: w_packed (k_h * k_w *
 * out_c bytes, the nk_dw_fast_index layout) and bias_f (out_c words, folded). The kernel takes the
 * .tflite's mult and shift as they are. NK_PACK_UNBOUNDED (nothing written) when the fast kernel's
 * preconditions fail. */
nk_pack_status_t nk_dwconv2d_fast_pack(const nk_conv_params_t *p, const int8_t *w, const int32_t *bias,
                                       const int32_t *shift, int8_t *w_packed, int32_t *bias_f);

#ifdef __cplusplus
}
#endif

#endif /* NK_KERNELS_PACK_H */
