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
#include "program_io.h"

static int8_t g_input[NK_MODEL_INPUT_LEN];
static int8_t g_output[NK_MODEL_OUTPUT_LEN];
static uint32_t g_layer_cycles[NK_MODEL_NUM_LAYERS];
static uint32_t g_layer_start;
static int g_dump;

static void layer_hook(int layer, int begin) {
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
        prog_put_tag('L');
        prog_put_u32((uint32_t)layer);
        prog_put_u32(len);
        nk_platform_write((const uint8_t *)data, len);
    }
}

static void send_hello(void) {
    nk_platform_write((const uint8_t *)"NKRH", 4);
    prog_put_u32(NK_MODEL_INPUT_LEN);
    prog_put_u32(NK_MODEL_OUTPUT_LEN);
    prog_put_u32(NK_MODEL_NUM_LAYERS);
    prog_put_cycle_info();
}

int main(void) {
    nk_platform_init();
    nk_model_set_layer_hook(layer_hook);
    send_hello();
    for (;;) {
        uint8_t magic[4];
        prog_read_magic(magic);
        if (magic[0] != 'N' || magic[1] != 'K' || magic[2] != 'R' || (magic[3] != 'I' && magic[3] != 'Q')) {
            prog_fail_request();
        }
        if (magic[3] == 'Q') {
            nk_platform_exit(0);
        }
        uint8_t flags = 0;
        if (prog_read_exact(&flags, 1) != 0 || prog_read_exact((uint8_t *)g_input, sizeof g_input) != 0) {
            nk_platform_exit(0);
        }
        g_dump = flags & 1;
        for (int i = 0; i < NK_MODEL_NUM_LAYERS; ++i) {
            g_layer_cycles[i] = 0;
        }
        const uint32_t t0 = nk_platform_cycles();
        const int status = nk_model_invoke(g_input, g_output);
        const uint32_t total = nk_platform_cycles() - t0;
        prog_put_tag('O');
        nk_platform_write((const uint8_t *)g_output, sizeof g_output);
        prog_put_u32(total);
        for (int i = 0; i < NK_MODEL_NUM_LAYERS; ++i) {
            prog_put_u32(g_layer_cycles[i]);
        }
        prog_put_u32((uint32_t)status);
    }
}
