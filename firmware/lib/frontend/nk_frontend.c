/* Fixed-point log-mel frontend. Integer arithmetic only: every target gives identical bits.
 *
 * Per frame (scales are tracked as powers of two, so no information is lost to a fixed format):
 *  1. window: p[n] = x[n] * w_q30[n] (int64, |p| < 2^45), then block-normalised by 2^s so that
 *     max |y| lies in [2^19, 2^20]: headroom for the FFT's growth (<= 480 * 2^20 < 2^29);
 *  2. real 512-point FFT as a 256-point complex radix-2 FFT of z[n] = y[2n] + i y[2n+1]
 *     (Q30 twiddles, 64-bit products, rounded) and a split step giving 2*X[k];
 *  3. power |2X[k]|^2 in uint64 (< 2^61), shifted right by r so the largest used bin is < 2^44;
 *  4. mel: sum of Q16 weights * power (each channel's weights sum < 2^19, so < 2^63);
 *  5. log: the mel power is rescaled to a fixed 2^40 scale, the 1e-6 floor added, log2 taken as
 *     leading-bit position + 256-entry table with linear interpolation (error < 3e-6), and mapped
 *     to the output level with Q24/Q44 constants.
 * Cost per frame, measured under QEMU mps2-an386 (-icount, arm-none-eabi-gcc -O2): about 96k
 * instructions (~20k window + normalisation, most of the rest the 1024 FFT butterflies of 4
 * 32x32->64 MACs each), i.e. roughly 1.5-2 ms at 64 MHz of a 20 ms hop. Known headroom: a single
 * window pass, a radix-4 FFT, 32-bit SMMULR butterflies.
 * Stack: about 3 KB (2 KB of FFT buffers + 1 KB of power). */
#include "nk_frontend.h"

#include <string.h>

#include "nk_frontend_tables.h"

#define FFT_POINTS (NK_FE_FFT_SIZE / 2) /* complex points of the packed real FFT */
#define POWER_BINS (NK_FE_UPPER_HZ * NK_FE_FFT_SIZE / NK_FE_SAMPLE_RATE + 1)
#define NORM_BITS 20    /* max |windowed sample| after normalisation: 2^19 .. 2^20 */
#define POWER_BITS 44   /* power before mel weighting: < 2^44 */
#define MEL_Q 16        /* mel weights' Q format */
#define WINDOW_Q 30     /* window's Q format */
#define TWIDDLE_Q 30    /* twiddles' Q format */
#define LOG2_Q 20       /* log2 table's Q format */
#define LEVEL_Q 44      /* Q of scale_q24 * log2_q20 */

_Static_assert((FFT_POINTS & (FFT_POINTS - 1)) == 0, "FFT size must be a power of two");
_Static_assert(FFT_POINTS <= 256, "nk_fe_bitrev is uint8_t");
_Static_assert(NK_FE_WINDOW_SAMPLES <= NK_FE_FFT_SIZE, "window longer than the FFT");
_Static_assert(NK_FE_WINDOW_SAMPLES >= NK_FE_HOP_SAMPLES &&
                   NK_FE_WINDOW_SAMPLES <= 2 * NK_FE_HOP_SAMPLES,
               "streaming keeps exactly one previous hop");
_Static_assert(POWER_BINS <= FFT_POINTS, "upper edge must lie below Nyquist");

/* Bit length of v (0 for 0). */
static int bitlen64(uint64_t v) {
#if defined(__GNUC__)
    return v ? 64 - __builtin_clzll(v) : 0;
#else
    int n = 0;
    while (v) {
        n++;
        v >>= 1;
    }
    return n;
#endif
}

/* round(v / 2^n) (halves up), 1 <= n <= 62. Signed >> is implementation-defined in C; GCC and
 * Clang (every target here) shift arithmetically, which the assertion below pins down. */
_Static_assert((-3 >> 1) == -2 && ((int64_t)-3 >> 1) == -2, "needs arithmetic right shift");
static inline int64_t round_shift(int64_t v, int n) {
    return (v + ((int64_t)1 << (n - 1))) >> n;
}

static int16_t window_sample(const int16_t *a, size_t len_a, const int16_t *b, size_t n) {
    return n < len_a ? a[n] : b[n - len_a];
}

/* Steps 1-3a: power[k] = |2 X[k]|^2 * 2^(90+2s) for k < POWER_BINS, s returned in *shift.
 * Returns 0 (power untouched) if the window is all zero. */
static int windowed_power(const int16_t *a, size_t len_a, const int16_t *b,
                          uint64_t power[POWER_BINS], int *shift) {
    int32_t re[FFT_POINTS], im[FFT_POINTS];
    uint64_t peak = 0;
    for (size_t n = 0; n < NK_FE_WINDOW_SAMPLES; n++) {
        const int32_t x = window_sample(a, len_a, b, n);
        const uint64_t mag = (uint64_t)(x < 0 ? -x : x) * (uint64_t)nk_fe_window_q30[n];
        if (mag > peak) peak = mag;
    }
    if (peak == 0) return 0;
    const int s = NORM_BITS - bitlen64(peak);
    *shift = s;

    /* Pack y[2n] + i y[2n+1] in bit-reversed order, zero-padding past the window. */
    for (size_t n = 0; n < FFT_POINTS; n++) {
        int32_t pair[2] = {0, 0};
        for (size_t j = 0; j < 2; j++) {
            const size_t idx = 2 * n + j;
            if (idx >= NK_FE_WINDOW_SAMPLES) break;
            const int64_t p = (int64_t)window_sample(a, len_a, b, idx) * nk_fe_window_q30[idx];
            pair[j] = (int32_t)(s >= 0 ? p * ((int64_t)1 << s) : round_shift(p, -s));
        }
        const size_t dst = nk_fe_bitrev[n];
        re[dst] = pair[0];
        im[dst] = pair[1];
    }

    /* Radix-2 decimation in time; twiddle W_len^j = W_512^(j * 512 / len). */
    for (size_t len = 2; len <= FFT_POINTS; len <<= 1) {
        const size_t half = len / 2;
        const size_t stride = NK_FE_FFT_SIZE / len;
        for (size_t start = 0; start < FFT_POINTS; start += len) {
            for (size_t j = 0; j < half; j++) {
                const int64_t c = nk_fe_cos_q30[j * stride];
                const int64_t sn = nk_fe_sin_q30[j * stride];
                const size_t ia = start + j, ib = ia + half;
                /* t = b * (c - i sn) */
                const int32_t tr = (int32_t)round_shift(re[ib] * c + im[ib] * sn, TWIDDLE_Q);
                const int32_t ti = (int32_t)round_shift(im[ib] * c - re[ib] * sn, TWIDDLE_Q);
                re[ib] = re[ia] - tr;
                im[ib] = im[ia] - ti;
                re[ia] += tr;
                im[ia] += ti;
            }
        }
    }

    /* Split: 2X[k] = (A + B) - i W^k (A - B) with A = Z[k], B = conj(Z[N-k]); power |2X[k]|^2
     * (|2X| <= 2 * 480 * 2^20 < 2^30, so the power is < 2^61). */
    for (size_t k = 0; k < POWER_BINS; k++) {
        const size_t m = (FFT_POINTS - k) & (FFT_POINTS - 1);
        const int64_t ar = re[k], ai = im[k], br = re[m], bi = -(int64_t)im[m];
        const int64_t dr = ar - br, di = ai - bi;
        const int64_t c = nk_fe_cos_q30[k], sn = nk_fe_sin_q30[k];
        const int64_t xr = ar + br + round_shift(c * di - sn * dr, TWIDDLE_Q);
        const int64_t xi = ai + bi - round_shift(c * dr + sn * di, TWIDDLE_Q);
        power[k] = (uint64_t)(xr * xr) + (uint64_t)(xi * xi);
    }
    return 1;
}

/* Step 5: level of a mel power given as mel * 2^-exp (exp = power-of-two scale). */
static int8_t level_of(uint64_t mel, int exp) {
    const int d = exp - NK_FE_POWER_EXP;
    uint64_t t;
    if (d >= 64) {
        t = 0;
    } else if (d > 0) {
        t = (mel >> d) + ((mel >> (d - 1)) & 1u);
    } else if (bitlen64(mel) - d <= 62) {
        t = mel << -d;
    } else {
        t = (uint64_t)1 << 62; /* far above any real input: saturates to +127 below */
    }
    t += nk_fe_log_floor_q40;

    const int e = bitlen64(t) - 1;
    const uint32_t m = (uint32_t)(e >= 24 ? t >> (e - 24) : t << (24 - e)); /* [2^24, 2^25) */
    const uint32_t f = m - ((uint32_t)1 << 24);
    const uint32_t idx = f >> 16, frac = f & 0xFFFFu;
    const uint32_t lo = nk_fe_log2_q20[idx], hi = nk_fe_log2_q20[idx + 1];
    const int64_t log2_q20 =
        (int64_t)e * ((int64_t)1 << LOG2_Q) + lo + (((uint64_t)(hi - lo) * frac + 0x8000u) >> 16);

    /* round(scale * log2 + offset), computed on a biased non-negative value. */
    const int64_t bias = (int64_t)256 << LEVEL_Q;
    const int64_t v = nk_fe_level_scale_q24 * log2_q20 + nk_fe_level_offset_q44 + bias +
                      ((int64_t)1 << (LEVEL_Q - 1));
    int64_t level = v < 0 ? -256 : (int64_t)((uint64_t)v >> LEVEL_Q) - 256;
    if (level < -128) level = -128;
    if (level > 127) level = 127;
    return (int8_t)level;
}

void nk_frontend_compute_frame(const int16_t *a, size_t len_a, const int16_t *b,
                               int8_t frame[NK_FE_NUM_CHANNELS]) {
    uint64_t power[POWER_BINS];
    int s = 0;
    if (!windowed_power(a, len_a, b, power, &s)) {
        const int8_t silent = level_of(0, NK_FE_POWER_EXP);
        for (size_t ch = 0; ch < NK_FE_NUM_CHANNELS; ch++) frame[ch] = silent;
        return;
    }

    uint64_t peak = 0;
    for (size_t k = 0; k <= nk_fe_mel_max_bin; k++) {
        if (power[k] > peak) peak = power[k];
    }
    const int over = bitlen64(peak) - POWER_BITS;
    const int r = over > 0 ? over : 0;
    if (r > 0) {
        for (size_t k = 0; k < POWER_BINS; k++) power[k] = (power[k] >> r) + ((power[k] >> (r - 1)) & 1u);
    }

    /* |2X| = 2 |X| 2^(45+s): power = P 2^(92+2s-r); Q16 weights add 16. */
    const int exp = 92 + 2 * s - r + MEL_Q;
    for (size_t ch = 0; ch < NK_FE_NUM_CHANNELS; ch++) {
        const uint32_t *w = &nk_fe_mel_weights[nk_fe_mel_offset[ch]];
        const uint64_t *p = &power[nk_fe_mel_start[ch]];
        uint64_t mel = 0;
        for (size_t j = 0; j < nk_fe_mel_len[ch]; j++) mel += p[j] * w[j];
        frame[ch] = level_of(mel, exp);
    }
}

void nk_frontend_init(nk_frontend_t *fe) {
    memset(fe, 0, sizeof *fe);
}

int nk_frontend_push_hop(nk_frontend_t *fe, const int16_t hop[NK_FE_HOP_SAMPLES],
                         int8_t frame[NK_FE_NUM_CHANNELS]) {
    int wrote = 0;
    if (fe->hops_seen > 0) {
        nk_frontend_compute_frame(fe->prev_hop, NK_FE_HOP_SAMPLES, hop, frame);
        wrote = 1;
    }
    memcpy(fe->prev_hop, hop, sizeof fe->prev_hop);
    if (fe->hops_seen < UINT32_MAX) fe->hops_seen++;
    return wrote;
}

size_t nk_frontend_compute_clip(const int16_t *audio, size_t num_samples, int8_t *features,
                                size_t max_frames) {
    if (num_samples < NK_FE_WINDOW_SAMPLES) return 0;
    size_t frames = (num_samples - NK_FE_WINDOW_SAMPLES) / NK_FE_HOP_SAMPLES + 1;
    if (frames > max_frames) frames = max_frames;
    for (size_t k = 0; k < frames; k++) {
        nk_frontend_compute_frame(audio + k * NK_FE_HOP_SAMPLES, NK_FE_WINDOW_SAMPLES, audio,
                                  features + k * NK_FE_NUM_CHANNELS);
    }
    return frames;
}
