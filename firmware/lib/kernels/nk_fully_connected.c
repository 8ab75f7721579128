/* FULLY_CONNECTED, int8, per-tensor or per-channel requantisation. */
#include "nk_kernels.h"
#include "nk_quant.h"

void nk_fully_connected_s8(const nk_fc_params_t *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                           const int32_t *mult, const int32_t *shift, int8_t *out) {
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *x = in + b * p->in_len;
        for (int32_t o = 0; o < p->out_len; ++o) {
            int32_t acc = nk_dot_s8(x, w + o * p->in_len, p->in_len, p->in_offset);
            if (bias) {
                acc += bias[o];
            }
            const int32_t q = p->per_channel ? o : 0;
            acc = nk_requantize(acc, mult[q], shift[q]) + p->out_offset;
            out[b * p->out_len + o] = (int8_t)nk_clamp(acc, p->act_min, p->act_max);
        }
    }
}
