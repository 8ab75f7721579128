/* Integer requantisation helpers with TFLite's exact rounding semantics (gemmlowp style,
 * double rounding: a rounding doubling high multiply, then a rounding right shift). */
#ifndef NK_QUANT_H
#define NK_QUANT_H

#include <stdint.h>

/* (a * b * 2) >> 32 rounded to nearest, saturating the single overflow case INT32_MIN^2. */
static inline int32_t nk_srdhm(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* x / 2^exponent rounded to nearest, ties away from zero. */
static inline int32_t nk_rdivpot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)((((int64_t)1) << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * multiplier * 2^shift, TFLite's MultiplyByQuantizedMultiplier. */
static inline int32_t nk_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    /* Left shift as unsigned multiply: well defined for negative x (two's complement). */
    const int32_t shifted = (int32_t)((uint32_t)x * ((uint32_t)1 << left));
    return nk_rdivpot(nk_srdhm(shifted, multiplier), right);
}

/* nk_requantize for the fast kernels, whose preconditions the compiler checks: shift <= -1 (a
 * pure right shift, as for every scale ratio below 1/2), multiplier >= 0 (always, for TFLite
 * multipliers) and |x| < 2^30. Identical results, fewer instructions: the high multiply's
 * sign-dependent nudge and truncating division collapse into one floor shift of (x*m + 2^30), and
 * rounding half away from zero becomes floor((v + 2^(e-1) - [v < 0]) / 2^e); the bound keeps both
 * sums inside int64 / int32. */
static inline int32_t nk_requantize_bounded(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t right = -shift;
    const int32_t high = (int32_t)(((int64_t)x * multiplier + ((int64_t)1 << 30)) >> 31);
    return (high + ((int32_t)1 << (right - 1)) + (high >> 31)) >> right;
}

static inline int32_t nk_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* The fast kernels' output stage: requantise a (bounded) accumulator, add the output zero point,
 * clamp to the fused activation's range. */
typedef struct {
    int32_t out_offset, act_min, act_max;
} nk_out_q_t;

static inline int8_t nk_out_s8(nk_out_q_t q, int32_t acc, int32_t mult, int32_t shift)
{
    const int32_t v = nk_requantize_bounded(acc, mult, shift) + q.out_offset;
    return (int8_t)nk_clamp(v, q.act_min, q.act_max);
}

#endif /* NK_QUANT_H */
