/* The inner product of the fast convolutions: two input columns x two weight rows at a time, so
 * each loaded word feeds two multiply-accumulates (register blocking).
 *
 * Inputs: the two columns are first expanded to 16-bit lanes (nk_gemm_expand, once per column
 * pair, shared by every output channel): per four inputs the words (x0,x2), (x1,x3) of column 0
 * and of column 1, so the inner loop loads them with two LDRD and never unpacks an input again.
 *
 * Weight layout (written by the compiler, see lower.gemm_order): output channels in pairs; each
 * pair's 2k bytes hold, for every 4 inputs, 4 weights of the even row then 4 of the odd row, then
 * the k % 4 leftover weights of the even row and of the odd row. An odd last row is stored as is.
 * One pointer then walks both rows, and one pair of loads feeds a 2 x 2 block. */
#include <stddef.h>

#include "nk_kernels.h"
#include "nk_quant.h"

#if NK_KERNELS_DSP
#include "nk_simd.h"
#endif
#include <string.h>

/* 16-bit lane i of the expanded buffer (memcpy: the buffer is written as 32-bit words). */
static inline int32_t nk_lane(const int32_t *x, int32_t i)
{
    int16_t v;
    memcpy(&v, (const int16_t *)x + i, sizeof v);
    return v;
}

static inline void nk_set_lane(int32_t *x, int32_t i, int32_t v)
{
    const int16_t h = (int16_t)v;
    memcpy((int16_t *)x + i, &h, sizeof h);
}

void nk_gemm_expand(const int8_t *c0, const int8_t *c1, int32_t k, int32_t *x)
{
    const int32_t k4 = k & ~3;
    int32_t i = 0;
    for (; i < k4; i += 4, x += 4) {
#if NK_KERNELS_DSP
        const int32_t va = nk_load4(c0 + i), vb = nk_load4(c1 + i);
        x[0] = nk_sxtb16(va);
        x[1] = nk_sxtb16_odd(va);
        x[2] = nk_sxtb16(vb);
        x[3] = nk_sxtb16_odd(vb);
#else
        /* The same lanes: (x0,x2),(x1,x3) per column. */
        for (int32_t j = 0; j < 4; ++j) {
            const int32_t lane = (j & 1) * 2 + (j >> 1);
            nk_set_lane(x, lane, c0[i + j]);
            nk_set_lane(x, 4 + lane, c1[i + j]);
        }
#endif
    }
    /* Leftovers as single lanes: k - k4 of column 0, then of column 1. */
    for (int32_t j = i; j < k; ++j) {
        nk_set_lane(x, j - i, c0[j]);
        nk_set_lane(x, k - i + j - i, c1[j]);
    }
}

#if !NK_KERNELS_DSP
/* acc + the four lanes from lane `at` times four weights (what two SMLAD add on the DSP path). */
static inline int32_t nk_dot2(const int32_t *x, int32_t at, const int8_t *w, int32_t acc)
{
    return acc + nk_lane(x, at) * w[0] + nk_lane(x, at + 1) * w[2] + nk_lane(x, at + 2) * w[1] +
           nk_lane(x, at + 3) * w[3];
}
#endif

void nk_gemm_cols_s8(const nk_gemm_params_t *g, const int32_t *x, const int8_t *w, const int32_t *bias_f,
                     const int32_t *mult, const int32_t *shift, int8_t *o0, int8_t *o1)
{
    /* Locals: int8 stores may alias anything, so fields read through g would be reloaded. */
    const int32_t k = g->k, k4 = k & ~3, out_c = g->out_c, rest = k - k4;
    const nk_out_q_t q = {g->out_offset, g->act_min, g->act_max};
    const int full = q.act_min == -128 && q.act_max == 127;
    const int32_t *x_rest = x + k4; /* leftover lanes */
#if !NK_KERNELS_DSP
    const int32_t *x_end = x + k4;
#endif
#if NK_KERNELS_DSP
    const int32_t n8 = k4 >> 3;
#endif
    const int8_t *wp = w; /* walks the row pairs */
    int32_t oc = 0;
    for (; oc + 2 <= out_c; oc += 2) {
        int32_t a00 = bias_f[oc], a01 = bias_f[oc + 1]; /* a<column><row> */
        int32_t a10 = a00, a11 = a01;
#if NK_KERNELS_DSP
        /* One asm block per eight inputs: GCC's scheduler hoists every load of an unrolled C loop
         * to its top and spills, so the order (and register use: 4 sums, 2 pointers, 6 temps) is
         * fixed here. SXTB16 unpacks weight bytes 0,2 and (rotated) 1,3 into 16-bit lanes, the
         * same pairing as the expanded inputs, so SMLAD's sums are exact. */
        const int32_t *xp = x;
        int32_t xa02, xa13, xb02, xb13, wv, t;
#define NK_GEMM_STEP                                                                                   \
    "ldrd %[xa02], %[xa13], [%[xp]], #8\n\t"                                                            \
    "ldrd %[xb02], %[xb13], [%[xp]], #8\n\t"                                                            \
    "ldr %[wv], [%[wp]], #4\n\t"                                                                        \
    "sxtb16 %[t], %[wv]\n\t"                                                                            \
    "sxtb16 %[wv], %[wv], ror #8\n\t"                                                                   \
    "smlad %[a00], %[xa02], %[t], %[a00]\n\t"                                                           \
    "smlad %[a00], %[xa13], %[wv], %[a00]\n\t"                                                          \
    "smlad %[a10], %[xb02], %[t], %[a10]\n\t"                                                           \
    "smlad %[a10], %[xb13], %[wv], %[a10]\n\t"                                                          \
    "ldr %[wv], [%[wp]], #4\n\t"                                                                        \
    "sxtb16 %[t], %[wv]\n\t"                                                                            \
    "sxtb16 %[wv], %[wv], ror #8\n\t"                                                                   \
    "smlad %[a01], %[xa02], %[t], %[a01]\n\t"                                                           \
    "smlad %[a01], %[xa13], %[wv], %[a01]\n\t"                                                          \
    "smlad %[a11], %[xb02], %[t], %[a11]\n\t"                                                           \
    "smlad %[a11], %[xb13], %[wv], %[a11]\n\t"
#define NK_GEMM_OPERANDS                                                                               \
    : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [xp] "+r"(xp), [wp] "+r"(wp), \
      [xa02] "=&r"(xa02), [xa13] "=&r"(xa13), [xb02] "=&r"(xb02), [xb13] "=&r"(xb13), [wv] "=&r"(wv),   \
      [t] "=&r"(t)                                                                                     \
    :                                                                                                  \
    : "memory"
        if (n8 > 0) {
            int32_t n = n8;
            /* The loop itself in asm too: its counter is the 13th register, nothing spills. */
            __asm__("1:\n\t" NK_GEMM_STEP NK_GEMM_STEP "subs %[n], %[n], #1\n\t"
                    "bne 1b\n\t"
                    : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [xp] "+r"(xp),
                      [wp] "+r"(wp), [n] "+r"(n), [xa02] "=&r"(xa02), [xa13] "=&r"(xa13), [xb02] "=&r"(xb02),
                      [xb13] "=&r"(xb13), [wv] "=&r"(wv), [t] "=&r"(t)
                    :
                    : "memory", "cc");
        }
        if (k4 & 4) {
            __asm__(NK_GEMM_STEP NK_GEMM_OPERANDS);
        }
#undef NK_GEMM_STEP
#undef NK_GEMM_OPERANDS
#else
        for (const int32_t *xp = x; xp != x_end; xp += 4, wp += 8) {
            a00 = nk_dot2(xp, 0, wp, a00);
            a10 = nk_dot2(xp, 4, wp, a10);
            a01 = nk_dot2(xp, 0, wp + 4, a01);
            a11 = nk_dot2(xp, 4, wp + 4, a11);
        }
#endif
        for (int32_t j = 0; j < rest; ++j) {
            const int32_t xa = nk_lane(x_rest, j), xb = nk_lane(x_rest, rest + j);
            a00 += xa * wp[j];
            a01 += xa * wp[rest + j];
            a10 += xb * wp[j];
            a11 += xb * wp[rest + j];
        }
        wp += 2 * rest;
        const int32_t m0 = mult[oc], m1 = mult[oc + 1], s0 = shift[oc], s1 = shift[oc + 1];
        if (full && s0 >= -22 && s1 >= -22) {
            /* nk_out_row_s8's exact shortcut: zero point inside the rounding constant, SSAT. */
            const int32_t e0 = -s0, e1 = -s1;
            const int32_t r0 = ((int32_t)1 << (e0 - 1)) + q.out_offset * ((int32_t)1 << e0);
            const int32_t r1 = ((int32_t)1 << (e1 - 1)) + q.out_offset * ((int32_t)1 << e1);
            const int32_t h00 = nk_mulhi_bounded(a00, m0), h10 = nk_mulhi_bounded(a10, m0);
            const int32_t h01 = nk_mulhi_bounded(a01, m1), h11 = nk_mulhi_bounded(a11, m1);
            o0[oc] = nk_sat8((h00 + r0 + (h00 >> 31)) >> e0);
            o0[oc + 1] = nk_sat8((h01 + r1 + (h01 >> 31)) >> e1);
            if (o1 != NULL) {
                o1[oc] = nk_sat8((h10 + r0 + (h10 >> 31)) >> e0);
                o1[oc + 1] = nk_sat8((h11 + r1 + (h11 >> 31)) >> e1);
            }
            continue;
        }
        const int8_t r00 = nk_out_s8(q, a00, m0, s0), r01 = nk_out_s8(q, a01, m1, s1);
        const int8_t r10 = nk_out_s8(q, a10, m0, s0), r11 = nk_out_s8(q, a11, m1, s1);
        o0[oc] = r00;
        o0[oc + 1] = r01;
        if (o1 != NULL) {
            o1[oc] = r10;
            o1[oc + 1] = r11;
        }
    }
    if (oc < out_c) { /* odd channel count: the last row alone, stored as is */
        const int8_t *w0 = w + oc * k;
        int32_t a0 = bias_f[oc], a1 = bias_f[oc];
        for (int32_t i = 0; i < k4; ++i) {
            /* input i's lane: group i / 4 (4 words), word i & 1, half (i >> 1) & 1 */
            const int32_t lane = (i & ~3) * 2 + (i & 1) * 2 + ((i >> 1) & 1);
            a0 += nk_lane(x, lane) * w0[i];
            a1 += nk_lane(x, 4 + lane) * w0[i];
        }
        for (int32_t j = 0; j < rest; ++j) {
            a0 += nk_lane(x_rest, j) * w0[k4 + j];
            a1 += nk_lane(x_rest, rest + j) * w0[k4 + j];
        }
        o0[oc] = nk_out_s8(q, a0, mult[oc], shift[oc]);
        if (o1 != NULL) {
            o1[oc] = nk_out_s8(q, a1, mult[oc], shift[oc]);
        }
    }
}
