/* Posterior smoothing and detection; see nk_recognizer.h. */
#include "nk_recognizer.h"

#include <string.h>

int nk_recognizer_init(nk_recognizer_t *rec, const char *const *labels, size_t num_labels, int32_t scale_q16,
                       int32_t zero_point, uint32_t hop_samples, uint32_t sample_rate) {
    if (num_labels == 0 || num_labels > NK_REC_MAX_LABELS || sample_rate == 0) {
        return -1;
    }
    memset(rec, 0, sizeof *rec);
    rec->num_labels = num_labels;
    rec->scale_q16 = scale_q16;
    rec->zero_point = zero_point;
    for (size_t i = 0; i < num_labels; i++) {
        rec->active[i] = (labels != NULL && labels[i] != NULL && labels[i][0] != '_') ? 1u : 0u;
        rec->threshold[i] = NK_REC_DEFAULT_THRESHOLD;
    }
    rec->window = NK_REC_DEFAULT_WINDOW;
    rec->release = NK_REC_DEFAULT_RELEASE;
    rec->suppression_ms = NK_REC_DEFAULT_SUPPRESSION_MS;
    rec->hop_ms_num = hop_samples * 1000u;
    rec->hop_ms_den = sample_rate;
    nk_recognizer_reset(rec);
    return 0;
}

void nk_recognizer_reset(nk_recognizer_t *rec) {
    memset(rec->history, 0, sizeof rec->history);
    memset(rec->sum, 0, sizeof rec->sum);
    rec->next = 0;
    rec->have_detection = 0;
    rec->last_hop = 0;
    memset(rec->armed, 1, sizeof rec->armed);
}

int nk_recognizer_set_window(nk_recognizer_t *rec, uint32_t window) {
    if (window < 1 || window > NK_REC_MAX_WINDOW) {
        return -1;
    }
    rec->window = (uint8_t)window;
    nk_recognizer_reset(rec);
    return 0;
}

int nk_recognizer_set_threshold(nk_recognizer_t *rec, uint32_t label, uint32_t threshold) {
    if (label >= rec->num_labels || threshold > 255u) {
        return -1;
    }
    rec->threshold[label] = (uint8_t)threshold;
    return 0;
}

void nk_recognizer_set_suppression_ms(nk_recognizer_t *rec, uint16_t ms) { rec->suppression_ms = ms; }

int nk_recognizer_set_release(nk_recognizer_t *rec, uint32_t release) {
    if (release > 255u) {
        return -1;
    }
    rec->release = (uint8_t)release;
    return 0;
}

uint8_t nk_recognizer_probability(const nk_recognizer_t *rec, int8_t score) {
    int64_t p = ((int64_t)((int32_t)score - rec->zero_point) * rec->scale_q16 + 32768) >> 16;
    if (p < 0) {
        return 0;
    }
    return p > 255 ? 255u : (uint8_t)p;
}

uint8_t nk_recognizer_smoothed(const nk_recognizer_t *rec, size_t label) {
    if (label >= rec->num_labels) {
        return 0;
    }
    return (uint8_t)(rec->sum[label] / rec->window);
}

/* True while `hop` is within the suppression time of the last detection. */
static int suppressed(const nk_recognizer_t *rec, uint32_t hop) {
    if (!rec->have_detection) {
        return 0;
    }
    uint64_t elapsed_ms_x_den = (uint64_t)(uint32_t)(hop - rec->last_hop) * rec->hop_ms_num;
    return elapsed_ms_x_den < (uint64_t)rec->suppression_ms * rec->hop_ms_den;
}

int nk_recognizer_process(nk_recognizer_t *rec, const int8_t *scores, uint32_t hop, nk_detection_t *det) {
    uint8_t *row = rec->history[rec->next];
    for (size_t i = 0; i < rec->num_labels; i++) {
        uint8_t p = nk_recognizer_probability(rec, scores[i]);
        rec->sum[i] = (uint16_t)(rec->sum[i] - row[i] + p);
        row[i] = p;
    }
    rec->next = (rec->next + 1u) % rec->window;
    int quiet = suppressed(rec, hop);
    int best = -1;
    uint8_t best_score = 0;
    for (size_t i = 0; i < rec->num_labels; i++) {
        uint8_t s = nk_recognizer_smoothed(rec, i);
        if (s <= rec->release) {
            rec->armed[i] = 1;
        }
        if (!quiet && rec->active[i] && rec->armed[i] && s >= rec->threshold[i] &&
            (best < 0 || s > best_score)) {
            best = (int)i;
            best_score = s;
        }
    }
    if (best < 0) {
        return 0;
    }
    rec->armed[best] = 0;
    rec->have_detection = 1;
    rec->last_hop = hop;
    det->hop = hop;
    det->label = (uint8_t)best;
    det->score = best_score;
    return 1;
}
