/* stream_runner: feed frames to the compiled model's streaming form over the platform byte stream
 * and return the scores of every inference with cycle counts; run the clip model on request.
 *
 * Protocol (little-endian):
 *   at boot   device -> "NKSH" u32 frame_len, u32 window_frames, u32 output_len, u32 stride,
 *                       u32 align, u32 state_bytes, u32 work_bytes, u32 input_len, u32 cycle_hz,
 *                       u8 unit_len, unit_len bytes of the cycle unit name
 *             (a model folder without nk_model_stream.h: "NKSN", then exit status 4)
 *   frames    host   -> "NKSF" u32 n, then n frames of frame_len bytes
 *             device -> for each push that completes a window: 'S' u32 frames pushed since the reset,
 *                       output_len bytes of scores, u32 cycles of that push;
 *                       after the n frames: 'D' u32 n, u32 cycles of all n pushes, u32 most cycles
 *                       of one push, u32 num_layers, then num_layers x u32: each layer's cycles
 *                       over the n pushes (the layer hook; its row work and its head work)
 *   reset     host   -> "NKSR"                 device -> 'R'
 *   stride    host   -> "NKSS" u32 frames      device -> 'C' i32 nk_model_stream_set_stride()
 *   clip      host   -> "NKSI" input_len bytes device -> 'O' output_len bytes, u32 cycles,
 *                                                        i32 status of nk_model_invoke
 *   quit      host   -> "NKSQ" (or end of stream): device exits with status 0
 * Anything else is answered with 'E' and the device exits with status 3. */
#include <stddef.h>
#include <stdint.h>

#include "nk_model.h"
#include "nk_platform.h"
#include "program_io.h"

#if defined(__has_include)
#if __has_include("nk_model_stream.h")
#define NK_HAVE_STREAM 1
#endif
#endif

#ifndef NK_HAVE_STREAM

int main(void) {
    nk_platform_init();
    nk_platform_write((const uint8_t *)"NKSN", 4);
    nk_platform_exit(4);
    return 4;
}

#else

#include "nk_model_stream.h"

static int8_t g_frame[NK_MODEL_STREAM_FRAME_LEN];
static int8_t g_scores[NK_MODEL_STREAM_OUTPUT_LEN];
static int8_t g_input[NK_MODEL_INPUT_LEN];
static int8_t g_output[NK_MODEL_OUTPUT_LEN];
static uint32_t g_pushed;                            /* frames since the last reset */
static uint32_t g_layer_cycles[NK_MODEL_NUM_LAYERS]; /* per layer, over one batch of pushes */
static uint32_t g_layer_start;

static void layer_hook(int layer, int begin) {
    const uint32_t now = nk_platform_cycles();
    if (begin) {
        g_layer_start = now;
    } else if (layer >= 0 && layer < NK_MODEL_NUM_LAYERS) {
        g_layer_cycles[layer] += now - g_layer_start;
    }
}

_Static_assert(NK_MODEL_STREAM_OUTPUT_LEN == NK_MODEL_OUTPUT_LEN, "stream and clip outputs agree");
_Static_assert(NK_MODEL_STREAM_FRAME_LEN *NK_MODEL_STREAM_WINDOW_FRAMES == NK_MODEL_INPUT_LEN,
               "a window of frames is the clip model's input");

static void send_hello(void) {
    nk_platform_write((const uint8_t *)"NKSH", 4);
    prog_put_u32(NK_MODEL_STREAM_FRAME_LEN);
    prog_put_u32(NK_MODEL_STREAM_WINDOW_FRAMES);
    prog_put_u32(NK_MODEL_STREAM_OUTPUT_LEN);
    prog_put_u32(NK_MODEL_STREAM_STRIDE);
    prog_put_u32(NK_MODEL_STREAM_ALIGN);
    prog_put_u32(NK_MODEL_STREAM_STATE_BYTES);
    prog_put_u32(NK_MODEL_STREAM_WORK_BYTES);
    prog_put_u32(NK_MODEL_INPUT_LEN);
    prog_put_cycle_info();
}

static void push_frames(uint32_t n) {
    uint32_t total = 0;
    uint32_t most = 0;
    for (int i = 0; i < NK_MODEL_NUM_LAYERS; ++i) {
        g_layer_cycles[i] = 0;
    }
    for (uint32_t i = 0; i < n; ++i) {
        if (prog_read_exact((uint8_t *)g_frame, sizeof g_frame) != 0) {
            nk_platform_exit(0);
        }
        const uint32_t t0 = nk_platform_cycles();
        const int ready = nk_model_stream_push(g_frame, g_scores);
        const uint32_t cycles = nk_platform_cycles() - t0;
        total += cycles;
        most = cycles > most ? cycles : most;
        ++g_pushed;
        if (ready < 0) {
            prog_fail_request();
        }
        if (ready == 1) {
            prog_put_tag('S');
            prog_put_u32(g_pushed);
            nk_platform_write((const uint8_t *)g_scores, sizeof g_scores);
            prog_put_u32(cycles);
        }
    }
    prog_put_tag('D');
    prog_put_u32(n);
    prog_put_u32(total);
    prog_put_u32(most);
    prog_put_u32(NK_MODEL_NUM_LAYERS);
    for (int i = 0; i < NK_MODEL_NUM_LAYERS; ++i) {
        prog_put_u32(g_layer_cycles[i]);
    }
}

int main(void) {
    nk_platform_init();
    nk_model_stream_reset();
    nk_model_set_layer_hook(layer_hook);
    send_hello();
    for (;;) {
        uint8_t magic[4];
        prog_read_magic(magic);
        const uint8_t cmd = magic[3];
        if (magic[0] != 'N' || magic[1] != 'K' || magic[2] != 'S' ||
            (cmd != 'F' && cmd != 'R' && cmd != 'S' && cmd != 'I' && cmd != 'Q')) {
            prog_fail_request();
        }
        if (cmd == 'Q') {
            nk_platform_exit(0);
        }
        if (cmd == 'F') {
            uint32_t n = 0;
            if (prog_read_u32(&n) != 0) {
                nk_platform_exit(0);
            }
            push_frames(n);
        } else if (cmd == 'R') {
            nk_model_stream_reset();
            g_pushed = 0;
            prog_put_tag('R');
        } else if (cmd == 'S') {
            uint32_t frames = 0;
            if (prog_read_u32(&frames) != 0) {
                nk_platform_exit(0);
            }
            const int rc = nk_model_stream_set_stride(frames);
            prog_put_tag('C');
            prog_put_u32((uint32_t)rc);
        } else {
            if (prog_read_exact((uint8_t *)g_input, sizeof g_input) != 0) {
                nk_platform_exit(0);
            }
            const uint32_t t0 = nk_platform_cycles();
            const int status = nk_model_invoke(g_input, g_output);
            const uint32_t cycles = nk_platform_cycles() - t0;
            prog_put_tag('O');
            nk_platform_write((const uint8_t *)g_output, sizeof g_output);
            prog_put_u32(cycles);
            prog_put_u32((uint32_t)status);
        }
    }
}

#endif
