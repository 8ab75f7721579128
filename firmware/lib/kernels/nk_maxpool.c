/* MAX_POOL_2D, int8: maximum of the in-image taps, then the fused activation clamp. */
#include "nk_kernels.h"
#include "nk_quant.h"

void nk_maxpool_s8(const nk_conv_params_t *p, const int8_t *in, int8_t *out) {
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int32_t y0 = oy * p->stride_h - p->pad_h;
        const int32_t ky0 = y0 < 0 ? -y0 : 0;
        const int32_t ky1 = (p->in_h - y0) < p->k_h ? (p->in_h - y0) : p->k_h;
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t x0 = ox * p->stride_w - p->pad_w;
            const int32_t kx0 = x0 < 0 ? -x0 : 0;
            const int32_t kx1 = (p->in_w - x0) < p->k_w ? (p->in_w - x0) : p->k_w;
            for (int32_t c = 0; c < p->out_c; ++c) {
                int32_t m = INT8_MIN;
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    for (int32_t kx = kx0; kx < kx1; ++kx) {
                        const int32_t v = in[((y0 + ky) * p->in_w + (x0 + kx)) * p->in_c + c];
                        m = v > m ? v : m;
                    }
                }
                out[(oy * p->out_w + ox) * p->out_c + c] = (int8_t)nk_clamp(m, p->act_min, p->act_max);
            }
        }
    }
}
