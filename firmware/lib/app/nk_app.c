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

#include <math.h>
#include <string.h>

#include "nk_platform.h"

#define FE_FRAME_BYTES ((size_t)NK_FE_NUM_CHANNELS)
#define FE_CLIP_BYTES ((size_t)NK_FE_CLIP_FRAMES * NK_FE_NUM_CHANNELS)

_Static_assert(NK_MODEL_INPUT_LEN == FE_CLIP_BYTES, "model input must be one clip of frontend frames");
_Static_assert(NK_MODEL_OUTPUT_LEN == NK_MODEL_NUM_LABELS, "model output must have one score per label");
_Static_assert(NK_MODEL_NUM_LABELS <= NK_REC_MAX_LABELS, "too many labels for the recognizer");
_Static_assert(NK_MODEL_NUM_LABELS + 13u <= NK_PROTO_MAX_BODY, "SCORES must fit one frame");
#if NK_APP_STREAMING
_Static_assert(NK_MODEL_STREAM_FRAME_LEN == NK_FE_NUM_CHANNELS, "a stream frame must be one frontend frame");
_Static_assert(NK_MODEL_STREAM_WINDOW_FRAMES == NK_FE_CLIP_FRAMES, "the stream's window must be one clip");
_Static_assert(NK_MODEL_STREAM_OUTPUT_LEN == NK_MODEL_OUTPUT_LEN, "stream and clip model give the same scores");
_Static_assert(NK_MODEL_STREAM_ALIGN >= 1 && NK_MODEL_STREAM_ALIGN <= NK_APP_MAX_STRIDE,
               "the model's stride alignment must allow a stride of at most 50");
_Static_assert(NK_MODEL_STREAM_STRIDE % NK_MODEL_STREAM_ALIGN == 0 && NK_MODEL_STREAM_STRIDE <= NK_APP_MAX_STRIDE,
               "the streaming form's default stride must be a valid INFERENCE_STRIDE");
/* The default stride, unless the model's time strides need another (then the one it was compiled for). */
#define NK_APP_INITIAL_STRIDE \
    (NK_APP_DEFAULT_STRIDE % NK_MODEL_STREAM_ALIGN == 0 ? NK_APP_DEFAULT_STRIDE : NK_MODEL_STREAM_STRIDE)
#define NK_APP_STREAM_ALIGN NK_MODEL_STREAM_ALIGN
#define NK_APP_STREAM_RAM_BYTES NK_MODEL_STREAM_RAM_BYTES
#else
#define NK_APP_INITIAL_STRIDE NK_APP_DEFAULT_STRIDE
#define NK_APP_STREAM_ALIGN 1
#define NK_APP_STREAM_RAM_BYTES 0
#endif
#define NK_APP_STR_(x) #x
#define NK_APP_STR(x) NK_APP_STR_(x)

static const char *const k_labels[NK_MODEL_NUM_LABELS] = NK_MODEL_LABELS;

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

size_t nk_app_num_labels(void) { return NK_MODEL_NUM_LABELS; }

const char *nk_app_label(size_t index) { return index < NK_MODEL_NUM_LABELS ? k_labels[index] : ""; }

static int requant_is_identity(void) {
    return (NK_MODEL_INPUT_SCALE) == 1.0f && (NK_MODEL_INPUT_ZERO_POINT) == 0;
}

/* Frontend int8 levels are the model's real-valued input; quantise them with its parameters:
 * q = clamp(round(x / scale) + zero_point). Done once here, a table lookup per value later. */
static void build_requant_table(int8_t table[256]) {
    for (int x = -128; x <= 127; x++) {
        long q = lroundf((float)x / (NK_MODEL_INPUT_SCALE)) + (NK_MODEL_INPUT_ZERO_POINT);
        table[(uint8_t)(int8_t)x] = (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
    }
}

/* Frontend levels -> the model's input quantisation (dst may be src: in place). */
static void to_model_input(const nk_app_t *app_c, int8_t *dst, const int8_t *src, size_t n) {
    if (requant_is_identity()) {
        if (dst != src) {
            memcpy(dst, src, n);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        dst[i] = app_c->requant[(uint8_t)src[i]];
    }
}

int nk_app_init(nk_app_t *app) {
    memset(app, 0, sizeof *app);
    if (nk_recognizer_init(&app->rec, k_labels, NK_MODEL_NUM_LABELS, NK_REC_SCALE_Q16(NK_MODEL_OUTPUT_SCALE),
                           NK_MODEL_OUTPUT_ZERO_POINT, NK_FE_HOP_SAMPLES, NK_FE_SAMPLE_RATE) != 0) {
        return -1;
    }
    build_requant_table(app->requant);
    app->stride = NK_APP_INITIAL_STRIDE;
#if NK_APP_STREAMING
    if (nk_model_stream_set_stride(app->stride) != 0) {
        return -1;
    }
#endif
    app->stream_scores = 0;
    nk_rx_init(&app->rx);
    nk_app_reset(app);
    return 0;
}

void nk_app_reset(nk_app_t *app) {
    nk_frontend_init(&app->fe);
    nk_recognizer_reset(&app->rec);
    memset(app->hop, 0, sizeof app->hop);
    app->hop_fill = 0;
    app->hops_total = 0;
#if NK_APP_STREAMING
    nk_model_stream_reset();
    memset(app->frame, 0, sizeof app->frame);
    app->model_cycles = 0;
#else
    memset(app->window, 0, sizeof app->window);
    app->window_next = 0;
    app->window_count = 0;
    app->frames_since_inference = 0;
#endif
    app->last_frontend_cycles = 0;
    app->live_backlog = 0;
    memset(app->clip, 0, sizeof app->clip);
    memset(&app->stats, 0, sizeof app->stats);
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
    app->stats.rx_errors++;
    send(app, NK_MSG_ERROR, seq, 2u + len);
}

/* ---- streaming ------------------------------------------------------------------------------- */

static void update_max(uint32_t *max, uint32_t value) {
    if (value > *max) {
        *max = value;
    }
}

static void model_failed(nk_app_t *app, const char *message) {
    if (app->events_to_protocol) {
        send_error(app, NK_ERR_INTERNAL, app->request_type, app->request_seq, message);
    }
}

static void count_model_cycles(nk_app_t *app, uint32_t cycles) {
    app->stats.inference_cycles_last = cycles;
    update_max(&app->stats.inference_cycles_max, cycles);
}

/* One inference's scores are in app->output: count it, send SCORES, feed the recognizer. */
static void report_inference(nk_app_t *app, uint32_t cycles) {
    app->stats.inferences++;
    uint32_t hop = app->hops_total - 1u;
    if (app->events_to_protocol && app->stream_scores) {
        uint8_t *body = nk_tx_body(&app->tx);
        nk_put_u32(body, hop);
        nk_put_u32(body + 4, app->last_frontend_cycles);
        nk_put_u32(body + 8, cycles);
        memcpy(body + 12, app->output, NK_MODEL_NUM_LABELS);
        send(app, NK_MSG_SCORES, 0, 12u + NK_MODEL_NUM_LABELS);
    } else if (!app->events_to_protocol && app->on_scores != NULL) {
        app->on_scores(app->on_scores_ctx, hop, app->output, NK_MODEL_NUM_LABELS);
    }
    nk_detection_t det;
    if (nk_recognizer_process(&app->rec, app->output, hop, &det)) {
        app->stats.detections++;
        if (app->events_to_protocol) {
            uint8_t *body = nk_tx_body(&app->tx);
            nk_put_u32(body, det.hop);
            body[4] = det.label;
            body[5] = det.score;
            send(app, NK_MSG_DETECTION, 0, 6u);
        } else if (app->on_detection != NULL) {
            app->on_detection(app->on_detection_ctx, &det, nk_app_label(det.label));
        }
    }
}

/* Live audio is waiting behind real time: inferences that fall due are skipped (never on AUDIO). */
static int behind_real_time(const nk_app_t *app) {
    return !app->events_to_protocol && app->live_backlog > NK_APP_SKIP_BACKLOG_SAMPLES;
}

#if NK_APP_STREAMING

/* Streaming model: every frame goes through the model's row layers, so its state stays exact; the
 * model says when a window is complete (the first 49 frames after a reset, then every `stride`
 * frames: the same hops as the window path). The cycles of an inference are those of all pushes
 * since the previous one (their new rows plus the head), i.e. its real cost at this stride.
 *
 * Behind real time (live mode), "skipping" an inference can only skip its head (the global pool and
 * the dense layers) and the recognizer: the rows must be computed for every frame or every later
 * window would be wrong. The skipped counter still counts inferences that fell due and gave no
 * scores. The head is a small part of a streaming inference (ds_cnn_stream: the rows of 2 frames
 * are most of ~0.3 M QEMU instructions, a full window is ~4.3 M), so a streaming model rarely falls
 * behind; if even the rows cannot keep up, the caller's sample ring overflows (audio overrun), as
 * when the frontend cannot. */
static void process_frame(nk_app_t *app) {
    to_model_input(app, app->frame, app->frame, sizeof app->frame);
    int skip = behind_real_time(app);
    uint32_t t0 = nk_platform_cycles();
    int rc = nk_model_stream_push(app->frame, skip ? NULL : app->output);
    app->model_cycles += nk_platform_cycles() - t0;
    if (rc < 0) {
        model_failed(app, "model stream push failed");
        return;
    }
    if (rc == 0) {
        return;
    }
    uint32_t cycles = app->model_cycles;
    app->model_cycles = 0;
    if (skip) {
        app->stats.skipped_inferences++; /* behind real time: keep the audio and the rows, drop the head */
        return;
    }
    count_model_cycles(app, cycles);
    report_inference(app, cycles);
}

static int8_t *frame_slot(nk_app_t *app) { return app->frame; }

#else

/* Runs the model on app->input; returns the cycles taken, or reports failure and returns -1. */
static int invoke_model(nk_app_t *app, uint32_t *cycles) {
    uint32_t t0 = nk_platform_cycles();
    int rc = nk_model_invoke(app->input, app->output);
    *cycles = nk_platform_cycles() - t0;
    if (rc != 0) {
        model_failed(app, "model invoke failed");
        return -1;
    }
    count_model_cycles(app, *cycles);
    return 0;
}

static void run_inference(nk_app_t *app) {
    /* Oldest frame first: the ring's next slot is the oldest once the window is full. */
    size_t first = NK_FE_CLIP_FRAMES - app->window_next;
    to_model_input(app, app->input, app->window[app->window_next], first * FE_FRAME_BYTES);
    to_model_input(app, app->input + first * FE_FRAME_BYTES, app->window[0], app->window_next * FE_FRAME_BYTES);
    uint32_t cycles = 0;
    if (invoke_model(app, &cycles) != 0) {
        return;
    }
    report_inference(app, cycles);
}

static void process_frame(nk_app_t *app) {
    app->window_next = (app->window_next + 1u) % NK_FE_CLIP_FRAMES;
    if (app->window_count < NK_FE_CLIP_FRAMES) {
        app->window_count++;
    }
    app->frames_since_inference++;
    /* The first inference as soon as the window is full, then one every `stride` frames. */
    if (app->window_count == NK_FE_CLIP_FRAMES &&
        (app->stats.inferences == 0 || app->frames_since_inference >= app->stride)) {
        app->frames_since_inference = 0;
        if (behind_real_time(app)) {
            app->stats.skipped_inferences++; /* behind real time: keep the audio, drop the inference */
        } else {
            run_inference(app);
        }
    }
}

static int8_t *frame_slot(nk_app_t *app) { return app->window[app->window_next]; }

#endif

static void process_hop(nk_app_t *app) {
    int8_t *slot = frame_slot(app);
    uint32_t t0 = nk_platform_cycles();
    int got = nk_frontend_push_hop(&app->fe, app->hop, slot);
    app->last_frontend_cycles = nk_platform_cycles() - t0;
    update_max(&app->stats.frontend_cycles_max, app->last_frontend_cycles);
    app->hops_total++;
    if (!got) {
        return;
    }
    app->stats.frames++;
    process_frame(app);
}

static void stream(nk_app_t *app, const int16_t *samples, size_t n) {
    for (size_t i = 0; i < n; i++) {
        app->hop[app->hop_fill++] = samples[i];
        app->stats.samples++;
        if (app->hop_fill == NK_FE_HOP_SAMPLES) {
            app->hop_fill = 0;
            process_hop(app);
        }
    }
}

void nk_app_set_live_backlog(nk_app_t *app, size_t samples_waiting) {
    app->live_backlog = samples_waiting;
}

const nk_app_stats_t *nk_app_stats(const nk_app_t *app) { return &app->stats; }

void nk_app_set_scores_hook(nk_app_t *app, nk_app_scores_fn fn, void *ctx) {
    app->on_scores = fn;
    app->on_scores_ctx = ctx;
}

size_t nk_app_push_audio(nk_app_t *app, const int16_t *samples, size_t n, nk_app_detection_fn cb, void *ctx) {
    uint32_t before = app->stats.detections;
    app->events_to_protocol = 0;
    app->on_detection = cb;
    app->on_detection_ctx = ctx;
    stream(app, samples, n);
    app->on_detection = NULL;
    app->on_detection_ctx = NULL;
    return (size_t)(app->stats.detections - before);
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
    app->events_to_protocol = 1;
    stream(app, app->samples, count);
    uint8_t *body = nk_tx_body(&app->tx);
    nk_put_u32(body, app->stats.samples);
    nk_put_u32(body + 4, app->stats.frames);
    nk_put_u32(body + 8, app->stats.inferences);
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
        send_error(app, NK_ERR_BAD_ARGUMENT, f->type, f->seq, "CLIP_LOAD past the end of the 16000-sample clip");
        return;
    }
    decode_samples(app->clip + offset, f->body + 2, count);
    send(app, NK_MSG_OK, f->seq, 0);
}

#if NK_APP_STREAMING
/* Clip mode on a streaming model: reset + the clip's 49 frames, one push each; the last push gives
 * nk_model_invoke()'s scores for the clip by construction, and the full-window arena is never linked.
 * The model's stream state is one static instance, so the AUDIO stream restarts afterwards: its
 * model state is reset (frames streamed before the clip are forgotten; the frontend, hop count,
 * recognizer and stats go on), and the next inference comes after 49 new frames. */
static int run_clip_model(nk_app_t *app, uint32_t *cycles) {
    to_model_input(app, app->clip_features, app->clip_features, FE_CLIP_BYTES);
    nk_model_stream_reset();
    int rc = 0;
    uint32_t t0 = nk_platform_cycles();
    for (size_t i = 0; i < NK_FE_CLIP_FRAMES && rc == 0; i++) {
        rc = nk_model_stream_push(app->clip_features + i * FE_FRAME_BYTES, app->output);
        if (rc == 1 && i + 1u != NK_FE_CLIP_FRAMES) {
            rc = -1; /* a window before the 49th frame: the stream and the app disagree */
        }
    }
    *cycles = nk_platform_cycles() - t0;
    nk_model_stream_reset();
    app->model_cycles = 0;
    if (rc != 1) {
        model_failed(app, "model stream gave no scores for the clip");
        return -1;
    }
    count_model_cycles(app, *cycles);
    return 0;
}
#else
static int run_clip_model(nk_app_t *app, uint32_t *cycles) {
    to_model_input(app, app->input, app->clip_features, FE_CLIP_BYTES);
    return invoke_model(app, cycles);
}
#endif

static void handle_clip_run(nk_app_t *app, const nk_frame_t *f) {
    uint32_t t0 = nk_platform_cycles();
    size_t frames = nk_frontend_compute_clip(app->clip, NK_FE_CLIP_SAMPLES, app->clip_features, NK_FE_CLIP_FRAMES);
    uint32_t fe_cycles = nk_platform_cycles() - t0;
    if (frames != NK_FE_CLIP_FRAMES) {
        send_error(app, NK_ERR_INTERNAL, f->type, f->seq, "frontend produced too few frames");
        return;
    }
    uint32_t cycles = 0;
    app->events_to_protocol = 1;
    if (run_clip_model(app, &cycles) != 0) {
        return;
    }
    size_t top = 0;
    for (size_t i = 1; i < NK_MODEL_NUM_LABELS; i++) {
        if (app->output[i] > app->output[top]) {
            top = i;
        }
    }
    uint8_t *body = nk_tx_body(&app->tx);
    body[0] = (uint8_t)top;
    nk_put_u32(body + 1, fe_cycles);
    nk_put_u32(body + 5, cycles);
    memcpy(body + 9, app->output, NK_MODEL_NUM_LABELS);
    send(app, NK_MSG_RESULT, f->seq, 9u + NK_MODEL_NUM_LABELS);
}

/* Returns NULL on success, or the ERROR message (with *code set). Changes nothing on failure. */
static const char *apply_config(nk_app_t *app, const uint8_t *b, size_t len, uint8_t *code) {
    *code = NK_ERR_BAD_LENGTH;
    if (len < 1) {
        return "SET_CONFIG needs a key";
    }
    size_t want = (b[0] == NK_CFG_THRESHOLD || b[0] == NK_CFG_SUPPRESSION) ? 3u : 2u;
    if (b[0] < NK_CFG_INFERENCE_STRIDE || b[0] > NK_CFG_STREAM_SCORES) {
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
#if NK_APP_STREAMING
        /* The streaming model's windows must stay aligned with the rows its time strides compute. */
        if (nk_model_stream_set_stride(b[1]) != 0) { /* refuses strides that are not multiples */
            return "INFERENCE_STRIDE must be a multiple of " NK_APP_STR(NK_MODEL_STREAM_ALIGN) " for this streaming model";
        }
#endif
        app->stride = b[1];
        return NULL;
    case NK_CFG_SMOOTHING:
        return nk_recognizer_set_window(&app->rec, b[1]) == 0 ? NULL : "SMOOTHING must be 1..32";
    case NK_CFG_THRESHOLD:
        return nk_recognizer_set_threshold(&app->rec, b[1], b[2]) == 0 ? NULL : "THRESHOLD label out of range";
    case NK_CFG_SUPPRESSION:
        nk_recognizer_set_suppression_ms(&app->rec, nk_get_u16(b + 1));
        return NULL;
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
        js_str(&j, k_labels[i]);
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
    js_key_uint(&j, "stride_align", (uint32_t)NK_APP_STREAM_ALIGN, 1);
    js_str(&j, "cycle_unit");
    js_raw(&j, ":");
    js_str(&j, nk_platform_cycle_unit());
    js_raw(&j, ",");
    js_key_uint(&j, "cycle_hz", nk_platform_cycle_hz(), 1);
    js_raw(&j, "\"config\":{");
    js_key_uint(&j, "inference_stride", app->stride, 1);
    js_key_uint(&j, "smoothing", app->rec.window, 1);
    js_raw(&j, "\"thresholds\":[");
    for (size_t i = 0; i < NK_MODEL_NUM_LABELS; i++) {
        js_raw(&j, i ? "," : "");
        js_uint(&j, app->rec.threshold[i]);
    }
    js_raw(&j, "],");
    js_key_uint(&j, "suppression_ms", app->rec.suppression_ms, 1);
    js_key_uint(&j, "stream_scores", app->stream_scores, 0);
    js_raw(&j, "}}");
    return j.full ? 0 : j.len;
}

static void handle_stats(nk_app_t *app, const nk_frame_t *f) {
    const nk_app_stats_t *s = &app->stats;
    const uint32_t values[] = {s->samples,     s->frames,
                               s->inferences,  s->detections,
                               s->rx_errors,   s->frontend_cycles_max,
                               s->inference_cycles_max, s->inference_cycles_last,
                               s->skipped_inferences};
    _Static_assert(sizeof values / sizeof values[0] == NK_PROTO_STATS_FIELDS, "STATS_REPLY layout (PROTOCOL.md)");
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
