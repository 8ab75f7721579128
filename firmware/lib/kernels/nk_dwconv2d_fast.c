/* DEPTHWISE_CONV_2D fast path (depth multiplier 1): per output pixel a table of tap pointers
 * (taps outside the image point at a row of input zero points, cancelled by the folded bias), so
 * border and interior pixels run the same branch-free loop over four channels at a time. The
 * zero-point row (in_c bytes) is the caller's scratch, filled by each call; layers where no tap
 * falls outside the image need none (nk_dwconv2d_fast_scratch_bytes). */
#include <string.h>

#include "nk_kernels.h"
#include "nk_quant.h"

#if NK_KERNELS_DSP
#include "nk_simd.h"
#endif

/* Any size, one output at a time with per-tap bounds checks (tables too large for the limits). */
static void nk_dw_slow(const nk_conv_params_t *p, const int8_t *in, const int8_t *w, const int32_t *bias_f,
                       const int32_t *mult, const int32_t *shift, int8_t *out)
{
    const int32_t taps = p->k_h * p->k_w, ch = p->in_c;
    const nk_out_q_t q = {p->out_offset, p->act_min, p->act_max};
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            for (int32_t c = 0; c < ch; ++c) {
                int32_t acc = bias_f[c];
                for (int32_t t = 0; t < taps; ++t) {
                    const int32_t y = oy * p->stride_h - p->pad_h + t / p->k_w;
                    const int32_t x = ox * p->stride_w - p->pad_w + t % p->k_w;
                    const int inside = y >= 0 && y < p->in_h && x >= 0 && x < p->in_w;
                    const int32_t v = inside ? in[(y * p->in_w + x) * ch + c] : -p->in_offset;
                    acc += v * w[nk_dw_fast_index(c, t, taps, ch)];
                }
                out[(oy * p->out_w + ox) * ch + c] = nk_out_s8(q, acc, mult[c], shift[c]);
            }
        }
    }
}

void nk_dwconv2d_fast_s8(const nk_conv_params_t *p, const int8_t *in, const int8_t *w, const int32_t *bias_f,
                         const int32_t *mult, const int32_t *shift, int8_t *out, int8_t *scratch)
{
    const int32_t taps = p->k_h * p->k_w, ch = p->in_c, main_c = ch & ~3;
    if (taps > NK_DW_MAX_TAPS || ch > NK_DW_MAX_CH) {
        nk_dw_slow(p, in, w, bias_f, mult, shift, out);
        return;
    }
    /* Taps outside the image point at the zero-point row; there are none when it needs 0 bytes. */
    if (nk_dwconv2d_fast_scratch_bytes(p) > 0) {
        memset(scratch, -p->in_offset, (size_t)ch);
    }
    /* Locals: int8 stores may alias anything, so fields read through p would be reloaded. */
    const nk_out_q_t q = {p->out_offset, p->act_min, p->act_max};
    const int32_t in_h = p->in_h, in_w = p->in_w, k_w = p->k_w;
    const int8_t *tap[NK_DW_MAX_TAPS];
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t y0 = oy * p->stride_h - p->pad_h, x0 = ox * p->stride_w - p->pad_w;
            for (int32_t t = 0; t < taps; ++t) {
                const int32_t y = y0 + t / k_w, x = x0 + t % k_w;
                const int inside = y >= 0 && y < in_h && x >= 0 && x < in_w;
                tap[t] = inside ? in + (y * in_w + x) * ch : scratch;
            }
            int8_t *o = out + (oy * p->out_w + ox) * ch;
            const int8_t *wg = w;
            for (int32_t c = 0; c < main_c; c += 4) {
                int32_t a0 = bias_f[c], a1 = bias_f[c + 1], a2 = bias_f[c + 2], a3 = bias_f[c + 3];
                for (int32_t t = 0; t < taps; ++t, wg += 4) {
#if NK_KERNELS_DSP
                    /* Per-channel products: SMLABB / SMLATT multiply one 16-bit lane pair each. */
                    const int32_t xv = nk_load4(tap[t] + c), wv = nk_load4(wg);
                    const int32_t x02 = nk_sxtb16(xv), x13 = nk_sxtb16_odd(xv);
                    const int32_t w02 = nk_sxtb16(wv), w13 = nk_sxtb16_odd(wv);
                    a0 = nk_smlabb(x02, w02, a0);
                    a2 = nk_smlatt(x02, w02, a2);
                    a1 = nk_smlabb(x13, w13, a1);
                    a3 = nk_smlatt(x13, w13, a3);
#else
                    const int8_t *x = tap[t] + c;
                    a0 += (int32_t)x[0] * wg[0];
                    a1 += (int32_t)x[1] * wg[1];
                    a2 += (int32_t)x[2] * wg[2];
                    a3 += (int32_t)x[3] * wg[3];
#endif
                }
                const int8_t r0 = nk_out_s8(q, a0, mult[c], shift[c]);
                const int8_t r1 = nk_out_s8(q, a1, mult[c + 1], shift[c + 1]);
                const int8_t r2 = nk_out_s8(q, a2, mult[c + 2], shift[c + 2]);
                const int8_t r3 = nk_out_s8(q, a3, mult[c + 3], shift[c + 3]);
                o[c] = r0;
                o[c + 1] = r1;
                o[c + 2] = r2;
                o[c + 3] = r3;
            }
            for (int32_t c = main_c; c < ch; ++c, wg += taps) {
                int32_t acc = bias_f[c];
                for (int32_t t = 0; t < taps; ++t) {
                    acc += (int32_t)tap[t][c] * wg[t];
                }
                o[c] = nk_out_s8(q, acc, mult[c], shift[c]);
            }
        }
    }
}
