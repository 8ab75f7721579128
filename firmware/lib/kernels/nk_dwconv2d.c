/* DEPTHWISE_CONV_2D, int8, depth multiplier m: output channel ic*m + j reads input channel ic. */
#include "nk_kernels.h"
#include "nk_quant.h"

#if NK_KERNELS_DSP
#include "nk_simd.h"
#endif

/* Sum over the taps of one kernel row: x and w are strided by their channel counts. */
static int32_t nk_dw_row(const int8_t *x, int32_t x_stride, const int8_t *w, int32_t w_stride, int32_t n,
                         int32_t x_offset) {
    int32_t acc = 0;
    int32_t i = 0;
#if NK_KERNELS_DSP
    /* Two taps per SMLAD: pack (x0+off, x1+off) and (w0, w1) into 16-bit lanes. */
    for (; i + 2 <= n; i += 2) {
        const int32_t xa = (int32_t)x[i * x_stride] + x_offset;
        const int32_t xb = (int32_t)x[(i + 1) * x_stride] + x_offset;
        const int32_t wa = w[i * w_stride];
        const int32_t wb = w[(i + 1) * w_stride];
        acc = nk_smlad(nk_pack16(xa, xb), nk_pack16(wa, wb), acc);
    }
#endif
    for (; i < n; ++i) {
        acc += (int32_t)w[i * w_stride] * ((int32_t)x[i * x_stride] + x_offset);
    }
    return acc;
}

void nk_dwconv2d_s8(const nk_conv_params_t *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                    const int32_t *mult, const int32_t *shift, int8_t *out) {
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int32_t y0 = oy * p->stride_h - p->pad_h;
        const int32_t ky0 = y0 < 0 ? -y0 : 0;
        const int32_t ky1 = (p->in_h - y0) < p->k_h ? (p->in_h - y0) : p->k_h;
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t x0 = ox * p->stride_w - p->pad_w;
            const int32_t kx0 = x0 < 0 ? -x0 : 0;
            const int32_t kx1 = (p->in_w - x0) < p->k_w ? (p->in_w - x0) : p->k_w;
            int8_t *o = out + (oy * p->out_w + ox) * p->out_c;
            for (int32_t ic = 0; ic < p->in_c; ++ic) {
                for (int32_t j = 0; j < p->depth_mult; ++j) {
                    const int32_t oc = ic * p->depth_mult + j;
                    int32_t acc = 0;
                    if (kx1 > kx0) {
                        for (int32_t ky = ky0; ky < ky1; ++ky) {
                            const int8_t *xr = in + ((y0 + ky) * p->in_w + (x0 + kx0)) * p->in_c + ic;
                            const int8_t *wr = w + (ky * p->k_w + kx0) * p->out_c + oc;
                            acc += nk_dw_row(xr, p->in_c, wr, p->out_c, kx1 - kx0, p->in_offset);
                        }
                    }
                    if (bias) {
                        acc += bias[oc];
                    }
                    acc = nk_requantize(acc, mult[oc], shift[oc]) + p->out_offset;
                    o[oc] = (int8_t)nk_clamp(acc, p->act_min, p->act_max);
                }
            }
        }
    }
}
