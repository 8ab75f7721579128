/* nk_conv2d_fast_s8's compile-time constants (nk_kernels_pack.h): weights in the nk_gemm_index
 * layout and the per-channel table of nk_conv_rq_fill. Empty unless NK_KERNELS_PACK is defined. */
#include "nk_kernels_pack.h"

#ifdef NK_KERNELS_PACK

#include <stddef.h>

nk_pack_status_t nk_gemm_order(int32_t out_c, int32_t k, int32_t *order) {
    if (out_c < 1 || k < 1 || (int64_t)out_c * k > INT32_MAX || order == NULL) {
        return NK_PACK_ARG_ERROR;
    }
    for (int32_t oc = 0; oc < out_c; ++oc) {
        for (int32_t i = 0; i < k; ++i) {
            order[nk_gemm_index(oc, i, k, out_c)] = oc * k + i;
        }
    }
    return NK_PACK_OK;
}

nk_pack_status_t nk_conv2d_fast_pack(const nk_conv_params_t *p, const int8_t *w, const int32_t *bias,
                                     const int32_t *mult, const int32_t *shift, int8_t *w_packed,
                                     int32_t *rq) {
    if (p == NULL || w == NULL || mult == NULL || shift == NULL || w_packed == NULL || rq == NULL) {
        return NK_PACK_ARG_ERROR;
    }
    if (p->in_c < 1 || p->out_c < 1 || p->k_h < 1 || p->k_w < 1 ||
        (int64_t)p->k_h * p->k_w * p->in_c * p->out_c > INT32_MAX) {
        return NK_PACK_ARG_ERROR;
    }
    const int32_t k = p->k_h * p->k_w * p->in_c, out_c = p->out_c;
    /* Every channel must meet nk_requantize_bounded's preconditions before anything is written. */
    for (int32_t oc = 0; oc < out_c; ++oc) {
        int64_t bias_f;
        nk_pack_status_t st =
            nk_fast_fold_bias(w + oc * k, 1, k, k, 1, bias ? bias + oc : NULL, p->in_offset, &bias_f);
        if (st == NK_PACK_OK) {
            st = nk_fast_check_bounded(w + oc * k, 1, k, k, 1, &bias_f, shift + oc);
        }
        if (st != NK_PACK_OK) {
            return st;
        }
    }
    for (int32_t oc = 0; oc < out_c; ++oc) {
        for (int32_t i = 0; i < k; ++i) {
            w_packed[nk_gemm_index(oc, i, k, out_c)] = w[oc * k + i];
        }
        int64_t bias_f;
        (void)nk_fast_fold_bias(w + oc * k, 1, k, k, 1, bias ? bias + oc : NULL, p->in_offset, &bias_f);
        const int32_t b = (int32_t)bias_f; /* |bias_f| < NK_FAST_ACC_LIMIT: checked above */
        nk_conv_rq_fill(rq + oc * NK_RQ_WORDS, &b, mult + oc, shift + oc, p->out_offset, 1);
    }
    return NK_PACK_OK;
}

#endif /* NK_KERNELS_PACK */
