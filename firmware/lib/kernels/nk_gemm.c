/* The inner product of the fast convolutions: three input columns (output pixels) x two weight
 * rows (output channels) at a time, so each unpacked weight word feeds three multiply-accumulates
 * and each loaded input word two (register blocking).
 *
 * Inputs: the three columns are first expanded to 16-bit lanes (nk_gemm_expand, once per pixel
 * triple, shared by every output channel): per four inputs the words (x0,x2), (x1,x3) of column 0,
 * then of column 1, then of column 2, so the inner loop loads them with LDRD and never unpacks an
 * input again.
 *
 * Weight layout (written by the compiler, see lower.gemm_order): output channels in pairs; each
 * pair's 2k bytes hold, for every 4 inputs, 4 weights of the even row then 4 of the odd row, then
 * the k % 4 leftover weights of the even row and of the odd row. An odd last row is stored as is.
 * One pointer then walks both rows. */
#include <stddef.h>
#include <string.h>

#include "nk_kernels.h"
#include "nk_quant.h"

#if NK_KERNELS_DSP
#include "nk_simd.h"
#endif

#if NK_KERNELS_DSP && defined(__OPTIMIZE__) && defined(__GNUC__) && !defined(__clang__)
/* Optimised GCC builds run the inner loops in asm (all 14 allocatable registers: GCC omits the
 * frame pointer there; clang's allocator gives up on them). */
#define NK_GEMM_ASM 1
/* One group: 4 inputs x 3 columns x 2 rows = 24 MACs in 21 instructions. SXTB16 unpacks weight
 * bytes 0,2 and (rotated) 1,3 into 16-bit lanes, the same pairing as the expanded inputs. */
#define NK_GEMM_GROUP                        \
    "ldr %[wv], [%[wp]], #4\n\t"             \
    "sxtb16 %[e02], %[wv]\n\t"               \
    "sxtb16 %[e13], %[wv], ror #8\n\t"       \
    "ldr %[wv], [%[wp]], #4\n\t"             \
    "sxtb16 %[o02], %[wv]\n\t"               \
    "sxtb16 %[wv], %[wv], ror #8\n\t"        \
    "ldrd %[x02], %[x13], [%[xp]], #8\n\t"   \
    "smlad %[a0], %[x02], %[e02], %[a0]\n\t" \
    "smlad %[a0], %[x13], %[e13], %[a0]\n\t" \
    "smlad %[b0], %[x02], %[o02], %[b0]\n\t" \
    "smlad %[b0], %[x13], %[wv], %[b0]\n\t"  \
    "ldrd %[x02], %[x13], [%[xp]], #8\n\t"   \
    "smlad %[a1], %[x02], %[e02], %[a1]\n\t" \
    "smlad %[a1], %[x13], %[e13], %[a1]\n\t" \
    "smlad %[b1], %[x02], %[o02], %[b1]\n\t" \
    "smlad %[b1], %[x13], %[wv], %[b1]\n\t"  \
    "ldrd %[x02], %[x13], [%[xp]], #8\n\t"   \
    "smlad %[a2], %[x02], %[e02], %[a2]\n\t" \
    "smlad %[a2], %[x13], %[e13], %[a2]\n\t" \
    "smlad %[b2], %[x02], %[o02], %[b2]\n\t" \
    "smlad %[b2], %[x13], %[wv], %[b2]\n\t"
/* The group's two weight words unpacked, and one column's words (x02, x13) into the even and odd
 * rows' sums. */
#define NK_GEMM_WEIGHTS                \
    "ldr %[wv], [%[wp]], #4\n\t"       \
    "sxtb16 %[e02], %[wv]\n\t"         \
    "sxtb16 %[e13], %[wv], ror #8\n\t" \
    "ldr %[wv], [%[wp]], #4\n\t"       \
    "sxtb16 %[o02], %[wv]\n\t"         \
    "sxtb16 %[wv], %[wv], ror #8\n\t"
#define NK_GEMM_COL(a, b)                          \
    "smlad %[" a "], %[x02], %[e02], %[" a "]\n\t" \
    "smlad %[" a "], %[x13], %[e13], %[" a "]\n\t" \
    "smlad %[" b "], %[x02], %[o02], %[" b "]\n\t" \
    "smlad %[" b "], %[x13], %[wv], %[" b "]\n\t"
/* One group for the last pixels of a row: one column (8 MACs in 11 instructions) or two (16 in 17). */
/* clang-format off */
#define NK_GEMM_ONE_COL                         \
    NK_GEMM_WEIGHTS                             \
    "ldrd %[x02], %[x13], [%[xp]], #24\n\t"     \
    NK_GEMM_COL("a0", "b0")
#define NK_GEMM_TWO_COLS                        \
    NK_GEMM_WEIGHTS                             \
    "ldrd %[x02], %[x13], [%[xp]]\n\t"          \
    NK_GEMM_COL("a0", "b0")                     \
    "ldrd %[x02], %[x13], [%[xp], #8]\n\t"      \
    NK_GEMM_COL("a1", "b1")                     \
    "adds %[xp], %[xp], #24\n\t"
/* clang-format on */
#else
#define NK_GEMM_ASM 0
#endif

/* 16-bit lane i of the expanded buffer (memcpy: the buffer is written as 32-bit words). */
static inline int32_t nk_lane(const int32_t *x, int32_t i) {
    int16_t v;
    memcpy(&v, (const int16_t *)x + i, sizeof v);
    return v;
}

static inline void nk_set_lane(int32_t *x, int32_t i, int32_t v) {
    const int16_t h = (int16_t)v;
    memcpy((int16_t *)x + i, &h, sizeof h);
}

void nk_gemm_expand(const int8_t *c0, const int8_t *c1, const int8_t *c2, int32_t k, int32_t *x) {
    const int8_t *const c[NK_GEMM_COLS] = {c0, c1, c2};
    const int32_t k4 = k & ~3;
    int32_t i = 0;
    for (; i < k4; i += 4, x += 2 * NK_GEMM_COLS) {
        for (int32_t col = 0; col < NK_GEMM_COLS; ++col) {
#if NK_KERNELS_DSP
            const int32_t v = nk_load4(c[col] + i);
            x[2 * col] = nk_sxtb16(v);
            x[2 * col + 1] = nk_sxtb16_odd(v);
#else
            /* The same lanes: (x0,x2),(x1,x3) per column. */
            for (int32_t j = 0; j < 4; ++j) {
                nk_set_lane(x, 4 * col + (j & 1) * 2 + (j >> 1), c[col][i + j]);
            }
#endif
        }
    }
    /* Leftovers as single lanes: k - k4 of column 0, then of column 1, then of column 2. */
    for (int32_t col = 0; col < NK_GEMM_COLS; ++col) {
        for (int32_t j = i; j < k; ++j) {
            nk_set_lane(x, col * (k - i) + j - i, c[col][j]);
        }
    }
}

/* Requantise the sums of n output channels (NK_GEMM_COLS per channel) into o0, o1, o2. Column 2,
 * then 1, then 0 is stored, so a column aliased to o0 (not to be stored) is overwritten by
 * column 0. */
static void nk_gemm_out(nk_out_q_t q, int32_t fast, const int32_t *sums, int32_t n, const int32_t *rq,
                        int8_t *o0, int8_t *o1, int8_t *o2) {
    for (int32_t i = 0; i < n; ++i, sums += NK_GEMM_COLS, rq += NK_RQ_WORDS) {
        const int32_t m = rq[NK_RQ_MULT], e = rq[NK_RQ_RIGHT];
        if (fast) {
            const int32_t c = rq[NK_RQ_ROUND];
            o2[i] = (int8_t)nk_rq_fast(sums[2], m, c, e);
            o1[i] = (int8_t)nk_rq_fast(sums[1], m, c, e);
            o0[i] = (int8_t)nk_rq_fast(sums[0], m, c, e);
        } else {
            o2[i] = nk_out_s8(q, sums[2], m, -e);
            o1[i] = nk_out_s8(q, sums[1], m, -e);
            o0[i] = nk_out_s8(q, sums[0], m, -e);
        }
    }
}

void nk_gemm_cols_s8(const nk_gemm_params_t *g, const int32_t *x, const int8_t *w, const int32_t *rq,
                     int8_t *o0, int8_t *o1, int8_t *o2) {
    /* Locals: int8 stores may alias anything, so fields read through g would be reloaded. */
    const int32_t k = g->k, k4 = k & ~3, out_c = g->out_c, rest = k - k4, groups = k4 >> 2;
    const nk_out_q_t q = {g->out_offset, g->act_min, g->act_max};
    const int32_t fast = g->rq_fast;
    const int32_t *x_rest = x + groups * 2 * NK_GEMM_COLS; /* leftover lanes */
    const int8_t *wp = w;                                  /* walks the row pairs */
    /* Columns stored: the last pixels of a row (a streaming row of 7 = 3 + 3 + 1 pixels) multiply
     * (asm builds) and requantise only the columns they use. */
    const int32_t ncols = o1 == NULL ? 1 : (o2 == NULL ? 2 : NK_GEMM_COLS);
    /* A column not to be stored goes to o0 first and is overwritten by column 0 (stored last). */
    o1 = o1 != NULL ? o1 : o0;
    o2 = o2 != NULL ? o2 : o0;
    /* Columns 1 and 2 at o + d1, o + d2; o walks the channel pairs of column 0. */
    const int32_t d1 = (int32_t)(o1 - o0), d2 = (int32_t)(o2 - o0);
#if NK_GEMM_ASM
    /* Evenly spaced columns (all three stored): the asm stores through o and one stride. */
    const int even = fast && d1 > 0 && d2 == 2 * d1;
#endif
    int32_t sums[2 * NK_GEMM_COLS]; /* [channel][column], for the general output stage */
    int8_t *o = o0;
    const int32_t *const rq_end = rq + (out_c & ~1) * NK_RQ_WORDS;
#if NK_GEMM_ASM
    if (even && rest == 0 && rq != rq_end) {
        /* The whole channel-pair loop in one asm: per pair the sums start at the biases, groups
         * peeled by one and two, then four per iteration, then nk_rq_fast on both channels
         * (registers freed by the MACs: m = e02, c = e13, e = o02, t = wv, the output pointer
         * x02, its column stride x13, the constants' pointer xp). Loop state not in registers
         * lives on the stack ("m" operands). */
        const int32_t g1 = groups & 1, g2 = groups & 2, g4 = groups >= 4, d = d1;
        const int32_t *const x_end = x_rest;
        int32_t a0, a1, a2, b0, b1, b2, e02, e13, o02, wv, x02, x13;
        const int32_t *xp;
#define NK_RQ_ONE(acc, dst)                        \
    "lsl %[" acc "], %[" acc "], #1\n\t"           \
    "smmlar %[wv], %[" acc "], %[e02], %[e13]\n\t" \
    "add %[wv], %[wv], %[" acc "], asr #31\n\t"    \
    "asr %[wv], %[wv], %[o02]\n\t"                 \
    "ssat %[wv], #8, %[wv]\n\t"                    \
    "strb %[wv], " dst "\n\t"
        __asm__ volatile(
            "1:\n\t"
            "ldr %[xp], %[rq]\n\t"
            "ldr %[a0], [%[xp]]\n\t"
            "ldr %[b0], [%[xp], #16]\n\t"
            "mov %[a1], %[a0]\n\t"
            "mov %[a2], %[a0]\n\t"
            "mov %[b1], %[b0]\n\t"
            "mov %[b2], %[b0]\n\t"
            "ldr %[xp], %[x]\n\t"
            "ldr %[wv], %[g1]\n\t"
            "cmp %[wv], #0\n\t"
            "beq 2f\n\t" NK_GEMM_GROUP "2:\n\t"
            "ldr %[wv], %[g2]\n\t"
            "cmp %[wv], #0\n\t"
            "beq 3f\n\t" NK_GEMM_GROUP NK_GEMM_GROUP "3:\n\t"
            "ldr %[wv], %[g4]\n\t"
            "cmp %[wv], #0\n\t"
            "beq 5f\n\t"
            "4:\n\t" NK_GEMM_GROUP NK_GEMM_GROUP NK_GEMM_GROUP NK_GEMM_GROUP "ldr %[x02], %[x_end]\n\t"
            "cmp %[xp], %[x02]\n\t"
            "bne 4b\n\t"
            "5:\n\t"
            "ldr %[xp], %[rq]\n\t"
            "ldr %[x02], %[o]\n\t"
            "ldr %[x13], %[d]\n\t"
            "ldrd %[e02], %[e13], [%[xp], #4]\n\t"
            "ldr %[o02], [%[xp], #12]\n\t" NK_RQ_ONE("a2", "[%[x02], %[x13], lsl #1]")
                NK_RQ_ONE("a1", "[%[x02], %[x13]]") NK_RQ_ONE(
                    "a0", "[%[x02]], #1") "ldrd %[e02], %[e13], [%[xp], #20]\n\t"
                                          "ldr %[o02], [%[xp], #28]\n\t" NK_RQ_ONE("b2",
                                                                                   "[%[x02], %[x13], lsl #1]")
                                              NK_RQ_ONE("b1", "[%[x02], %[x13]]")
                                                  NK_RQ_ONE("b0", "[%[x02]], #1") "str %[x02], %[o]\n\t"
                                                                                  "adds %[xp], %[xp], #32\n\t"
                                                                                  "str %[xp], %[rq]\n\t"
                                                                                  "ldr %[x13], %[rq_end]\n\t"
                                                                                  "cmp %[xp], %[x13]\n\t"
                                                                                  "bne 1b\n\t"
            : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [b0] "=&r"(b0), [b1] "=&r"(b1), [b2] "=&r"(b2),
              [e02] "=&r"(e02), [e13] "=&r"(e13), [o02] "=&r"(o02), [wv] "=&r"(wv), [x02] "=&r"(x02),
              [x13] "=&r"(x13), [xp] "=&r"(xp), [wp] "+r"(wp), [rq] "+m"(rq), [o] "+m"(o)
            : [x] "m"(x), [x_end] "m"(x_end), [rq_end] "m"(rq_end), [g1] "m"(g1), [g2] "m"(g2), [g4] "m"(g4),
              [d] "m"(d)
            : "memory", "cc");
#undef NK_RQ_ONE
    }
#endif
    for (; rq != rq_end; rq += 2 * NK_RQ_WORDS, o += 2) {
        int32_t a0 = rq[NK_RQ_BIAS],
                b0 = rq[NK_RQ_WORDS + NK_RQ_BIAS]; /* a: even row, b: odd row; digit: column */
        int32_t a1 = a0, a2 = a0, b1 = b0, b2 = b0;
        const int32_t *xp = x;
#if NK_GEMM_ASM
        /* The loop in asm: GCC's scheduler hoists the loads of an unrolled C loop and spills.
         * 6 sums, 4 unpacked weights, 2 input words, 2 pointers: all 14 allocatable registers
         * (hence optimised GCC builds only, which omit the frame pointer; clang's allocator
         * gives up on it), so the loop's end is compared from memory. SXTB16 unpacks weight bytes 0,2 and (rotated) 1,3 into 16-bit
         * lanes, the same pairing as the expanded inputs: SMLAD's sums are exact. */
        int32_t e02, e13, o02, wv, x02, x13;
        const int32_t *x_end = x_rest;
#define NK_GEMM_OPERANDS                                                                                     \
    [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [b0] "+r"(b0), [b1] "+r"(b1), [b2] "+r"(b2), [xp] "+r"(xp), \
        [wp] "+r"(wp), [e02] "=&r"(e02), [e13] "=&r"(e13), [o02] "=&r"(o02), [wv] "=&r"(wv),                 \
        [x02] "=&r"(x02), [x13] "=&r"(x13)
        if (ncols < NK_GEMM_COLS && groups > 0) {
            /* One or two columns: the other sums keep their bias (stored to o0, then overwritten). */
#define NK_GEMM_FEW_OPERANDS                                                                        \
    [a0] "+r"(a0), [b0] "+r"(b0), [xp] "+r"(xp), [wp] "+r"(wp), [e02] "=&r"(e02), [e13] "=&r"(e13), \
        [o02] "=&r"(o02), [wv] "=&r"(wv), [x02] "=&r"(x02), [x13] "=&r"(x13)
            if (ncols == 1) {
                __asm__("1:\n\t" NK_GEMM_ONE_COL "cmp %[xp], %[end]\n\tbne 1b\n\t"
                        : NK_GEMM_FEW_OPERANDS
                        : [end] "r"(x_end)
                        : "memory", "cc");
            } else {
                __asm__("1:\n\t" NK_GEMM_TWO_COLS "cmp %[xp], %[end]\n\tbne 1b\n\t"
                        : NK_GEMM_FEW_OPERANDS, [a1] "+r"(a1), [b1] "+r"(b1)
                        : [end] "r"(x_end)
                        : "memory", "cc");
            }
#undef NK_GEMM_FEW_OPERANDS
        } else {
            if (groups & 1) {
                __asm__(NK_GEMM_GROUP:NK_GEMM_OPERANDS : : "memory");
            }
            if (groups & 2) {
                __asm__(NK_GEMM_GROUP NK_GEMM_GROUP:NK_GEMM_OPERANDS : : "memory");
            }
            if (groups >= 4) { /* four groups per iteration: the end test costs 3 per 96 MACs */
                __asm__("1:\n\t" NK_GEMM_GROUP NK_GEMM_GROUP NK_GEMM_GROUP NK_GEMM_GROUP
                        "ldr %[x02], %[end]\n\t"
                        "cmp %[xp], %[x02]\n\t"
                        "bne 1b\n\t"
                        : NK_GEMM_OPERANDS
                        : [end] "m"(x_end)
                        : "memory", "cc");
            }
        }
#undef NK_GEMM_OPERANDS
#elif NK_KERNELS_DSP
        /* The same instructions in C (clang, -O0). */
        for (int32_t n = 0; n < groups; ++n, xp += 2 * NK_GEMM_COLS, wp += 8) {
            const int32_t we = nk_load4(wp), wo = nk_load4(wp + 4);
            const int32_t e02 = nk_sxtb16(we), e13 = nk_sxtb16_odd(we);
            const int32_t o02 = nk_sxtb16(wo), o13 = nk_sxtb16_odd(wo);
            a0 = nk_smlad(xp[1], e13, nk_smlad(xp[0], e02, a0));
            b0 = nk_smlad(xp[1], o13, nk_smlad(xp[0], o02, b0));
            a1 = nk_smlad(xp[3], e13, nk_smlad(xp[2], e02, a1));
            b1 = nk_smlad(xp[3], o13, nk_smlad(xp[2], o02, b1));
            a2 = nk_smlad(xp[5], e13, nk_smlad(xp[4], e02, a2));
            b2 = nk_smlad(xp[5], o13, nk_smlad(xp[4], o02, b2));
        }
#else
        for (int32_t n = 0; n < groups; ++n, xp += 2 * NK_GEMM_COLS, wp += 8) {
            int32_t *const acc[2][NK_GEMM_COLS] = {{&a0, &a1, &a2}, {&b0, &b1, &b2}};
            for (int32_t r = 0; r < 2; ++r) {
                for (int32_t col = 0; col < NK_GEMM_COLS; ++col) {
                    const int32_t *xc = xp + 2 * col;
                    const int8_t *wr = wp + 4 * r;
                    /* lanes (x0,x2),(x1,x3): what two SMLAD add on the DSP path */
                    *acc[r][col] += nk_lane(xc, 0) * wr[0] + nk_lane(xc, 1) * wr[2] + nk_lane(xc, 2) * wr[1] +
                                    nk_lane(xc, 3) * wr[3];
                }
            }
        }
#endif
        for (int32_t j = 0; j < rest; ++j) {
            const int32_t x0 = nk_lane(x_rest, j), x1 = nk_lane(x_rest, rest + j);
            const int32_t x2 = nk_lane(x_rest, 2 * rest + j);
            a0 += x0 * wp[j], a1 += x1 * wp[j], a2 += x2 * wp[j];
            b0 += x0 * wp[rest + j], b1 += x1 * wp[rest + j], b2 += x2 * wp[rest + j];
        }
        wp += 2 * rest;
#if NK_GEMM_ASM
        if (even) {
            /* nk_rq_fast in asm, both channels (13 registers: GCC's version reloads its pointers
             * and constants from the stack): per output LSL (2x), SMMLAR (+ rounding constant),
             * ADD (- [x < 0]), ASR, SSAT, STRB; columns at o, o + d, o + 2d. Volatile: its only
             * effect is the stores. */
            int8_t *oa = o;
            int32_t m, c, e, t;
#define NK_RQ_ONE(acc, dst)                   \
    "lsl %[" acc "], %[" acc "], #1\n\t"      \
    "smmlar %[t], %[" acc "], %[m], %[c]\n\t" \
    "add %[t], %[t], %[" acc "], asr #31\n\t" \
    "asr %[t], %[t], %[e]\n\t"                \
    "ssat %[t], #8, %[t]\n\t"                 \
    "strb %[t], " dst "\n\t"
            __asm__ volatile(
                "ldrd %[m], %[c], [%[rq], #4]\n\t"
                "ldr %[e], [%[rq], #12]\n\t" NK_RQ_ONE("a2", "[%[o], %[d], lsl #1]")
                    NK_RQ_ONE("a1", "[%[o], %[d]]") NK_RQ_ONE(
                        "a0", "[%[o]], #1") "ldrd %[m], %[c], [%[rq], #20]\n\t"
                                            "ldr %[e], [%[rq], #28]\n\t" NK_RQ_ONE("b2",
                                                                                   "[%[o], %[d], lsl #1]")
                                                NK_RQ_ONE("b1", "[%[o], %[d]]") NK_RQ_ONE("b0", "[%[o]]")
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [b0] "+r"(b0), [b1] "+r"(b1), [b2] "+r"(b2),
                  [o] "+r"(oa), [m] "=&r"(m), [c] "=&r"(c), [e] "=&r"(e), [t] "=&r"(t)
                : [rq] "r"(rq), [d] "r"(d1)
                : "memory");
#undef NK_RQ_ONE
            continue;
        }
#endif
        if (fast) { /* nk_rq_fast with the channels' constants */
            const int32_t ma = rq[NK_RQ_MULT], ca = rq[NK_RQ_ROUND], ea = rq[NK_RQ_RIGHT];
            const int32_t mb = rq[NK_RQ_WORDS + NK_RQ_MULT], cb = rq[NK_RQ_WORDS + NK_RQ_ROUND];
            const int32_t eb = rq[NK_RQ_WORDS + NK_RQ_RIGHT];
            if (ncols > 2) {
                o[d2] = (int8_t)nk_rq_fast(a2, ma, ca, ea);
                o[d2 + 1] = (int8_t)nk_rq_fast(b2, mb, cb, eb);
            }
            if (ncols > 1) {
                o[d1] = (int8_t)nk_rq_fast(a1, ma, ca, ea);
                o[d1 + 1] = (int8_t)nk_rq_fast(b1, mb, cb, eb);
            }
            o[0] = (int8_t)nk_rq_fast(a0, ma, ca, ea);
            o[1] = (int8_t)nk_rq_fast(b0, mb, cb, eb);
        } else {
            sums[0] = a0, sums[1] = a1, sums[2] = a2;
            sums[3] = b0, sums[4] = b1, sums[5] = b2;
            nk_gemm_out(q, 0, sums, 2, rq, o, o + d1, o + d2);
        }
    }
    const int32_t oc = out_c & ~1;
    if (oc < out_c) { /* odd channel count: the last row alone, stored as is */
        for (int32_t col = 0; col < NK_GEMM_COLS; ++col) {
            int32_t acc = rq[NK_RQ_BIAS];
            for (int32_t i = 0; i < k4; ++i) {
                /* input i's lane: group i / 4, the column's two words, half (i >> 1) & 1 */
                acc +=
                    nk_lane(x, (i >> 2) * 4 * NK_GEMM_COLS + 4 * col + (i & 1) * 2 + ((i >> 1) & 1)) * wp[i];
            }
            for (int32_t j = 0; j < rest; ++j) {
                acc += nk_lane(x_rest, col * rest + j) * wp[k4 + j];
            }
            sums[col] = acc;
        }
        nk_gemm_out(q, fast, sums, 1, rq, o, o + d1, o + d2);
    }
}
