/* The firmware core: protocol dispatch, streaming recognition, clip mode, timing.
 * Portable C11, no heap: every buffer lives in nk_app_t (one static instance per program).
 * Needs the compiled model's nk_model.h and model_config.h on the include path (MODEL_DIR). */
#ifndef NK_APP_H
#define NK_APP_H

#include <stddef.h>
#include <stdint.h>

#include "model_config.h"
#include "nk_frontend.h"
#include "nk_frontend_config.h"
#include "nk_model.h"
#include "nk_protocol.h"
#include "nk_recognizer.h"

/* A model folder compiled with the streaming form (`nanokws compile` writes nk_model_stream.h when
 * the model can run incrementally) makes the app push every frame to nk_model_stream_push() instead
 * of keeping the 49-frame window and calling nk_model_invoke() on it; clip mode then runs as reset +
 * 49 pushes, so the full-window arena is not linked. Same scores, bit for bit, at the same hops. */
#if defined(__has_include)
#if __has_include("nk_model_stream.h")
#include "nk_model_stream.h"
#define NK_APP_STREAMING 1
#endif
#endif
#ifndef NK_APP_STREAMING
#define NK_APP_STREAMING 0
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define NK_FIRMWARE_VERSION "0.1.0"
#define NK_APP_DEFAULT_STRIDE 2u
#define NK_APP_MAX_STRIDE 50u
/* Live mode falls behind real time when more than this many samples wait behind the ones being
 * pushed (3 hops, 60 ms; keeping up leaves less than two waiting): then inferences that fall due
 * are skipped, never audio, so the frontend stays real-time. */
#define NK_APP_SKIP_BACKLOG_SAMPLES (3u * NK_FE_HOP_SAMPLES)

typedef struct {
    uint32_t samples, frames, inferences, detections, rx_errors;
    uint32_t frontend_cycles_max, inference_cycles_max, inference_cycles_last;
    uint32_t skipped_inferences; /* due by the stride but skipped because live audio was waiting */
} nk_app_stats_t;

/* Called by nk_app_push_audio() for each detection (live mode). */
typedef void (*nk_app_detection_fn)(void *ctx, const nk_detection_t *det, const char *label);

/* Called by nk_app_push_audio() with each inference's int8 scores (live mode; optional). */
typedef void (*nk_app_scores_fn)(void *ctx, uint32_t hop, const int8_t *scores, size_t n);

typedef struct {
    nk_frontend_t fe;
    nk_recognizer_t rec;
    nk_rx_t rx;
    nk_tx_t tx;
    /* Streaming: samples of the hop being filled. */
    int16_t hop[NK_FE_HOP_SAMPLES];
    size_t hop_fill;
    uint32_t hops_total;
#if NK_APP_STREAMING
    /* The model keeps its own state (nk_model_stream.h, one static instance): one frame at a time. */
    int8_t frame[NK_FE_NUM_CHANNELS];  /* the newest frontend frame, then requantised in place */
    uint32_t model_cycles;             /* model cycles of the pushes since the last inference */
#else
    /* The last 49 frames as a ring. */
    int8_t window[NK_FE_CLIP_FRAMES][NK_FE_NUM_CHANNELS];
    size_t window_next;      /* ring slot the next frame goes to (the oldest when full) */
    size_t window_count;     /* frames held, up to NK_FE_CLIP_FRAMES */
    uint32_t frames_since_inference;
#endif
    uint32_t last_frontend_cycles;
    /* Clip mode. */
    int16_t clip[NK_FE_CLIP_SAMPLES];
    int8_t clip_features[NK_FE_CLIP_FRAMES * NK_FE_NUM_CHANNELS];
    /* Model I/O and the input requantisation table (identity when scale 1 / zero point 0). */
#if !NK_APP_STREAMING
    int8_t input[NK_MODEL_INPUT_LEN];
#endif
    int8_t output[NK_MODEL_OUTPUT_LEN];
    int8_t requant[256];
    int16_t samples[NK_PROTO_MAX_AUDIO_SAMPLES]; /* AUDIO body, decoded */
    /* Configuration (smoothing, thresholds and suppression live in rec). */
    uint8_t stride;
    uint8_t stream_scores;
    nk_app_stats_t stats;
    /* Where events of the current streaming call go: protocol frames (seq 0) or a callback. */
    nk_app_detection_fn on_detection;
    void *on_detection_ctx;
    nk_app_scores_fn on_scores; /* live mode only (nk_app_set_scores_hook) */
    void *on_scores_ctx;
    uint8_t events_to_protocol;
    uint8_t request_type; /* of the request being handled, for INTERNAL errors */
    uint8_t request_seq;
    size_t live_backlog; /* samples waiting behind the pushed ones (nk_app_set_live_backlog) */
} nk_app_t;

/* Set defaults and clear all state. Returns 0, or -1 if the model does not fit the app's limits
 * (more than NK_REC_MAX_LABELS labels). */
int nk_app_init(nk_app_t *app);

/* RESET: clear stream state (with a streaming model also the model's), recognizer, clip buffer and
 * stats; keep the configuration. */
void nk_app_reset(nk_app_t *app);

/* Protocol mode: feed one received byte; replies go out through nk_platform_write(). */
void nk_app_feed_byte(nk_app_t *app, uint8_t byte);

/* Live mode: stream n samples (any n) through frontend, model and recognizer; calls `cb` (may be
 * NULL) for each detection. Returns the number of detections. Sends nothing on the wire. */
size_t nk_app_push_audio(nk_app_t *app, const int16_t *samples, size_t n, nk_app_detection_fn cb, void *ctx);

/* Live mode: how many samples wait in the caller's buffer behind those it is about to push. More
 * than NK_APP_SKIP_BACKLOG_SAMPLES: nk_app_push_audio() skips the inferences that fall due
 * (stats.skipped_inferences; the stride's schedule goes on as if they ran). Protocol AUDIO is
 * paced by the host and never skips. With a streaming model every frame still goes through the
 * model's row layers (its state must stay exact); a skipped inference skips the head (pool and
 * dense layers) and the recognizer. */
void nk_app_set_live_backlog(nk_app_t *app, size_t samples_waiting);
const nk_app_stats_t *nk_app_stats(const nk_app_t *app);

/* Live mode: call `fn` (NULL: nothing) with the scores of every inference nk_app_push_audio() runs.
 * Kept across RESET. */
void nk_app_set_scores_hook(nk_app_t *app, nk_app_scores_fn fn, void *ctx);

size_t nk_app_num_labels(void);
const char *nk_app_label(size_t index); /* "" when out of range */

#ifdef __cplusplus
}
#endif

#endif /* NK_APP_H */
