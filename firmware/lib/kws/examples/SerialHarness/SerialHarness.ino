// SerialHarness: the protocol device that `nanokws hil --port PORT --data DIR` drives over USB
// serial (spec: PROTOCOL.md in the nanokws firmware). It checks that this board computes what the
// PC computes: every clip's int8 scores against the host reference, streaming detections, latency.
// The same nk_app core as the nanokws firmware's protocol mode, on top of the NanoKws API.
#include <@LIBRARY_HEADER@>

#include "nk_app.h"
#include "nk_platform.h"

nk_app_t app; // static: the protocol's 1 s clip buffer (32 KB) and the spotter's state

void setup() {
    nk_platform_init(); // Serial.begin() and the cycle counter
    if (nk_app_init(&app) != 0) {
        for (;;) {
            delay(1000); // the model does not fit the app's limits
        }
    }
}

void loop() {
    while (Serial.available() > 0) {
        nk_app_feed_byte(&app, (uint8_t)Serial.read());
    }
}
