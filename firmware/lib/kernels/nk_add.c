/* ADD of two int8 tensors of the same shape: each input is shifted left by left_shift (20),
 * rescaled to a common scale, summed, and rescaled to the output (TFLite's AddFunc). */
#include "nk_kernels.h"
#include "nk_quant.h"

void nk_add_s8(const nk_add_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out) {
    for (int32_t i = 0; i < p->size; ++i) {
        const int32_t a = (p->in1_offset + in1[i]) * (1 << p->left_shift);
        const int32_t b = (p->in2_offset + in2[i]) * (1 << p->left_shift);
        const int32_t sa = nk_requantize(a, p->in1_mult, p->in1_shift);
        const int32_t sb = nk_requantize(b, p->in2_mult, p->in2_shift);
        const int32_t o = nk_requantize(sa + sb, p->out_mult, p->out_shift) + p->out_offset;
        out[i] = (int8_t)nk_clamp(o, p->act_min, p->act_max);
    }
}
