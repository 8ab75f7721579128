/* Feature frontend: 16 kHz int16 PCM -> int8 log-mel frames, integer arithmetic only, so the
 * host, the Python extension and the Cortex-M4 produce identical bits.
 * Definition (nk_frontend_config.h): 30 ms symmetric Hann window, 20 ms hop, 512-point FFT power
 * spectrum, 40 HTK-mel triangles 20-4000 Hz, level = clamp(round(10.04 ln(P + 1e-6) + 145.9) - 128)
 * with audio scaled to [-1, 1). No heap; all buffers fixed size. */
#ifndef NK_FRONTEND_H
#define NK_FRONTEND_H

#include <stddef.h>
#include <stdint.h>

#include "nk_frontend_config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Streaming state: the previous hop (a frame spans one hop plus half of the next). */
typedef struct {
    int16_t prev_hop[NK_FE_HOP_SAMPLES];
    uint32_t hops_seen;
} nk_frontend_t;

void nk_frontend_init(nk_frontend_t *fe);

/* Feed hop j (samples [320j, 320j + 320)). Returns 1 when `frame` was written: pushing hop k+1
 * (the (k+2)-th hop) completes frame k, the same framing as nk_frontend_compute_clip; else 0. */
int nk_frontend_push_hop(nk_frontend_t *fe, const int16_t hop[NK_FE_HOP_SAMPLES],
                         int8_t frame[NK_FE_NUM_CHANNELS]);

/* Frames of a whole buffer: frame k covers samples [320k, 320k + 480), as many as fit, at most
 * `max_frames`; row-major [frame][channel]. Returns frames written. For lengths that are whole
 * hops (e.g. 16000 samples -> 49 frames) this equals pushing the hops one by one. */
size_t nk_frontend_compute_clip(const int16_t *audio, size_t num_samples, int8_t *features,
                                size_t max_frames);

/* One frame from a window given as two pieces (a: len_a samples, then b: the rest). */
void nk_frontend_compute_frame(const int16_t *a, size_t len_a, const int16_t *b,
                               int8_t frame[NK_FE_NUM_CHANNELS]);

#ifdef __cplusplus
}
#endif

#endif /* NK_FRONTEND_H */
