/* nanokws firmware main loop for TARGET=host, asan and qemu: read bytes from the platform's
 * stream, let the app answer protocol requests, stop when the stream ends.
 * (The Nano 33 BLE has its own entry point in firmware/src/main.cpp.)
 *
 * Host only: with NANOKWS_FW_LIVE=1 in the environment the input is raw 16 kHz mono int16
 * little-endian PCM instead of protocol frames, streamed through nk_app_push_audio() as the
 * board's live mode does, and each detection is printed as a text line:
 *     sox speech.wav -t raw -r 16000 -c 1 -b 16 -e signed - | NANOKWS_FW_LIVE=1 ./nanokws_fw */
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
static void print_detection(void *ctx, const nk_detection_t *det, const char *label) {
    (void)ctx;
    char line[128];
    int n = snprintf(line, sizeof line, "detection hop=%lu label=%u name=%s score=%u\n", (unsigned long)det->hop,
                     (unsigned)det->label, label, (unsigned)det->score);
    if (n > 0) {
        nk_platform_write((const uint8_t *)line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1u);
    }
}

/* Feed PCM in odd-sized pieces (157 samples) so hop boundaries fall inside pieces, as they do for
 * the microphone's DMA blocks. */
static void run_live(void) {
    int16_t piece[157];
    size_t n = 0;
    for (;;) {
        int lo = nk_platform_read_byte();
        int hi = lo < 0 ? -1 : nk_platform_read_byte();
        if (hi < 0) {
            break;
        }
        piece[n++] = (int16_t)(uint16_t)((unsigned)lo | ((unsigned)hi << 8));
        if (n == sizeof piece / sizeof piece[0]) {
            nk_app_push_audio(&g_app, piece, n, print_detection, NULL);
            n = 0;
        }
    }
    nk_app_push_audio(&g_app, piece, n, print_detection, NULL);
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
