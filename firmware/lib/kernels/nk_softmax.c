/* SOFTMAX, int8 in / int8 out, reproducing TFLite Micro's reference integer algorithm:
 * input differences to the row maximum are scaled into Q5.26 fixed point, exp() is evaluated
 * on negative values with a Taylor polynomial on [-1/4, 0) and a barrel shifter of exp(-2^k)
 * constants, the sum is kept in Q12.19 and inverted by Newton-Raphson. */
#include "nk_kernels.h"
#include "nk_quant.h"

/* Saturating x * 2^exponent for exponent > 0 (gemmlowp SaturatingRoundingMultiplyByPOT). */
static int32_t nk_sat_shl(int32_t x, int exponent) {
    const int32_t threshold = (int32_t)((((int64_t)1) << (31 - exponent)) - 1);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* x * 2^shift without the undefined behaviour of shifting a negative int. */
static int32_t nk_shl(int32_t x, int32_t shift) { return (int32_t)((uint32_t)x * ((uint32_t)1 << shift)); }

/* Wrapping add, as gemmlowp's raw int32 fixed-point addition. */
static int32_t nk_add_wrap(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }

/* exp(a) for a in [-1/4, 0), a and result in Q0.31. */
static int32_t nk_exp_quarter(int32_t a) {
    const int32_t constant_term = 1895147668;    /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883; /* 1/3 */
    const int32_t x = nk_add_wrap(a, 1 << 28);   /* a + 1/8 */
    const int32_t x2 = nk_srdhm(x, x);
    const int32_t x3 = nk_srdhm(x2, x);
    const int32_t x4 = nk_srdhm(x2, x2);
    const int32_t x4_over_4 = nk_rdivpot(x4, 2);
    const int32_t poly =
        nk_rdivpot(nk_add_wrap(nk_srdhm(nk_add_wrap(x4_over_4, x3), constant_1_over_3), x2), 1);
    return nk_add_wrap(constant_term, nk_srdhm(constant_term, nk_add_wrap(x, poly)));
}

/* exp(a) for a <= 0 given in Q5.26; result in Q0.31. */
static int32_t nk_exp_on_negative(int32_t a) {
    static const int32_t k_multipliers[7] = {
        1672461947, /* exp(-1/4) */
        1302514674, /* exp(-1/2) */
        790015084,  /* exp(-1)   */
        290630308,  /* exp(-2)   */
        39332535,   /* exp(-4)   */
        720401,     /* exp(-8)   */
        242,        /* exp(-16)  */
    };
    const int32_t one_quarter = 1 << 24;
    const int32_t mask = one_quarter - 1;
    const int32_t a_mod_quarter_minus_quarter = (a & mask) - one_quarter;
    int32_t result = nk_exp_quarter(nk_sat_shl(a_mod_quarter_minus_quarter, 5));
    const int32_t remainder = a_mod_quarter_minus_quarter - a;
    for (int k = 0; k < 7; ++k) {
        if (remainder & (1 << (24 + k))) {
            result = nk_srdhm(result, k_multipliers[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + x) for x in [0, 1) in Q0.31, result in Q0.31 (Newton-Raphson in Q2.29). */
static int32_t nk_one_over_one_plus_x(int32_t a) {
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int32_t c48_17 = 1515870810;
    const int32_t c_neg32_17 = -1010580540;
    int32_t x = nk_add_wrap(c48_17, nk_srdhm(half_denominator, c_neg32_17));
    for (int i = 0; i < 3; ++i) {
        const int32_t hd_x = nk_srdhm(half_denominator, x);
        const int32_t one_minus = nk_add_wrap(1 << 29, -hd_x);
        x = nk_add_wrap(x, nk_sat_shl(nk_srdhm(x, one_minus), 2));
    }
    /* x/2 in Q1.30 has the same raw bits as x in Q2.29; rescale Q1.30 -> Q0.31. */
    return nk_sat_shl(x, 1);
}

static int nk_clz32(uint32_t x) {
    int n = 0;
    if (x == 0) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
}

/* Classes whose exp() the first pass keeps for the second (a keyword model's dozen fit; more are
 * computed again): half the exp() work of a short row, 128 bytes of stack. */
#define NK_SOFTMAX_KEEP 32

void nk_softmax_s8(const nk_softmax_params_t *p, const int8_t *in, int8_t *out) {
    for (int32_t r = 0; r < p->rows; ++r) {
        const int8_t *x = in + r * p->depth;
        int8_t *y = out + r * p->depth;
        int32_t max_in_row = INT8_MIN;
        for (int32_t c = 0; c < p->depth; ++c) {
            max_in_row = x[c] > max_in_row ? x[c] : max_in_row;
        }
        int32_t sum_of_exps = 0;       /* Q12.19 */
        int32_t exps[NK_SOFTMAX_KEEP]; /* the first classes' exp(), reused by the second pass */
        for (int32_t c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t scaled = nk_srdhm(nk_shl(diff, p->input_left_shift), p->input_multiplier);
                const int32_t e = nk_exp_on_negative(scaled);
                if (c < NK_SOFTMAX_KEEP) {
                    exps[c] = e;
                }
                sum_of_exps = nk_add_wrap(sum_of_exps, nk_rdivpot(e, 12));
            }
        }
        const int headroom_plus_one = nk_clz32((uint32_t)sum_of_exps);
        const int num_bits_over_unit = 12 - headroom_plus_one;
        const int32_t shifted_sum_minus_one =
            (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - ((uint32_t)1 << 31));
        const int32_t shifted_scale = nk_one_over_one_plus_x(shifted_sum_minus_one);
        for (int32_t c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t e = c < NK_SOFTMAX_KEEP
                                      ? exps[c]
                                      : nk_exp_on_negative(
                                            nk_srdhm(nk_shl(diff, p->input_left_shift), p->input_multiplier));
                const int32_t unsat = nk_rdivpot(nk_srdhm(shifted_scale, e), num_bits_over_unit + 31 - 8);
                y[c] = (int8_t)nk_clamp(unsat - 128, -128, 127);
            } else {
                y[c] = INT8_MIN;
            }
        }
    }
}
