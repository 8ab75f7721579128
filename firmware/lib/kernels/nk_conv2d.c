/* CONV_2D, int8 with per-channel requantisation (TFLite Micro reference semantics:
 * out-of-image taps are skipped, i.e. the padding contributes (x + offset) = 0). */
#include "nk_kernels.h"
#include "nk_quant.h"

void nk_conv2d_s8(const nk_conv_params_t *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                  const int32_t *mult, const int32_t *shift, int8_t *out) {
    const int32_t row_len = p->k_w * p->in_c;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int32_t y0 = oy * p->stride_h - p->pad_h;
        const int32_t ky0 = y0 < 0 ? -y0 : 0;
        const int32_t ky1 = (p->in_h - y0) < p->k_h ? (p->in_h - y0) : p->k_h;
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t x0 = ox * p->stride_w - p->pad_w;
            /* Taps inside the image form one contiguous run per kernel row, in input and weights. */
            const int32_t kx0 = x0 < 0 ? -x0 : 0;
            const int32_t kx1 = (p->in_w - x0) < p->k_w ? (p->in_w - x0) : p->k_w;
            const int32_t run = (kx1 - kx0) * p->in_c;
            int8_t *o = out + (oy * p->out_w + ox) * p->out_c;
            for (int32_t oc = 0; oc < p->out_c; ++oc) {
                const int8_t *wc = w + oc * p->k_h * row_len;
                int32_t acc = 0;
                if (run > 0) {
                    for (int32_t ky = ky0; ky < ky1; ++ky) {
                        const int8_t *xr = in + ((y0 + ky) * p->in_w + (x0 + kx0)) * p->in_c;
                        acc += nk_dot_s8(xr, wc + ky * row_len + kx0 * p->in_c, run, p->in_offset);
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
