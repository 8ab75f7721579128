/* The inner product of the fast convolutions: three input columns (output pixels) x two weight
 * rows (output channels) at a time, so each unpacked weight word feeds three multiply-accumulates
 * and each loaded input word two (register blocking).
 *
 * Inputs: the three columns are first expanded to 16-bit lanes (nk_gemm_expand, once per pixel
 * triple, shared by every output channel): per four inputs the words (x0,x2), (x1,x3) of column 0,
 * then of column 1, then of column 2, so the inner loop loads them with LDRD and never unpacks an
 * input again.
 *
 * Weight layout (written by the compiler, see lower.gemm_order): output channels in pairs; each
 * pair's 2k bytes hold, for every 4 inputs, 4 weights of the even row then 4 of the odd row, then
 * the k % 4 leftover weights of the even row and of the odd row. An odd last row is stored as is.
 * One pointer then walks both rows. */
#include <stddef.h>
#include <string.h>

#include "nk_kernels.h"
#include "nk_quant.h"

#if NK_KERNELS_DSP
#include "nk_simd.h"
#endif

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

void nk_gemm_expand(const int8_t *c0, const int8_t *c1, const int8_t *c2, int32_t k, int32_t *x)
{
    const int8_t *const c[NK_GEMM_COLS] = {c0, c1, c2};
    const int32_t k4 = k & ~3;
    int32_t i = 0;
    for (; i < k4; i += 4, x += 2 * NK_GEMM_COLS) {
        for (int32_t col = 0; col < NK_GEMM_COLS; ++col) {
#if NK_KERNELS_DSP
            const int32_t v = nk_load4(c[col] + i);
            x[2 * col] = nk_sxtb16(v);
            x[2 * col + 1] = nk_sxtb16_odd(v);
#else
            /* The same lanes: (x0,x2),(x1,x3) per column. */
            for (int32_t j = 0; j < 4; ++j) {
                nk_set_lane(x, 4 * col + (j & 1) * 2 + (j >> 1), c[col][i + j]);
            }
#endif
        }
    }
    /* Leftovers as single lanes: k - k4 of column 0, then of column 1, then of column 2. */
    for (int32_t col = 0; col < NK_GEMM_COLS; ++col) {
        for (int32_t j = i; j < k; ++j) {
            nk_set_lane(x, col * (k - i) + j - i, c[col][j]);
        }
    }
}

/* Requantise the sums of n output channels (NK_GEMM_COLS per channel) into o0, o1, o2. Column 2,
 * then 1, then 0 is stored, so a column aliased to o0 (not to be stored) is overwritten by
 * column 0. The fast branch is the shortcut of nk_out_row_s8 in nk_quant.h (zero point inside the rounding
 * constant, SSAT); nk_gemm_cols_s8 inlines it for its channel pairs. */
static void nk_gemm_out(nk_out_q_t q, const int32_t *sums, int32_t n, const int32_t *mult, const int32_t *shift,
                        int8_t *o0, int8_t *o1, int8_t *o2)
{
    const int full = q.act_min == -128 && q.act_max == 127;
    for (int32_t i = 0; i < n; ++i, sums += NK_GEMM_COLS) {
        const int32_t m = mult[i], s = shift[i];
        if (full && s >= -22) {
            const int32_t e = -s, r = ((int32_t)1 << (e - 1)) + q.out_offset * ((int32_t)1 << e);
            const int32_t h2 = nk_mulhi_bounded(sums[2], m), h1 = nk_mulhi_bounded(sums[1], m);
            const int32_t h0 = nk_mulhi_bounded(sums[0], m);
            o2[i] = nk_sat8((h2 + r + (h2 >> 31)) >> e);
            o1[i] = nk_sat8((h1 + r + (h1 >> 31)) >> e);
            o0[i] = nk_sat8((h0 + r + (h0 >> 31)) >> e);
        } else {
            o2[i] = nk_out_s8(q, sums[2], m, s);
            o1[i] = nk_out_s8(q, sums[1], m, s);
            o0[i] = nk_out_s8(q, sums[0], m, s);
        }
    }
}

void nk_gemm_cols_s8(const nk_gemm_params_t *g, const int32_t *x, const int8_t *w, const int32_t *bias_f,
                     const int32_t *mult, const int32_t *shift, int8_t *o0, int8_t *o1, int8_t *o2)
{
    /* Locals: int8 stores may alias anything, so fields read through g would be reloaded. */
    const int32_t k = g->k, k4 = k & ~3, out_c = g->out_c, rest = k - k4, groups = k4 >> 2;
    const nk_out_q_t q = {g->out_offset, g->act_min, g->act_max};
    const int full = q.act_min == -128 && q.act_max == 127;
    const int32_t *x_rest = x + groups * 2 * NK_GEMM_COLS; /* leftover lanes */
    const int8_t *wp = w;                                   /* walks the row pairs */
    /* A column not to be stored goes to o0 first and is overwritten by column 0 (stored last). */
    o1 = o1 != NULL ? o1 : o0;
    o2 = o2 != NULL ? o2 : o0;
    int32_t sums[2 * NK_GEMM_COLS]; /* [channel][column], for the general output stage */
    int32_t oc = 0;
    for (; oc + 2 <= out_c; oc += 2) {
        int32_t a0 = bias_f[oc], b0 = bias_f[oc + 1]; /* a: even row, b: odd row; digit: column */
        int32_t a1 = a0, a2 = a0, b1 = b0, b2 = b0;
        const int32_t *xp = x;
#if NK_KERNELS_DSP && defined(__OPTIMIZE__) && defined(__GNUC__) && !defined(__clang__)
        /* The loop in asm: GCC's scheduler hoists the loads of an unrolled C loop and spills.
         * 6 sums, 4 unpacked weights, 2 input words, 2 pointers: all 14 allocatable registers
         * (hence optimised GCC builds only, which omit the frame pointer; clang's allocator
         * gives up on it), so the loop's end is compared from memory. SXTB16 unpacks weight bytes 0,2 and (rotated) 1,3 into 16-bit
         * lanes, the same pairing as the expanded inputs: SMLAD's sums are exact. */
        int32_t e02, e13, o02, wv, x02, x13;
        const int32_t *x_end = x_rest;
#define NK_GEMM_GROUP                                                                                  \
    "ldr %[wv], [%[wp]], #4\n\t"                                                                        \
    "sxtb16 %[e02], %[wv]\n\t"                                                                          \
    "sxtb16 %[e13], %[wv], ror #8\n\t"                                                                  \
    "ldr %[wv], [%[wp]], #4\n\t"                                                                        \
    "sxtb16 %[o02], %[wv]\n\t"                                                                          \
    "sxtb16 %[wv], %[wv], ror #8\n\t"                                                                   \
    "ldrd %[x02], %[x13], [%[xp]], #8\n\t"                                                              \
    "smlad %[a0], %[x02], %[e02], %[a0]\n\t"                                                            \
    "smlad %[a0], %[x13], %[e13], %[a0]\n\t"                                                            \
    "smlad %[b0], %[x02], %[o02], %[b0]\n\t"                                                            \
    "smlad %[b0], %[x13], %[wv], %[b0]\n\t"                                                             \
    "ldrd %[x02], %[x13], [%[xp]], #8\n\t"                                                              \
    "smlad %[a1], %[x02], %[e02], %[a1]\n\t"                                                            \
    "smlad %[a1], %[x13], %[e13], %[a1]\n\t"                                                            \
    "smlad %[b1], %[x02], %[o02], %[b1]\n\t"                                                            \
    "smlad %[b1], %[x13], %[wv], %[b1]\n\t"                                                             \
    "ldrd %[x02], %[x13], [%[xp]], #8\n\t"                                                              \
    "smlad %[a2], %[x02], %[e02], %[a2]\n\t"                                                            \
    "smlad %[a2], %[x13], %[e13], %[a2]\n\t"                                                            \
    "smlad %[b2], %[x02], %[o02], %[b2]\n\t"                                                            \
    "smlad %[b2], %[x13], %[wv], %[b2]\n\t"
#define NK_GEMM_OPERANDS                                                                               \
    [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [b0] "+r"(b0), [b1] "+r"(b1), [b2] "+r"(b2),            \
        [xp] "+r"(xp), [wp] "+r"(wp), [e02] "=&r"(e02), [e13] "=&r"(e13), [o02] "=&r"(o02),             \
        [wv] "=&r"(wv), [x02] "=&r"(x02), [x13] "=&r"(x13)
        if (groups & 1) {
            __asm__(NK_GEMM_GROUP : NK_GEMM_OPERANDS : : "memory");
        }
        if (groups & 2) {
            __asm__(NK_GEMM_GROUP NK_GEMM_GROUP : NK_GEMM_OPERANDS : : "memory");
        }
        if (groups >= 4) { /* four groups per iteration: the end test costs 3 per 96 MACs */
            __asm__("1:\n\t" NK_GEMM_GROUP NK_GEMM_GROUP NK_GEMM_GROUP NK_GEMM_GROUP "ldr %[x02], %[end]\n\t"
                    "cmp %[xp], %[x02]\n\t"
                    "bne 1b\n\t"
                    : NK_GEMM_OPERANDS
                    : [end] "m"(x_end)
                    : "memory", "cc");
        }
#undef NK_GEMM_GROUP
#undef NK_GEMM_OPERANDS
#elif NK_KERNELS_DSP
        /* The same instructions in C (clang, -O0). */
        for (int32_t n = 0; n < groups; ++n, xp += 2 * NK_GEMM_COLS, wp += 8) {
            const int32_t we = nk_load4(wp), wo = nk_load4(wp + 4);
            const int32_t e02 = nk_sxtb16(we), e13 = nk_sxtb16_odd(we);
            const int32_t o02 = nk_sxtb16(wo), o13 = nk_sxtb16_odd(wo);
            a0 = nk_smlad(xp[1], e13, nk_smlad(xp[0], e02, a0));
            b0 = nk_smlad(xp[1], o13, nk_smlad(xp[0], o02, b0));
            a1 = nk_smlad(xp[3], e13, nk_smlad(xp[2], e02, a1));
            b1 = nk_smlad(xp[3], o13, nk_smlad(xp[2], o02, b1));
            a2 = nk_smlad(xp[5], e13, nk_smlad(xp[4], e02, a2));
            b2 = nk_smlad(xp[5], o13, nk_smlad(xp[4], o02, b2));
        }
#else
        for (int32_t n = 0; n < groups; ++n, xp += 2 * NK_GEMM_COLS, wp += 8) {
            int32_t *const acc[2][NK_GEMM_COLS] = {{&a0, &a1, &a2}, {&b0, &b1, &b2}};
            for (int32_t r = 0; r < 2; ++r) {
                for (int32_t col = 0; col < NK_GEMM_COLS; ++col) {
                    const int32_t *xc = xp + 2 * col;
                    const int8_t *wr = wp + 4 * r;
                    /* lanes (x0,x2),(x1,x3): what two SMLAD add on the DSP path */
                    *acc[r][col] += nk_lane(xc, 0) * wr[0] + nk_lane(xc, 1) * wr[2] + nk_lane(xc, 2) * wr[1] +
                                    nk_lane(xc, 3) * wr[3];
                }
            }
        }
#endif
        for (int32_t j = 0; j < rest; ++j) {
            const int32_t x0 = nk_lane(x_rest, j), x1 = nk_lane(x_rest, rest + j);
            const int32_t x2 = nk_lane(x_rest, 2 * rest + j);
            a0 += x0 * wp[j], a1 += x1 * wp[j], a2 += x2 * wp[j];
            b0 += x0 * wp[rest + j], b1 += x1 * wp[rest + j], b2 += x2 * wp[rest + j];
        }
        wp += 2 * rest;
        const int32_t ma = mult[oc], mb = mult[oc + 1], sa = shift[oc], sb = shift[oc + 1];
        if (full && sa >= -22 && sb >= -22) { /* nk_gemm_out's fast branch, inline */
            const int32_t ea = -sa, eb = -sb;
            const int32_t ra = ((int32_t)1 << (ea - 1)) + q.out_offset * ((int32_t)1 << ea);
            const int32_t rb = ((int32_t)1 << (eb - 1)) + q.out_offset * ((int32_t)1 << eb);
            int32_t h = nk_mulhi_bounded(a2, ma);
            o2[oc] = nk_sat8((h + ra + (h >> 31)) >> ea);
            h = nk_mulhi_bounded(b2, mb);
            o2[oc + 1] = nk_sat8((h + rb + (h >> 31)) >> eb);
            h = nk_mulhi_bounded(a1, ma);
            o1[oc] = nk_sat8((h + ra + (h >> 31)) >> ea);
            h = nk_mulhi_bounded(b1, mb);
            o1[oc + 1] = nk_sat8((h + rb + (h >> 31)) >> eb);
            h = nk_mulhi_bounded(a0, ma);
            o0[oc] = nk_sat8((h + ra + (h >> 31)) >> ea);
            h = nk_mulhi_bounded(b0, mb);
            o0[oc + 1] = nk_sat8((h + rb + (h >> 31)) >> eb);
        } else {
            sums[0] = a0, sums[1] = a1, sums[2] = a2;
            sums[3] = b0, sums[4] = b1, sums[5] = b2;
            nk_gemm_out(q, sums, 2, mult + oc, shift + oc, o0 + oc, o1 + oc, o2 + oc);
        }
    }
    if (oc < out_c) { /* odd channel count: the last row alone, stored as is */
        for (int32_t col = 0; col < NK_GEMM_COLS; ++col) {
            int32_t acc = bias_f[oc];
            for (int32_t i = 0; i < k4; ++i) {
                /* input i's lane: group i / 4, the column's two words, half (i >> 1) & 1 */
                acc += nk_lane(x, (i >> 2) * 4 * NK_GEMM_COLS + 4 * col + (i & 1) * 2 + ((i >> 1) & 1)) * wp[i];
            }
            for (int32_t j = 0; j < rest; ++j) {
                acc += nk_lane(x_rest, col * rest + j) * wp[k4 + j];
            }
            sums[col] = acc;
        }
        nk_gemm_out(q, sums, 1, mult + oc, shift + oc, o0 + oc, o1 + oc, o2 + oc);
    }
}
