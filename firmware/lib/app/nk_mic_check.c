/* See nk_mic_check.h. */
#include "nk_mic_check.h"

void nk_mic_check_start(nk_mic_check_t *c, uint32_t now_ms) {
    c->start_ms = now_ms;
    c->samples = 0;
    c->reference = 0;
    c->varied = 0;
    c->caught_up = 0;
    c->verdict = NK_MIC_PENDING;
}

void nk_mic_check_feed(nk_mic_check_t *c, const int16_t *samples, size_t n, int caught_up) {
    c->caught_up = caught_up != 0;
    for (size_t i = 0; i < n; i++) {
        if (c->samples == NK_MIC_SETTLE_SAMPLES) {
            c->reference = samples[i];
        } else if (c->samples > NK_MIC_SETTLE_SAMPLES && samples[i] != c->reference) {
            c->varied = 1;
        }
        if (c->samples < UINT32_MAX) {
            c->samples++; /* saturating: only "none" vs "some" matters later */
        }
    }
}

nk_mic_verdict_t nk_mic_check_poll(nk_mic_check_t *c, uint32_t now_ms) {
    if (c->verdict != NK_MIC_PENDING) {
        return c->verdict;
    }
    if (c->varied) {
        c->verdict = NK_MIC_OK; /* a live microphone: no need to wait for the deadline */
    } else if (c->caught_up && (uint32_t)(now_ms - c->start_ms) >= NK_MIC_CHECK_MS) {
        c->verdict = c->samples <= NK_MIC_SETTLE_SAMPLES ? NK_MIC_NO_SAMPLES : NK_MIC_CONSTANT;
    }
    return c->verdict;
}

const char *nk_mic_verdict_text(nk_mic_verdict_t v) {
    switch (v) {
    case NK_MIC_NO_SAMPLES:
        return "no samples from the PDM microphone";
    case NK_MIC_CONSTANT:
        return "the PDM microphone's samples never change";
    default:
        return "";
    }
}
