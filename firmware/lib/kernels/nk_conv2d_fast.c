/* CONV_2D fast path: gather the receptive fields of two output pixels (taps outside the image
 * read the input zero point, which the folded bias cancels), expand the pair to 16-bit lanes once,
 * then one blocked matrix product per pixel pair. The fields and the expanded pair live in the
 * caller's scratch (nk_conv2d_fast_scratch_bytes: part of the model's arena, not a static
 * buffer). A 1x1 stride-1 unpadded conv reads its input pixels in place (no gathered fields). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nk_kernels.h"
#include "nk_quant.h"

/* Receptive field of output pixel `pix` into dst ([k_h][k_w][in_c], like one weight row). */
static void nk_conv_gather(const nk_conv_params_t *p, const int8_t *in, int32_t pix, int8_t zp, int8_t *dst)
{
    const int32_t y0 = (pix / p->out_w) * p->stride_h - p->pad_h;
    const int32_t x0 = (pix % p->out_w) * p->stride_w - p->pad_w;
    const int32_t row = p->k_w * p->in_c;
    const int32_t kx0 = x0 < 0 ? -x0 : 0;
    const int32_t kx1 = (p->in_w - x0) < p->k_w ? (p->in_w - x0) : p->k_w;
    for (int32_t ky = 0; ky < p->k_h; ++ky, dst += row) {
        const int32_t y = y0 + ky;
        if (y < 0 || y >= p->in_h || kx1 <= kx0) {
            for (int32_t i = 0; i < row; ++i) {
                dst[i] = zp;
            }
            continue;
        }
        int32_t i = 0;
        for (; i < kx0 * p->in_c; ++i) {
            dst[i] = zp;
        }
        const int8_t *src = in + (y * p->in_w + x0) * p->in_c;
        const int32_t end = kx1 * p->in_c;
        for (; i + 4 <= end; i += 4) {
            memcpy(dst + i, src + i, 4); /* one word load/store; unaligned is fine on M4 and x86 */
        }
        for (; i < end; ++i) {
            dst[i] = src[i];
        }
        for (; i < row; ++i) {
            dst[i] = zp;
        }
    }
}

/* Any geometry, one output at a time (receptive fields too large for the patch buffers). */
static void nk_conv_slow(const nk_conv_params_t *p, const int8_t *in, const int8_t *w, const int32_t *bias_f,
                         const int32_t *mult, const int32_t *shift, int8_t *out)
{
    const int32_t zp = -p->in_offset;
    const nk_out_q_t q = {p->out_offset, p->act_min, p->act_max};
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            for (int32_t oc = 0; oc < p->out_c; ++oc) {
                int32_t acc = bias_f[oc];
                const int32_t k = p->k_h * p->k_w * p->in_c;
                for (int32_t ky = 0; ky < p->k_h; ++ky) {
                    for (int32_t kx = 0; kx < p->k_w; ++kx) {
                        const int32_t y = oy * p->stride_h - p->pad_h + ky;
                        const int32_t x = ox * p->stride_w - p->pad_w + kx;
                        const int inside = y >= 0 && y < p->in_h && x >= 0 && x < p->in_w;
                        for (int32_t c = 0; c < p->in_c; ++c) {
                            const int32_t v = inside ? in[(y * p->in_w + x) * p->in_c + c] : zp;
                            acc += v * w[nk_gemm_index(oc, (ky * p->k_w + kx) * p->in_c + c, k, p->out_c)];
                        }
                    }
                }
                out[(oy * p->out_w + ox) * p->out_c + oc] = nk_out_s8(q, acc, mult[oc], shift[oc]);
            }
        }
    }
}

void nk_conv2d_fast_s8(const nk_conv_params_t *p, const int8_t *in, const int8_t *w, const int32_t *bias_f,
                       const int32_t *mult, const int32_t *shift, int8_t *out, int8_t *scratch)
{
    const int32_t k = p->k_h * p->k_w * p->in_c;
    if (k > NK_CONV_PATCH_MAX) {
        nk_conv_slow(p, in, w, bias_f, mult, shift, out);
        return;
    }
    const int in_place = nk_conv2d_fast_in_place(p);
    const nk_gemm_params_t g = {
        .k = k, .out_c = p->out_c, .out_offset = p->out_offset, .act_min = p->act_min, .act_max = p->act_max};
    const int8_t zp = (int8_t)(-p->in_offset);
    /* scratch (nk_conv2d_fast_scratch_bytes): up to 3 bytes to reach a word boundary, the expanded
     * pair (4k bytes, loaded as words), then the two gathered fields (2k bytes) unless in place. */
    int32_t *x = (int32_t *)(void *)(scratch + ((4 - ((uintptr_t)scratch & 3)) & 3));
    int8_t *field = (int8_t *)(x + k);
    const int32_t pixels = p->out_h * p->out_w;
    for (int32_t pix = 0; pix < pixels; pix += 2) {
        const int pair = pix + 1 < pixels;
        const int8_t *c0, *c1;
        if (in_place) {
            c0 = in + pix * p->in_c;
            c1 = pair ? c0 + p->in_c : c0;
        } else {
            nk_conv_gather(p, in, pix, zp, field);
            if (pair) {
                nk_conv_gather(p, in, pix + 1, zp, field + k);
            }
            c0 = field;
            c1 = pair ? field + k : field;
        }
        /* An unpaired last pixel is computed twice rather than branch in the inner loop. */
        nk_gemm_expand(c0, c1, k, x);
        int8_t *o0 = out + pix * p->out_c;
        nk_gemm_cols_s8(&g, x, w, bias_f, mult, shift, o0, pair ? o0 + p->out_c : NULL);
    }
}
