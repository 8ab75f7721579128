/* The inner product of the fast convolutions: two input columns x two weight rows at a time, so
 * each loaded and unpacked word feeds two multiply-accumulates (register blocking).
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

void nk_gemm_cols_s8(const nk_gemm_params_t *g, const int8_t *c0, const int8_t *c1, const int8_t *w,
                     const int32_t *bias_f, const int32_t *mult, const int32_t *shift, int8_t *o0, int8_t *o1)
{
    /* Locals: int8 stores may alias anything, so fields read through g would be reloaded. */
    const int32_t k = g->k, k4 = k & ~3, out_c = g->out_c;
    const nk_out_q_t q = {g->out_offset, g->act_min, g->act_max};
    if (o1 == NULL) {
        c1 = c0; /* compute a harmless duplicate rather than branch in the inner loop */
    }
    int32_t oc = 0;
    for (; oc + 2 <= out_c; oc += 2) {
        const int8_t *wp = w + oc * k;
        int32_t a00 = bias_f[oc], a01 = bias_f[oc + 1]; /* a<column><row> */
        int32_t a10 = a00, a11 = a01;
        const int8_t *xa = c0, *xb = c1;
#if NK_KERNELS_DSP
        /* SXTB16 unpacks bytes 0,2 and (rotated) 1,3 of each word into 16-bit lanes; SMLAD adds
         * both lane products. Pairing is the same on both sides, so the sums are exact. */
        for (int32_t n = k4 >> 2; n > 0; --n, xa += 4, xb += 4, wp += 8) {
            const int32_t va = nk_load4(xa), vb = nk_load4(xb);
            const int32_t xa02 = nk_sxtb16(va), xa13 = nk_sxtb16_odd(va);
            const int32_t xb02 = nk_sxtb16(vb), xb13 = nk_sxtb16_odd(vb);
            /* Each weight word loaded next to its MACs: fewer values live at once, so -Os spills less. */
            const int32_t w0 = nk_load4(wp);
            const int32_t w002 = nk_sxtb16(w0), w013 = nk_sxtb16_odd(w0);
            a00 = nk_smlad(xa02, w002, nk_smlad(xa13, w013, a00));
            a10 = nk_smlad(xb02, w002, nk_smlad(xb13, w013, a10));
            const int32_t w1 = nk_load4(wp + 4);
            const int32_t w102 = nk_sxtb16(w1), w113 = nk_sxtb16_odd(w1);
            a01 = nk_smlad(xa02, w102, nk_smlad(xa13, w113, a01));
            a11 = nk_smlad(xb02, w102, nk_smlad(xb13, w113, a11));
        }
#else
        for (int32_t n = k4 >> 2; n > 0; --n, xa += 4, xb += 4, wp += 8) {
            for (int32_t j = 0; j < 4; ++j) {
                a00 += (int32_t)xa[j] * wp[j];
                a01 += (int32_t)xa[j] * wp[4 + j];
                a10 += (int32_t)xb[j] * wp[j];
                a11 += (int32_t)xb[j] * wp[4 + j];
            }
        }
#endif
        const int32_t rest = k - k4;
        for (int32_t j = 0; j < rest; ++j) {
            a00 += (int32_t)xa[j] * wp[j];
            a01 += (int32_t)xa[j] * wp[rest + j];
            a10 += (int32_t)xb[j] * wp[j];
            a11 += (int32_t)xb[j] * wp[rest + j];
        }
        const int32_t m0 = mult[oc], m1 = mult[oc + 1], s0 = shift[oc], s1 = shift[oc + 1];
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
        for (int32_t i = 0; i < k; ++i) {
            a0 += (int32_t)c0[i] * w0[i];
            a1 += (int32_t)c1[i] * w0[i];
        }
        o0[oc] = nk_out_s8(q, a0, mult[oc], shift[oc]);
        if (o1 != NULL) {
            o1[oc] = nk_out_s8(q, a1, mult[oc], shift[oc]);
        }
    }
}
