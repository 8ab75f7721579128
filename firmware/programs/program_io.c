#include "program_io.h"

#include "nk_platform.h"

void prog_put_u32(uint32_t v) {
    const uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    nk_platform_write(b, sizeof b);
}

void prog_put_tag(uint8_t tag) { nk_platform_write(&tag, 1); }

int prog_read_exact(uint8_t *dst, size_t len) {
    for (size_t i = 0; i < len; ++i) {
        const int c = nk_platform_read_byte();
        if (c < 0) {
            return -1;
        }
        dst[i] = (uint8_t)c;
    }
    return 0;
}

int prog_read_u32(uint32_t *v) {
    uint8_t b[4];
    if (prog_read_exact(b, sizeof b) != 0) {
        return -1;
    }
    *v = (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
    return 0;
}

void prog_read_magic(uint8_t magic[4]) {
    if (prog_read_exact(magic, 4) != 0) {
        nk_platform_exit(0);
    }
}

void prog_put_cycle_info(void) {
    const char *unit = nk_platform_cycle_unit();
    uint8_t unit_len = 0;
    while (unit[unit_len] != '\0' && unit_len < 255) {
        ++unit_len;
    }
    prog_put_u32(nk_platform_cycle_hz());
    nk_platform_write(&unit_len, 1);
    nk_platform_write((const uint8_t *)unit, unit_len);
}

void prog_fail_request(void) {
    prog_put_tag('E');
    nk_platform_exit(3);
}
