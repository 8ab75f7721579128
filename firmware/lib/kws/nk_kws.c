/* Keyword spotting engine behind the public API; see nk_kws.h. */

/* Every lib/ folder is compiled for every program, also those built without a compiled model
 * (kernel tests, benches): then this file compiles to nothing. */
#if defined(__has_include)
#if !__has_include("nk_model.h") || !__has_include("model_config.h")
#define NK_KWS_NO_MODEL 1
#endif
#endif

#ifdef NK_KWS_NO_MODEL
typedef int nk_kws_unused_t; /* ISO C wants at least one declaration */
#else

#include "nk_kws.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#include "nk_platform.h"

#define FE_FRAME_BYTES ((size_t)NK_FE_NUM_CHANNELS)
#define FE_CLIP_BYTES ((size_t)NK_FE_CLIP_FRAMES * NK_FE_NUM_CHANNELS)

_Static_assert(sizeof(int) >= 4 && CHAR_BIT == 8, "nanokws needs a 32-bit (or wider) int");
#define WINDOW_FRAMES ((size_t)NK_MODEL_WINDOW_FRAMES)
#define CLIP_PAD_BEFORE ((size_t)NK_MODEL_CLIP_PAD_BEFORE)
_Static_assert(NK_MODEL_INPUT_LEN == NK_MODEL_WINDOW_FRAMES * NK_FE_NUM_CHANNELS,
               "model input must be its window of frontend frames");
_Static_assert(NK_MODEL_WINDOW_FRAMES >= NK_FE_CLIP_FRAMES &&
                   NK_MODEL_CLIP_PAD_BEFORE <= NK_MODEL_WINDOW_FRAMES - NK_FE_CLIP_FRAMES,
               "the model's window must hold a clip at its offset");
_Static_assert(NK_MODEL_OUTPUT_LEN == NK_MODEL_NUM_LABELS, "model output must have one score per label");
_Static_assert(NK_MODEL_NUM_LABELS <= NK_REC_MAX_LABELS, "too many labels for the recognizer");
#if NK_KWS_STREAMING
_Static_assert(NK_MODEL_STREAM_FRAME_LEN == NK_FE_NUM_CHANNELS, "a stream frame must be one frontend frame");
_Static_assert(NK_MODEL_STREAM_WINDOW_FRAMES == NK_MODEL_WINDOW_FRAMES,
               "the stream's window must be the model's");
_Static_assert(NK_MODEL_STREAM_OUTPUT_LEN == NK_MODEL_OUTPUT_LEN,
               "stream and clip model give the same scores");
_Static_assert(NK_MODEL_STREAM_ALIGN >= 1 && NK_MODEL_STREAM_ALIGN <= NK_KWS_MAX_STRIDE,
               "the model's stride alignment must allow a stride of at most 50");
_Static_assert(NK_MODEL_STREAM_STRIDE % NK_MODEL_STREAM_ALIGN == 0 &&
                   NK_MODEL_STREAM_STRIDE <= NK_KWS_MAX_STRIDE,
               "the streaming form's default stride must be a valid stride");
#define KWS_ALIGN NK_MODEL_STREAM_ALIGN
/* Stride 2 unless the model's time strides need another (then the one it was compiled for). */
#define KWS_INITIAL_STRIDE \
    (NK_KWS_DEFAULT_STRIDE % KWS_ALIGN == 0 ? NK_KWS_DEFAULT_STRIDE : NK_MODEL_STREAM_STRIDE)
#else
#define KWS_ALIGN 1
#define KWS_INITIAL_STRIDE NK_KWS_DEFAULT_STRIDE
#endif

static const char *const k_labels[NK_MODEL_NUM_LABELS] = NK_MODEL_LABELS;

/* The recognizer's start-up settings: the model's (model_config.h from `nanokws compile
 * --recognizer`, or the library defaults it wrote), else, for a model_config.h from before these
 * defines, the library's own. */
#ifdef NK_MODEL_REC_THRESHOLDS
static const uint8_t k_rec_thresholds[] = NK_MODEL_REC_THRESHOLDS;
_Static_assert(sizeof k_rec_thresholds == NK_MODEL_NUM_LABELS,
               "NK_MODEL_REC_THRESHOLDS needs one value per label");
#define KWS_REC_THRESHOLDS k_rec_thresholds
#else
#define KWS_REC_THRESHOLDS NULL
#endif
#ifndef NK_MODEL_REC_WINDOW
#define NK_MODEL_REC_WINDOW NK_REC_DEFAULT_WINDOW
#endif
#ifndef NK_MODEL_REC_SUPPRESSION_MS
#define NK_MODEL_REC_SUPPRESSION_MS NK_REC_DEFAULT_SUPPRESSION_MS
#endif
#ifndef NK_MODEL_REC_RELEASE
#define NK_MODEL_REC_RELEASE NK_REC_DEFAULT_RELEASE
#endif
#ifndef NK_MODEL_REC_SOURCE
#define NK_MODEL_REC_SOURCE "library defaults"
#endif
_Static_assert(NK_MODEL_REC_WINDOW >= 1 && NK_MODEL_REC_WINDOW <= NK_REC_MAX_WINDOW,
               "NK_MODEL_REC_WINDOW: 1..32");
_Static_assert(NK_MODEL_REC_SUPPRESSION_MS <= 65535, "NK_MODEL_REC_SUPPRESSION_MS: 0..65535");
_Static_assert(NK_MODEL_REC_RELEASE <= 255, "NK_MODEL_REC_RELEASE: 0..255");

static const nk_kws_model_t k_model = {
    .name = NK_MODEL_NAME,
    .hash = NK_MODEL_HASH,
    .num_labels = NK_MODEL_NUM_LABELS,
    .labels = k_labels,
    .model_ram_bytes = (uint32_t)NK_KWS_MODEL_RAM_BYTES,
    .sample_rate = NK_FE_SAMPLE_RATE,
    .hop_samples = NK_FE_HOP_SAMPLES,
    .streaming = NK_KWS_STREAMING,
    .stride_align = KWS_ALIGN,
    .config_source = NK_MODEL_REC_SOURCE,
    .window_frames = NK_MODEL_WINDOW_FRAMES,
};
_Static_assert(NK_MODEL_WINDOW_FRAMES <= UINT16_MAX, "the window's frames fit nk_kws_model_t");

/* The started state that owns the model's static arena/stream (one at a time). */
static const nk_kws_t *s_owner;

const nk_kws_model_t *nk_kws_model(void) { return &k_model; }

const char *nk_kws_status_name(nk_kws_status_t status) {
    switch (status) {
    case NK_KWS_OK:
        return "NK_KWS_OK";
    case NK_KWS_ERR_ARGUMENT:
        return "NK_KWS_ERR_ARGUMENT";
    case NK_KWS_ERR_MEMORY:
        return "NK_KWS_ERR_MEMORY";
    case NK_KWS_ERR_MODEL:
        return "NK_KWS_ERR_MODEL";
    case NK_KWS_ERR_IN_USE:
        return "NK_KWS_ERR_IN_USE";
    case NK_KWS_ERR_NOT_STARTED:
        return "NK_KWS_ERR_NOT_STARTED";
    case NK_KWS_ERR_STRIDE:
        return "NK_KWS_ERR_STRIDE";
    }
    return "NK_KWS_ERR_?";
}

static int started(const nk_kws_t *kws) { return kws != NULL && kws->started && s_owner == kws; }

#define REQUIRE_STARTED(kws)               \
    do {                                   \
        if ((kws) == NULL) {               \
            return NK_KWS_ERR_ARGUMENT;    \
        }                                  \
        if (!started(kws)) {               \
            return NK_KWS_ERR_NOT_STARTED; \
        }                                  \
    } while (0)

/* ---- input quantisation ---------------------------------------------------------------------- */

static int requant_is_identity(void) {
    return (NK_MODEL_INPUT_SCALE) == 1.0f && (NK_MODEL_INPUT_ZERO_POINT) == 0;
}

/* Frontend levels are the model's real-valued input: q = clamp(round(x / scale) + zero_point),
 * once here, a table lookup per value later. */
static void build_requant_table(int8_t table[256]) {
    for (int x = -128; x <= 127; x++) {
        long q = lroundf((float)x / (NK_MODEL_INPUT_SCALE)) + (NK_MODEL_INPUT_ZERO_POINT);
        table[(uint8_t)(int8_t)x] = (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
    }
}

/* Frontend levels -> the model's input quantisation (dst may be src: in place). */
static void to_model_input(const nk_kws_t *kws, int8_t *dst, const int8_t *src, size_t n) {
    if (requant_is_identity()) {
        if (dst != src) {
            memcpy(dst, src, n);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        dst[i] = kws->requant[(uint8_t)src[i]];
    }
}

/* ---- life cycle ------------------------------------------------------------------------------ */

static nk_kws_status_t apply_stride(uint32_t hops) {
    if (hops < 1 || hops > NK_KWS_MAX_STRIDE || hops % KWS_ALIGN != 0) {
        return NK_KWS_ERR_STRIDE;
    }
#if NK_KWS_STREAMING
    if (nk_model_stream_set_stride(hops) != 0) {
        return NK_KWS_ERR_STRIDE;
    }
#endif
    return NK_KWS_OK;
}

/* The model's recognizer settings on an initialised recognizer (thresholds NULL: keep the library's). */
static int apply_recognizer_defaults(nk_recognizer_t *rec, const uint8_t *thresholds) {
    int rc = nk_recognizer_set_window(rec, NK_MODEL_REC_WINDOW);
    rc |= nk_recognizer_set_release(rec, NK_MODEL_REC_RELEASE);
    nk_recognizer_set_suppression_ms(rec, (uint16_t)NK_MODEL_REC_SUPPRESSION_MS);
    for (size_t i = 0; thresholds != NULL && i < NK_MODEL_NUM_LABELS; i++) {
        rc |= nk_recognizer_set_threshold(rec, (uint32_t)i, thresholds[i]);
    }
    return rc;
}

nk_kws_status_t nk_kws_begin(nk_kws_t *kws, const nk_kws_model_t *model) {
    if (kws == NULL || model == NULL) {
        return NK_KWS_ERR_ARGUMENT;
    }
    if (model != &k_model) {
        return NK_KWS_ERR_MODEL;
    }
    if (s_owner != NULL && s_owner != kws) {
        return NK_KWS_ERR_IN_USE;
    }
    memset(kws, 0, sizeof *kws);
    if (nk_recognizer_init(&kws->rec, k_labels, NK_MODEL_NUM_LABELS, NK_REC_SCALE_Q16(NK_MODEL_OUTPUT_SCALE),
                           NK_MODEL_OUTPUT_ZERO_POINT, NK_FE_HOP_SAMPLES, NK_FE_SAMPLE_RATE) != 0 ||
        apply_recognizer_defaults(&kws->rec, KWS_REC_THRESHOLDS) != 0) {
        return NK_KWS_ERR_MODEL;
    }
    if (apply_stride(KWS_INITIAL_STRIDE) != NK_KWS_OK) {
        return NK_KWS_ERR_MODEL;
    }
    build_requant_table(kws->requant);
    kws->model = model;
    kws->stride = (uint8_t)KWS_INITIAL_STRIDE;
    kws->started = 1;
    s_owner = kws;
    return nk_kws_reset(kws);
}

nk_kws_status_t nk_kws_begin_in(void *memory, size_t bytes, const nk_kws_model_t *model, nk_kws_t **out) {
    if (memory == NULL || out == NULL) {
        return NK_KWS_ERR_ARGUMENT;
    }
    if (bytes < NK_KWS_MEMORY_BYTES || (uintptr_t)memory % NK_KWS_MEMORY_ALIGN != 0) {
        return NK_KWS_ERR_MEMORY;
    }
    nk_kws_t *kws = (nk_kws_t *)memory;
    nk_kws_status_t st = nk_kws_begin(kws, model);
    if (st == NK_KWS_OK) {
        *out = kws;
    }
    return st;
}

nk_kws_status_t nk_kws_end(nk_kws_t *kws) {
    REQUIRE_STARTED(kws);
    kws->started = 0;
    s_owner = NULL;
    return NK_KWS_OK;
}

nk_kws_status_t nk_kws_reset(nk_kws_t *kws) {
    REQUIRE_STARTED(kws);
    nk_frontend_init(&kws->fe);
    nk_recognizer_reset(&kws->rec);
    memset(kws->hop, 0, sizeof kws->hop);
    kws->hop_fill = 0;
    kws->hops_total = 0;
#if NK_KWS_STREAMING
    nk_model_stream_reset();
    memset(kws->frame, 0, sizeof kws->frame);
    kws->model_cycles = 0;
    kws->frames_unscored = 0;
    kws->stream_state = NK_KWS_STREAM_IN_STEP;
#else
    memset(kws->window, 0, sizeof kws->window);
    kws->window_next = 0;
    kws->window_count = 0;
    kws->frames_since_inference = 0;
#endif
    kws->have_scores = 0;
    kws->scores_hop = 0;
    kws->backlog = 0;
    kws->error = NK_KWS_OK;
    kws->queue_head = 0;
    kws->queue_count = 0;
    memset(&kws->stats, 0, sizeof kws->stats);
    return NK_KWS_OK;
}

/* ---- streaming ------------------------------------------------------------------------------- */

static void update_max(uint32_t *max, uint32_t value) {
    if (value > *max) {
        *max = value;
    }
}

static void count_model_cycles(nk_kws_t *kws, uint32_t cycles) {
    kws->stats.inference_cycles_last = cycles;
    update_max(&kws->stats.inference_cycles_max, cycles);
}

static uint32_t hop_ms(uint32_t hop) {
    return (uint32_t)((uint64_t)hop * NK_FE_HOP_SAMPLES * 1000u / NK_FE_SAMPLE_RATE);
}

static void queue_detection(nk_kws_t *kws, const nk_kws_detection_t *det) {
    if (kws->queue_count == NK_KWS_QUEUE_LEN) { /* full: drop the oldest */
        kws->queue_head = (kws->queue_head + 1u) % NK_KWS_QUEUE_LEN;
        kws->queue_count--;
    }
    kws->queue[(kws->queue_head + kws->queue_count) % NK_KWS_QUEUE_LEN] = *det;
    kws->queue_count++;
}

/* One inference's scores are in kws->output: count it, hand them out, feed the recognizer. */
static void report_inference(nk_kws_t *kws) {
    kws->stats.inferences++;
    uint32_t hop = kws->hops_total - 1u;
    kws->have_scores = 1;
    kws->scores_hop = hop;
    if (kws->on_scores != NULL) {
        kws->on_scores(kws->on_scores_ctx, hop, kws->output, NK_MODEL_NUM_LABELS);
    }
    nk_detection_t d;
    if (!nk_recognizer_process(&kws->rec, kws->output, hop, &d)) {
        return;
    }
    kws->stats.detections++;
    nk_kws_detection_t det = {k_labels[d.label], d.label, d.score, d.hop, hop_ms(d.hop)};
    queue_detection(kws, &det);
    if (kws->on_detection != NULL) {
        kws->on_detection(kws->on_detection_ctx, &det);
    }
}

static int behind_real_time(const nk_kws_t *kws) { return kws->backlog > NK_KWS_SKIP_BACKLOG_SAMPLES; }

#if NK_KWS_STREAMING

/* Every frame goes through the model's row layers, so its state stays exact; the model says when a
 * window is complete (the first window's frames after a reset, then every `stride` frames: the hops
 * of the window path). An inference's cycles are those of all pushes since the previous one.
 * Behind real time the rows are the cost (every frame), not the head, so frames then bypass the
 * model altogether and the inferences falling due (one per `stride` frames) count as skipped. Once
 * caught up the model restarts from a reset, as its state no longer follows the audio: the
 * inferences due while its window refills count as skipped too. */
static void skip_if_due(nk_kws_t *kws) {
    if (kws->frames_unscored >= kws->stride) {
        kws->frames_unscored = 0;
        kws->stats.skipped_inferences++;
    }
}

static void process_frame(nk_kws_t *kws) {
    kws->frames_unscored++;
    if (behind_real_time(kws)) {
        kws->stream_state = NK_KWS_STREAM_STALE;
        skip_if_due(kws);
        return;
    }
    if (kws->stream_state == NK_KWS_STREAM_STALE) {
        nk_model_stream_reset();
        kws->stream_state = NK_KWS_STREAM_REFILLING;
        kws->model_cycles = 0;
    }
    to_model_input(kws, kws->frame, kws->frame, sizeof kws->frame);
    uint32_t t0 = nk_platform_cycles();
    int rc = nk_model_stream_push(kws->frame, kws->output);
    kws->model_cycles += nk_platform_cycles() - t0;
    if (rc < 0) {
        kws->error = NK_KWS_ERR_MODEL;
        return;
    }
    if (rc == 0) {
        if (kws->stream_state == NK_KWS_STREAM_REFILLING) {
            skip_if_due(kws);
        }
        return;
    }
    uint32_t cycles = kws->model_cycles;
    kws->model_cycles = 0;
    kws->frames_unscored = 0;
    kws->stream_state = NK_KWS_STREAM_IN_STEP;
    count_model_cycles(kws, cycles);
    report_inference(kws);
}

static int8_t *frame_slot(nk_kws_t *kws) { return kws->frame; }

#else

static void run_inference(nk_kws_t *kws) {
    /* Oldest frame first: the ring's next slot is the oldest once the window is full. */
    size_t first = WINDOW_FRAMES - kws->window_next;
    to_model_input(kws, kws->input, kws->window[kws->window_next], first * FE_FRAME_BYTES);
    to_model_input(kws, kws->input + first * FE_FRAME_BYTES, kws->window[0],
                   kws->window_next * FE_FRAME_BYTES);
    uint32_t t0 = nk_platform_cycles();
    int rc = nk_model_invoke(kws->input, kws->output);
    uint32_t cycles = nk_platform_cycles() - t0;
    if (rc != 0) {
        kws->error = NK_KWS_ERR_MODEL;
        return;
    }
    count_model_cycles(kws, cycles);
    report_inference(kws);
}

static void process_frame(nk_kws_t *kws) {
    kws->window_next = (kws->window_next + 1u) % WINDOW_FRAMES;
    if (kws->window_count < WINDOW_FRAMES) {
        kws->window_count++;
    }
    kws->frames_since_inference++;
    /* The first inference as soon as the window is full, then one every `stride` frames. */
    if (kws->window_count == WINDOW_FRAMES && (kws->stats.inferences + kws->stats.skipped_inferences == 0 ||
                                               kws->frames_since_inference >= kws->stride)) {
        kws->frames_since_inference = 0;
        if (behind_real_time(kws)) {
            kws->stats.skipped_inferences++; /* keep the audio, drop the inference */
        } else {
            run_inference(kws);
        }
    }
}

static int8_t *frame_slot(nk_kws_t *kws) { return kws->window[kws->window_next]; }

#endif

static void process_hop(nk_kws_t *kws) {
    int8_t *slot = frame_slot(kws);
    uint32_t t0 = nk_platform_cycles();
    int got = nk_frontend_push_hop(&kws->fe, kws->hop, slot);
    kws->stats.frontend_cycles_last = nk_platform_cycles() - t0;
    update_max(&kws->stats.frontend_cycles_max, kws->stats.frontend_cycles_last);
    kws->hops_total++;
    if (!got) {
        return;
    }
    kws->stats.frames++;
    process_frame(kws);
}

nk_kws_status_t nk_kws_push(nk_kws_t *kws, const int16_t *samples, size_t n) {
    REQUIRE_STARTED(kws);
    if (samples == NULL && n > 0) {
        return NK_KWS_ERR_ARGUMENT;
    }
    kws->error = NK_KWS_OK;
    for (size_t i = 0; i < n; i++) {
        kws->hop[kws->hop_fill++] = samples[i];
        kws->stats.samples++;
        if (kws->hop_fill == NK_FE_HOP_SAMPLES) {
            kws->hop_fill = 0;
            process_hop(kws);
        }
    }
    return kws->error;
}

int nk_kws_poll(nk_kws_t *kws, nk_kws_detection_t *out) {
    if (!started(kws) || out == NULL || kws->queue_count == 0) {
        return 0;
    }
    *out = kws->queue[kws->queue_head];
    kws->queue_head = (kws->queue_head + 1u) % NK_KWS_QUEUE_LEN;
    kws->queue_count--;
    return 1;
}

nk_kws_status_t nk_kws_on_detection(nk_kws_t *kws, nk_kws_detection_fn fn, void *ctx) {
    REQUIRE_STARTED(kws);
    kws->on_detection = fn;
    kws->on_detection_ctx = ctx;
    return NK_KWS_OK;
}

nk_kws_status_t nk_kws_on_scores(nk_kws_t *kws, nk_kws_scores_fn fn, void *ctx) {
    REQUIRE_STARTED(kws);
    kws->on_scores = fn;
    kws->on_scores_ctx = ctx;
    return NK_KWS_OK;
}

size_t nk_kws_last_scores(const nk_kws_t *kws, int8_t *out, size_t cap, uint32_t *hop) {
    if (!started(kws) || !kws->have_scores || out == NULL) {
        return 0;
    }
    size_t n = cap < NK_MODEL_NUM_LABELS ? cap : NK_MODEL_NUM_LABELS;
    memcpy(out, kws->output, n);
    if (hop != NULL) {
        *hop = kws->scores_hop;
    }
    return n;
}

uint8_t nk_kws_probability(const nk_kws_t *kws, size_t label) {
    return started(kws) && label < NK_MODEL_NUM_LABELS ? nk_recognizer_smoothed(&kws->rec, label) : 0;
}

/* ---- configuration --------------------------------------------------------------------------- */

nk_kws_status_t nk_kws_set_threshold(nk_kws_t *kws, size_t label, uint8_t threshold) {
    REQUIRE_STARTED(kws);
    if (label >= NK_MODEL_NUM_LABELS) {
        return NK_KWS_ERR_ARGUMENT;
    }
    return nk_recognizer_set_threshold(&kws->rec, (uint32_t)label, threshold) == 0 ? NK_KWS_OK
                                                                                   : NK_KWS_ERR_ARGUMENT;
}

nk_kws_status_t nk_kws_set_all_thresholds(nk_kws_t *kws, uint8_t threshold) {
    REQUIRE_STARTED(kws);
    for (size_t i = 0; i < NK_MODEL_NUM_LABELS; i++) {
        (void)nk_recognizer_set_threshold(&kws->rec, (uint32_t)i, threshold); /* in range by construction */
    }
    return NK_KWS_OK;
}

nk_kws_status_t nk_kws_set_smoothing(nk_kws_t *kws, uint32_t inferences) {
    REQUIRE_STARTED(kws);
    return nk_recognizer_set_window(&kws->rec, inferences) == 0 ? NK_KWS_OK : NK_KWS_ERR_ARGUMENT;
}

nk_kws_status_t nk_kws_set_suppression_ms(nk_kws_t *kws, uint16_t ms) {
    REQUIRE_STARTED(kws);
    nk_recognizer_set_suppression_ms(&kws->rec, ms);
    return NK_KWS_OK;
}

nk_kws_status_t nk_kws_set_release(nk_kws_t *kws, uint8_t release) {
    REQUIRE_STARTED(kws);
    return nk_recognizer_set_release(&kws->rec, release) == 0 ? NK_KWS_OK : NK_KWS_ERR_ARGUMENT;
}

nk_kws_status_t nk_kws_set_stride(nk_kws_t *kws, uint32_t hops) {
    REQUIRE_STARTED(kws);
    nk_kws_status_t st = apply_stride(hops);
    if (st == NK_KWS_OK) {
        kws->stride = (uint8_t)hops;
    }
    return st;
}

uint8_t nk_kws_threshold(const nk_kws_t *kws, size_t label) {
    return started(kws) && label < NK_MODEL_NUM_LABELS ? kws->rec.threshold[label] : 0;
}

uint32_t nk_kws_stride(const nk_kws_t *kws) { return started(kws) ? kws->stride : 0; }

uint32_t nk_kws_smoothing(const nk_kws_t *kws) { return started(kws) ? kws->rec.window : 0; }

uint16_t nk_kws_suppression_ms(const nk_kws_t *kws) { return started(kws) ? kws->rec.suppression_ms : 0; }

uint8_t nk_kws_release(const nk_kws_t *kws) { return started(kws) ? kws->rec.release : 0; }

nk_kws_status_t nk_kws_set_backlog(nk_kws_t *kws, size_t samples_waiting) {
    REQUIRE_STARTED(kws);
    kws->backlog = samples_waiting;
    return NK_KWS_OK;
}

const nk_kws_stats_t *nk_kws_stats(const nk_kws_t *kws) {
    static const nk_kws_stats_t none; /* all zero: a pointer callers can always read */
    return kws != NULL ? &kws->stats : &none;
}

/* ---- one clip -------------------------------------------------------------------------------- */

/* A clip's padding: its least value (after requantisation, which keeps the order of values, so it is
 * the requantised least frontend value: the same as padding first, as tools/nanokws/window.py does). */
static int8_t clip_fill(const int8_t *features) {
    int8_t least = INT8_MAX;
    for (size_t i = 0; i < FE_CLIP_BYTES; i++) {
        least = features[i] < least ? features[i] : least;
    }
    return least;
}

#if NK_KWS_STREAMING
/* Reset + the window's frames, one push each (the clip's 49, with the fill frames around it when the
 * window is longer): the last push gives nk_model_invoke()'s scores by construction, and the
 * full-window arena is never linked. The stream state is the model's one static instance, so the
 * pushed stream restarts (its frontend, hops and recognizer go on). */
static nk_kws_status_t run_clip(nk_kws_t *kws, int8_t *features, int8_t *out) {
    int8_t fill[NK_FE_NUM_CHANNELS];
    memset(fill, clip_fill(features), sizeof fill);
    nk_model_stream_reset();
    int rc = 0;
    for (size_t i = 0; i < WINDOW_FRAMES && rc == 0; i++) {
        size_t c = i - CLIP_PAD_BEFORE; /* the clip's frame, when i is within it (wraps below it) */
        rc = nk_model_stream_push(c < NK_FE_CLIP_FRAMES ? features + c * FE_FRAME_BYTES : fill, out);
        if (rc == 1 && i + 1u != WINDOW_FRAMES) {
            rc = -1; /* a window before its last frame: the stream and this code disagree */
        }
    }
    nk_model_stream_reset();
    kws->model_cycles = 0;
    return rc == 1 ? NK_KWS_OK : NK_KWS_ERR_MODEL;
}
#else
static nk_kws_status_t run_clip(nk_kws_t *kws, int8_t *features, int8_t *out) {
    int8_t *input = features;
    if (WINDOW_FRAMES != NK_FE_CLIP_FRAMES) { /* the clip centred in the longer window */
        input = kws->input;
        memset(input, clip_fill(features), sizeof kws->input);
        memcpy(input + CLIP_PAD_BEFORE * FE_FRAME_BYTES, features, FE_CLIP_BYTES);
    }
    return nk_model_invoke(input, out) == 0 ? NK_KWS_OK : NK_KWS_ERR_MODEL;
}
#endif

nk_kws_status_t nk_kws_classify_features(nk_kws_t *kws, int8_t *features, int8_t *out, uint32_t *cycles) {
    REQUIRE_STARTED(kws);
    if (features == NULL || out == NULL) {
        return NK_KWS_ERR_ARGUMENT;
    }
    to_model_input(kws, features, features, FE_CLIP_BYTES);
    uint32_t t0 = nk_platform_cycles();
    nk_kws_status_t st = run_clip(kws, features, out);
    uint32_t spent = nk_platform_cycles() - t0;
    if (cycles != NULL) {
        *cycles = spent;
    }
    if (st == NK_KWS_OK) {
        count_model_cycles(kws, spent);
    }
    return st;
}

#endif /* NK_KWS_NO_MODEL */
