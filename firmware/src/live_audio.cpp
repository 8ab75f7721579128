// PDM microphone capture for live mode; see live_audio.h.
#if defined(NK_LIVE_MODE) && NK_LIVE_MODE

#include "live_audio.h"

#include <Arduino.h>
#include <PDM.h>

namespace {

constexpr size_t kRingSamples = 8192; // 0.5 s of slack for the main loop (16 KB)
constexpr int kSampleRate = 16000;
constexpr int kGain = 20; // moderate gain; raise it (0..80) for distant speech

int16_t g_ring[kRingSamples];
volatile size_t g_head = 0; // written by the interrupt
volatile size_t g_tail = 0; // written by the main loop
volatile uint32_t g_overruns = 0;
int16_t g_isr_buf[256];

// Runs in interrupt context: move what the PDM driver has into the ring, never block.
void on_pdm_data() {
    int bytes = PDM.available();
    while (bytes > 0) {
        int chunk = bytes > (int)sizeof g_isr_buf ? (int)sizeof g_isr_buf : bytes;
        int got = PDM.read(g_isr_buf, chunk);
        if (got <= 0) {
            return;
        }
        bytes -= got;
        for (int i = 0; i < got / 2; i++) {
            size_t next = (g_head + 1) % kRingSamples;
            if (next == g_tail) {
                g_overruns = g_overruns + 1;
                continue;
            }
            g_ring[g_head] = g_isr_buf[i];
            g_head = next;
        }
    }
}

} // namespace

bool nk_live_audio_begin(void) {
    PDM.onReceive(on_pdm_data);
    if (!PDM.begin(1, kSampleRate)) {
        return false;
    }
    PDM.setGain(kGain);
    return true;
}

size_t nk_live_audio_read(int16_t *out, size_t max) {
    size_t n = 0;
    while (n < max && g_tail != g_head) {
        out[n++] = g_ring[g_tail];
        g_tail = (g_tail + 1) % kRingSamples;
    }
    return n;
}

size_t nk_live_audio_available(void) {
    const size_t head = g_head; // read once: the interrupt may move it
    return (head + kRingSamples - g_tail) % kRingSamples;
}

uint32_t nk_live_audio_overruns(void) { return g_overruns; }

#endif // NK_LIVE_MODE
