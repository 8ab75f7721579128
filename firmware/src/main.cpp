// nanokws firmware for the Arduino Nano 33 BLE (PlatformIO, see platformio.ini).
//
// Protocol mode (default, env nano33ble): the board answers the framed binary protocol of
// firmware/lib/protocol/PROTOCOL.md on USB serial; `nanokws hil --port ...` drives it.
// Live mode (NK_LIVE_MODE=1, env nano33ble_sense_live): the Nano 33 BLE Sense listens on its PDM
// microphone, prints detections as text on the serial monitor and flashes the built-in LED.
#include <Arduino.h>

#include "nk_app.h"
#include "nk_platform.h"

#if defined(NK_LIVE_MODE) && NK_LIVE_MODE
#include "live_audio.h"
#endif

namespace {

nk_app_t g_app;  // static: the app holds the clip buffer and all frame buffers (no heap)

#if defined(NK_LIVE_MODE) && NK_LIVE_MODE

constexpr uint32_t kLedOnMs = 500;
uint32_t g_led_off_at = 0;
bool g_led_on = false;
int16_t g_chunk[NK_FE_HOP_SAMPLES];

void on_detection(void *ctx, const nk_detection_t *det, const char *label) {
    (void)ctx;
    const uint32_t ms = (uint32_t)((uint64_t)det->hop * NK_FE_HOP_SAMPLES * 1000u / NK_FE_SAMPLE_RATE);
    Serial.print("heard \"");
    Serial.print(label);
    Serial.print("\"  score ");
    Serial.print(det->score);
    Serial.print("/255  at ");
    Serial.print(ms / 1000u);
    Serial.print('.');
    Serial.print((ms / 100u) % 10u);
    Serial.println(" s");
    digitalWrite(LED_BUILTIN, HIGH);
    g_led_on = true;
    g_led_off_at = millis() + kLedOnMs;
}

void live_setup() {
    pinMode(LED_BUILTIN, OUTPUT);
    digitalWrite(LED_BUILTIN, LOW);
    Serial.println("nanokws live mode: listening. Keywords:");
    for (size_t i = 0; i < nk_app_num_labels(); i++) {
        if (nk_app_label(i)[0] != '_') {
            Serial.print("  ");
            Serial.println(nk_app_label(i));
        }
    }
    if (!nk_live_audio_begin()) {
        Serial.println("error: the PDM microphone did not start (is this a Nano 33 BLE Sense?)");
        for (;;) {
            digitalWrite(LED_BUILTIN, (millis() / 100u) % 2u ? HIGH : LOW);  // fast blink: no mic
        }
    }
}

void live_loop() {
    size_t n = nk_live_audio_read(g_chunk, NK_FE_HOP_SAMPLES);
    if (n > 0) {
        nk_app_push_audio(&g_app, g_chunk, n, on_detection, nullptr);
    }
    if (g_led_on && (int32_t)(millis() - g_led_off_at) >= 0) {
        digitalWrite(LED_BUILTIN, LOW);
        g_led_on = false;
    }
    static uint32_t reported_overruns = 0;
    uint32_t overruns = nk_live_audio_overruns();
    if (overruns != reported_overruns) {
        reported_overruns = overruns;
        Serial.print("warning: audio overrun, ");
        Serial.print(overruns);
        Serial.println(" samples dropped (inference slower than real time?)");
    }
}

#endif  // NK_LIVE_MODE

}  // namespace

void setup() {
    nk_platform_init();
    if (nk_app_init(&g_app) != 0) {
        for (;;) {
            delay(1000);  // the model does not fit the app's limits; nothing sensible to do
        }
    }
#if defined(NK_LIVE_MODE) && NK_LIVE_MODE
    live_setup();
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
