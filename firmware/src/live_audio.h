// Live mode (build flag NK_LIVE_MODE=1, Nano 33 BLE Sense): 16 kHz mono PCM from the on-board
// PDM microphone, collected by the PDM interrupt into a ring and handed to the main loop.
#ifndef NK_LIVE_AUDIO_H
#define NK_LIVE_AUDIO_H

#include <stddef.h>
#include <stdint.h>

// Start the microphone; returns false if the PDM peripheral failed to start.
bool nk_live_audio_begin(void);

// Copy up to `max` buffered samples into `out`; returns how many (0 when none are waiting).
size_t nk_live_audio_read(int16_t *out, size_t max);

// Samples waiting in the ring (a snapshot: the interrupt may add more at any time).
size_t nk_live_audio_available(void);

// Samples dropped because the main loop fell behind (the ring was full).
uint32_t nk_live_audio_overruns(void);

#endif // NK_LIVE_AUDIO_H
