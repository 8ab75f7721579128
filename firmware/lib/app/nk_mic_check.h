/* Is a microphone really there? Decided from the data, because the Arduino core's PDM.begin()
 * succeeds whether or not a microphone is wired to the PDM pins (it never probes one).
 *
 * Feed it every sample the main loop gets and poll it with the time: about NK_MIC_CHECK_MS after
 * the start it says OK (samples that vary), NO_SAMPLES (none arrived) or CONSTANT (they never
 * changed, e.g. all zeros). It judges absence only once the caller has caught up with the audio
 * (a busy main loop that has not read the samples yet is not a missing microphone).
 * Portable C11, no heap, no clock of its own (the caller passes ms). */
#ifndef NK_MIC_CHECK_H
#define NK_MIC_CHECK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The verdict is due this long after the start (about half a second of audio). */
#define NK_MIC_CHECK_MS 500u
/* Samples ignored at the start: the nRF52 PDM driver hands out one block of zeros (its buffer's
 * reset contents) before the first real one, and the decimation filter settles. 50 ms. */
#define NK_MIC_SETTLE_SAMPLES 800u

typedef enum {
    NK_MIC_PENDING = 0, /* not decided yet */
    NK_MIC_OK,          /* samples arrive and vary */
    NK_MIC_NO_SAMPLES,  /* nothing (past the settle part) arrived in time */
    NK_MIC_CONSTANT     /* samples arrive but never change */
} nk_mic_verdict_t;

typedef struct {
    uint32_t start_ms;
    uint32_t samples;  /* all samples fed, saturating */
    int16_t reference; /* the first sample past the settle part */
    uint8_t varied;    /* a later sample differed from reference */
    uint8_t caught_up; /* the last feed took every sample that was waiting */
    nk_mic_verdict_t verdict;
} nk_mic_check_t;

void nk_mic_check_start(nk_mic_check_t *c, uint32_t now_ms);

/* Look at n samples (any n, samples may be NULL when n is 0); caught_up: nonzero when no more
 * samples were waiting (the caller's buffer ran dry). */
void nk_mic_check_feed(nk_mic_check_t *c, const int16_t *samples, size_t n, int caught_up);

/* The verdict at now_ms (the same clock as start; wraps are fine): OK as soon as samples vary;
 * NO_SAMPLES or CONSTANT from NK_MIC_CHECK_MS on, at a poll after a caught-up feed. Once decided
 * it never changes. */
nk_mic_verdict_t nk_mic_check_poll(nk_mic_check_t *c, uint32_t now_ms);

/* One line for a person: "" for PENDING/OK, else why the microphone looks absent. */
const char *nk_mic_verdict_text(nk_mic_verdict_t v);

#ifdef __cplusplus
}
#endif

#endif /* NK_MIC_CHECK_H */
