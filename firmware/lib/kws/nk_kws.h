/* nanokws public API: keyword spotting inside your own program.
 *
 *     static nk_kws_t kws;                                   // or nk_kws_begin_in() on a block
 *     nk_kws_begin(&kws, nk_kws_model());                    // the model compiled into this build
 *     nk_kws_push(&kws, samples, n);                         // 16 kHz mono int16, any n
 *     nk_kws_detection_t d;
 *     while (nk_kws_poll(&kws, &d)) { use(d.label, d.score, d.time_ms); }
 *
 * Audio goes through the frontend, the compiled model (every `stride` hops) and the recognizer
 * (smoothing, per-label thresholds, suppression, release); detections come by callback, by polling,
 * or both.
 * No heap and no state outside nk_kws_t except the compiled model's own (its arena or streaming
 * state, one static instance): hence one started nk_kws_t per model at a time. Every call returns
 * a named status. Portable C11 (and C++): the same code runs on the host, in QEMU and on the board.
 * Needs the compiled model's headers (model_config.h, nk_model.h, optional nk_model_stream.h). */
#ifndef NK_KWS_H
#define NK_KWS_H

#include <stddef.h>
#include <stdint.h>

#include "model_config.h"
#include "nk_frontend.h"
#include "nk_frontend_config.h"
#include "nk_model.h"
#include "nk_recognizer.h"

#include "nk_kws_form.h" /* NK_KWS_STREAMING: the streaming form or the whole window */

/* The model's window in frames: one clip, or longer for a model VALID in time (model_config.h from
 * `nanokws compile`; tools/nanokws/window.py). A one-second clip (clip mode) sits
 * NK_MODEL_CLIP_PAD_BEFORE frames into it, the frames around it filled with the clip's minimum.
 * A model_config.h from before these defines has a one-clip window. */
#ifndef NK_MODEL_WINDOW_FRAMES
#define NK_MODEL_WINDOW_FRAMES NK_FE_CLIP_FRAMES
#define NK_MODEL_CLIP_PAD_BEFORE 0
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Hops between inferences: 2 unless a streaming model needs another (nk_kws_model_t.stride_align). */
#define NK_KWS_DEFAULT_STRIDE 2u
#define NK_KWS_MAX_STRIDE 50u
/* Live audio falls behind real time when more than this many samples wait behind the pushed ones
 * (3 hops, 60 ms): inferences that fall due are then skipped, never audio (nk_kws_set_backlog). */
#define NK_KWS_SKIP_BACKLOG_SAMPLES (3u * NK_FE_HOP_SAMPLES)
#define NK_KWS_QUEUE_LEN 4u /* detections kept for nk_kws_poll() */

typedef enum {
    NK_KWS_OK = 0,
    NK_KWS_ERR_ARGUMENT = -1,    /* a NULL pointer, or a label/value out of range */
    NK_KWS_ERR_MEMORY = -2,      /* nk_kws_begin_in(): block smaller than NK_KWS_MEMORY_BYTES or misaligned */
    NK_KWS_ERR_MODEL = -3,       /* not this build's model, or the model failed to run */
    NK_KWS_ERR_IN_USE = -4,      /* another started nk_kws_t runs the model (call nk_kws_end on it) */
    NK_KWS_ERR_NOT_STARTED = -5, /* nk_kws_begin() was not called (or nk_kws_end() was) */
    NK_KWS_ERR_STRIDE = -6       /* stride not 1..50, or not a multiple of the streaming model's alignment */
} nk_kws_status_t;

/* "NK_KWS_OK", "NK_KWS_ERR_MEMORY", ...; "NK_KWS_ERR_?" for unknown values. */
const char *nk_kws_status_name(nk_kws_status_t status);

/* What a compiled model offers: its labels and what it costs. */
typedef struct {
    const char *name; /* NK_MODEL_NAME */
    const char *hash; /* sha256[:16] of the .tflite */
    size_t num_labels;
    const char *const *labels; /* labels starting with '_' (silence, unknown) never fire */
    uint32_t model_ram_bytes;  /* the model's own static RAM: arena, or streaming state + work */
    uint32_t sample_rate;      /* 16000 */
    uint32_t hop_samples;      /* one frame every hop (320 samples, 20 ms) */
    uint8_t streaming;         /* 1: pushed frame by frame (nk_model_stream.h) */
    uint8_t stride_align;      /* strides must be multiples of this (1 unless streaming) */
    /* Where nk_kws_begin()'s recognizer settings come from: the model's NK_MODEL_REC_SOURCE (e.g.
     * the calibration that chose them), or "library defaults" (NK_REC_DEFAULT_*). */
    const char *config_source;
    /* Frames the model sees per inference (NK_MODEL_WINDOW_FRAMES): one clip's 49, or more for a
     * model VALID in time. A word can be detected until it leaves this window. */
    uint16_t window_frames;
} nk_kws_model_t;

/* The model compiled into this build. */
const nk_kws_model_t *nk_kws_model(void);

typedef struct {
    const char *label;   /* the model's label, e.g. "yes" */
    uint8_t label_index; /* index into the model's labels and scores */
    uint8_t score;       /* smoothed probability 0..255 that fired */
    uint32_t hop;        /* hop count (since begin/reset) after which it fired */
    uint32_t time_ms;    /* hop in ms of audio since begin/reset */
} nk_kws_detection_t;

typedef void (*nk_kws_detection_fn)(void *ctx, const nk_kws_detection_t *det);
/* Every inference's int8 scores (model output, one per label) after hop `hop`. */
typedef void (*nk_kws_scores_fn)(void *ctx, uint32_t hop, const int8_t *scores, size_t n);

typedef struct {
    uint32_t samples, frames, inferences, detections;
    uint32_t skipped_inferences; /* due by the stride but skipped: live audio was waiting */
    uint32_t frontend_cycles_last, frontend_cycles_max; /* per hop */
    uint32_t inference_cycles_last,
        inference_cycles_max; /* per inference (streaming: all pushes since the last) */
} nk_kws_stats_t;

/* Where a streaming model's state stands against the audio (private, like the fields below). */
typedef enum {
    NK_KWS_STREAM_IN_STEP = 0, /* every frame since the reset went through the model */
    NK_KWS_STREAM_STALE,       /* frames bypassed the model: reset it before the next push */
    NK_KWS_STREAM_REFILLING,   /* restarted after a bypass: its window is refilling */
} nk_kws_stream_state_t;

/* The state. Its fields are private: use the functions below. Its size is known at compile time
 * (NK_KWS_MEMORY_BYTES), so it can be static, on a memory block, or a member of a C++ object. */
typedef struct {
    const nk_kws_model_t *model;
    uint32_t started;
    nk_frontend_t fe;
    nk_recognizer_t rec;
    int16_t hop[NK_FE_HOP_SAMPLES]; /* samples of the hop being filled */
    size_t hop_fill;
    uint32_t hops_total;
#if NK_KWS_STREAMING
    int8_t frame[NK_FE_NUM_CHANNELS]; /* the newest frame, requantised in place */
    uint32_t model_cycles;            /* cycles of the pushes since the last inference */
    uint32_t frames_unscored;         /* frames since the last inference, run or skipped */
    uint8_t stream_state;             /* nk_kws_stream_state_t: in step, stale or refilling */
#else
    int8_t window[NK_MODEL_WINDOW_FRAMES][NK_FE_NUM_CHANNELS]; /* the last window's frames as a ring */
    size_t window_next;  /* slot the next frame goes to (the oldest once full) */
    size_t window_count; /* frames held, up to NK_MODEL_WINDOW_FRAMES */
    uint32_t frames_since_inference;
    int8_t input[NK_MODEL_INPUT_LEN];
#endif
    int8_t output[NK_MODEL_OUTPUT_LEN];
    uint8_t have_scores; /* output holds an inference's scores */
    uint32_t scores_hop;
    int8_t requant[256]; /* frontend level -> model input quantisation */
    uint8_t stride;
    size_t backlog;
    nk_kws_status_t error; /* first failure inside the current push */
    nk_kws_detection_fn on_detection;
    void *on_detection_ctx;
    nk_kws_scores_fn on_scores;
    void *on_scores_ctx;
    nk_kws_detection_t queue[NK_KWS_QUEUE_LEN];
    size_t queue_head, queue_count;
    nk_kws_stats_t stats;
} nk_kws_t;

#define NK_KWS_MEMORY_BYTES (sizeof(nk_kws_t))
#ifdef __cplusplus
#define NK_KWS_MEMORY_ALIGN (alignof(nk_kws_t))
#else
#define NK_KWS_MEMORY_ALIGN (_Alignof(nk_kws_t))
#endif
#if NK_KWS_STREAMING
#define NK_KWS_MODEL_RAM_BYTES ((size_t)NK_MODEL_STREAM_RAM_BYTES)
#else
#define NK_KWS_MODEL_RAM_BYTES ((size_t)NK_MODEL_ARENA_BYTES)
#endif
/* All the RAM keyword spotting needs but the stack: this state plus the model's static RAM. */
#define NK_KWS_RAM_BYTES (NK_KWS_MEMORY_BYTES + NK_KWS_MODEL_RAM_BYTES)

/* Start on caller storage (static, global or a member): defaults, no callbacks. `model` must be
 * nk_kws_model(). Starting a started nk_kws_t again starts it afresh (defaults, no callbacks).
 * Defaults: stride 2 (or the streaming model's); the recognizer settings of the model's
 * model_config.h (NK_MODEL_REC_THRESHOLDS / _WINDOW / _SUPPRESSION_MS / _RELEASE, written by
 * `nanokws compile`: a recognizer.json's, else the library's defaults with the suppression as long
 * as the model's window, at least 1000 ms), or where it has none the library's (nk_recognizer.h:
 * smoothing 4, thresholds 180/255, suppression 1000 ms, release 64/255). */
nk_kws_status_t nk_kws_begin(nk_kws_t *kws, const nk_kws_model_t *model);

/* Start on a memory block of `bytes` (>= NK_KWS_MEMORY_BYTES, aligned to NK_KWS_MEMORY_ALIGN);
 * *out is the state inside it. */
nk_kws_status_t nk_kws_begin_in(void *memory, size_t bytes, const nk_kws_model_t *model, nk_kws_t **out);

/* Stop; the model is free for another nk_kws_t. */
nk_kws_status_t nk_kws_end(nk_kws_t *kws);

/* Forget the audio, the model's stream, pending detections and stats; keep the configuration. */
nk_kws_status_t nk_kws_reset(nk_kws_t *kws);

/* Push n samples (any n, 0 included): frontend every hop, an inference every `stride` hops, the
 * recognizer after each. Callbacks run inside this call. NK_KWS_ERR_MODEL if an inference failed
 * (the audio is still consumed). */
nk_kws_status_t nk_kws_push(nk_kws_t *kws, const int16_t *samples, size_t n);

/* The oldest detection not yet polled: 1 and *out filled, or 0. Keeps the newest
 * NK_KWS_QUEUE_LEN; older unpolled ones are dropped (a callback sees every one). */
int nk_kws_poll(nk_kws_t *kws, nk_kws_detection_t *out);

/* Callbacks (NULL: none); kept across reset. */
nk_kws_status_t nk_kws_on_detection(nk_kws_t *kws, nk_kws_detection_fn fn, void *ctx);
nk_kws_status_t nk_kws_on_scores(nk_kws_t *kws, nk_kws_scores_fn fn, void *ctx);

/* The last inference's int8 scores: copies min(cap, num_labels) into out, *hop (may be NULL) the
 * hop they belong to. Returns the number copied, 0 before the first inference. */
size_t nk_kws_last_scores(const nk_kws_t *kws, int8_t *out, size_t cap, uint32_t *hop);

/* Smoothed probability 0..255 of one label (what thresholds compare against); 0 when out of range. */
uint8_t nk_kws_probability(const nk_kws_t *kws, size_t label);

/* Configuration. Each returns NK_KWS_OK, or an error and changes nothing. */
nk_kws_status_t nk_kws_set_threshold(nk_kws_t *kws, size_t label, uint8_t threshold); /* 0..255 */
nk_kws_status_t nk_kws_set_all_thresholds(nk_kws_t *kws, uint8_t threshold);
nk_kws_status_t nk_kws_set_smoothing(nk_kws_t *kws, uint32_t inferences); /* 1..32, clears history */
nk_kws_status_t nk_kws_set_suppression_ms(nk_kws_t *kws, uint16_t ms); /* no detection this long after one */
/* Hysteresis, one level for every label: a label that fired fires again only after its smoothed
 * probability fell to `release` or below (0..255; 255: always re-armed, the suppression time alone). */
nk_kws_status_t nk_kws_set_release(nk_kws_t *kws, uint8_t release);
nk_kws_status_t nk_kws_set_stride(nk_kws_t *kws, uint32_t hops); /* 1..50, see nk_kws_model_t.stride_align */
uint8_t nk_kws_threshold(const nk_kws_t *kws, size_t label);     /* 0 when out of range */
uint32_t nk_kws_stride(const nk_kws_t *kws);
uint32_t nk_kws_smoothing(const nk_kws_t *kws);
uint16_t nk_kws_suppression_ms(const nk_kws_t *kws);
uint8_t nk_kws_release(const nk_kws_t *kws); /* 0 when not started */

/* Live audio: samples waiting in the caller's buffer behind those about to be pushed. Above
 * NK_KWS_SKIP_BACKLOG_SAMPLES, inferences falling due are skipped (stats.skipped_inferences) so the
 * frontend keeps up; the stride's schedule goes on as if they ran. A streaming model's frames then
 * bypass it (its row layers are the per-frame cost); once caught up it restarts from a reset, and
 * the inferences due while its window refills count as skipped too. */
nk_kws_status_t nk_kws_set_backlog(nk_kws_t *kws, size_t samples_waiting);

/* Counters since begin/reset; cycles are nk_platform_cycles() units (nk_platform_cycle_unit()). */
const nk_kws_stats_t *nk_kws_stats(const nk_kws_t *kws);

/* Classify one clip's 49 frontend frames (49 x 40 int8 levels, requantised IN PLACE) into
 * out[num_labels]; *cycles (may be NULL) the model's cycles. A model with a longer window sees the
 * clip centred in it, its least value around it. On a streaming model the model's stream restarts:
 * the next inference of pushed audio comes a whole window (NK_MODEL_WINDOW_FRAMES) later. */
nk_kws_status_t nk_kws_classify_features(nk_kws_t *kws, int8_t *features, int8_t *out, uint32_t *cycles);

#ifdef __cplusplus
}
#endif

#endif /* NK_KWS_H */
