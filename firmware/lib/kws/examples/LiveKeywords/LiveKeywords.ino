// LiveKeywords: listen on the Nano 33 BLE Sense's PDM microphone and print each keyword heard
// (the built-in LED lights for half a second). Open the serial monitor at 115200 baud.
// live_audio.cpp (beside this file) moves the microphone's samples into a 0.5 s ring.
#include <@LIBRARY_HEADER@>
#include <PDM.h>

#include "live_audio.h"

NanoKws kws;                      // all the RAM keyword spotting needs: NanoKws::kRamBytes, static
int16_t chunk[NK_FE_HOP_SAMPLES]; // one hop (20 ms) at a time
uint32_t led_off_at = 0;

void heard(const NanoKws::Detection &d) {
    Serial.print("heard \"");
    Serial.print(d.label);
    Serial.print("\"  score ");
    Serial.print(d.score);
    Serial.print("/255  at ");
    Serial.print(d.time_ms / 1000u);
    Serial.print('.');
    Serial.print((d.time_ms / 100u) % 10u);
    Serial.println(" s");
    digitalWrite(LED_BUILTIN, HIGH);
    led_off_at = millis() + 500;
}

void setup() {
    Serial.begin(115200);
    pinMode(LED_BUILTIN, OUTPUT);
    NanoKws::Status st = kws.begin();
    if (st != NK_KWS_OK || !nk_live_audio_begin()) {
        for (;;) {
            Serial.print("cannot start: ");
            Serial.println(st != NK_KWS_OK ? NanoKws::statusName(st) : "PDM microphone");
            delay(1000);
        }
    }
    kws.onDetection(heard);
}

void loop() {
    size_t n = nk_live_audio_read(chunk, sizeof chunk / sizeof chunk[0]);
    if (n > 0) {
        kws.setBacklog(nk_live_audio_available()); // behind real time: skip inferences, not audio
        kws.push(chunk, n);
    }
    if (led_off_at != 0 && (int32_t)(millis() - led_off_at) >= 0) {
        digitalWrite(LED_BUILTIN, LOW);
        led_off_at = 0;
    }
}
