/* Framing for the nanokws serial protocol: see PROTOCOL.md. */
#include "nk_protocol.h"

#include <string.h>

uint16_t nk_crc16_update(uint16_t crc, const uint8_t *data, size_t len) {
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint16_t)data[i] << 8);
        for (int bit = 0; bit < 8; bit++) {
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

uint16_t nk_crc16(const uint8_t *data, size_t len) { return nk_crc16_update(0xFFFFu, data, len); }

size_t nk_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap) {
    if (out_cap < 1) {
        return 0;
    }
    size_t code_at = 0; /* where the current block's code byte goes */
    size_t o = 1;
    uint8_t code = 1;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == 0) {
            out[code_at] = code;
            code_at = o;
            if (o >= out_cap) {
                return 0;
            }
            o++;
            code = 1;
            continue;
        }
        if (o >= out_cap) {
            return 0;
        }
        out[o++] = in[i];
        code++;
        /* A full block (254 data bytes) ends without an implied zero; start another only if
         * more data follows, so 254 non-zero bytes encode as FF + 254 bytes. */
        if (code == 0xFFu && i + 1 < len) {
            out[code_at] = code;
            code_at = o;
            if (o >= out_cap) {
                return 0;
            }
            o++;
            code = 1;
        }
    }
    out[code_at] = code;
    return o;
}

int nk_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap, size_t *out_len) {
    size_t i = 0;
    size_t o = 0;
    while (i < len) {
        uint8_t code = in[i++];
        if (code == 0) {
            return -1;
        }
        for (uint8_t k = 1; k < code; k++) {
            if (i >= len || in[i] == 0 || o >= out_cap) {
                return -1;
            }
            out[o++] = in[i++];
        }
        if (code != 0xFFu && i < len) {
            if (o >= out_cap) {
                return -1;
            }
            out[o++] = 0;
        }
    }
    *out_len = o;
    return 0;
}

void nk_rx_init(nk_rx_t *rx) {
    rx->len = 0;
    rx->received = 0;
    rx->remaining = 0;
    rx->code = 0;
    rx->overflow = 0;
}

static void rx_append(nk_rx_t *rx, uint8_t b) {
    if (rx->len >= sizeof rx->buf) {
        rx->overflow = 1; /* keep the header we have: TOO_LONG can still echo seq and type */
        return;
    }
    rx->buf[rx->len++] = b;
}

static nk_rx_status_t rx_reject(nk_rx_t *rx, uint8_t code, int header_readable, nk_rx_error_t *err) {
    err->code = code;
    err->seq = (header_readable && rx->len >= NK_PROTO_HEADER_BYTES) ? rx->buf[2] : 0;
    err->type = (header_readable && rx->len >= NK_PROTO_HEADER_BYTES) ? rx->buf[1] : 0;
    nk_rx_init(rx);
    return NK_RX_ERROR;
}

nk_rx_status_t nk_rx_feed(nk_rx_t *rx, uint8_t byte, nk_frame_t *frame, nk_rx_error_t *err) {
    if (byte != 0) {
        if (rx->received < SIZE_MAX) {
            rx->received++;
        }
        if (rx->overflow) {
            return NK_RX_NONE; /* discard until the delimiter */
        }
        if (rx->remaining == 0) {
            /* A code byte: the previous block (unless full) ended with an implied zero. */
            if (rx->code != 0 && rx->code != 0xFFu) {
                rx_append(rx, 0);
            }
            rx->code = byte;
            rx->remaining = (uint8_t)(byte - 1u);
        } else {
            rx_append(rx, byte);
            rx->remaining--;
        }
        return NK_RX_NONE;
    }
    if (rx->received == 0) {
        return NK_RX_NONE; /* empty frame: a flush, not an error */
    }
    if (rx->overflow) {
        return rx_reject(rx, NK_ERR_TOO_LONG, 1, err);
    }
    if (rx->remaining != 0) {
        return rx_reject(rx, NK_ERR_BAD_FRAME, 0, err); /* a block cut short by the delimiter */
    }
    if (rx->len < NK_PROTO_MIN_PAYLOAD) {
        return rx_reject(rx, NK_ERR_BAD_FRAME, 1, err);
    }
    size_t n = rx->len - NK_PROTO_CRC_BYTES;
    if (nk_crc16(rx->buf, n) != nk_get_u16(rx->buf + n)) {
        return rx_reject(rx, NK_ERR_BAD_CRC, 1, err);
    }
    if (rx->buf[0] != NK_PROTO_VERSION) {
        return rx_reject(rx, NK_ERR_BAD_VERSION, 1, err);
    }
    frame->version = rx->buf[0];
    frame->type = rx->buf[1];
    frame->seq = rx->buf[2];
    frame->body = rx->buf + NK_PROTO_HEADER_BYTES;
    frame->body_len = n - NK_PROTO_HEADER_BYTES;
    nk_rx_init(rx); /* buf keeps the frame until the next byte arrives */
    return NK_RX_FRAME;
}

size_t nk_tx_finish(nk_tx_t *tx, uint8_t type, uint8_t seq, size_t body_len) {
    if (body_len > NK_PROTO_MAX_BODY) {
        return 0;
    }
    tx->payload[0] = NK_PROTO_VERSION;
    tx->payload[1] = type;
    tx->payload[2] = seq;
    size_t n = NK_PROTO_HEADER_BYTES + body_len;
    nk_put_u16(tx->payload + n, nk_crc16(tx->payload, n));
    n += NK_PROTO_CRC_BYTES;
    size_t enc = nk_cobs_encode(tx->payload, n, tx->wire, sizeof tx->wire - 1u);
    if (enc == 0) {
        return 0;
    }
    tx->wire[enc] = 0;
    return enc + 1u;
}
