/* tflm_runner: one model in TensorFlow Lite Micro (reference or CMSIS-NN kernels) under QEMU,
 * for `nanokws bench --compare-tflm` (tools/nanokws/compiler/tflm_compare/ builds it against
 * TFLite Micro source trees the user points at; firmware/Makefile never builds it).
 *
 * Per model, the build folder holds tflm_model_data.S (nk_tflm_model, nk_tflm_model_len: the
 * .tflite in flash) and tflm_ops.h (NK_TFLM_NUM_OPS and NK_TFLM_ADD_OPS(resolver, status): the
 * MicroMutableOpResolver calls for the model's builtin operators).
 *
 * Protocol (little-endian) over the nk_platform byte stream, like model_runner:
 *   at boot  device -> "NKTH" u32 status; status 0 is followed by u32 input_len, u32 output_len,
 *                      u32 arena_used_bytes, u32 arena_size, u32 init_cycles (interpreter +
 *                      AllocateTensors), u32 cycle_hz, u8 unit_len, unit_len bytes of the unit;
 *                      any other status by u32 len, len bytes of TFLite Micro's last log line,
 *                      and the device exits with status 4
 *   request  host   -> "NKTI" input_len bytes (int8)
 *   reply    device -> 'O' output_len bytes, u32 cycles of Invoke(), i32 status of Invoke(),
 *                      u32 len, len bytes of the last log line since the request (0 when none)
 *   quit     host   -> "NKTQ" (or end of stream): the device exits with status 0
 * Anything else is answered with 'E' and the device exits with status 3. */
#include <stddef.h>
#include <stdint.h>

#include "nk_platform.h"
#include "tensorflow/lite/micro/cortex_m_generic/debug_log_callback.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tflm_ops.h"

extern "C" {
#include "program_io.h"
}

extern const unsigned char nk_tflm_model[];
extern const unsigned int nk_tflm_model_len;

#ifndef NK_TFLM_ARENA_BYTES
#define NK_TFLM_ARENA_BYTES (1024u * 1024u)
#endif

enum HelloStatus : uint32_t {
    kHelloOk = 0,
    kHelloSchemaVersion = 1,
    kHelloOpResolver = 2,
    kHelloAllocate = 3,
    kHelloTensorType = 4,
};

namespace {

alignas(16) uint8_t g_arena[NK_TFLM_ARENA_BYTES];
char g_log[200];
uint32_t g_log_len;

/* TFLite Micro's DebugLog callback: keep the last non-empty line (MicroPrintf ends each message
 * with a separate "\r\n"). */
void keep_log_line(const char *s) {
    if (s[0] == '\0' || (s[0] == '\r' && s[1] == '\n' && s[2] == '\0')) {
        return;
    }
    uint32_t n = 0;
    while (s[n] != '\0' && n < sizeof g_log) {
        g_log[n] = s[n];
        ++n;
    }
    g_log_len = n;
}

void put_log(void) {
    prog_put_u32(g_log_len);
    nk_platform_write(reinterpret_cast<const uint8_t *>(g_log), g_log_len);
    g_log_len = 0;
}

[[noreturn]] void fail_hello(HelloStatus status) {
    nk_platform_write(reinterpret_cast<const uint8_t *>("NKTH"), 4);
    prog_put_u32(status);
    put_log();
    nk_platform_exit(4);
    for (;;) {
    }
}

} // namespace

int main(void) {
    nk_platform_init();
    RegisterDebugLogCallback(keep_log_line);
    const uint32_t t0 = nk_platform_cycles();
    const tflite::Model *model = tflite::GetModel(nk_tflm_model);
    if (model->version() != TFLITE_SCHEMA_VERSION) {
        fail_hello(kHelloSchemaVersion);
    }
    tflite::MicroMutableOpResolver<NK_TFLM_NUM_OPS> resolver;
    TfLiteStatus added = kTfLiteOk;
    NK_TFLM_ADD_OPS(resolver, added);
    if (added != kTfLiteOk) {
        fail_hello(kHelloOpResolver);
    }
    tflite::MicroInterpreter interpreter(model, resolver, g_arena, sizeof g_arena);
    if (interpreter.AllocateTensors() != kTfLiteOk) {
        fail_hello(kHelloAllocate);
    }
    const uint32_t init_cycles = nk_platform_cycles() - t0;
    TfLiteTensor *input = interpreter.input(0);
    TfLiteTensor *output = interpreter.output(0);
    if (interpreter.inputs_size() != 1 || interpreter.outputs_size() != 1 || input->type != kTfLiteInt8 ||
        output->type != kTfLiteInt8) {
        fail_hello(kHelloTensorType);
    }
    const uint32_t input_len = static_cast<uint32_t>(input->bytes);
    const uint32_t output_len = static_cast<uint32_t>(output->bytes);

    nk_platform_write(reinterpret_cast<const uint8_t *>("NKTH"), 4);
    prog_put_u32(kHelloOk);
    prog_put_u32(input_len);
    prog_put_u32(output_len);
    prog_put_u32(static_cast<uint32_t>(interpreter.arena_used_bytes()));
    prog_put_u32(static_cast<uint32_t>(sizeof g_arena));
    prog_put_u32(init_cycles);
    prog_put_cycle_info();

    for (;;) {
        uint8_t magic[4];
        prog_read_magic(magic);
        if (magic[0] != 'N' || magic[1] != 'K' || magic[2] != 'T' || (magic[3] != 'I' && magic[3] != 'Q')) {
            prog_fail_request();
        }
        if (magic[3] == 'Q') {
            nk_platform_exit(0);
        }
        if (prog_read_exact(input->data.uint8, input_len) != 0) {
            nk_platform_exit(0);
        }
        g_log_len = 0;
        const uint32_t t1 = nk_platform_cycles();
        const TfLiteStatus status = interpreter.Invoke();
        const uint32_t cycles = nk_platform_cycles() - t1;
        prog_put_tag('O');
        nk_platform_write(output->data.uint8, output_len);
        prog_put_u32(cycles);
        prog_put_u32(static_cast<uint32_t>(status));
        put_log();
    }
}
