/* frontend_bench: time the streaming frontend (nk_frontend_push_hop) hop by hop on any target;
 * `nanokws bench` runs it under QEMU for the frontend's instructions per hop (the live-mode budget).
 *
 * Protocol (little-endian), over the nk_platform byte stream:
 *   at boot   device -> "NKFH" u32 sample_rate, u32 hop_samples, u32 num_channels, u32 cycle_hz,
 *                       u8 unit_len, unit_len bytes of the cycle unit name
 *   request   host   -> "NKFP" hop_samples x int16 (one hop of PCM)
 *   reply     device -> u8 got (1 when the hop completed a frame), u32 cycles of
 *                       nk_frontend_push_hop, then num_channels int8 features when got
 *   reset     host   -> "NKFR": a fresh nk_frontend_t (no reply)
 *   quit      host   -> "NKFQ" (or end of stream): device exits with status 0
 * Anything else is answered with 'E' and the device exits with status 3. The sample rate and hop
 * come from nk_frontend_config.h as compiled, so the host never retypes them. */
#include <stddef.h>
#include <stdint.h>

#include "nk_frontend.h"
#include "nk_platform.h"
#include "program_io.h"

static nk_frontend_t g_fe;
static int16_t g_hop[NK_FE_HOP_SAMPLES];
static int8_t g_frame[NK_FE_NUM_CHANNELS];

static int read_hop(void) {
    for (size_t i = 0; i < NK_FE_HOP_SAMPLES; ++i) {
        uint8_t pair[2];
        if (prog_read_exact(pair, sizeof pair) != 0) {
            return -1;
        }
        g_hop[i] = (int16_t)(uint16_t)((unsigned)pair[0] | ((unsigned)pair[1] << 8));
    }
    return 0;
}

static void send_hello(void) {
    nk_platform_write((const uint8_t *)"NKFH", 4);
    prog_put_u32(NK_FE_SAMPLE_RATE);
    prog_put_u32(NK_FE_HOP_SAMPLES);
    prog_put_u32(NK_FE_NUM_CHANNELS);
    prog_put_cycle_info();
}

int main(void) {
    nk_platform_init();
    nk_frontend_init(&g_fe);
    send_hello();
    for (;;) {
        uint8_t magic[4];
        prog_read_magic(magic);
        const int ours = magic[0] == 'N' && magic[1] == 'K' && magic[2] == 'F';
        if (ours && magic[3] == 'Q') {
            nk_platform_exit(0);
        } else if (ours && magic[3] == 'R') {
            nk_frontend_init(&g_fe);
        } else if (ours && magic[3] == 'P') {
            if (read_hop() != 0) {
                nk_platform_exit(0);
            }
            const uint32_t t0 = nk_platform_cycles();
            const int got = nk_frontend_push_hop(&g_fe, g_hop, g_frame);
            const uint32_t cycles = nk_platform_cycles() - t0;
            prog_put_tag(got ? 1u : 0u);
            prog_put_u32(cycles);
            if (got) {
                nk_platform_write((const uint8_t *)g_frame, sizeof g_frame);
            }
        } else {
            prog_fail_request();
        }
    }
}
