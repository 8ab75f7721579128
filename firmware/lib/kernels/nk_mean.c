/* MEAN over a middle axis, int8, with TFLite Micro's integer semantics (reference Mean when the
 * quantisation is unchanged, QuantizedMeanOrSum otherwise). */
#include "nk_kernels.h"
#include "nk_quant.h"

void nk_mean_s8(const nk_mean_params_t *p, const int8_t *in, int8_t *out) {
    for (int32_t o = 0; o < p->outer; ++o) {
        for (int32_t i = 0; i < p->inner; ++i) {
            int32_t sum = 0;
            for (int32_t r = 0; r < p->reduce; ++r) {
                sum += in[(o * p->reduce + r) * p->inner + i];
            }
            int32_t v;
            if (p->same_quant) {
                v = sum / p->reduce; /* C and C++ both truncate toward zero */
            } else {
                v = nk_requantize(sum - p->in_zp * p->reduce, p->mult, p->shift) + p->out_zp;
            }
            out[o * p->inner + i] = (int8_t)nk_clamp(v, -128, 127);
        }
    }
}
