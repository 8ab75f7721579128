/* nanokws serial protocol (PROTOCOL.md in this folder is the specification): constants, COBS,
 * CRC-16/CCITT-FALSE, a byte-at-a-time frame receiver and a reply builder. Fixed buffers only. */
#ifndef NK_PROTOCOL_H
#define NK_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NK_PROTO_VERSION 1u
#define NK_PROTO_MAX_PAYLOAD 1100u /* version type seq body crc, decoded */
#define NK_PROTO_HEADER_BYTES 3u   /* version type seq */
#define NK_PROTO_CRC_BYTES 2u
#define NK_PROTO_MIN_PAYLOAD (NK_PROTO_HEADER_BYTES + NK_PROTO_CRC_BYTES)
#define NK_PROTO_MAX_BODY (NK_PROTO_MAX_PAYLOAD - NK_PROTO_MIN_PAYLOAD) /* 1095 */
/* COBS adds one code byte per started run of 254 bytes. */
#define NK_COBS_MAX_ENCODED(n) ((n) + (n) / 254u + 1u)
#define NK_PROTO_MAX_ENCODED NK_COBS_MAX_ENCODED(NK_PROTO_MAX_PAYLOAD)
#define NK_PROTO_MAX_WIRE (NK_PROTO_MAX_ENCODED + 1u) /* plus the 0x00 delimiter */

/* Requests (host -> device). */
#define NK_MSG_INFO 0x01u
#define NK_MSG_RESET 0x02u
#define NK_MSG_AUDIO 0x03u
#define NK_MSG_CLIP_LOAD 0x04u
#define NK_MSG_CLIP_RUN 0x05u
#define NK_MSG_SET_CONFIG 0x06u
#define NK_MSG_STATS 0x07u
/* Replies and events (device -> host). */
#define NK_MSG_OK 0x80u
#define NK_MSG_INFO_REPLY 0x81u
#define NK_MSG_AUDIO_ACK 0x83u
#define NK_MSG_SCORES 0x84u
#define NK_MSG_DETECTION 0x85u
#define NK_MSG_RESULT 0x86u
#define NK_MSG_STATS_REPLY 0x87u
#define NK_MSG_ERROR 0xFFu

/* ERROR codes. */
#define NK_ERR_BAD_CRC 1u
#define NK_ERR_BAD_FRAME 2u
#define NK_ERR_TOO_LONG 3u
#define NK_ERR_BAD_VERSION 4u
#define NK_ERR_UNKNOWN_TYPE 5u
#define NK_ERR_BAD_LENGTH 6u
#define NK_ERR_BAD_ARGUMENT 7u
#define NK_ERR_INTERNAL 8u

/* SET_CONFIG keys. */
#define NK_CFG_INFERENCE_STRIDE 1u
#define NK_CFG_SMOOTHING 2u
#define NK_CFG_THRESHOLD 3u
#define NK_CFG_SUPPRESSION 4u
#define NK_CFG_STREAM_SCORES 5u
#define NK_CFG_RELEASE 6u

#define NK_PROTO_MAX_AUDIO_SAMPLES 512u /* per AUDIO or CLIP_LOAD request */
/* STATS_REPLY: u32 fields, samples .. skipped_inferences (the 9th, added later at the end). */
#define NK_PROTO_STATS_FIELDS 9u

/* CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor. */
uint16_t nk_crc16_update(uint16_t crc, const uint8_t *data, size_t len);
uint16_t nk_crc16(const uint8_t *data, size_t len);

/* COBS-encode `len` bytes into `out` (no delimiter). Returns the encoded length, or 0 when
 * `out_cap` is too small (an encoding is never empty). */
size_t nk_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap);

/* COBS-decode `len` bytes (no delimiter, no zero bytes inside). Returns 0 and sets *out_len, or
 * -1 when the input is malformed or the result does not fit `out_cap`. */
int nk_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap, size_t *out_len);

/* A checked, decoded request. `body` points into the receiver's buffer until the next byte. */
typedef struct {
    uint8_t version;
    uint8_t type;
    uint8_t seq;
    const uint8_t *body;
    size_t body_len;
} nk_frame_t;

/* Why a frame was rejected, and the seq/type to put in the ERROR reply (0 when unreadable). */
typedef struct {
    uint8_t code;
    uint8_t seq;
    uint8_t type;
} nk_rx_error_t;

/* Byte-at-a-time receiver: decodes COBS as bytes arrive, so it needs one payload buffer. */
typedef struct {
    uint8_t buf[NK_PROTO_MAX_PAYLOAD];
    size_t len;        /* decoded bytes held */
    size_t received;   /* encoded bytes since the last delimiter */
    uint8_t remaining; /* data bytes left in the current COBS block */
    uint8_t code;      /* code byte of the current block (0: none yet) */
    uint8_t overflow;  /* more than NK_PROTO_MAX_PAYLOAD decoded: discard until the delimiter */
} nk_rx_t;

typedef enum { NK_RX_NONE = 0, NK_RX_FRAME = 1, NK_RX_ERROR = 2 } nk_rx_status_t;

void nk_rx_init(nk_rx_t *rx);

/* Feed one byte. On the 0x00 delimiter returns NK_RX_FRAME (frame filled, version/CRC checked,
 * type not checked) or NK_RX_ERROR (err filled). An empty frame (0x00 right after 0x00) is
 * ignored: a host may send 0x00 to flush. Otherwise returns NK_RX_NONE. */
nk_rx_status_t nk_rx_feed(nk_rx_t *rx, uint8_t byte, nk_frame_t *frame, nk_rx_error_t *err);

/* Outgoing frame builder: the caller writes up to NK_PROTO_MAX_BODY bytes at nk_tx_body() and
 * calls nk_tx_finish(), which returns the wire bytes (COBS + 0x00) in tx->wire. */
typedef struct {
    uint8_t payload[NK_PROTO_MAX_PAYLOAD];
    uint8_t wire[NK_PROTO_MAX_WIRE];
} nk_tx_t;

static inline uint8_t *nk_tx_body(nk_tx_t *tx) { return tx->payload + NK_PROTO_HEADER_BYTES; }

/* Returns the number of bytes in tx->wire, or 0 when body_len exceeds NK_PROTO_MAX_BODY. */
size_t nk_tx_finish(nk_tx_t *tx, uint8_t type, uint8_t seq, size_t body_len);

/* Little-endian helpers shared by the app and tests. */
static inline void nk_put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}
static inline void nk_put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
}
static inline uint16_t nk_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | ((unsigned)p[1] << 8)); }

#ifdef __cplusplus
}
#endif

#endif /* NK_PROTOCOL_H */
