/* Integer requantisation helpers with TFLite's exact rounding semantics (gemmlowp style,
 * double rounding: a rounding doubling high multiply, then a rounding right shift). */
#ifndef NK_QUANT_H
#define NK_QUANT_H

#include <stdint.h>

#include "nk_kernels.h"

#if NK_KERNELS_DSP
#include "nk_simd.h"
#endif

/* (a * b * 2) >> 32 rounded to nearest, saturating the single overflow case INT32_MIN^2. */
static inline int32_t nk_srdhm(int32_t a, int32_t b) {
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* x / 2^exponent rounded to nearest, ties away from zero. */
static inline int32_t nk_rdivpot(int32_t x, int exponent) {
    const int32_t mask = (int32_t)((((int64_t)1) << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * multiplier * 2^shift, TFLite's MultiplyByQuantizedMultiplier. */
static inline int32_t nk_requantize(int32_t x, int32_t multiplier, int32_t shift) {
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    /* Left shift as unsigned multiply: well defined for negative x (two's complement). */
    const int32_t shifted = (int32_t)((uint32_t)x * ((uint32_t)1 << left));
    return nk_rdivpot(nk_srdhm(shifted, multiplier), right);
}

/* floor((x * m + 2^30) / 2^31) for |x| < 2^30 and m >= 0: the high multiply of TFLite's
 * requantisation with its sign-dependent nudge and truncation collapsed into one floor shift
 * (exact under the bound, which keeps the sum inside int64). On the DSP path it is
 * floor((2x * m + 2^31) / 2^32), one SMMULR of 2x (inside int32 by the same bound), instead of a
 * 64-bit multiply-add and a 64-bit shift. */
static inline int32_t nk_mulhi_bounded(int32_t x, int32_t m) {
#if NK_KERNELS_DSP
    return nk_smmulr(x * 2, m);
#else
    return (int32_t)(((int64_t)x * m + ((int64_t)1 << 30)) >> 31);
#endif
}

/* nk_requantize for the fast kernels, whose preconditions the compiler checks: shift <= -1 (a
 * pure right shift, as for every scale ratio below 1/2), multiplier >= 0 (always, for TFLite
 * multipliers) and |x| < 2^30. Identical results, fewer instructions: nk_mulhi_bounded, then
 * rounding half away from zero as floor((v + 2^(e-1) - [v < 0]) / 2^e). */
static inline int32_t nk_requantize_bounded(int32_t x, int32_t multiplier, int32_t shift) {
    const int32_t right = -shift;
    const int32_t high = nk_mulhi_bounded(x, multiplier);
    return (high + ((int32_t)1 << (right - 1)) + (high >> 31)) >> right;
}

static inline int32_t nk_clamp(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* v saturated to int8 (one SSAT on the DSP path). */
static inline int8_t nk_sat8(int32_t v) {
#if NK_KERNELS_DSP
    return (int8_t)nk_ssat8(v);
#else
    return (int8_t)nk_clamp(v, -128, 127);
#endif
}

/* The rounding constant of the fast output stage for a right shift e in [1, 22] and output zero
 * point zp: 2^(e-1) + zp 2^e = (2 zp + 1) 2^(e-1) (zp 2^e is a multiple of 2^e, so the floor shift
 * carries it through exactly; |c| < 2^29 + 2^21). */
static inline int32_t nk_rq_round(int32_t zp, int32_t e) {
    return (int32_t)((uint32_t)(2 * zp + 1) << (e - 1));
}

/* nk_out_s8 for a full int8 activation range and a right shift e in [1, 22], with c =
 * nk_rq_round(out_offset, e): sat8(floor((h + c - [h < 0]) / 2^e)), h = nk_mulhi_bounded(x, m).
 * On the DSP path h + c is one SMMLAR of 2x (|h| <= 2^30: the sum fits int32), and [h < 0] is
 * replaced by [x < 0]: they differ only when x < 0 and h = 0, where h + c = c is 2^(e-1) modulo
 * 2^e, so subtracting 1 does not change the floor. Four instructions after the doubling. */
static inline int32_t nk_rq_fast(int32_t x, int32_t m, int32_t c, int32_t e) {
#if NK_KERNELS_DSP
    const int32_t x2 = (int32_t)((uint32_t)x << 1);
    return nk_ssat8((nk_smmlar(x2, m, c) + (x2 >> 31)) >> e);
#else
    const int32_t h = nk_mulhi_bounded(x, m);
    return nk_clamp((h + c + (h >> 31)) >> e, -128, 127);
#endif
}

/* The fast kernels' output stage: requantise a (bounded) accumulator, add the output zero point,
 * clamp to the fused activation's range. */
typedef struct {
    int32_t out_offset, act_min, act_max;
} nk_out_q_t;

static inline int8_t nk_out_s8(nk_out_q_t q, int32_t acc, int32_t mult, int32_t shift) {
    const int32_t v = nk_requantize_bounded(acc, mult, shift) + q.out_offset;
    return (int8_t)nk_clamp(v, q.act_min, q.act_max);
}

/* One output channel's requantisation constants, computed once per channel (nk_rq_init) for
 * nk_out_row2_s8. When the activation range is the whole int8 range and the shift is at most 22,
 * `fast`: the output zero point is added inside the rounding constant `c` (out_offset * 2^right
 * is a multiple of 2^right, so the floor shift carries it through exactly; |high| <= 2^30 and
 * |c| < 2^29 + 2^21 keep the sum inside int32) and one saturation clamps. */
typedef struct {
    int32_t bias, mult, shift, right, c, fast;
} nk_rq_t;

static inline nk_rq_t nk_rq_init(nk_out_q_t q, int32_t bias, int32_t mult, int32_t shift) {
    const int32_t right = -shift;
    const int fast = right <= 22 && q.act_min == -128 && q.act_max == 127;
    const int32_t c = fast ? ((int32_t)1 << (right - 1)) + q.out_offset * ((int32_t)1 << right) : 0;
    const nk_rq_t r = {bias, mult, shift, right, c, fast};
    return r;
}

/* nk_rq_fast of x = x2 / 2 given the doubled accumulator x2 (even): on the DSP path SMMLAR takes it
 * as it is (no doubling instruction). */
static inline int32_t nk_rq_fast2(int32_t x2, int32_t m, int32_t c, int32_t e) {
#if NK_KERNELS_DSP
    return nk_ssat8((nk_smmlar(x2, m, c) + (x2 >> 31)) >> e);
#else
    return nk_rq_fast(x2 >> 1, m, c, e);
#endif
}

/* Requantise n doubled accumulators acc[i] = 2 (bias + sum) (rq->bias unused) into o[0], o[step],
 * ... (equal to nk_out_s8 on bias + sum each); two outputs per iteration on the fast branch. */
static inline void nk_out_row2_s8(nk_out_q_t q, const nk_rq_t *rq, const int32_t *acc, int32_t n, int8_t *o,
                                  int32_t step) {
    const int32_t mult = rq->mult;
#if NK_KERNELS_DSP && defined(__OPTIMIZE__) && defined(__GNUC__) && !defined(__clang__)
    if (rq->fast && n > 0) {
        /* In asm (GCC spread the row's set-up and odd tail over ~60 instructions): per pair of
         * outputs LDRD, 2 x (SMMLAR, ADD, ASR, SSAT, STRB), one pointer step and the loop test;
         * an odd last output after the loop. */
        int32_t x0, x1, t, left = n;
        __asm__ volatile(
            "subs %[left], %[left], #2\n\t"
            "blt 2f\n\t"
            "1:\n\t"
            "ldrd %[x0], %[x1], [%[acc]], #8\n\t"
            "smmlar %[t], %[x0], %[m], %[c]\n\t"
            "add %[t], %[t], %[x0], asr #31\n\t"
            "asr %[t], %[t], %[e]\n\t"
            "ssat %[t], #8, %[t]\n\t"
            "strb %[t], [%[o]]\n\t"
            "smmlar %[t], %[x1], %[m], %[c]\n\t"
            "add %[t], %[t], %[x1], asr #31\n\t"
            "asr %[t], %[t], %[e]\n\t"
            "ssat %[t], #8, %[t]\n\t"
            "strb %[t], [%[o], %[step]]\n\t"
            "add %[o], %[o], %[step], lsl #1\n\t"
            "subs %[left], %[left], #2\n\t"
            "bge 1b\n\t"
            "2:\n\t"
            "cmn %[left], #1\n\t"
            "bne 3f\n\t"
            "ldr %[x0], [%[acc]]\n\t"
            "smmlar %[t], %[x0], %[m], %[c]\n\t"
            "add %[t], %[t], %[x0], asr #31\n\t"
            "asr %[t], %[t], %[e]\n\t"
            "ssat %[t], #8, %[t]\n\t"
            "strb %[t], [%[o]]\n\t"
            "3:\n\t"
            : [left] "+r"(left), [acc] "+r"(acc), [o] "+r"(o), [x0] "=&r"(x0), [x1] "=&r"(x1), [t] "=&r"(t)
            : [m] "r"(mult), [c] "r"(rq->c), [e] "r"(rq->right), [step] "r"(step)
            : "memory", "cc");
        return;
    }
#endif
    if (rq->fast) {
        const int32_t c = rq->c, right = rq->right;
        const int32_t *const end = acc + (n & ~1);
        for (; acc != end; acc += 2, o += 2 * step) {
            const int32_t x0 = acc[0], x1 = acc[1];
            o[0] = (int8_t)nk_rq_fast2(x0, mult, c, right);
            o[step] = (int8_t)nk_rq_fast2(x1, mult, c, right);
        }
        if (n & 1) {
            *o = (int8_t)nk_rq_fast2(*acc, mult, c, right);
        }
        return;
    }
    for (int32_t i = 0; i < n; ++i, o += step) {
        *o = nk_out_s8(q, acc[i] >> 1, mult, rq->shift);
    }
}

#endif /* NK_QUANT_H */
