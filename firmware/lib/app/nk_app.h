/* The protocol firmware (PROTOCOL.md) on top of the public API (nk_kws.h): request dispatch, AUDIO
 * streamed into the keyword spotter, clip mode, stats, INFO, timing.
 * Portable C11, no heap: every buffer lives in nk_app_t (one static instance per program).
 * Needs the compiled model's nk_model.h and model_config.h on the include path (MODEL_DIR). */
#ifndef NK_APP_H
#define NK_APP_H

#include <stddef.h>
#include <stdint.h>

#include "nk_frontend_config.h"
#include "nk_kws.h"
#include "nk_protocol.h"

/* Whether the model has a streaming form (nk_model_stream.h; nk_kws.h decides). */
#define NK_APP_STREAMING NK_KWS_STREAMING

#ifdef __cplusplus
extern "C" {
#endif

#define NK_FIRMWARE_VERSION "0.1.0"
/* Literal values (tools read them from this header); nk_app.c checks them against nk_kws.h. */
#define NK_APP_DEFAULT_STRIDE 2u
#define NK_APP_MAX_STRIDE 50u

typedef struct {
    uint32_t samples, frames, inferences, detections, rx_errors;
    uint32_t frontend_cycles_max, inference_cycles_max, inference_cycles_last;
    uint32_t skipped_inferences; /* due by the stride but skipped because live audio was waiting */
} nk_app_stats_t;

/* Protocol mode on top of the public API: AUDIO is pushed into `kws`, whose scores and detections
 * become SCORES and DETECTION frames; clip mode runs nk_kws_classify_features(). */
typedef struct {
    nk_kws_t kws;
    nk_rx_t rx;
    nk_tx_t tx;
    int16_t clip[NK_FE_CLIP_SAMPLES];
    int8_t clip_features[NK_FE_CLIP_FRAMES * NK_FE_NUM_CHANNELS];
    int16_t samples[NK_PROTO_MAX_AUDIO_SAMPLES]; /* AUDIO body, decoded */
    uint8_t stream_scores;
    uint32_t rx_errors;
    nk_app_stats_t stats; /* filled by nk_app_stats() */
    uint8_t request_type; /* of the request being handled, for INTERNAL errors */
    uint8_t request_seq;
} nk_app_t;

/* Set defaults and clear all state (starts app->kws on the compiled model). Returns 0, or -1 if
 * the model does not fit the limits or another nk_kws_t holds the model. */
int nk_app_init(nk_app_t *app);

/* RESET: clear stream state (with a streaming model also the model's), recognizer, clip buffer and
 * stats; keep the configuration. */
void nk_app_reset(nk_app_t *app);

/* Protocol mode: feed one received byte; replies go out through nk_platform_write(). */
void nk_app_feed_byte(nk_app_t *app, uint8_t byte);

/* The keyword spotter inside: push live audio into it directly (nk_kws.h). Its callbacks belong to
 * the app while protocol AUDIO is handled. */
nk_kws_t *nk_app_kws(nk_app_t *app);

/* Counters for STATS: the spotter's plus the protocol's receive errors. */
const nk_app_stats_t *nk_app_stats(nk_app_t *app);

#ifdef __cplusplus
}
#endif

#endif /* NK_APP_H */
