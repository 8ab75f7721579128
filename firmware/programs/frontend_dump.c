/* frontend_dump: run the firmware frontend on a host and print its bits.
 *
 *   frontend_dump [--stream] [FILE]
 *
 * Reads raw 16 kHz int16 little-endian PCM from FILE (or stdin), writes int8 features
 * ([frame][channel], 40 bytes a frame) to stdout. Default: nk_frontend_compute_clip on the whole
 * input (frame k covers samples [320k, 320k + 480)); --stream: hops through nk_frontend_push_hop
 * (a trailing partial hop is dropped). Used by tests to check the Python extension against the
 * same C compiled by the firmware Makefile. Exit 0 on success, 1 on I/O error, 2 on bad usage. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "nk_frontend.h"

#define MAX_SAMPLES (NK_FE_SAMPLE_RATE * 60) /* 60 s of audio in clip mode */
#define MAX_FRAMES ((MAX_SAMPLES - NK_FE_WINDOW_SAMPLES) / NK_FE_HOP_SAMPLES + 1)

static int16_t g_audio[MAX_SAMPLES];
static int8_t g_features[MAX_FRAMES * NK_FE_NUM_CHANNELS];

/* Read up to `max` little-endian int16 samples; returns the count, or -1 on a read error. */
static long read_samples(FILE *in, int16_t *dst, size_t max) {
    size_t count = 0;
    uint8_t pair[2];
    while (count < max && fread(pair, 1, 2, in) == 2) {
        dst[count++] = (int16_t)(uint16_t)(pair[0] | (pair[1] << 8));
    }
    return ferror(in) ? -1 : (long)count;
}

static int run_stream(FILE *in) {
    nk_frontend_t fe;
    int16_t hop[NK_FE_HOP_SAMPLES];
    int8_t frame[NK_FE_NUM_CHANNELS];
    nk_frontend_init(&fe);
    for (;;) {
        const long got = read_samples(in, hop, NK_FE_HOP_SAMPLES);
        if (got < 0)
            return 1;
        if (got < NK_FE_HOP_SAMPLES)
            return 0;
        if (nk_frontend_push_hop(&fe, hop, frame) && fwrite(frame, 1, sizeof frame, stdout) != sizeof frame) {
            return 1;
        }
    }
}

static int run_clip(FILE *in) {
    const long got = read_samples(in, g_audio, MAX_SAMPLES);
    if (got < 0)
        return 1;
    if (got == MAX_SAMPLES && fgetc(in) != EOF) {
        fprintf(stderr, "frontend_dump: input longer than %d samples; use --stream\n", MAX_SAMPLES);
        return 2;
    }
    const size_t frames = nk_frontend_compute_clip(g_audio, (size_t)got, g_features, MAX_FRAMES);
    const size_t bytes = frames * NK_FE_NUM_CHANNELS;
    return fwrite(g_features, 1, bytes, stdout) == bytes ? 0 : 1;
}

int main(int argc, char **argv) {
    int stream = 0;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--stream") == 0) {
            stream = 1;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "usage: frontend_dump [--stream] [FILE]  (raw int16 LE PCM; int8 out)\n");
            return 2;
        } else {
            path = argv[i];
        }
    }
    FILE *in = stdin;
    if (path && strcmp(path, "-") != 0) {
        in = fopen(path, "rb");
        if (!in) {
            perror(path);
            return 1;
        }
    }
    const int rc = stream ? run_stream(in) : run_clip(in);
    if (in != stdin)
        fclose(in);
    if (fflush(stdout) != 0)
        return 1;
    if (rc == 1)
        perror("frontend_dump");
    return rc;
}
