/* DEPTHWISE_CONV_2D fast path (depth multiplier 1).
 *
 * 3x3 kernels (DS-CNN's): one channel at a time through a zero-point padded int8 plane in the
 * caller's scratch (nk_dw3x3_plane below), so taps pair up within one channel for SMLAD.
 *
 * Other sizes: per output pixel a table of tap pointers (taps outside the image point at a row of
 * input zero points, cancelled by the folded bias), so border and interior pixels run the same
 * branch-free loop over four channels at a time. The zero-point row (in_c bytes) is the caller's
 * scratch, filled by each call; layers where no tap falls outside the image need none
 * (nk_dwconv2d_fast_scratch_bytes). */
#include <string.h>

#include "nk_kernels.h"
#include "nk_quant.h"

#if NK_KERNELS_DSP
#include "nk_simd.h"
#endif

/* Any size, one output at a time with per-tap bounds checks (tables too large for the limits). */
static void nk_dw_slow(const nk_conv_params_t *p, const int8_t *in, const int8_t *w, const int32_t *bias_f,
                       const int32_t *mult, const int32_t *shift, int8_t *out) {
    const int32_t taps = p->k_h * p->k_w, ch = p->in_c;
    const nk_out_q_t q = {p->out_offset, p->act_min, p->act_max};
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            for (int32_t c = 0; c < ch; ++c) {
                int32_t acc = bias_f[c];
                for (int32_t t = 0; t < taps; ++t) {
                    const int32_t y = oy * p->stride_h - p->pad_h + t / p->k_w;
                    const int32_t x = ox * p->stride_w - p->pad_w + t % p->k_w;
                    const int inside = y >= 0 && y < p->in_h && x >= 0 && x < p->in_w;
                    const int32_t v = inside ? in[(y * p->in_w + x) * ch + c] : -p->in_offset;
                    acc += v * w[nk_dw_fast_index(c, t, taps, ch)];
                }
                out[(oy * p->out_w + ox) * ch + c] = nk_out_s8(q, acc, mult[c], shift[c]);
            }
        }
    }
}

/* 3x3, any stride and padding. For each channel its input (plus the zero-point border the outputs
 * reach) is copied into an int8 plane whose rows run along the longer output axis "a" (transposed
 * when out_h > out_w), so most outputs come in side-by-side pairs. One word load of a plane row
 * holds x0..x3; SXTB16 splits it into (x0,x2) and (x1,x3). With the channel's weights packed as
 * (k0,k2) and k1 per kernel row, output a takes x0 k0 + x2 k2 (SMLAD) + x1 k1 (SMLABB) and output
 * a+1 takes x1 k0 + x3 k2 (SMLAD) + x2 k1 (SMLATB): 7 instructions per 6 MACs. The channel stays
 * fixed for the whole plane, so its requantisation constants stay in registers. */
/* Outputs per MAC pass of the 3x3 path (its int32 accumulators live on the stack). */
#define NK_DW3_CHUNK 32

/* Packed weights of one channel for the 3x3 MAC pass. */
typedef struct {
    int32_t k[3][3]; /* [kernel row along b][tap along a], doubled */
    int32_t bias2;   /* the channel's folded bias, doubled */
#if NK_KERNELS_DSP
    int32_t k02_0, k02_1, k02_2, k1_01, k1_2; /* (k0,k2) per row; middle taps of rows 0,1 | row 2 */
#endif
} nk_dw3_w_t;

/* Doubled sums 2 (bias + sum of x k) of n outputs along a (weights and bias are packed doubled, so
 * the output stage's SMMLAR takes them as they are: nk_rq_fast2), starting at plane position x, rows `pitch` apart.
 * Inlined with a constant pitch (NK_DW3_PITCH) the row offsets become immediates, which keeps the
 * pair loop's weights, pointers and sums all in registers. */
static inline __attribute__((always_inline)) void nk_dw3_macs(const int8_t *x, int32_t n, int32_t s_a,
                                                              int32_t pitch, const nk_dw3_w_t *kw,
                                                              int32_t *acc) {
    int32_t i = 0;
#if NK_KERNELS_DSP
    const int32_t k02_0 = kw->k02_0, k02_1 = kw->k02_1, k02_2 = kw->k02_2, k1_01 = kw->k1_01, k1_2 = kw->k1_2;
    const int32_t bias2 = kw->bias2;
    if (s_a == 1) {
        /* Pointer-bounded loop: x, its end and acc are the only induction registers. */
        i = n & ~1;
        const int8_t *end = x + i;
#if defined(__OPTIMIZE__) && !defined(__clang__)
        if (pitch == NK_DW3_PITCH && i > 0) {
            /* The pair loop in asm (14 registers: GCC's version spills its end pointer); the same
             * instructions as the C loop below, rows at immediate offsets. Size-optimised builds,
             * whose allocator cannot give it 14 registers, compare the end from memory; clang
             * (whose allocator gives up on it) runs the C loop. */
            int32_t v, v02, v13, a0, a1;
#if defined(__OPTIMIZE_SIZE__)
#define NK_DW3_END_CMP "ldr %[v], %[end]\n\tcmp %[x], %[v]\n\t"
#define NK_DW3_END_OPERAND [end] "m"(end)
#else
#define NK_DW3_END_CMP "cmp %[x], %[end]\n\t"
#define NK_DW3_END_OPERAND [end] "r"(end)
#endif
            __asm__("1:\n\t"
                    "ldr %[v], [%[x]]\n\t"
                    "sxtb16 %[v02], %[v]\n\t"
                    "sxtb16 %[v13], %[v], ror #8\n\t"
                    "smlad %[a0], %[v02], %[k02_0], %[bias2]\n\t"
                    "smlabb %[a0], %[v13], %[k1_01], %[a0]\n\t"
                    "smlad %[a1], %[v13], %[k02_0], %[bias2]\n\t"
                    "smlatb %[a1], %[v02], %[k1_01], %[a1]\n\t"
                    "ldr %[v], [%[x], %[p1]]\n\t"
                    "sxtb16 %[v02], %[v]\n\t"
                    "sxtb16 %[v13], %[v], ror #8\n\t"
                    "smlad %[a0], %[v02], %[k02_1], %[a0]\n\t"
                    "smlabt %[a0], %[v13], %[k1_01], %[a0]\n\t"
                    "smlad %[a1], %[v13], %[k02_1], %[a1]\n\t"
                    "smlatt %[a1], %[v02], %[k1_01], %[a1]\n\t"
                    "ldr %[v], [%[x], %[p2]]\n\t"
                    "sxtb16 %[v02], %[v]\n\t"
                    "sxtb16 %[v13], %[v], ror #8\n\t"
                    "smlad %[a0], %[v02], %[k02_2], %[a0]\n\t"
                    "smlabb %[a0], %[v13], %[k1_2], %[a0]\n\t"
                    "smlad %[a1], %[v13], %[k02_2], %[a1]\n\t"
                    "smlatb %[a1], %[v02], %[k1_2], %[a1]\n\t"
                    "strd %[a0], %[a1], [%[acc]], #8\n\t"
                    "adds %[x], %[x], #2\n\t" NK_DW3_END_CMP "bne 1b\n\t"
                    : [x] "+r"(x), [acc] "+r"(acc), [v] "=&r"(v), [v02] "=&r"(v02), [v13] "=&r"(v13),
                      [a0] "=&r"(a0), [a1] "=&r"(a1)
                    : NK_DW3_END_OPERAND, [bias2] "r"(bias2), [k02_0] "r"(k02_0), [k02_1] "r"(k02_1),
                      [k02_2] "r"(k02_2), [k1_01] "r"(k1_01), [k1_2] "r"(k1_2), [p1] "I"(NK_DW3_PITCH),
                      [p2] "I"(2 * NK_DW3_PITCH)
                    : "memory", "cc");
#undef NK_DW3_END_CMP
#undef NK_DW3_END_OPERAND
        }
#endif
        for (; x != end; x += 2, acc += 2) {
            int32_t v = nk_load4(x), v02 = nk_sxtb16(v), v13 = nk_sxtb16_odd(v);
            int32_t acc0 = nk_smlabb(v13, k1_01, nk_smlad(v02, k02_0, bias2));
            int32_t acc1 = nk_smlatb(v02, k1_01, nk_smlad(v13, k02_0, bias2));
            v = nk_load4(x + pitch), v02 = nk_sxtb16(v), v13 = nk_sxtb16_odd(v);
            acc0 = nk_smlabt(v13, k1_01, nk_smlad(v02, k02_1, acc0));
            acc1 = nk_smlatt(v02, k1_01, nk_smlad(v13, k02_1, acc1));
            v = nk_load4(x + 2 * pitch), v02 = nk_sxtb16(v), v13 = nk_sxtb16_odd(v);
            acc[0] = nk_smlabb(v13, k1_2, nk_smlad(v02, k02_2, acc0));
            acc[1] = nk_smlatb(v02, k1_2, nk_smlad(v13, k02_2, acc1));
        }
        acc -= i; /* the singles below index from the chunk's start */
    }
    /* Singles read x0..x3 (x3 unused, at most one byte past the plane: the scratch's slack). */
    for (; i < n; ++i, x += s_a) {
        int32_t v = nk_load4(x);
        int32_t a = nk_smlabb(nk_sxtb16_odd(v), k1_01, nk_smlad(nk_sxtb16(v), k02_0, bias2));
        v = nk_load4(x + pitch);
        a = nk_smlabt(nk_sxtb16_odd(v), k1_01, nk_smlad(nk_sxtb16(v), k02_1, a));
        v = nk_load4(x + 2 * pitch);
        acc[i] = nk_smlabb(nk_sxtb16_odd(v), k1_2, nk_smlad(nk_sxtb16(v), k02_2, a));
    }
#else
    for (; i < n; ++i, x += s_a) {
        int32_t a = kw->bias2;
        for (int32_t jb = 0; jb < 3; ++jb) {
            const int8_t *xr = x + jb * pitch;
            a += xr[0] * kw->k[jb][0] + xr[1] * kw->k[jb][1] + xr[2] * kw->k[jb][2];
        }
        acc[i] = a;
    }
#endif
}

/* 3x3, any stride and padding. For each channel its input (plus the zero-point border the outputs
 * reach) is copied into an int8 plane whose rows run along the longer output axis "a" (transposed
 * when out_h > out_w), so most outputs come in side-by-side pairs. One word load of a plane row
 * holds x0..x3; SXTB16 splits it into (x0,x2) and (x1,x3). With the channel's weights packed as
 * (k0,k2) and k1 per kernel row, output a takes x0 k0 + x2 k2 (SMLAD) + x1 k1 (SMLABB) and output
 * a+1 takes x1 k0 + x3 k2 (SMLAD) + x2 k1 (SMLATB): 7 instructions per 6 MACs. The sums of a row
 * chunk are then requantised with the channel's constants in registers (nk_out_row2_s8). */
static void nk_dw3x3_plane(const nk_conv_params_t *p, const int8_t *in, const int8_t *w,
                           const int32_t *bias_f, const int32_t *mult, const int32_t *shift, int8_t *out,
                           int8_t *plane) {
    const int32_t ch = p->in_c, main_c = ch & ~3;
    const int tr = p->out_h > p->out_w;
    const int32_t n_a = tr ? p->out_h : p->out_w, n_b = tr ? p->out_w : p->out_h;
    const int32_t s_a = tr ? p->stride_h : p->stride_w, s_b = tr ? p->stride_w : p->stride_h;
    const int32_t len_a = (n_a - 1) * s_a + 3, len_b = (n_b - 1) * s_b + 3;
    const int32_t pitch = nk_dw3x3_pitch(len_a); /* as nk_dwconv2d_fast_scratch_bytes */
    const int32_t pad_a = tr ? p->pad_h : p->pad_w, pad_b = tr ? p->pad_w : p->pad_h;
    const int32_t in_a = tr ? p->in_h : p->in_w, in_b = tr ? p->in_w : p->in_h;
    const int32_t in_step_a = (tr ? p->in_w : 1) * ch, in_step_b = (tr ? 1 : p->in_w) * ch;
    const int32_t out_step_a = (tr ? p->out_w : 1) * ch, out_step_b = (tr ? 1 : p->out_w) * ch;
    /* Plane columns [a0, a1) hold image positions a0 - pad_a ...; the others the zero point. */
    const int32_t a0 = pad_a < len_a ? pad_a : len_a;
    const int32_t a1 = pad_a + in_a < len_a ? pad_a + in_a : len_a;
    const int8_t zp = (int8_t)(-p->in_offset);
    const nk_out_q_t q = {p->out_offset, p->act_min, p->act_max};
    /* The border (taps outside the image) is the zero point for every channel: written once.
     * Rows [b0, b1) of the plane hold image rows b0 - pad_b ..., columns [a0, a1) image columns. */
    memset(plane, zp, (size_t)(len_b * pitch));
    const int32_t b0 = pad_b < len_b ? pad_b : len_b;
    const int32_t b1 = pad_b + in_b < len_b ? pad_b + in_b : len_b;
    const int32_t n_copy = a1 - a0;
    for (int32_t c = 0; c < ch; ++c) {
        for (int32_t ib = b0; ib < b1; ++ib) {
            int8_t *dst = plane + ib * pitch + a0;
            const int8_t *src = in + (ib - pad_b) * in_step_b + (a0 - pad_a) * in_step_a + c;
            int32_t i = 0;
            /* Four strided bytes per word store (the plane row is contiguous). */
            for (; i + 4 <= n_copy; i += 4, src += 4 * in_step_a) {
                const uint32_t v = (uint8_t)src[0] | (uint32_t)(uint8_t)src[in_step_a] << 8 |
                                   (uint32_t)(uint8_t)src[2 * in_step_a] << 16 |
                                   (uint32_t)(uint8_t)src[3 * in_step_a] << 24;
                memcpy(dst + i, &v, 4);
            }
            for (; i < n_copy; ++i, src += in_step_a) {
                dst[i] = *src;
            }
        }
        /* Weight of tap (ky, kx) in the nk_dw_fast_index layout: four-channel groups interleave. */
        const int8_t *wc = w + nk_dw_fast_index(c, 0, 9, ch);
        const int32_t wstep = c < main_c ? 4 : 1;
        nk_dw3_w_t kw;
        for (int32_t jb = 0; jb < 3; ++jb) {
            for (int32_t ja = 0; ja < 3; ++ja) {
                kw.k[jb][ja] = 2 * wc[wstep * (tr ? ja * 3 + jb : jb * 3 + ja)];
            }
        }
#if NK_KERNELS_DSP
        kw.k02_0 = nk_pack16(kw.k[0][0], kw.k[0][2]), kw.k02_1 = nk_pack16(kw.k[1][0], kw.k[1][2]);
        kw.k02_2 = nk_pack16(kw.k[2][0], kw.k[2][2]);
        kw.k1_01 = nk_pack16(kw.k[0][1], kw.k[1][1]), kw.k1_2 = kw.k[2][1];
#endif
        kw.bias2 = 2 * bias_f[c]; /* |bias_f| < 2^30 (lower.accumulators_bounded) */
        /* Per channel, not per row: the output stores may alias mult/shift/bias_f. */
        const nk_rq_t rq = nk_rq_init(q, 0, mult[c], shift[c]);
        for (int32_t ob = 0; ob < n_b; ++ob) {
            const int8_t *r = plane + ob * s_b * pitch;
            int8_t *o = out + ob * out_step_b + c;
            /* Two passes per chunk: the MACs with only weights and pointers live, then the
             * requantisation with only its constants live (one pass would spill both). */
            for (int32_t a_lo = 0; a_lo < n_a; a_lo += NK_DW3_CHUNK) {
                const int32_t n = n_a - a_lo < NK_DW3_CHUNK ? n_a - a_lo : NK_DW3_CHUNK;
                int32_t acc[NK_DW3_CHUNK];
                if (pitch == NK_DW3_PITCH) {
                    nk_dw3_macs(r + a_lo * s_a, n, s_a, NK_DW3_PITCH, &kw, acc);
                } else {
                    nk_dw3_macs(r + a_lo * s_a, n, s_a, pitch, &kw, acc);
                }
                nk_out_row2_s8(q, &rq, acc, n, o + a_lo * out_step_a, out_step_a);
            }
        }
    }
}

/* 3x3, stride 1 along the row, no padding, one output row (a streaming layer's new row): four
 * channels at a time straight from the NHWC input, like the generic path below, but with the nine
 * taps at fixed offsets (no per-pixel tap table), each group's weights unpacked once into 16-bit
 * lanes and its requantisation constants computed once. Per tap and four channels: one word load,
 * two SXTB16, one LDRD of the unpacked weights and four 16 x 16 multiply-accumulates. */
#if NK_KERNELS_DSP && defined(__OPTIMIZE__) && defined(__GNUC__) && !defined(__clang__)
#define NK_DW3_ROWS_ASM 1
/* clang-format off */
/* One tap, four channels: the input word at ptr, SXTB16 into (c, c+2) and (c+1, c+3), the tap's
 * unpacked weights at wk + wofs, four 16 x 16 multiply-accumulates. */
#define NK_DW3_ROW_TAP(ptr, wofs)                   \
    "ldr %[v], " ptr "\n\t"                         \
    "sxtb16 %[x13], %[v], ror #8\n\t"               \
    "sxtb16 %[v], %[v]\n\t"                         \
    "ldrd %[k0], %[k1], [%[wk], #" wofs "]\n\t"     \
    "smlabb %[a0], %[v], %[k0], %[a0]\n\t"          \
    "smlatt %[a2], %[v], %[k0], %[a2]\n\t"          \
    "smlabb %[a1], %[x13], %[k1], %[a1]\n\t"        \
    "smlatt %[a3], %[x13], %[k1], %[a3]\n\t"
/* One kernel row from t: taps at t, t + col, t + 2 col (t ends one column on). */
#define NK_DW3_ROW(wofs0, wofs1, wofs2)             \
    NK_DW3_ROW_TAP("[%[t]]", wofs0)                 \
    NK_DW3_ROW_TAP("[%[t], %[col]]", wofs1)         \
    "add %[t], %[t], %[col]\n\t"                    \
    NK_DW3_ROW_TAP("[%[t], %[col]]", wofs2)
/* The nine taps of the output pixel at x: kernel rows at x, x + row, x + 2 row. */
#define NK_DW3_ROWS_MACS                            \
    "mov %[t], %[x]\n\t"                            \
    NK_DW3_ROW("0", "8", "16")                      \
    "add %[t], %[x], %[row]\n\t"                    \
    NK_DW3_ROW("24", "32", "40")                    \
    "add %[t], %[t], %[row]\n\t"                    \
    "sub %[t], %[t], %[col]\n\t"                    \
    NK_DW3_ROW("48", "56", "64")
/* nk_rq_fast2 of one doubled sum with its channel's constants at rq + mo (multiplier, rounding
 * constant) and rq + eo (shift), stored at o + oo. */
#define NK_DW3_ROW_RQ(acc, mo, eo, oo)              \
    "ldrd %[m], %[rc], [%[rq], #" mo "]\n\t"        \
    "ldr %[e], [%[rq], #" eo "]\n\t"                \
    "smmlar %[r], %[" acc "], %[m], %[rc]\n\t"      \
    "add %[r], %[r], %[" acc "], asr #31\n\t"       \
    "asr %[r], %[r], %[e]\n\t"                      \
    "ssat %[r], #8, %[r]\n\t"                       \
    "strb %[r], [%[o], #" oo "]\n\t"
#define NK_DW3_ROWS_RQ                              \
    NK_DW3_ROW_RQ("a0", "0", "8", "0")              \
    NK_DW3_ROW_RQ("a1", "16", "24", "1")            \
    NK_DW3_ROW_RQ("a2", "32", "40", "2")            \
    NK_DW3_ROW_RQ("a3", "48", "56", "3")
/* clang-format on */
#else
#define NK_DW3_ROWS_ASM 0
#endif
static void nk_dw3x3_rows(const nk_conv_params_t *p, const int8_t *in, const int8_t *w, const int32_t *bias_f,
                          const int32_t *mult, const int32_t *shift, int8_t *out) {
    const int32_t ch = p->in_c, main_c = ch & ~3, out_w = p->out_w;
    const int32_t col = ch, row = p->in_w * ch;
    const nk_out_q_t q = {p->out_offset, p->act_min, p->act_max};
    for (int32_t c = 0; c < main_c; c += 4) {
        const int8_t *wg = w + nk_dw_fast_index(c, 0, 9, ch);
        /* Per tap: channels (c, c+2) and (c+1, c+3) as 16-bit lanes, doubled (so the sums come out
         * doubled, as the output stage's SMMLAR takes them: nk_rq_fast2). */
        int32_t wk[9][2];
        for (int32_t t = 0; t < 9; ++t) {
#if NK_KERNELS_DSP
            const int32_t wv = nk_load4(wg + 4 * t);
            /* Each lane doubled: the low lane's sign bit, shifted into bit 16, is cleared. */
            wk[t][0] = (int32_t)(((uint32_t)nk_sxtb16(wv) << 1) & ~0x10000u);
            wk[t][1] = (int32_t)(((uint32_t)nk_sxtb16_odd(wv) << 1) & ~0x10000u);
#else
            const int8_t *k = wg + 4 * t;
            wk[t][0] = (int32_t)((uint32_t)(uint16_t)(2 * k[2]) << 16 | (uint16_t)(2 * k[0]));
            wk[t][1] = (int32_t)((uint32_t)(uint16_t)(2 * k[3]) << 16 | (uint16_t)(2 * k[1]));
#endif
        }
        const nk_rq_t r0 = nk_rq_init(q, 0, mult[c], shift[c]),
                      r1 = nk_rq_init(q, 0, mult[c + 1], shift[c + 1]);
        const nk_rq_t r2 = nk_rq_init(q, 0, mult[c + 2], shift[c + 2]),
                      r3 = nk_rq_init(q, 0, mult[c + 3], shift[c + 3]);
        const int fast = r0.fast && r1.fast && r2.fast && r3.fast;
#if NK_DW3_ROWS_ASM
        /* The fast output stage's constants per channel: multiplier, rounding constant, shift. */
        const int32_t rqc[4][4] = {{r0.mult, r0.c, r0.right, 0},
                                   {r1.mult, r1.c, r1.right, 0},
                                   {r2.mult, r2.c, r2.right, 0},
                                   {r3.mult, r3.c, r3.right, 0}};
#endif
        /* Doubled: |bias_f| < 2^30 (lower.accumulators_bounded). */
        const int32_t b0 = 2 * bias_f[c], b1 = 2 * bias_f[c + 1], b2 = 2 * bias_f[c + 2],
                      b3 = 2 * bias_f[c + 3];
        const int8_t *x = in + c;
        int8_t *o = out + c;
        for (int32_t ox = 0; ox < out_w; ++ox, x += col, o += ch) {
            int32_t a0 = b0, a1 = b1, a2 = b2, a3 = b3;
#if NK_DW3_ROWS_ASM
            /* In asm (GCC spilled the unpacked inputs): 13 registers, rows by pointer adds. */
            const int8_t *t;
            int32_t v, x13, k0, k1;
            __asm__(NK_DW3_ROWS_MACS
                    : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [t] "=&r"(t), [v] "=&r"(v),
                      [x13] "=&r"(x13), [k0] "=&r"(k0), [k1] "=&r"(k1)
                    : [x] "r"(x), [col] "r"(col), [row] "r"(row), [wk] "r"(wk)
                    : "memory");
#else
            for (int32_t tap = 0; tap < 9; ++tap) {
                const int8_t *xt = x + (tap / 3) * row + (tap % 3) * col;
                const int32_t k0 = wk[tap][0], k1 = wk[tap][1];
                a0 += xt[0] * (int16_t)k0, a2 += xt[2] * (k0 >> 16);
                a1 += xt[1] * (int16_t)k1, a3 += xt[3] * (k1 >> 16);
            }
#endif
            if (fast) {
#if NK_DW3_ROWS_ASM
                /* nk_rq_fast2 in asm, four channels (GCC reloads the constants and packs the four
                 * bytes into a word): per output LDRD + LDR of the constants, SMMLAR, ADD, ASR,
                 * SSAT, STRB. Volatile: its only effect is the stores. */
                int32_t m, rc, e, r;
                __asm__ volatile(
                    NK_DW3_ROWS_RQ
                    : [m] "=&r"(m), [rc] "=&r"(rc), [e] "=&r"(e), [r] "=&r"(r)
                    : [a0] "r"(a0), [a1] "r"(a1), [a2] "r"(a2), [a3] "r"(a3), [o] "r"(o), [rq] "r"(rqc)
                    : "memory");
#else
                o[0] = (int8_t)nk_rq_fast2(a0, r0.mult, r0.c, r0.right);
                o[1] = (int8_t)nk_rq_fast2(a1, r1.mult, r1.c, r1.right);
                o[2] = (int8_t)nk_rq_fast2(a2, r2.mult, r2.c, r2.right);
                o[3] = (int8_t)nk_rq_fast2(a3, r3.mult, r3.c, r3.right);
#endif
            } else {
                o[0] = nk_out_s8(q, a0 >> 1, r0.mult, r0.shift);
                o[1] = nk_out_s8(q, a1 >> 1, r1.mult, r1.shift);
                o[2] = nk_out_s8(q, a2 >> 1, r2.mult, r2.shift);
                o[3] = nk_out_s8(q, a3 >> 1, r3.mult, r3.shift);
            }
        }
    }
    for (int32_t c = main_c; c < ch; ++c) {
        const int8_t *wc = w + nk_dw_fast_index(c, 0, 9, ch);
        for (int32_t ox = 0; ox < out_w; ++ox) {
            const int8_t *x = in + ox * col + c;
            int32_t acc = bias_f[c];
            for (int32_t t = 0; t < 9; ++t) {
                acc += x[(t / 3) * row + (t % 3) * col] * wc[t];
            }
            out[ox * ch + c] = nk_out_s8(q, acc, mult[c], shift[c]);
        }
    }
}

void nk_dwconv2d_fast_s8(const nk_conv_params_t *p, const int8_t *in, const int8_t *w, const int32_t *bias_f,
                         const int32_t *mult, const int32_t *shift, int8_t *out, int8_t *scratch) {
    if (nk_dw3x3_uses_rows(p)) {
        nk_dw3x3_rows(p, in, w, bias_f, mult, shift, out);
        return;
    }
    if (nk_dw3x3_uses_plane(p)) {
        nk_dw3x3_plane(p, in, w, bias_f, mult, shift, out, scratch);
        return;
    }
    const int32_t taps = p->k_h * p->k_w, ch = p->in_c, main_c = ch & ~3;
    if (taps > NK_DW_MAX_TAPS || ch > NK_DW_MAX_CH) {
        nk_dw_slow(p, in, w, bias_f, mult, shift, out);
        return;
    }
    /* Taps outside the image point at the zero-point row; there are none when it needs 0 bytes. */
    if (nk_dwconv2d_fast_scratch_bytes(p) > 0) {
        memset(scratch, -p->in_offset, (size_t)ch);
    }
    /* Locals: int8 stores may alias anything, so fields read through p would be reloaded. */
    const nk_out_q_t q = {p->out_offset, p->act_min, p->act_max};
    const int32_t in_h = p->in_h, in_w = p->in_w, k_w = p->k_w;
    const int8_t *tap[NK_DW_MAX_TAPS];
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t y0 = oy * p->stride_h - p->pad_h, x0 = ox * p->stride_w - p->pad_w;
            for (int32_t t = 0; t < taps; ++t) {
                const int32_t y = y0 + t / k_w, x = x0 + t % k_w;
                const int inside = y >= 0 && y < in_h && x >= 0 && x < in_w;
                tap[t] = inside ? in + (y * in_w + x) * ch : scratch;
            }
            int8_t *o = out + (oy * p->out_w + ox) * ch;
            const int8_t *wg = w;
            for (int32_t c = 0; c < main_c; c += 4) {
                int32_t a0 = bias_f[c], a1 = bias_f[c + 1], a2 = bias_f[c + 2], a3 = bias_f[c + 3];
                for (int32_t t = 0; t < taps; ++t, wg += 4) {
#if NK_KERNELS_DSP
                    /* Per-channel products: SMLABB / SMLATT multiply one 16-bit lane pair each. */
                    const int32_t xv = nk_load4(tap[t] + c), wv = nk_load4(wg);
                    const int32_t x02 = nk_sxtb16(xv), x13 = nk_sxtb16_odd(xv);
                    const int32_t w02 = nk_sxtb16(wv), w13 = nk_sxtb16_odd(wv);
                    a0 = nk_smlabb(x02, w02, a0);
                    a2 = nk_smlatt(x02, w02, a2);
                    a1 = nk_smlabb(x13, w13, a1);
                    a3 = nk_smlatt(x13, w13, a3);
#else
                    const int8_t *x = tap[t] + c;
                    a0 += (int32_t)x[0] * wg[0];
                    a1 += (int32_t)x[1] * wg[1];
                    a2 += (int32_t)x[2] * wg[2];
                    a3 += (int32_t)x[3] * wg[3];
#endif
                }
                const int8_t r0 = nk_out_s8(q, a0, mult[c], shift[c]);
                const int8_t r1 = nk_out_s8(q, a1, mult[c + 1], shift[c + 1]);
                const int8_t r2 = nk_out_s8(q, a2, mult[c + 2], shift[c + 2]);
                const int8_t r3 = nk_out_s8(q, a3, mult[c + 3], shift[c + 3]);
                o[c] = r0;
                o[c + 1] = r1;
                o[c + 2] = r2;
                o[c + 3] = r3;
            }
            for (int32_t c = main_c; c < ch; ++c, wg += taps) {
                int32_t acc = bias_f[c];
                for (int32_t t = 0; t < taps; ++t) {
                    acc += (int32_t)tap[t][c] * wg[t];
                }
                o[c] = nk_out_s8(q, acc, mult[c], shift[c]);
            }
        }
    }
}
