/* AVERAGE_POOL_2D, int8: mean of the in-image taps, rounded half away from zero. */
#include "nk_kernels.h"
#include "nk_quant.h"

void nk_avgpool_s8(const nk_conv_params_t *p, const int8_t *in, int8_t *out)
{
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int32_t y0 = oy * p->stride_h - p->pad_h;
        const int32_t ky0 = y0 < 0 ? -y0 : 0;
        const int32_t ky1 = (p->in_h - y0) < p->k_h ? (p->in_h - y0) : p->k_h;
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t x0 = ox * p->stride_w - p->pad_w;
            const int32_t kx0 = x0 < 0 ? -x0 : 0;
            const int32_t kx1 = (p->in_w - x0) < p->k_w ? (p->in_w - x0) : p->k_w;
            const int32_t count = (ky1 - ky0) * (kx1 - kx0);
            for (int32_t c = 0; c < p->out_c; ++c) {
                int32_t acc = 0;
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    for (int32_t kx = kx0; kx < kx1; ++kx) {
                        acc += in[((y0 + ky) * p->in_w + (x0 + kx)) * p->in_c + c];
                    }
                }
                if (count > 0) {
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                }
                out[(oy * p->out_w + ox) * p->out_c + c] = (int8_t)nk_clamp(acc, p->act_min, p->act_max);
            }
        }
    }
}
