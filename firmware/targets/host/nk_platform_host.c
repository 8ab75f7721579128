/* nk_platform for a desktop host: bytes on stdin/stdout (unbuffered semantics: every write is
 * flushed so a pipe or pty peer sees it at once), a monotonic nanosecond clock, exit(). */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nk_platform.h"

void nk_platform_init(void) {
    /* Binary streams: no newline translation, and reads are not line-buffered. */
    setvbuf(stdin, NULL, _IOFBF, 4096);
    setvbuf(stdout, NULL, _IOFBF, 4096);
}

int nk_platform_read_byte(void) {
    const int c = getchar();
    return c == EOF ? -1 : c;
}

void nk_platform_write(const uint8_t *data, size_t len) {
    if (len > 0) {
        (void)fwrite(data, 1, len, stdout);
    }
    (void)fflush(stdout);
}

uint32_t nk_platform_cycles(void) {
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    const uint64_t ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    return (uint32_t)ns;
}

const char *nk_platform_cycle_unit(void) { return "host_ns"; }

uint32_t nk_platform_cycle_hz(void) { return 1000000000u; }

void nk_platform_exit(int code) {
    (void)fflush(stdout);
    exit(code);
}
