/* AVERAGE_POOL_2D, int8: mean of the in-image taps, rounded half away from zero.
 *
 * Taps outer, channels inner (contiguous in NHWC), up to NK_POOL_CH channels at a time. On the DSP
 * path four channels per word load accumulate into 16-bit lanes (SXTAB16): at most 256 taps of
 * |x| <= 128 stay inside int16, so the lanes are added into the int32 sums every 256 taps. */
#include <string.h>

#include "nk_kernels.h"
#include "nk_quant.h"

#if NK_KERNELS_DSP
#include "nk_simd.h"
#endif

/* Channels per pass (their int32 sums live on the stack). */
#define NK_POOL_CH 64

#if NK_KERNELS_DSP
/* Adds the 16-bit lane sums of n4 channels into acc and clears them. */
static void nk_pool_flush(int32_t *lanes, int32_t n4, int32_t *acc) {
    for (int32_t j = 0; j < n4; j += 4, lanes += 2) {
        acc[j] += (int16_t)lanes[0], acc[j + 2] += lanes[0] >> 16;
        acc[j + 1] += (int16_t)lanes[1], acc[j + 3] += lanes[1] >> 16;
        lanes[0] = lanes[1] = 0;
    }
}
#endif

void nk_avgpool_s8(const nk_conv_params_t *p, const int8_t *in, int8_t *out) {
    const int32_t ch = p->in_c;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int32_t y0 = oy * p->stride_h - p->pad_h;
        const int32_t ky0 = y0 < 0 ? -y0 : 0;
        const int32_t ky1 = (p->in_h - y0) < p->k_h ? (p->in_h - y0) : p->k_h;
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t x0 = ox * p->stride_w - p->pad_w;
            const int32_t kx0 = x0 < 0 ? -x0 : 0;
            const int32_t kx1 = (p->in_w - x0) < p->k_w ? (p->in_w - x0) : p->k_w;
            const int32_t count = (ky1 - ky0) * (kx1 - kx0);
            int8_t *o = out + (oy * p->out_w + ox) * p->out_c;
            for (int32_t c0 = 0; c0 < ch; c0 += NK_POOL_CH) {
                const int32_t n = ch - c0 < NK_POOL_CH ? ch - c0 : NK_POOL_CH;
                int32_t acc[NK_POOL_CH];
                memset(acc, 0, sizeof acc);
#if NK_KERNELS_DSP
                const int32_t n4 = n & ~3;
                int32_t lanes[NK_POOL_CH / 2];
                memset(lanes, 0, sizeof lanes);
                int32_t taps = 0;
#endif
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    for (int32_t kx = kx0; kx < kx1; ++kx) {
                        const int8_t *src = in + ((y0 + ky) * p->in_w + (x0 + kx)) * ch + c0;
                        int32_t j = 0;
#if NK_KERNELS_DSP
                        for (int32_t *l = lanes; j < n4; j += 4, l += 2) {
                            const int32_t v = nk_load4(src + j);
                            l[0] = nk_sxtab16(l[0], v);
                            l[1] = nk_sxtab16_odd(l[1], v);
                        }
                        if (++taps == 256) {
                            nk_pool_flush(lanes, n4, acc);
                            taps = 0;
                        }
#endif
                        for (; j < n; ++j) {
                            acc[j] += src[j];
                        }
                    }
                }
#if NK_KERNELS_DSP
                nk_pool_flush(lanes, n4, acc);
#endif
                for (int32_t j = 0; j < n; ++j) {
                    int32_t a = acc[j];
                    if (count > 0) {
                        a = a > 0 ? (a + count / 2) / count : (a - count / 2) / count;
                    }
                    o[c0 + j] = (int8_t)nk_clamp(a, p->act_min, p->act_max);
                }
            }
        }
    }
}
