/* The dot product every conv / fully-connected inner loop runs on. */
#include "nk_kernels.h"

#if NK_KERNELS_DSP
#include "nk_simd.h"
#endif

int32_t nk_dot_s8(const int8_t *x, const int8_t *w, int32_t n, int32_t x_offset) {
    int32_t acc = 0;
    int32_t i = 0;
#if NK_KERNELS_DSP
    /* Pairs of 16-bit lanes: SXTB16 sign-extends bytes 0,2 (and, rotated, 1,3); the input offset
     * is added per lane by SXTAB16; SMLAD multiplies both lanes and accumulates. The sum is the
     * same set of exact integer products as the portable loop, so results are identical. */
    const int32_t off2 = nk_pack16(x_offset, x_offset);
    for (; i + 4 <= n; i += 4) {
        const int32_t xv = nk_load4(x + i);
        const int32_t wv = nk_load4(w + i);
        const int32_t x02 = nk_sxtab16(off2, xv);
        const int32_t x13 = nk_sxtab16_odd(off2, xv);
        const int32_t w02 = nk_sxtb16(wv);
        const int32_t w13 = nk_sxtb16_odd(wv);
        acc = nk_smlad(x02, w02, acc);
        acc = nk_smlad(x13, w13, acc);
    }
#endif
    for (; i < n; ++i) {
        acc += (int32_t)w[i] * ((int32_t)x[i] + x_offset);
    }
    return acc;
}
