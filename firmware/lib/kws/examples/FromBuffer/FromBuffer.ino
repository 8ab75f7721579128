// FromBuffer: keyword spotting on audio from an array (audio.h), for any board. Prints each
// detection, then the last inference's scores and what it cost. `nanokws export
// --arduino-library OUT.zip --example-wav FILE` puts your own recording into audio.h.
#include <@LIBRARY_HEADER@>

#include "audio.h"

NanoKws kws;

void heard(const NanoKws::Detection &d) {
    Serial.print("heard ");
    Serial.print(d.label);
    Serial.print(" score ");
    Serial.print(d.score);
    Serial.print(" at_ms ");
    Serial.println(d.time_ms);
}

void setup() {
    Serial.begin(115200);
    while (!Serial && millis() < 3000) {
    }
    NanoKws::Status st = kws.begin();
    if (st != NK_KWS_OK) {
        Serial.print("begin failed: ");
        Serial.println(NanoKws::statusName(st));
        return;
    }
    kws.onDetection(heard);
    // Any chunk size works; 160 samples (10 ms) is what a microphone driver might hand over.
    for (size_t i = 0; i < kAudioSamples; i += 160) {
        size_t n = kAudioSamples - i < 160 ? kAudioSamples - i : 160;
        kws.push(kAudio + i, n);
    }
    int8_t scores[32];
    size_t count = kws.lastScores(scores, sizeof scores);
    Serial.print("scores");
    for (size_t i = 0; i < count; i++) {
        Serial.print(' ');
        Serial.print((int)scores[i]); // int8_t would print as a character
    }
    Serial.println();
    Serial.print("inferences ");
    Serial.print(kws.stats().inferences);
    Serial.print(" cycles_per_inference ");
    Serial.print(kws.cyclesPerInference());
    Serial.print(" ram_bytes ");
    Serial.println((unsigned long)NanoKws::kRamBytes);
}

void loop() {}
