/* nanokws firmware main loop for TARGET=host, asan and qemu: read bytes from the platform's
 * stream, let the app answer protocol requests, stop when the stream ends.
 * (The Nano 33 BLE has its own entry point in firmware/src/main.cpp.)
 *
 * Host only: with NANOKWS_FW_LIVE=1 in the environment the input is raw 16 kHz mono int16
 * little-endian PCM instead of protocol frames, pushed into the app's keyword spotter with
 * nk_kws_push() (nk_kws.h) as the board's live mode does, and each detection is printed as a text line:
 *     sox speech.wav -t raw -r 16000 -c 1 -b 16 -e signed - | NANOKWS_FW_LIVE=1 ./nanokws_fw
 * For tests of live mode: NANOKWS_FW_LIVE_SCORES=1 also prints each inference's scores
 * ("scores hop=H s0 s1 ..."), NANOKWS_FW_LIVE_BEHIND=LO:HI reports a backlog of four hops
 * (behind real time, nk_kws_set_backlog) for the pieces starting at samples LO..HI-1; with
 * either, the end of input prints "stats inferences=N skipped=M". */
#include "nk_app.h"
#include "nk_platform.h"

#if !defined(NK_TARGET_QEMU)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define NK_FW_HOST_LIVE 1
#endif

/* Static, not on the stack: the app holds a 32 KB clip buffer and frame buffers. */
static nk_app_t g_app;

#ifdef NK_FW_HOST_LIVE
static void print_detection(void *ctx, const nk_kws_detection_t *det) {
    (void)ctx;
    char line[128];
    int n = snprintf(line, sizeof line, "detection hop=%lu label=%u name=%s score=%u\n",
                     (unsigned long)det->hop, (unsigned)det->label_index, det->label, (unsigned)det->score);
    if (n > 0) {
        nk_platform_write((const uint8_t *)line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1u);
    }
}

static void print_scores(void *ctx, uint32_t hop, const int8_t *scores, size_t n) {
    (void)ctx;
    char line[640];
    int len = snprintf(line, sizeof line, "scores hop=%lu", (unsigned long)hop);
    for (size_t i = 0; i < n && len > 0 && (size_t)len < sizeof line - 8u; i++) {
        len += snprintf(line + len, sizeof line - (size_t)len, " %d", (int)scores[i]);
    }
    if (len > 0 && (size_t)len < sizeof line - 1u) {
        line[len++] = '\n';
        nk_platform_write((const uint8_t *)line, (size_t)len);
    }
}

/* Feed PCM in odd-sized pieces (157 samples) so hop boundaries fall inside pieces, as they do for
 * the microphone's DMA blocks. */
static void run_live(void) {
    nk_kws_t *kws = nk_app_kws(&g_app);
    int16_t piece[157];
    size_t n = 0;
    unsigned long behind_lo = 0, behind_hi = 0, pushed = 0;
    const char *behind = getenv("NANOKWS_FW_LIVE_BEHIND");
    if (behind != NULL && sscanf(behind, "%lu:%lu", &behind_lo, &behind_hi) != 2) {
        behind_lo = behind_hi = 0;
    }
    const char *scores = getenv("NANOKWS_FW_LIVE_SCORES");
    int print_all = scores != NULL && strcmp(scores, "1") == 0;
    if (print_all) {
        (void)nk_kws_on_scores(kws, print_scores, NULL);
    }
    (void)nk_kws_on_detection(kws, print_detection, NULL);
    for (;;) {
        int lo = nk_platform_read_byte();
        int hi = lo < 0 ? -1 : nk_platform_read_byte();
        if (hi < 0) {
            break;
        }
        piece[n++] = (int16_t)(uint16_t)((unsigned)lo | ((unsigned)hi << 8));
        if (n == sizeof piece / sizeof piece[0]) {
            int late = pushed >= behind_lo && pushed < behind_hi;
            (void)nk_kws_set_backlog(kws, late ? 4u * NK_FE_HOP_SAMPLES : 0u);
            (void)nk_kws_push(kws, piece, n);
            pushed += n;
            n = 0;
        }
    }
    (void)nk_kws_set_backlog(kws, 0u);
    (void)nk_kws_push(kws, piece, n);
    if (behind == NULL && !print_all) {
        nk_platform_exit(0);
    }
    char line[96];
    const nk_kws_stats_t *st = nk_kws_stats(kws);
    int len = snprintf(line, sizeof line, "stats inferences=%lu skipped=%lu\n", (unsigned long)st->inferences,
                       (unsigned long)st->skipped_inferences);
    if (len > 0 && (size_t)len < sizeof line) {
        nk_platform_write((const uint8_t *)line, (size_t)len);
    }
    nk_platform_exit(0);
}
#endif

int main(void) {
    nk_platform_init();
    if (nk_app_init(&g_app) != 0) {
        nk_platform_exit(3);
    }
#ifdef NK_FW_HOST_LIVE
    const char *live = getenv("NANOKWS_FW_LIVE");
    if (live != NULL && strcmp(live, "1") == 0) {
        run_live();
    }
#endif
    for (;;) {
        int byte = nk_platform_read_byte();
        if (byte < 0) {
            nk_platform_exit(0);
        }
        nk_app_feed_byte(&g_app, (uint8_t)byte);
    }
}
