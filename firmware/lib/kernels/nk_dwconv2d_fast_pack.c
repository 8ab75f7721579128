/* nk_dwconv2d_fast_s8's compile-time constants (nk_kernels_pack.h): weights in the nk_dw_fast_index
 * layout and the folded bias. Empty unless NK_KERNELS_PACK is defined. */
#include "nk_kernels_pack.h"

#ifdef NK_KERNELS_PACK

#include <stddef.h>

nk_pack_status_t nk_dw_fast_order(int32_t taps, int32_t channels, int32_t *order) {
    if (taps < 1 || channels < 1 || (int64_t)taps * channels > INT32_MAX || order == NULL) {
        return NK_PACK_ARG_ERROR;
    }
    for (int32_t t = 0; t < taps; ++t) {
        for (int32_t c = 0; c < channels; ++c) {
            order[nk_dw_fast_index(c, t, taps, channels)] = t * channels + c;
        }
    }
    return NK_PACK_OK;
}

nk_pack_status_t nk_dwconv2d_fast_pack(const nk_conv_params_t *p, const int8_t *w, const int32_t *bias,
                                       const int32_t *shift, int8_t *w_packed, int32_t *bias_f) {
    if (p == NULL || w == NULL || shift == NULL || w_packed == NULL || bias_f == NULL) {
        return NK_PACK_ARG_ERROR;
    }
    if (p->depth_mult != 1 || p->in_c < 1 || p->out_c != p->in_c || p->k_h < 1 || p->k_w < 1 ||
        (int64_t)p->k_h * p->k_w * p->out_c > INT32_MAX) {
        return NK_PACK_ARG_ERROR;
    }
    const int32_t taps = p->k_h * p->k_w, ch = p->out_c;
    /* Channel c's weights are w[t * ch + c]: rows of step 1, taps ch apart. */
    for (int32_t c = 0; c < ch; ++c) {
        int64_t b;
        nk_pack_status_t st =
            nk_fast_fold_bias(w + c, 1, taps, 1, ch, bias ? bias + c : NULL, p->in_offset, &b);
        if (st == NK_PACK_OK) {
            st = nk_fast_check_bounded(w + c, 1, taps, 1, ch, &b, shift + c);
        }
        if (st != NK_PACK_OK) {
            return st;
        }
    }
    for (int32_t c = 0; c < ch; ++c) {
        int64_t b;
        (void)nk_fast_fold_bias(w + c, 1, taps, 1, ch, bias ? bias + c : NULL, p->in_offset, &b);
        bias_f[c] = (int32_t)b; /* |b| < NK_FAST_ACC_LIMIT: checked above */
        for (int32_t t = 0; t < taps; ++t) {
            w_packed[nk_dw_fast_index(c, t, taps, ch)] = w[t * ch + c];
        }
    }
    return NK_PACK_OK;
}

#endif /* NK_KERNELS_PACK */
