/* Turns a stream of model scores into keyword detections: per-label moving average of the
 * output probabilities, a threshold per label, a suppression time after each detection, and
 * hysteresis: a label that fired is disarmed until its smoothed probability falls to the release
 * level, so one spoken word fires once however long it stays in the model's window.
 * Labels starting with '_' (silence, unknown) never fire. Integer arithmetic, fixed-size state. */
#ifndef NK_RECOGNIZER_H
#define NK_RECOGNIZER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NK_REC_MAX_LABELS 32u
#define NK_REC_MAX_WINDOW 32u
#define NK_REC_DEFAULT_WINDOW 4u
#define NK_REC_DEFAULT_THRESHOLD 180u
/* Suppression after any detection: a one-second window's length. A word fully inside the window stays
 * in it, partly, for up to that long after it fires, and its tail can look like another keyword
 * ("stop" ending as "off"); 750 ms left one repeat and 85 such confusions on the 60-minute test
 * stream. A model with a longer window gets that window's length instead (`nanokws compile` writes
 * it into model_config.h: streams/replay.py window_suppression_ms). */
#define NK_REC_DEFAULT_SUPPRESSION_MS 1000u
/* Release level: a label that fired re-arms once its smoothed probability is at or below this.
 * 64 (25 %) is about a third of the default threshold: a word that is still partly in the 1 s
 * window keeps its label well above it (the repeats of issue #14 came 0.6-1.6 s after the first
 * detection at 180+), while the next word, silence or noise pulls it to near 0 within a few
 * inferences, so a keyword said again after a pause fires again. Lower values resist repeats
 * more; 255 turns hysteresis off (every label is always armed: the suppression time alone). A
 * label whose threshold is at or below the release level is in effect never disarmed. */
#define NK_REC_DEFAULT_RELEASE 64u

/* Probability (0..255) of int8 score q: clamp(((q - zero_point) * scale_q16 + 2^15) >> 16, 0, 255)
 * where scale_q16 = round(output_scale * 255 * 65536) (see NK_REC_SCALE_Q16). */
#define NK_REC_SCALE_Q16(output_scale) ((int32_t)((output_scale)*255.0 * 65536.0 + 0.5))

typedef struct {
    uint32_t hop;  /* hop index of the inference that fired */
    uint8_t label; /* index into the model's labels */
    uint8_t score; /* smoothed probability 0..255 */
} nk_detection_t;

typedef struct {
    size_t num_labels;
    int32_t scale_q16;
    int32_t zero_point;
    uint8_t active[NK_REC_MAX_LABELS]; /* 0 for labels starting with '_' */
    uint8_t threshold[NK_REC_MAX_LABELS];
    uint8_t window;  /* inferences averaged, 1..NK_REC_MAX_WINDOW */
    uint8_t release; /* re-arm at or below this smoothed probability */
    uint16_t suppression_ms;
    uint32_t hop_ms_num, hop_ms_den; /* duration of one hop in ms, as a fraction */
    /* history[i][label]: the last `window` probabilities, zero before any inference. */
    uint8_t history[NK_REC_MAX_WINDOW][NK_REC_MAX_LABELS];
    uint16_t sum[NK_REC_MAX_LABELS];
    size_t next;                      /* history row the next inference overwrites */
    uint8_t have_detection;           /* a detection fired since the last reset */
    uint32_t last_hop;                /* hop of that detection */
    uint8_t armed[NK_REC_MAX_LABELS]; /* 0 after the label fired, 1 again at or below `release` */
} nk_recognizer_t;

/* labels: num_labels names (only the first character is looked at). hop_samples/sample_rate
 * convert hop indices to milliseconds for the suppression time. Returns 0, or -1 when
 * num_labels is 0 or above NK_REC_MAX_LABELS. Sets the defaults above. */
int nk_recognizer_init(nk_recognizer_t *rec, const char *const *labels, size_t num_labels, int32_t scale_q16,
                       int32_t zero_point, uint32_t hop_samples, uint32_t sample_rate);

/* Forget history and the last detection, arm every label; keep configuration. */
void nk_recognizer_reset(nk_recognizer_t *rec);

/* Configuration; each returns 0, or -1 (and changes nothing) when the value is out of range.
 * Changing the window resets the history; the others keep the state (a disarmed label stays
 * disarmed until its probability falls to the new release level). */
int nk_recognizer_set_window(nk_recognizer_t *rec, uint32_t window);
int nk_recognizer_set_threshold(nk_recognizer_t *rec, uint32_t label, uint32_t threshold);
void nk_recognizer_set_suppression_ms(nk_recognizer_t *rec, uint16_t ms);
int nk_recognizer_set_release(nk_recognizer_t *rec, uint32_t release); /* 0..255 */

/* Probability 0..255 of one int8 score. */
uint8_t nk_recognizer_probability(const nk_recognizer_t *rec, int8_t score);

/* Add one inference (num_labels scores) made after hop `hop`. First every disarmed label whose
 * smoothed probability is at or below the release level is armed again (also during the
 * suppression time). Then, outside the suppression time of the last detection, the armed active
 * label with the highest smoothed probability at or above its threshold (the first on ties)
 * fires: returns 1, fills *det and disarms that label. Else returns 0. */
int nk_recognizer_process(nk_recognizer_t *rec, const int8_t *scores, uint32_t hop, nk_detection_t *det);

/* Smoothed probability of one label (sum over the window / window). */
uint8_t nk_recognizer_smoothed(const nk_recognizer_t *rec, size_t label);

#ifdef __cplusplus
}
#endif

#endif /* NK_RECOGNIZER_H */
