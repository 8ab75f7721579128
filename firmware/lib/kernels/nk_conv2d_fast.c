/* CONV_2D fast path: gather the receptive fields of three output pixels (taps outside the image
 * read the input zero point, which the folded bias cancels), expand them to 16-bit lanes once, then
 * one blocked matrix product per pixel triple. The fields and the expanded triple live in the
 * caller's scratch (nk_conv2d_fast_scratch_bytes: part of the model's arena, not a static
 * buffer). A 1x1 stride-1 unpadded conv reads its input pixels in place (no gathered fields). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nk_kernels.h"
#include "nk_quant.h"

#if NK_KERNELS_DSP
#include "nk_simd.h"
#endif

/* Receptive field of output pixel `pix` into dst ([k_h][k_w][in_c], like one weight row). */
static void nk_conv_gather(const nk_conv_params_t *p, const int8_t *in, int32_t pix, int8_t zp, int8_t *dst) {
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

/* Four gathered bytes as one group of column `xc` in nk_gemm_expand's layout: 16-bit lanes
 * (b0,b2) then (b1,b3) (the portable path writes the same lanes one at a time). */
static inline void nk_put_group(int32_t *xc, const int8_t *b) {
#if NK_KERNELS_DSP
    const int32_t v = nk_load4(b);
    xc[0] = nk_sxtb16(v);
    xc[1] = nk_sxtb16_odd(v);
#else
    const int16_t h[4] = {b[0], b[2], b[1], b[3]};
    memcpy(xc, h, sizeof h);
#endif
}

/* Convs whose kernel rows are whole 4-byte groups (k_w * in_c a multiple of 4, as the 10x4
 * one-channel stem) read through a strip: the k_h input rows of one output row, padded with the
 * zero point to the width the outputs reach (nk_conv_strip_pitch), so every pixel, border or not,
 * is read in words straight into the expanded lanes. */
static void nk_conv_strip(const nk_conv_params_t *p, const int8_t *in, int32_t oy, int8_t zp, int8_t *strip) {
    const int32_t pitch = nk_conv_strip_pitch(p), in_c = p->in_c;
    /* Strip bytes [lo, hi) hold image columns 0 ...; the others the zero point. */
    const int32_t lo = p->pad_w * in_c < pitch ? p->pad_w * in_c : pitch;
    const int32_t hi = lo + p->in_w * in_c < pitch ? lo + p->in_w * in_c : pitch;
    const int32_t y0 = oy * p->stride_h - p->pad_h;
    for (int32_t ky = 0; ky < p->k_h; ++ky, strip += pitch) {
        const int32_t y = y0 + ky;
        if (y < 0 || y >= p->in_h) {
            memset(strip, zp, (size_t)pitch);
            continue;
        }
        memset(strip, zp, (size_t)lo);
        memcpy(strip + lo, in + y * p->in_w * in_c, (size_t)(hi - lo));
        memset(strip + hi, zp, (size_t)(pitch - hi));
    }
}

/* Receptive field of the pixel in column ox of the strip's output row into column `col` of the
 * expanded triple: one word per group. */
static void nk_strip_lanes(const nk_conv_params_t *p, const int8_t *strip, int32_t ox, int32_t *x,
                           int32_t col) {
    const int32_t pitch = nk_conv_strip_pitch(p), row = p->k_w * p->in_c;
    const int8_t *src = strip + ox * p->stride_w * p->in_c;
    int32_t *xc = x + 2 * col; /* groups of 2 * NK_GEMM_COLS words: each column's two in turn */
    if (row == 4) {            /* one group per row, as the 10x4 one-channel stem */
        for (int32_t ky = p->k_h; ky > 0; --ky, src += pitch, xc += 2 * NK_GEMM_COLS) {
            nk_put_group(xc, src);
        }
        return;
    }
    for (int32_t ky = 0; ky < p->k_h; ++ky, src += pitch) {
        for (int32_t i = 0; i < row; i += 4, xc += 2 * NK_GEMM_COLS) {
            nk_put_group(xc, src + i);
        }
    }
}

/* Any geometry, one output at a time (receptive fields too large for the patch buffers). */
static void nk_conv_slow(const nk_conv_params_t *p, const int8_t *in, const int8_t *w, const int32_t *rq,
                         int8_t *out) {
    const int32_t zp = -p->in_offset;
    const nk_out_q_t q = {p->out_offset, p->act_min, p->act_max};
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            for (int32_t oc = 0; oc < p->out_c; ++oc) {
                const int32_t *r = rq + oc * NK_RQ_WORDS;
                int32_t acc = r[NK_RQ_BIAS];
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
                out[(oy * p->out_w + ox) * p->out_c + oc] = nk_out_s8(q, acc, r[NK_RQ_MULT], -r[NK_RQ_RIGHT]);
            }
        }
    }
}

void nk_conv2d_fast_s8(const nk_conv_params_t *p, const int8_t *in, const int8_t *w, const int32_t *rq,
                       int8_t *out, int8_t *scratch) {
    const int32_t k = p->k_h * p->k_w * p->in_c;
    if (k > NK_CONV_PATCH_MAX) {
        nk_conv_slow(p, in, w, rq, out);
        return;
    }
    const int in_place = nk_conv2d_fast_in_place(p);
    const nk_gemm_params_t g = {.k = k,
                                .out_c = p->out_c,
                                .out_offset = p->out_offset,
                                .act_min = p->act_min,
                                .act_max = p->act_max,
                                .rq_fast = nk_gemm_rq_fast(p->act_min, p->act_max, rq, p->out_c)};
    const int8_t zp = (int8_t)(-p->in_offset);
    /* scratch (nk_conv2d_fast_scratch_bytes): up to 3 bytes to reach a word boundary, the expanded
     * triple (6k bytes, loaded as words), then the three gathered fields (3k bytes) or the strip,
     * unless in place. */
    int32_t *x = (int32_t *)(void *)(scratch + ((4 - ((uintptr_t)scratch & 3)) & 3));
    int8_t *field = (int8_t *)x + 2 * NK_GEMM_COLS * k;
    const int32_t pixels = p->out_h * p->out_w;
    /* Rows of whole 4-byte groups are read through a strip (in the fields' place) straight into
     * the expanded lanes; the strip is rebuilt when the output row changes (pixels only advance). */
    const int lanes = nk_conv2d_fast_strip(p);
    int32_t strip_oy = -1;
    for (int32_t pix = 0; pix < pixels; pix += NK_GEMM_COLS) {
        /* Columns past the last pixel repeat it (computed, not stored) rather than branch in the
         * inner loop. */
        const int32_t n = pixels - pix < NK_GEMM_COLS ? pixels - pix : NK_GEMM_COLS;
        const int32_t p1 = n > 1 ? pix + 1 : pix, p2 = n > 2 ? pix + 2 : pix;
        if (in_place) {
            nk_gemm_expand(in + pix * p->in_c, in + p1 * p->in_c, in + p2 * p->in_c, k, x);
        } else if (lanes) {
            const int32_t px[NK_GEMM_COLS] = {pix, p1, p2};
            for (int32_t col = 0; col < NK_GEMM_COLS; ++col) {
                const int32_t oy = px[col] / p->out_w;
                if (oy != strip_oy) {
                    nk_conv_strip(p, in, oy, zp, field);
                    strip_oy = oy;
                }
                nk_strip_lanes(p, field, px[col] - oy * p->out_w, x, col);
            }
        } else {
            nk_conv_gather(p, in, pix, zp, field);
            nk_conv_gather(p, in, p1, zp, field + k);
            nk_conv_gather(p, in, p2, zp, field + 2 * k);
            nk_gemm_expand(field, field + k, field + 2 * k, k, x);
        }
        int8_t *o0 = out + pix * p->out_c;
        nk_gemm_cols_s8(&g, x, w, rq, o0, n > 1 ? o0 + p->out_c : NULL, n > 2 ? o0 + 2 * p->out_c : NULL);
    }
}
