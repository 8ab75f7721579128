/* The firmware core; see nk_app.h and ../protocol/PROTOCOL.md. */

/* Every lib/ folder is compiled into one library for every program, including programs built
 * without a compiled model (kernel tests, benches): then this file compiles to nothing. */
#if defined(__has_include)
#if !__has_include("nk_model.h") || !__has_include("model_config.h")
#define NK_APP_NO_MODEL 1
#endif
#endif

#ifdef NK_APP_NO_MODEL
typedef int nk_app_unused_t; /* ISO C wants at least one declaration */
#else

#include "nk_app.h"

#include <string.h>

#include "nk_platform.h"

_Static_assert(NK_APP_DEFAULT_STRIDE == NK_KWS_DEFAULT_STRIDE && NK_APP_MAX_STRIDE == NK_KWS_MAX_STRIDE,
               "nk_app.h's stride values must be nk_kws.h's");
_Static_assert(NK_MODEL_NUM_LABELS + 13u <= NK_PROTO_MAX_BODY, "SCORES must fit one frame");
#if NK_KWS_STREAMING
#define NK_APP_STREAM_RAM_BYTES NK_MODEL_STREAM_RAM_BYTES
#define NK_APP_STRIDE_ALIGN_MESSAGE \
    "INFERENCE_STRIDE must be a multiple of " NK_APP_STR(NK_MODEL_STREAM_ALIGN) " for this streaming model"
#else
#define NK_APP_STREAM_RAM_BYTES 0
#define NK_APP_STRIDE_ALIGN_MESSAGE "INFERENCE_STRIDE must be 1..50"
#endif
#define NK_APP_STR_(x) #x
#define NK_APP_STR(x) NK_APP_STR_(x)

/* Our own name: the Arduino mbed core already defines TARGET_NAME (=ARDUINO_NANO33BLE). */
#if defined(NK_TARGET_NAME)
#define NK_TARGET_NAME_STR NK_TARGET_NAME
#elif defined(NK_TARGET_QEMU)
#define NK_TARGET_NAME_STR "qemu"
#elif defined(ARDUINO)
#define NK_TARGET_NAME_STR "nano33ble"
#else
#define NK_TARGET_NAME_STR "host"
#endif

int nk_app_init(nk_app_t *app) {
    memset(app, 0, sizeof *app);
    if (nk_kws_begin(&app->kws, nk_kws_model()) != NK_KWS_OK) {
        return -1;
    }
    app->stream_scores = 0;
    nk_rx_init(&app->rx);
    nk_app_reset(app);
    return 0;
}

void nk_app_reset(nk_app_t *app) {
    (void)nk_kws_reset(&app->kws); /* started by nk_app_init */
    app->rx_errors = 0;
    memset(app->clip, 0, sizeof app->clip);
}

nk_kws_t *nk_app_kws(nk_app_t *app) { return &app->kws; }

const nk_app_stats_t *nk_app_stats(nk_app_t *app) {
    const nk_kws_stats_t *k = nk_kws_stats(&app->kws);
    nk_app_stats_t *s = &app->stats;
    s->samples = k->samples;
    s->frames = k->frames;
    s->inferences = k->inferences;
    s->detections = k->detections;
    s->rx_errors = app->rx_errors;
    s->frontend_cycles_max = k->frontend_cycles_max;
    s->inference_cycles_max = k->inference_cycles_max;
    s->inference_cycles_last = k->inference_cycles_last;
    s->skipped_inferences = k->skipped_inferences;
    return s;
}

/* ---- output ---------------------------------------------------------------------------------- */

static void send(nk_app_t *app, uint8_t type, uint8_t seq, size_t body_len) {
    size_t n = nk_tx_finish(&app->tx, type, seq, body_len);
    if (n > 0) {
        nk_platform_write(app->tx.wire, n);
    }
}

static void send_error(nk_app_t *app, uint8_t code, uint8_t request_type, uint8_t seq, const char *message) {
    uint8_t *body = nk_tx_body(&app->tx);
    size_t len = strlen(message);
    if (len > NK_PROTO_MAX_BODY - 2u) {
        len = NK_PROTO_MAX_BODY - 2u;
    }
    body[0] = code;
    body[1] = request_type;
    memcpy(body + 2, message, len);
    app->rx_errors++;
    send(app, NK_MSG_ERROR, seq, 2u + len);
}

/* ---- events of AUDIO: the spotter's callbacks, while the app holds them ---------------------- */

static void on_scores(void *ctx, uint32_t hop, const int8_t *scores, size_t n) {
    nk_app_t *app = (nk_app_t *)ctx;
    if (!app->stream_scores) {
        return;
    }
    uint8_t *body = nk_tx_body(&app->tx);
    const nk_kws_stats_t *k = nk_kws_stats(&app->kws);
    nk_put_u32(body, hop);
    nk_put_u32(body + 4, k->frontend_cycles_last);
    nk_put_u32(body + 8, k->inference_cycles_last);
    memcpy(body + 12, scores, n);
    send(app, NK_MSG_SCORES, 0, 12u + n);
}

static void on_detection(void *ctx, const nk_kws_detection_t *det) {
    nk_app_t *app = (nk_app_t *)ctx;
    uint8_t *body = nk_tx_body(&app->tx);
    nk_put_u32(body, det->hop);
    body[4] = det->label_index;
    body[5] = det->score;
    send(app, NK_MSG_DETECTION, 0, 6u);
}

/* ---- requests -------------------------------------------------------------------------------- */

static void decode_samples(int16_t *dst, const uint8_t *src, size_t count) {
    for (size_t i = 0; i < count; i++) {
        dst[i] = (int16_t)nk_get_u16(src + 2u * i);
    }
}

static void handle_audio(nk_app_t *app, const nk_frame_t *f) {
    size_t count = f->body_len / 2u;
    if (f->body_len % 2u != 0 || count < 1 || count > NK_PROTO_MAX_AUDIO_SAMPLES) {
        send_error(app, NK_ERR_BAD_LENGTH, f->type, f->seq, "AUDIO needs 1..512 int16 samples");
        return;
    }
    decode_samples(app->samples, f->body, count);
    /* The host paces AUDIO: never behind real time. Borrow the callbacks, give them back after. */
    nk_kws_t *kws = &app->kws;
    nk_kws_detection_fn user_det = kws->on_detection;
    void *user_det_ctx = kws->on_detection_ctx;
    nk_kws_scores_fn user_scores = kws->on_scores;
    void *user_scores_ctx = kws->on_scores_ctx;
    (void)nk_kws_set_backlog(kws, 0);
    (void)nk_kws_on_detection(kws, on_detection, app);
    (void)nk_kws_on_scores(kws, on_scores, app);
    nk_kws_status_t st = nk_kws_push(kws, app->samples, count);
    (void)nk_kws_on_detection(kws, user_det, user_det_ctx);
    (void)nk_kws_on_scores(kws, user_scores, user_scores_ctx);
    nk_kws_detection_t sent;
    while (nk_kws_poll(kws, &sent)) {
        /* sent as DETECTION frames already: nobody polls in protocol mode */
    }
    if (st != NK_KWS_OK) {
        send_error(app, NK_ERR_INTERNAL, f->type, f->seq,
                   st == NK_KWS_ERR_MODEL ? "model failed" : "push failed");
    }
    const nk_kws_stats_t *k = nk_kws_stats(kws);
    uint8_t *body = nk_tx_body(&app->tx);
    nk_put_u32(body, k->samples);
    nk_put_u32(body + 4, k->frames);
    nk_put_u32(body + 8, k->inferences);
    send(app, NK_MSG_AUDIO_ACK, f->seq, 12u);
}

static void handle_clip_load(nk_app_t *app, const nk_frame_t *f) {
    if (f->body_len < 4u || f->body_len % 2u != 0 || (f->body_len - 2u) / 2u > NK_PROTO_MAX_AUDIO_SAMPLES) {
        send_error(app, NK_ERR_BAD_LENGTH, f->type, f->seq, "CLIP_LOAD needs offset:u16 and 1..512 samples");
        return;
    }
    size_t offset = nk_get_u16(f->body);
    size_t count = (f->body_len - 2u) / 2u;
    if (offset + count > NK_FE_CLIP_SAMPLES) {
        send_error(app, NK_ERR_BAD_ARGUMENT, f->type, f->seq,
                   "CLIP_LOAD past the end of the 16000-sample clip");
        return;
    }
    decode_samples(app->clip + offset, f->body + 2, count);
    send(app, NK_MSG_OK, f->seq, 0);
}

static void handle_clip_run(nk_app_t *app, const nk_frame_t *f) {
    uint32_t t0 = nk_platform_cycles();
    size_t frames =
        nk_frontend_compute_clip(app->clip, NK_FE_CLIP_SAMPLES, app->clip_features, NK_FE_CLIP_FRAMES);
    uint32_t fe_cycles = nk_platform_cycles() - t0;
    if (frames != NK_FE_CLIP_FRAMES) {
        send_error(app, NK_ERR_INTERNAL, f->type, f->seq, "frontend produced too few frames");
        return;
    }
    uint32_t cycles = 0;
    int8_t scores[NK_MODEL_NUM_LABELS];
    nk_kws_status_t st = nk_kws_classify_features(&app->kws, app->clip_features, scores, &cycles);
    if (st != NK_KWS_OK) {
        send_error(app, NK_ERR_INTERNAL, f->type, f->seq, "model gave no scores for the clip");
        return;
    }
    size_t top = 0;
    for (size_t i = 1; i < NK_MODEL_NUM_LABELS; i++) {
        if (scores[i] > scores[top]) {
            top = i;
        }
    }
    uint8_t *body = nk_tx_body(&app->tx);
    body[0] = (uint8_t)top;
    nk_put_u32(body + 1, fe_cycles);
    nk_put_u32(body + 5, cycles);
    memcpy(body + 9, scores, NK_MODEL_NUM_LABELS);
    send(app, NK_MSG_RESULT, f->seq, 9u + NK_MODEL_NUM_LABELS);
}

/* Returns NULL on success, or the ERROR message (with *code set). Changes nothing on failure. */
static const char *apply_config(nk_app_t *app, const uint8_t *b, size_t len, uint8_t *code) {
    *code = NK_ERR_BAD_LENGTH;
    if (len < 1) {
        return "SET_CONFIG needs a key";
    }
    size_t want = (b[0] == NK_CFG_THRESHOLD || b[0] == NK_CFG_SUPPRESSION) ? 3u : 2u;
    if (b[0] < NK_CFG_INFERENCE_STRIDE || b[0] > NK_CFG_RELEASE) {
        *code = NK_ERR_BAD_ARGUMENT;
        return "unknown SET_CONFIG key";
    }
    if (len != want) {
        return "wrong SET_CONFIG value length for this key";
    }
    *code = NK_ERR_BAD_ARGUMENT;
    switch (b[0]) {
    case NK_CFG_INFERENCE_STRIDE:
        if (b[1] < 1 || b[1] > NK_APP_MAX_STRIDE) {
            return "INFERENCE_STRIDE must be 1..50";
        }
        /* A streaming model's windows must stay aligned with the rows its time strides compute. */
        return nk_kws_set_stride(&app->kws, b[1]) == NK_KWS_OK ? NULL : NK_APP_STRIDE_ALIGN_MESSAGE;
    case NK_CFG_SMOOTHING:
        return nk_kws_set_smoothing(&app->kws, b[1]) == NK_KWS_OK ? NULL : "SMOOTHING must be 1..32";
    case NK_CFG_THRESHOLD:
        return nk_kws_set_threshold(&app->kws, b[1], b[2]) == NK_KWS_OK ? NULL
                                                                        : "THRESHOLD label out of range";
    case NK_CFG_SUPPRESSION:
        (void)nk_kws_set_suppression_ms(&app->kws, nk_get_u16(b + 1));
        return NULL;
    case NK_CFG_RELEASE: /* any u8 is a valid level */
        return nk_kws_set_release(&app->kws, b[1]) == NK_KWS_OK ? NULL : "RELEASE must be 0..255";
    default: /* NK_CFG_STREAM_SCORES */
        if (b[1] > 1) {
            return "STREAM_SCORES must be 0 or 1";
        }
        app->stream_scores = b[1];
        return NULL;
    }
}

/* A bounded JSON writer: sets `full` instead of writing past the end. */
typedef struct {
    char *buf;
    size_t cap, len;
    int full;
} json_t;

static void js_raw(json_t *j, const char *s) {
    for (; *s != '\0'; s++) {
        if (j->len >= j->cap) {
            j->full = 1;
            return;
        }
        j->buf[j->len++] = *s;
    }
}

static void js_str(json_t *j, const char *s) {
    static const char hex[] = "0123456789abcdef";
    js_raw(j, "\"");
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[7] = {0};
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
        } else if (c < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xFu];
        } else {
            esc[0] = (char)c;
        }
        js_raw(j, esc);
    }
    js_raw(j, "\"");
}

static void js_uint(json_t *j, uint32_t v) {
    char digits[11];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0 && n < sizeof digits);
    char out[12];
    for (size_t i = 0; i < n; i++) {
        out[i] = digits[n - 1u - i];
    }
    out[n] = '\0';
    js_raw(j, out);
}

static void js_key_uint(json_t *j, const char *key, uint32_t v, int comma) {
    js_str(j, key);
    js_raw(j, ":");
    js_uint(j, v);
    if (comma) {
        js_raw(j, ",");
    }
}

static size_t build_info(nk_app_t *app, char *buf, size_t cap) {
    json_t j = {buf, cap, 0, 0};
    js_raw(&j, "{");
    js_key_uint(&j, "protocol", NK_PROTO_VERSION, 1);
    js_str(&j, "firmware");
    js_raw(&j, ":");
    js_str(&j, NK_FIRMWARE_VERSION);
    js_raw(&j, ",\"target\":");
    js_str(&j, NK_TARGET_NAME_STR);
    js_raw(&j, ",\"model_hash\":");
    js_str(&j, NK_MODEL_HASH);
    js_raw(&j, ",\"labels\":[");
    for (size_t i = 0; i < NK_MODEL_NUM_LABELS; i++) {
        js_raw(&j, i ? "," : "");
        js_str(&j, nk_kws_model()->labels[i]);
    }
    js_raw(&j, "],\"frontend\":{");
    js_key_uint(&j, "sample_rate", NK_FE_SAMPLE_RATE, 1);
    js_key_uint(&j, "window_samples", NK_FE_WINDOW_SAMPLES, 1);
    js_key_uint(&j, "hop_samples", NK_FE_HOP_SAMPLES, 1);
    js_key_uint(&j, "num_channels", NK_FE_NUM_CHANNELS, 1);
    js_key_uint(&j, "clip_frames", NK_FE_CLIP_FRAMES, 0);
    js_raw(&j, "},");
    js_key_uint(&j, "arena_bytes", (uint32_t)NK_MODEL_ARENA_BYTES, 1);
    js_raw(&j, NK_APP_STREAMING ? "\"streaming\":true," : "\"streaming\":false,");
    js_key_uint(&j, "stream_ram_bytes", (uint32_t)NK_APP_STREAM_RAM_BYTES, 1);
    js_key_uint(&j, "stride_align", (uint32_t)nk_kws_model()->stride_align, 1);
    /* The model's window can be longer than a clip (a model VALID in time): the first inference
     * after RESET comes at this hop, and clip mode centres a clip this many frames in. */
    js_key_uint(&j, "window_frames", (uint32_t)nk_kws_model()->window_frames, 1);
    js_key_uint(&j, "clip_pad_before", (uint32_t)NK_MODEL_CLIP_PAD_BEFORE, 1);
    js_str(&j, "cycle_unit");
    js_raw(&j, ":");
    js_str(&j, nk_platform_cycle_unit());
    js_raw(&j, ",");
    js_key_uint(&j, "cycle_hz", nk_platform_cycle_hz(), 1);
    js_raw(&j, "\"config\":{");
    js_key_uint(&j, "inference_stride", nk_kws_stride(&app->kws), 1);
    js_key_uint(&j, "smoothing", nk_kws_smoothing(&app->kws), 1);
    js_raw(&j, "\"thresholds\":[");
    for (size_t i = 0; i < NK_MODEL_NUM_LABELS; i++) {
        js_raw(&j, i ? "," : "");
        js_uint(&j, nk_kws_threshold(&app->kws, i));
    }
    js_raw(&j, "],");
    js_key_uint(&j, "suppression_ms", nk_kws_suppression_ms(&app->kws), 1);
    js_key_uint(&j, "release", nk_kws_release(&app->kws), 1);
    js_key_uint(&j, "stream_scores", app->stream_scores, 0);
    js_raw(&j, "},\"config_source\":");
    js_str(&j, nk_kws_model()->config_source);
    js_raw(&j, "}");
    return j.full ? 0 : j.len;
}

static void handle_stats(nk_app_t *app, const nk_frame_t *f) {
    const nk_app_stats_t *s = nk_app_stats(app);
    const uint32_t values[] = {s->samples,
                               s->frames,
                               s->inferences,
                               s->detections,
                               s->rx_errors,
                               s->frontend_cycles_max,
                               s->inference_cycles_max,
                               s->inference_cycles_last,
                               s->skipped_inferences};
    _Static_assert(sizeof values / sizeof values[0] == NK_PROTO_STATS_FIELDS,
                   "STATS_REPLY layout (PROTOCOL.md)");
    uint8_t *body = nk_tx_body(&app->tx);
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        nk_put_u32(body + 4u * i, values[i]);
    }
    send(app, NK_MSG_STATS_REPLY, f->seq, sizeof values);
}

static int body_is_empty(nk_app_t *app, const nk_frame_t *f) {
    if (f->body_len != 0) {
        send_error(app, NK_ERR_BAD_LENGTH, f->type, f->seq, "this request has no body");
        return 0;
    }
    return 1;
}

static void handle_frame(nk_app_t *app, const nk_frame_t *f) {
    app->request_type = f->type;
    app->request_seq = f->seq;
    switch (f->type) {
    case NK_MSG_INFO:
        if (body_is_empty(app, f)) {
            size_t n = build_info(app, (char *)nk_tx_body(&app->tx), NK_PROTO_MAX_BODY);
            if (n == 0) {
                send_error(app, NK_ERR_INTERNAL, f->type, f->seq, "INFO does not fit one frame");
            } else {
                send(app, NK_MSG_INFO_REPLY, f->seq, n);
            }
        }
        break;
    case NK_MSG_RESET:
        if (body_is_empty(app, f)) {
            nk_app_reset(app);
            send(app, NK_MSG_OK, f->seq, 0);
        }
        break;
    case NK_MSG_AUDIO:
        handle_audio(app, f);
        break;
    case NK_MSG_CLIP_LOAD:
        handle_clip_load(app, f);
        break;
    case NK_MSG_CLIP_RUN:
        if (body_is_empty(app, f)) {
            handle_clip_run(app, f);
        }
        break;
    case NK_MSG_SET_CONFIG: {
        uint8_t code = 0;
        const char *err = apply_config(app, f->body, f->body_len, &code);
        if (err != NULL) {
            send_error(app, code, f->type, f->seq, err);
        } else {
            send(app, NK_MSG_OK, f->seq, 0);
        }
        break;
    }
    case NK_MSG_STATS:
        if (body_is_empty(app, f)) {
            handle_stats(app, f);
        }
        break;
    default:
        send_error(app, NK_ERR_UNKNOWN_TYPE, f->type, f->seq, "unknown request type");
        break;
    }
}

static const char *rx_error_message(uint8_t code) {
    switch (code) {
    case NK_ERR_BAD_CRC:
        return "bad CRC";
    case NK_ERR_TOO_LONG:
        return "frame longer than 1100 bytes";
    case NK_ERR_BAD_VERSION:
        return "unsupported protocol version";
    default:
        return "malformed frame (COBS or shorter than 5 bytes)";
    }
}

void nk_app_feed_byte(nk_app_t *app, uint8_t byte) {
    nk_frame_t frame;
    nk_rx_error_t err;
    switch (nk_rx_feed(&app->rx, byte, &frame, &err)) {
    case NK_RX_FRAME:
        handle_frame(app, &frame);
        break;
    case NK_RX_ERROR:
        send_error(app, err.code, err.type, err.seq, rx_error_message(err.code));
        break;
    default:
        break;
    }
}

#endif /* NK_APP_NO_MODEL */
