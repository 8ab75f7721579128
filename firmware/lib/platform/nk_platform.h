/* What the portable core needs from a board: a byte stream, a clock, a way to stop.
 * Implemented once per target: targets/host (stdin/stdout or a pty), targets/qemu (CMSDK UART,
 * SysTick under -icount) and src/ (Arduino, USB serial, DWT cycle counter). */
#ifndef NK_PLATFORM_H
#define NK_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bring up clocks, UART, cycle counter. Called once before anything else. */
void nk_platform_init(void);

/* Block until one byte arrives; return it (0..255), or -1 when the stream has ended. */
int nk_platform_read_byte(void);

/* Write all bytes (blocking). */
void nk_platform_write(const uint8_t *data, size_t len);

/* A free-running 32-bit counter of CPU cycles (real board) or of emulated time (QEMU -icount);
 * wraps, so callers subtract. */
uint32_t nk_platform_cycles(void);

/* Name of the unit nk_platform_cycles() counts, e.g. "cpu_cycles" or "qemu_icount_ticks". */
const char *nk_platform_cycle_unit(void);

/* Clock rate of that counter in Hz (so the host can turn counts into microseconds). */
uint32_t nk_platform_cycle_hz(void);

/* Stop: exit the process (host) or the emulator (QEMU semihosting); never returns. */
void nk_platform_exit(int code);

#ifdef __cplusplus
}
#endif

#endif /* NK_PLATFORM_H */
