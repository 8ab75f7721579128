// nk_platform.h for the Arduino Nano 33 BLE (nRF52840, Arduino mbed core): protocol bytes over
// the USB CDC `Serial`, cycle counts from the Cortex-M4 DWT counter at the 64 MHz core clock
// (micros() on boards without a DWT).
#include <Arduino.h>

#include "nk_platform.h"

void nk_platform_init(void) {
    Serial.begin(115200); // USB CDC: the baud rate is ignored, the host opens the port at any rate
    // No wait for the host: a board on a charger must still start (live mode). Nothing is lost in
    // protocol mode either: the core only receives while the port is open, and every reply
    // answers a request, so the first reply cannot precede an open port.
    (void)nk_platform_cycles(); // starts the cycle counter
}

int nk_platform_read_byte(void) {
    // The USB stream never ends on the board: wait for the next byte.
    while (Serial.available() <= 0) {
        yield();
    }
    return Serial.read() & 0xFF;
}

void nk_platform_write(const uint8_t *data, size_t len) {
    // The core's USB CDC write has two outcomes: while the host has the port open it blocks until
    // the host has taken every byte and returns len; while the port is closed (no host, terminal
    // closed, cable out) it returns 0 at once. Nobody can read those bytes, so drop them rather
    // than spin until a host comes back (which would stall live audio forever).
    while (len > 0) {
        size_t n = Serial.write(data, len);
        if (n == 0) {
            return;
        }
        const size_t sent = n < len ? n : len;
        data += sent;
        len -= sent;
    }
}

#if defined(DWT) && defined(CoreDebug)
// The DWT cycle counter (Cortex-M3/M4/M7). Started on first use, so a sketch that never calls
// nk_platform_init() (the library's NanoKws) still gets cycle counts.
uint32_t nk_platform_cycles(void) {
    if ((DWT->CTRL & DWT_CTRL_CYCCNTENA_Msk) == 0 || (CoreDebug->DEMCR & CoreDebug_DEMCR_TRCENA_Msk) == 0) {
        CoreDebug->DEMCR |= CoreDebug_DEMCR_TRCENA_Msk; // debug trace must be on for DWT to count
        DWT->CTRL |= DWT_CTRL_CYCCNTENA_Msk;
    }
    return DWT->CYCCNT;
}

const char *nk_platform_cycle_unit(void) { return "cpu_cycles"; }

uint32_t nk_platform_cycle_hz(void) { return SystemCoreClock; } // 64 MHz on the nRF52840
#else
// A board without a DWT (not a Cortex-M3/M4/M7): microseconds instead of cycles.
uint32_t nk_platform_cycles(void) { return (uint32_t)micros(); }

const char *nk_platform_cycle_unit(void) { return "micros"; }

uint32_t nk_platform_cycle_hz(void) { return 1000000u; }
#endif

void nk_platform_exit(int code) {
    (void)code;
#if defined(__CORTEX_M)
    NVIC_SystemReset(); // a board has nowhere to exit to: start again
#endif
    for (;;) {
    }
}
