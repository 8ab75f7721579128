/* The fast kernels' folded bias and requantisation preconditions (nk_kernels_pack.h): compile-time
 * only, empty unless NK_KERNELS_PACK is defined (the host extension). */
#include "nk_kernels_pack.h"

#ifdef NK_KERNELS_PACK

#include <stddef.h>

/* 1 when rows x k weights at row_step / k_step are a plausible view (positive sizes, steps >= 0). */
static int nk_view_ok(const int8_t *w, int32_t rows, int32_t k, int32_t row_step, int32_t k_step) {
    return w != NULL && rows >= 1 && k >= 1 && row_step >= 0 && k_step >= 0;
}

nk_pack_status_t nk_fast_fold_bias(const int8_t *w, int32_t rows, int32_t k, int32_t row_step, int32_t k_step,
                                   const int32_t *bias, int32_t in_offset, int64_t *bias_f) {
    if (!nk_view_ok(w, rows, k, row_step, k_step) || bias_f == NULL) {
        return NK_PACK_ARG_ERROR;
    }
    for (int32_t r = 0; r < rows; ++r) {
        int64_t sum = 0;
        for (int32_t i = 0; i < k; ++i) {
            sum += w[(int64_t)r * row_step + (int64_t)i * k_step];
        }
        bias_f[r] = (bias != NULL ? (int64_t)bias[r] : 0) + (int64_t)in_offset * sum;
    }
    return NK_PACK_OK;
}

nk_pack_status_t nk_fast_check_bounded(const int8_t *w, int32_t rows, int32_t k, int32_t row_step,
                                       int32_t k_step, const int64_t *bias_f, const int32_t *shift) {
    if (!nk_view_ok(w, rows, k, row_step, k_step) || bias_f == NULL || shift == NULL) {
        return NK_PACK_ARG_ERROR;
    }
    for (int32_t r = 0; r < rows; ++r) {
        int64_t worst = bias_f[r] < 0 ? -bias_f[r] : bias_f[r];
        for (int32_t i = 0; i < k; ++i) {
            const int32_t v = w[(int64_t)r * row_step + (int64_t)i * k_step];
            worst += 128 * (int64_t)(v < 0 ? -v : v);
        }
        if (worst >= NK_FAST_ACC_LIMIT || shift[r] > -1) {
            return NK_PACK_UNBOUNDED;
        }
    }
    return NK_PACK_OK;
}

#endif /* NK_KERNELS_PACK */
