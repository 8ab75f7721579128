// NanoKws: the C API of nk_kws.h as one C++ object for Arduino sketches (header only).
//
//     NanoKws kws;                                  // static storage: NanoKws::kRamBytes, known now
//     void heard(const NanoKws::Detection &d) { Serial.println(d.label); }
//     kws.begin();  kws.onDetection(heard);         // in setup()
//     kws.push(samples, n);                         // in loop(): 16 kHz mono int16, any n
//
// The object owns the model while started (one started object per model); it cannot be copied.
#ifndef NANOKWS_CLASS_H
#define NANOKWS_CLASS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nk_kws.h"

class NanoKws {
  public:
    using Detection = nk_kws_detection_t;
    using Status = nk_kws_status_t;
    using Stats = nk_kws_stats_t;
    typedef void (*DetectionHandler)(const Detection &det);

    // All the RAM it needs but the stack: this object's state plus the model's static RAM.
    static constexpr size_t kRamBytes = NK_KWS_RAM_BYTES;

    NanoKws() = default;
    NanoKws(const NanoKws &) = delete;
    NanoKws &operator=(const NanoKws &) = delete;

    Status begin(const nk_kws_model_t *model = nk_kws_model()) {
        Status st = nk_kws_begin(&kws_, model);
        if (st == NK_KWS_OK && handler_ != nullptr) {
            st = nk_kws_on_detection(&kws_, trampoline, this);
        }
        return st;
    }
    Status end() { return nk_kws_end(&kws_); }
    Status reset() { return nk_kws_reset(&kws_); }

    Status push(const int16_t *samples, size_t n) { return nk_kws_push(&kws_, samples, n); }
    bool poll(Detection &out) { return nk_kws_poll(&kws_, &out) != 0; }
    // Called inside push() for each detection (nullptr: none); may be set before begin().
    Status onDetection(DetectionHandler fn) {
        handler_ = fn;
        const Status st = nk_kws_on_detection(&kws_, fn != nullptr ? trampoline : nullptr, this);
        return st == NK_KWS_ERR_NOT_STARTED ? NK_KWS_OK : st; // kept: begin() installs it
    }

    size_t lastScores(int8_t *out, size_t cap, uint32_t *hop = nullptr) const {
        return nk_kws_last_scores(&kws_, out, cap, hop);
    }
    uint8_t probability(size_t label) const { return nk_kws_probability(&kws_, label); }

    Status setThreshold(size_t label, uint8_t threshold) {
        return nk_kws_set_threshold(&kws_, label, threshold);
    }
    Status setThreshold(const char *label, uint8_t threshold) {
        const int i = labelIndex(label);
        return i < 0 ? NK_KWS_ERR_ARGUMENT : nk_kws_set_threshold(&kws_, (size_t)i, threshold);
    }
    Status setAllThresholds(uint8_t threshold) { return nk_kws_set_all_thresholds(&kws_, threshold); }
    Status setSmoothing(uint32_t inferences) { return nk_kws_set_smoothing(&kws_, inferences); }
    Status setSuppressionMs(uint16_t ms) { return nk_kws_set_suppression_ms(&kws_, ms); }
    // Hysteresis: a label that fired re-arms at or below this smoothed probability (255: off).
    Status setRelease(uint8_t release) { return nk_kws_set_release(&kws_, release); }
    Status setStride(uint32_t hops) { return nk_kws_set_stride(&kws_, hops); }
    // Live audio: samples still waiting behind the pushed ones (behind real time: skip inferences).
    Status setBacklog(size_t samples_waiting) { return nk_kws_set_backlog(&kws_, samples_waiting); }

    static const nk_kws_model_t &model() { return *nk_kws_model(); }
    // Where begin()'s thresholds/smoothing/suppression/release come from ("library defaults" or a calibration).
    static const char *configSource() { return nk_kws_model()->config_source; }
    static size_t numLabels() { return nk_kws_model()->num_labels; }
    static const char *label(size_t i) { return i < numLabels() ? nk_kws_model()->labels[i] : ""; }
    static int labelIndex(const char *name) {
        for (size_t i = 0; name != nullptr && i < numLabels(); i++) {
            if (strcmp(label(i), name) == 0) {
                return (int)i;
            }
        }
        return -1;
    }
    const Stats &stats() const { return *nk_kws_stats(&kws_); }
    uint32_t cyclesPerInference() const { return stats().inference_cycles_last; }
    static const char *statusName(Status st) { return nk_kws_status_name(st); }

    nk_kws_t *raw() { return &kws_; } // the C API on the same state

  private:
    static void trampoline(void *ctx, const nk_kws_detection_t *det) {
        NanoKws *self = static_cast<NanoKws *>(ctx);
        if (self->handler_ != nullptr) {
            self->handler_(*det);
        }
    }

    nk_kws_t kws_{};
    DetectionHandler handler_ = nullptr;
};

#endif // NANOKWS_CLASS_H
