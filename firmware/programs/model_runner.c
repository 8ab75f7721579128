/* model_runner: feed inputs to the compiled model over the platform byte stream, return outputs
 * and cycle counts (whole inference and per layer), optionally every layer's output tensor.
 *
 * Protocol (little-endian):
 *   at boot   device -> "NKRH" u32 input_len, u32 output_len, u32 num_layers, u32 cycle_hz,
 *                       u8 unit_len, unit_len bytes of the cycle unit name
 *   request   host   -> "NKRI" u8 flags (bit 0: dump layer outputs), input_len bytes
 *   reply     device -> for each layer when dumping: 'L' u32 layer u32 len, len bytes
 *                       then 'O' output_len bytes, u32 total_cycles, num_layers x u32 cycles,
 *                       i32 status of nk_model_invoke
 *   quit      host   -> "NKRQ" (or end of stream): device exits with status 0
 * Anything else is answered with 'E' and the device exits with status 3. */
#include <stddef.h>
#include <stdint.h>

#include "nk_model.h"
#include "nk_platform.h"

static int8_t g_input[NK_MODEL_INPUT_LEN];
static int8_t g_output[NK_MODEL_OUTPUT_LEN];
static uint32_t g_layer_cycles[NK_MODEL_NUM_LAYERS];
static uint32_t g_layer_start;
static int g_dump;

static void put_u32(uint32_t v)
{
    const uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    nk_platform_write(b, sizeof b);
}

static int read_exact(uint8_t *dst, size_t len)
{
    for (size_t i = 0; i < len; ++i) {
        const int c = nk_platform_read_byte();
        if (c < 0) {
            return -1;
        }
        dst[i] = (uint8_t)c;
    }
    return 0;
}

static void layer_hook(int layer, int begin)
{
    const uint32_t now = nk_platform_cycles();
    if (layer < 0 || layer >= NK_MODEL_NUM_LAYERS) {
        return;
    }
    if (begin) {
        g_layer_start = now;
        return;
    }
    g_layer_cycles[layer] = now - g_layer_start;
    if (g_dump) {
        uint32_t len = 0;
        const int8_t *data = nk_model_layer_output(layer, &len);
        const uint8_t tag = 'L';
        nk_platform_write(&tag, 1);
        put_u32((uint32_t)layer);
        put_u32(len);
        nk_platform_write((const uint8_t *)data, len);
    }
}

static void send_hello(void)
{
    const char *unit = nk_platform_cycle_unit();
    uint8_t unit_len = 0;
    while (unit[unit_len] != '\0' && unit_len < 255) {
        ++unit_len;
    }
    nk_platform_write((const uint8_t *)"NKRH", 4);
    put_u32(NK_MODEL_INPUT_LEN);
    put_u32(NK_MODEL_OUTPUT_LEN);
    put_u32(NK_MODEL_NUM_LAYERS);
    put_u32(nk_platform_cycle_hz());
    nk_platform_write(&unit_len, 1);
    nk_platform_write((const uint8_t *)unit, unit_len);
}

int main(void)
{
    nk_platform_init();
    nk_model_set_layer_hook(layer_hook);
    send_hello();
    for (;;) {
        uint8_t magic[4];
        if (read_exact(magic, sizeof magic) != 0) {
            nk_platform_exit(0);
        }
        if (magic[0] != 'N' || magic[1] != 'K' || magic[2] != 'R' || (magic[3] != 'I' && magic[3] != 'Q')) {
            const uint8_t err = 'E';
            nk_platform_write(&err, 1);
            nk_platform_exit(3);
        }
        if (magic[3] == 'Q') {
            nk_platform_exit(0);
        }
        uint8_t flags = 0;
        if (read_exact(&flags, 1) != 0 || read_exact((uint8_t *)g_input, sizeof g_input) != 0) {
            nk_platform_exit(0);
        }
        g_dump = flags & 1;
        for (int i = 0; i < NK_MODEL_NUM_LAYERS; ++i) {
            g_layer_cycles[i] = 0;
        }
        const uint32_t t0 = nk_platform_cycles();
        const int status = nk_model_invoke(g_input, g_output);
        const uint32_t total = nk_platform_cycles() - t0;
        const uint8_t tag = 'O';
        nk_platform_write(&tag, 1);
        nk_platform_write((const uint8_t *)g_output, sizeof g_output);
        put_u32(total);
        for (int i = 0; i < NK_MODEL_NUM_LAYERS; ++i) {
            put_u32(g_layer_cycles[i]);
        }
        put_u32((uint32_t)status);
    }
}
