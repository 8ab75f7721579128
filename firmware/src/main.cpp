// nanokws firmware for the Arduino Nano 33 BLE (PlatformIO, see platformio.ini).
//
// Protocol mode (default, env nano33ble): the board answers the framed binary protocol of
// firmware/lib/protocol/PROTOCOL.md on USB serial; `nanokws hil --port ...` drives it.
// Live mode (NK_LIVE_MODE=1, env nano33ble_sense_live): the Nano 33 BLE Sense listens on its PDM
// microphone, prints detections as text on the serial monitor and flashes the built-in LED, with
// or without a host on the port. No microphone (judged from its data): an error line, fast blink.
// Both run on the public API (firmware/lib/kws): protocol mode through nk_app, live mode through
// the NanoKws class, as a sketch using the exported Arduino library does.
//
// firmware/targets/arduino_host/ builds this file unchanged against a test double of the
// Arduino API for the tests (tests/test_arduino_layer.py).
#include <Arduino.h>

#include "nk_platform.h"

#if defined(NK_LIVE_MODE) && NK_LIVE_MODE
#include "NanoKws.h"
#include "live_audio.h"
#include "nk_mic_check.h"
#else
#include "nk_app.h"
#endif

namespace {

#if defined(NK_LIVE_MODE) && NK_LIVE_MODE

NanoKws g_kws; // static: the public API's state (the library's LiveKeywords example uses it too)

constexpr uint32_t kLedOnMs = 500;
constexpr uint32_t kNoMicBlinkMs = 100; // fast blink: no microphone
constexpr uint32_t kPortPollMs = 250;   // the core's `Serial` test costs a 1 ms delay: not every loop
constexpr uint32_t kReportMs = 1000;    // at most one overrun / skipped-inference line a second
uint32_t g_led_off_at = 0;
bool g_led_on = false;
int16_t g_chunk[NK_FE_HOP_SAMPLES];
nk_mic_check_t g_mic;
bool g_mic_failed = false; // no microphone: blink and drop audio from now on
bool g_port_open = false;
bool g_port_polled = false;
uint32_t g_port_polled_at = 0;

// A counter printed when it changes, at most once per kReportMs.
struct ReportedCount {
    uint32_t value = 0;
    uint32_t at_ms = 0;
};
ReportedCount g_overrun_report;
ReportedCount g_skip_report;

bool report_due(ReportedCount &r, uint32_t value, uint32_t now) {
    if (value == r.value || (uint32_t)(now - r.at_ms) < kReportMs) {
        return false;
    }
    r.value = value;
    r.at_ms = now;
    return true;
}

void on_detection(const NanoKws::Detection &det) {
    const uint32_t ms = det.time_ms;
    Serial.print("heard \"");
    Serial.print(det.label);
    Serial.print("\"  score ");
    Serial.print(det.score);
    Serial.print("/255  at ");
    Serial.print(ms / 1000u);
    Serial.print('.');
    Serial.print((ms / 100u) % 10u);
    Serial.println(" s");
    digitalWrite(LED_BUILTIN, HIGH);
    g_led_on = true;
    g_led_off_at = millis() + kLedOnMs;
}

void print_no_mic(nk_mic_verdict_t verdict) {
    Serial.print("error: no microphone: ");
    Serial.print(nk_mic_verdict_text(verdict));
    Serial.println(" (is this a Nano 33 BLE Sense?)");
}

void print_banner() {
    Serial.println("nanokws live mode: listening. Keywords:");
    for (size_t i = 0; i < NanoKws::numLabels(); i++) {
        if (NanoKws::label(i)[0] != '_') {
            Serial.print("  ");
            Serial.println(NanoKws::label(i));
        }
    }
    if (g_mic_failed) {
        print_no_mic(g_mic.verdict);
    }
}

// Live mode runs with or without a host. Whatever was printed while the port was closed is gone,
// so greet each host that opens it (at boot, or a serial monitor started later).
void poll_port(uint32_t now) {
    if (g_port_polled && (uint32_t)(now - g_port_polled_at) < kPortPollMs) {
        return;
    }
    g_port_polled = true;
    g_port_polled_at = now;
    const bool open = static_cast<bool>(Serial);
    if (open && !g_port_open) {
        print_banner();
    }
    g_port_open = open;
}

void live_setup() {
    if (g_kws.begin() != NK_KWS_OK) {
        for (;;) {
            delay(1000); // the model does not fit the limits; nothing sensible to do
        }
    }
    g_kws.onDetection(on_detection);
    pinMode(LED_BUILTIN, OUTPUT);
    digitalWrite(LED_BUILTIN, LOW);
    // PDM.begin() succeeds with or without a microphone (the core never probes one): the data
    // decides, see nk_mic_check.h. It fails only for a bad rate or channel count.
    const bool started = nk_live_audio_begin();
    nk_mic_check_start(&g_mic, millis());
    if (!started) {
        g_mic.verdict = NK_MIC_NO_SAMPLES;
        g_mic_failed = true;
    }
    poll_port(millis());
}

void live_loop() {
    const uint32_t now = millis();
    poll_port(now);
    size_t n = nk_live_audio_read(g_chunk, NK_FE_HOP_SAMPLES);
    if (!g_mic_failed) {
        nk_mic_check_feed(&g_mic, g_chunk, n, n < NK_FE_HOP_SAMPLES); // fewer: the ring ran dry
        const nk_mic_verdict_t verdict = nk_mic_check_poll(&g_mic, now);
        if (verdict == NK_MIC_NO_SAMPLES || verdict == NK_MIC_CONSTANT) {
            g_mic_failed = true;
            print_no_mic(verdict);
        }
    }
    if (g_mic_failed) {
        digitalWrite(LED_BUILTIN, (now / kNoMicBlinkMs) % 2u ? HIGH : LOW);
        return; // what is read is dropped: there is nothing to hear
    }
    if (n > 0) {
        // Behind real time, the app skips inferences (not audio) until the ring has drained.
        g_kws.setBacklog(nk_live_audio_available());
        g_kws.push(g_chunk, n);
    }
    if (g_led_on && (int32_t)(millis() - g_led_off_at) >= 0) {
        digitalWrite(LED_BUILTIN, LOW);
        g_led_on = false;
    }
    const uint32_t overruns = nk_live_audio_overruns();
    if (report_due(g_overrun_report, overruns, now)) {
        Serial.print("warning: audio overrun, ");
        Serial.print(overruns);
        Serial.println(" samples dropped (more than 0.5 s behind real time)");
    }
    const NanoKws::Stats &stats = g_kws.stats();
    const uint32_t skips = stats.skipped_inferences;
    if (report_due(g_skip_report, skips, now)) {
        Serial.print("warning: behind real time, ");
        Serial.print(skips);
        Serial.print(" of ");
        Serial.print(skips + stats.inferences);
        Serial.println(" inferences skipped so far (audio kept)");
    }
}

#else

nk_app_t g_app; // static: the app holds the clip buffer and all frame buffers (no heap)

#endif // NK_LIVE_MODE

} // namespace

void setup() {
    nk_platform_init();
#if defined(NK_LIVE_MODE) && NK_LIVE_MODE
    live_setup();
#else
    if (nk_app_init(&g_app) != 0) {
        for (;;) {
            delay(1000); // the model does not fit the app's limits; nothing sensible to do
        }
    }
#endif
}

void loop() {
#if defined(NK_LIVE_MODE) && NK_LIVE_MODE
    live_loop();
#else
    // Drain what has arrived, then return so the core can service USB.
    while (Serial.available() > 0) {
        nk_app_feed_byte(&g_app, (uint8_t)Serial.read());
    }
#endif
}
