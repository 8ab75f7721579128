/* libFuzzer target: the app's protocol dispatch (nk_app_feed_byte) with the default model, under
 * ASan/UBSan.
 *
 * The input is a sequence of chunks, so most of them reach dispatch instead of dying at the CRC:
 *   tag:u8  len:u8  bytes[len]
 * tag bit 7 set: the bytes go to the app as they are (raw wire bytes, garbage, partial frames).
 * tag bit 7 clear: they become the body of a valid frame of request type (tag & 0x0F) (0x0F: a
 * reply type, 0x80) with seq = chunk index; AUDIO/CLIP_LOAD bodies are repeated (tag >> 4) & 7
 * times so they can reach the 512-sample limit.
 * Checked: every byte the app writes parses as well-formed reply frames (valid COBS, CRC and
 * version, a reply or event type), and each request frame gets exactly one final reply. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nk_app.h"
#include "nk_platform.h"

#include "fuzz_check.h"

static nk_app_t g_app;
static nk_rx_t g_check; /* parses what the app writes */
static nk_tx_t g_req;   /* builds the requests */
static unsigned g_final_replies;
static uint32_t g_clock;

void nk_platform_init(void) {}
int nk_platform_read_byte(void) { return -1; }
uint32_t nk_platform_cycles(void) { return g_clock += 1000u; }
const char *nk_platform_cycle_unit(void) { return "fuzz_ticks"; }
uint32_t nk_platform_cycle_hz(void) { return 1000000u; }
void nk_platform_exit(int code) { exit(code); }

void nk_platform_write(const uint8_t *data, size_t len) {
    for (size_t i = 0; i < len; i++) {
        nk_frame_t frame;
        nk_rx_error_t err;
        const nk_rx_status_t st = nk_rx_feed(&g_check, data[i], &frame, &err);
        CHECK(st != NK_RX_ERROR); /* the app never writes a malformed frame */
        if (st == NK_RX_FRAME) {
            CHECK(frame.type >= NK_MSG_OK);
            if (frame.type != NK_MSG_SCORES && frame.type != NK_MSG_DETECTION) {
                g_final_replies++;
            }
        }
    }
}

static void feed(const uint8_t *bytes, size_t n) {
    for (size_t i = 0; i < n; i++) {
        nk_app_feed_byte(&g_app, bytes[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int initialised;
    if (!initialised) {
        CHECK(nk_app_init(&g_app) == 0);
        initialised = 1;
    }
    nk_app_reset(&g_app);
    nk_rx_init(&g_check);
    nk_app_feed_byte(&g_app, 0u); /* flush anything a previous input left half-received */
    uint8_t seq = 0;
    size_t pos = 0;
    while (pos + 2u <= size) {
        const uint8_t tag = data[pos];
        size_t len = data[pos + 1u];
        pos += 2u;
        if (len > size - pos) {
            len = size - pos;
        }
        const uint8_t *chunk = data + pos;
        pos += len;
        if (tag & 0x80u) {
            feed(chunk, len);
            nk_app_feed_byte(&g_app, 0u);
            continue;
        }
        const uint8_t low = tag & 0x0Fu;
        const uint8_t type = low == 0x0Fu ? (uint8_t)NK_MSG_OK : low;
        size_t body_len = 0;
        const unsigned repeat = 1u + ((tag >> 4) & 7u);
        for (unsigned r = 0; r < repeat && body_len + len <= NK_PROTO_MAX_BODY; r++) {
            memcpy(nk_tx_body(&g_req) + body_len, chunk, len);
            body_len += len;
            if (type != NK_MSG_AUDIO && type != NK_MSG_CLIP_LOAD) {
                break;
            }
        }
        seq++;
        const size_t wire = nk_tx_finish(&g_req, type, seq, body_len);
        CHECK(wire > 0u);
        /* nk_tx_finish builds device->host frames the same way a host builds requests. */
        const unsigned before = g_final_replies;
        feed(g_req.wire, wire);
        CHECK(g_final_replies == before + 1u);
    }
    return 0;
}
