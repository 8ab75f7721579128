/* Feature parameters of the frontend: the only place they are written.
 * The Python extension exposes every NK_FE_* value here as nanokws.features.FRONTEND_CONFIG, and
 * tools/nanokws/features/gen_tables.py reads this file to build nk_frontend_tables.c. */
#ifndef NK_FRONTEND_CONFIG_H
#define NK_FRONTEND_CONFIG_H

#define NK_FE_SAMPLE_RATE 16000
#define NK_FE_WINDOW_SAMPLES 480 /* 30 ms symmetric Hann window */
#define NK_FE_HOP_SAMPLES 320    /* 20 ms hop */
#define NK_FE_FFT_SIZE 512
#define NK_FE_NUM_CHANNELS 40 /* triangular filters on the HTK mel scale */
#define NK_FE_LOWER_HZ 20
#define NK_FE_UPPER_HZ 4000
#define NK_FE_CLIP_SAMPLES 16000
#define NK_FE_CLIP_FRAMES 49 /* frame k covers samples [320k, 320k + 480) */

/* Output level = round(scale * ln(mel_power + 10^floor_exp10) + offset) - shift, clamped to int8,
 * with audio scaled to [-1, 1) (int16 / 32768): the ../shared/data log-mel pixel minus 128. */
#define NK_FE_LOG_SCALE_MILLI 10040   /* 10.04 */
#define NK_FE_LOG_OFFSET_MILLI 145900 /* 145.9 */
#define NK_FE_LOG_FLOOR_EXP10 (-6)    /* + 1e-6 inside the log */
#define NK_FE_OUTPUT_SHIFT 128        /* int8 = pixel - 128 */

#endif /* NK_FRONTEND_CONFIG_H */
