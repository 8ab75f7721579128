/* libFuzzer target: the feature frontend, under ASan/UBSan.
 *
 * The input is int16 PCM (little-endian). The whole-buffer path (nk_frontend_compute_clip) and the
 * streaming path (nk_frontend_push_hop, hop by hop) must give the same frames bit for bit, and a
 * frame computed from the buffer split at an arbitrary point must equal the unsplit one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nk_frontend.h"

#include "fuzz_check.h"

#define MAX_SAMPLES (8u * NK_FE_HOP_SAMPLES)
#define MAX_FRAMES 8u

static int16_t g_audio[MAX_SAMPLES];
static int8_t g_clip[MAX_FRAMES * NK_FE_NUM_CHANNELS];
static int8_t g_frame[NK_FE_NUM_CHANNELS];
static int8_t g_split[NK_FE_NUM_CHANNELS];
static nk_frontend_t g_fe;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t n = size / 2u;
    if (n > MAX_SAMPLES) {
        n = MAX_SAMPLES;
    }
    for (size_t i = 0; i < n; i++) {
        g_audio[i] = (int16_t)(uint16_t)(data[2u * i] | ((unsigned)data[2u * i + 1u] << 8));
    }
    const size_t frames = nk_frontend_compute_clip(g_audio, n, g_clip, MAX_FRAMES);
    CHECK(frames <= MAX_FRAMES);

    nk_frontend_init(&g_fe);
    size_t streamed = 0;
    for (size_t h = 0; (h + 1u) * NK_FE_HOP_SAMPLES <= n; h++) {
        if (nk_frontend_push_hop(&g_fe, g_audio + h * NK_FE_HOP_SAMPLES, g_frame)) {
            CHECK(streamed < frames);
            CHECK(memcmp(g_frame, g_clip + streamed * NK_FE_NUM_CHANNELS, NK_FE_NUM_CHANNELS) == 0);
            streamed++;
        }
    }
    if (n % NK_FE_HOP_SAMPLES == 0u) {
        CHECK(streamed == frames);
    }

    if (frames > 0u) {
        const size_t window = NK_FE_WINDOW_SAMPLES;
        const size_t cut = (size > 0u ? data[0] : 0u) * window / 256u;
        nk_frontend_compute_frame(g_audio, cut, g_audio + cut, g_split);
        CHECK(memcmp(g_split, g_clip, NK_FE_NUM_CHANNELS) == 0);
    }
    return 0;
}
