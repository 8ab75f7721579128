/* libFuzzer target: the protocol receiver (nk_rx_feed) and COBS, under ASan/UBSan.
 *
 * The input is fed byte by byte to one receiver, as a UART would deliver it. Checked on every
 * result: a frame's body lies inside the receiver's buffer and within the size limits, its CRC
 * matches, and an error code is one of the defined ones. The input (cut to the largest payload)
 * also goes through nk_cobs_encode -> nk_cobs_decode and must come back unchanged, and as one
 * framed payload through a second receiver, which must return it as a frame or a CRC/length error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nk_protocol.h"

#include "fuzz_check.h"

static nk_rx_t g_rx;
static uint8_t g_enc[NK_PROTO_MAX_WIRE];
static uint8_t g_dec[NK_PROTO_MAX_PAYLOAD];

static void check_frame(const nk_rx_t *rx, const nk_frame_t *frame) {
    CHECK(frame->version == NK_PROTO_VERSION);
    CHECK(frame->body_len <= NK_PROTO_MAX_BODY);
    CHECK(frame->body >= rx->buf + NK_PROTO_HEADER_BYTES);
    CHECK(frame->body + frame->body_len + NK_PROTO_CRC_BYTES <= rx->buf + sizeof rx->buf);
    const size_t covered = NK_PROTO_HEADER_BYTES + frame->body_len;
    const uint16_t crc = nk_get_u16(frame->body + frame->body_len);
    CHECK(nk_crc16(rx->buf, covered) == crc);
}

static void check_error(const nk_rx_error_t *err) {
    CHECK(err->code >= NK_ERR_BAD_CRC && err->code <= NK_ERR_INTERNAL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nk_rx_init(&g_rx);
    for (size_t i = 0; i < size; i++) {
        nk_frame_t frame;
        nk_rx_error_t err;
        const nk_rx_status_t st = nk_rx_feed(&g_rx, data[i], &frame, &err);
        if (st == NK_RX_FRAME) {
            CHECK(data[i] == 0u);
            check_frame(&g_rx, &frame);
        } else if (st == NK_RX_ERROR) {
            CHECK(data[i] == 0u);
            check_error(&err);
        } else {
            CHECK(st == NK_RX_NONE);
        }
    }

    /* COBS round trip of the input itself. */
    const size_t n = size < NK_PROTO_MAX_PAYLOAD ? size : NK_PROTO_MAX_PAYLOAD;
    const size_t enc_len = nk_cobs_encode(data, n, g_enc, sizeof g_enc);
    CHECK(enc_len > 0u && enc_len <= NK_COBS_MAX_ENCODED(n));
    CHECK(memchr(g_enc, 0, enc_len) == NULL);
    size_t dec_len = 0;
    CHECK(nk_cobs_decode(g_enc, enc_len, g_dec, sizeof g_dec, &dec_len) == 0);
    CHECK(dec_len == n && (n == 0u || memcmp(g_dec, data, n) == 0));

    /* The encoded input as one frame: a fresh receiver must see exactly one result at the end. */
    if (n > 0u) {
        nk_rx_init(&g_rx);
        int results = 0;
        for (size_t i = 0; i <= enc_len; i++) {
            nk_frame_t frame;
            nk_rx_error_t err;
            const uint8_t byte = i < enc_len ? g_enc[i] : 0u;
            const nk_rx_status_t st = nk_rx_feed(&g_rx, byte, &frame, &err);
            if (st == NK_RX_FRAME) {
                results++;
                check_frame(&g_rx, &frame);
                CHECK(frame.body_len + NK_PROTO_MIN_PAYLOAD == n);
                CHECK(memcmp(g_rx.buf, data, n) == 0);
            } else if (st == NK_RX_ERROR) {
                results++;
                check_error(&err);
                CHECK(err.code != NK_ERR_BAD_FRAME || n < NK_PROTO_MIN_PAYLOAD);
                CHECK(err.code != NK_ERR_TOO_LONG);
            }
        }
        CHECK(results == 1);
    }
    return 0;
}
