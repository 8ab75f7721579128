/* kws_runner: the firmware's whole streaming path (nk_kws: frontend every hop, the compiled model
 * every `stride` hops, the recognizer) over the platform byte stream, for fast exact offline
 * scoring of long recordings (`nanokws stream score`). Audio goes in; the int8 scores of every
 * inference and every detection the C recognizer made come back.
 *
 * Protocol (little-endian):
 *   at boot   device -> "NKKH" u32 num_labels, u32 sample_rate, u32 hop_samples, u32 streaming,
 *                       u32 stride_align, u32 output_scale (IEEE-754 float bits),
 *                       i32 output_zero_point, u32 release_supported (1: nk_kws_set_release),
 *                       u32 window_frames (frames per inference: the model's window),
 *                       u8 len + model hash, u8 len + model name,
 *                       num_labels x (u8 len + label), then the cycle info (u32 hz, u8 len + unit)
 *   audio     host   -> "NKKA" u32 n, then n int16 samples
 *             device -> per inference 'S' u32 hop, num_labels int8 scores;
 *                       per detection 'T' u32 hop, u8 label, u8 score (after its inference's 'S');
 *                       then 'D' u32 n, i32 status of the last nk_kws_push that failed (0: none)
 *   config    host   -> "NKKC" u8 key, u32 a, u32 b   device -> 'C' i32 nk_kws status
 *                       keys: 'T' threshold of label a = b; 'A' all thresholds = a;
 *                       'W' smoothing window a; 'P' suppression a ms; 'S' stride a hops;
 *                       'L' release level a (status -100 when this build has no nk_kws_set_release)
 *   get       host   -> "NKKG"                  device -> 'G' u32 stride, u32 smoothing,
 *                       u32 suppression_ms, u32 release (0xFFFFFFFF: none), num_labels thresholds
 *   reset     host   -> "NKKR"                  device -> 'R'   (nk_kws_reset: config kept)
 *   quit      host   -> "NKKQ" (or end of stream): exit status 0
 * Anything else is answered with 'E' and the program exits with status 3.
 * No heap: fixed buffers; output is collected in one buffer and written when it fills. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nk_kws.h"
#include "nk_platform.h"
#include "program_io.h"

/* nk_kws_set_release (hysteresis re-arm level) exists once the recognizer has a release level. */
#if defined(NK_REC_DEFAULT_RELEASE) || defined(NK_KWS_HAVE_RELEASE)
#define KWS_RUNNER_RELEASE 1
#else
#define KWS_RUNNER_RELEASE 0
#endif

#define STATUS_UNSUPPORTED (-100)
#define CHUNK_SAMPLES 2048u
#define OUT_CAP 16384u
#define SCORE_RECORD (1u + 4u + NK_MODEL_NUM_LABELS)
#define DETECTION_RECORD (1u + 4u + 2u)

_Static_assert(OUT_CAP > 4u * (SCORE_RECORD + DETECTION_RECORD), "output buffer holds several records");

static nk_kws_t g_kws;
static int16_t g_chunk[CHUNK_SAMPLES];
static uint8_t g_bytes[CHUNK_SAMPLES * 2u];
static uint8_t g_out[OUT_CAP];
static size_t g_out_len;

static void out_flush(void) {
    if (g_out_len > 0) {
        nk_platform_write(g_out, g_out_len);
        g_out_len = 0;
    }
}

/* Room for `len` more bytes, flushing first when needed. */
static uint8_t *out_reserve(size_t len) {
    if (len > OUT_CAP) {
        prog_fail_request();
    }
    if (OUT_CAP - g_out_len < len) {
        out_flush();
    }
    uint8_t *p = g_out + g_out_len;
    g_out_len += len;
    return p;
}

static void put_u32_at(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void on_scores(void *ctx, uint32_t hop, const int8_t *scores, size_t n) {
    (void)ctx;
    if (n != NK_MODEL_NUM_LABELS) {
        prog_fail_request();
    }
    uint8_t *p = out_reserve(SCORE_RECORD);
    p[0] = 'S';
    put_u32_at(p + 1, hop);
    memcpy(p + 5, scores, n);
}

static void on_detection(void *ctx, const nk_kws_detection_t *det) {
    (void)ctx;
    uint8_t *p = out_reserve(DETECTION_RECORD);
    p[0] = 'T';
    put_u32_at(p + 1, det->hop);
    p[5] = det->label_index;
    p[6] = det->score;
}

static void put_short_string(const char *s) {
    size_t len = strlen(s);
    const uint8_t n = (uint8_t)(len > 255u ? 255u : len);
    nk_platform_write(&n, 1);
    nk_platform_write((const uint8_t *)s, n);
}

static void send_hello(void) {
    const nk_kws_model_t *m = nk_kws_model();
    const float scale = NK_MODEL_OUTPUT_SCALE;
    uint32_t scale_bits = 0;
    memcpy(&scale_bits, &scale, sizeof scale_bits);
    nk_platform_write((const uint8_t *)"NKKH", 4);
    prog_put_u32((uint32_t)m->num_labels);
    prog_put_u32(m->sample_rate);
    prog_put_u32(m->hop_samples);
    prog_put_u32(m->streaming);
    prog_put_u32(m->stride_align);
    prog_put_u32(scale_bits);
    prog_put_u32((uint32_t)(int32_t)NK_MODEL_OUTPUT_ZERO_POINT);
    prog_put_u32(KWS_RUNNER_RELEASE);
    prog_put_u32(m->window_frames);
    put_short_string(m->hash);
    put_short_string(m->name);
    for (size_t i = 0; i < m->num_labels; ++i) {
        put_short_string(m->labels[i]);
    }
    prog_put_cycle_info();
}

static void push_audio(uint32_t n) {
    int32_t failed = NK_KWS_OK;
    uint32_t left = n;
    while (left > 0) {
        const uint32_t take = left < CHUNK_SAMPLES ? left : CHUNK_SAMPLES;
        if (prog_read_exact(g_bytes, (size_t)take * 2u) != 0) {
            out_flush();
            nk_platform_exit(0);
        }
        for (uint32_t i = 0; i < take; ++i) {
            g_chunk[i] =
                (int16_t)(uint16_t)((uint32_t)g_bytes[2u * i] | ((uint32_t)g_bytes[2u * i + 1u] << 8));
        }
        const nk_kws_status_t st = nk_kws_push(&g_kws, g_chunk, take);
        if (st != NK_KWS_OK) {
            failed = (int32_t)st;
        }
        left -= take;
    }
    uint8_t *p = out_reserve(9);
    p[0] = 'D';
    put_u32_at(p + 1, n);
    put_u32_at(p + 5, (uint32_t)failed);
    out_flush();
}

static int32_t set_config(uint8_t key, uint32_t a, uint32_t b) {
    switch (key) {
    case 'T':
        return b > 255u ? (int32_t)NK_KWS_ERR_ARGUMENT : (int32_t)nk_kws_set_threshold(&g_kws, a, (uint8_t)b);
    case 'A':
        return a > 255u ? (int32_t)NK_KWS_ERR_ARGUMENT
                        : (int32_t)nk_kws_set_all_thresholds(&g_kws, (uint8_t)a);
    case 'W':
        return (int32_t)nk_kws_set_smoothing(&g_kws, a);
    case 'P':
        return a > 65535u ? (int32_t)NK_KWS_ERR_ARGUMENT
                          : (int32_t)nk_kws_set_suppression_ms(&g_kws, (uint16_t)a);
    case 'S':
        return (int32_t)nk_kws_set_stride(&g_kws, a);
    case 'L':
#if KWS_RUNNER_RELEASE
        return a > 255u ? (int32_t)NK_KWS_ERR_ARGUMENT : (int32_t)nk_kws_set_release(&g_kws, (uint8_t)a);
#else
        return STATUS_UNSUPPORTED;
#endif
    default:
        prog_fail_request();
        return STATUS_UNSUPPORTED;
    }
}

static void send_config(void) {
    const nk_kws_model_t *m = nk_kws_model();
    prog_put_tag('G');
    prog_put_u32(nk_kws_stride(&g_kws));
    prog_put_u32(nk_kws_smoothing(&g_kws));
    prog_put_u32(nk_kws_suppression_ms(&g_kws));
#if KWS_RUNNER_RELEASE
    prog_put_u32(nk_kws_release(&g_kws));
#else
    prog_put_u32(0xFFFFFFFFu);
#endif
    for (size_t i = 0; i < m->num_labels; ++i) {
        const uint8_t t = nk_kws_threshold(&g_kws, i);
        nk_platform_write(&t, 1);
    }
}

int main(void) {
    nk_platform_init();
    if (nk_kws_begin(&g_kws, nk_kws_model()) != NK_KWS_OK) {
        nk_platform_write((const uint8_t *)"NKKX", 4);
        nk_platform_exit(4);
    }
    (void)nk_kws_on_scores(&g_kws, on_scores, NULL);
    (void)nk_kws_on_detection(&g_kws, on_detection, NULL);
    send_hello();
    for (;;) {
        uint8_t magic[4];
        prog_read_magic(magic);
        const uint8_t cmd = magic[3];
        if (magic[0] != 'N' || magic[1] != 'K' || magic[2] != 'K') {
            prog_fail_request();
        }
        if (cmd == 'Q') {
            nk_platform_exit(0);
        } else if (cmd == 'A') {
            uint32_t n = 0;
            if (prog_read_u32(&n) != 0) {
                nk_platform_exit(0);
            }
            push_audio(n);
        } else if (cmd == 'C') {
            uint8_t key = 0;
            uint32_t a = 0;
            uint32_t b = 0;
            if (prog_read_exact(&key, 1) != 0 || prog_read_u32(&a) != 0 || prog_read_u32(&b) != 0) {
                nk_platform_exit(0);
            }
            const int32_t st = set_config(key, a, b);
            prog_put_tag('C');
            prog_put_u32((uint32_t)st);
        } else if (cmd == 'G') {
            send_config();
        } else if (cmd == 'R') {
            (void)nk_kws_reset(&g_kws);
            prog_put_tag('R');
        } else {
            prog_fail_request();
        }
    }
}
