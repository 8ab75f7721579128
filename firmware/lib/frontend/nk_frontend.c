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
 * Cost per frame, measured under QEMU mps2-an386 (-icount shift=0, arm-none-eabi-gcc -O2, with
 * tests/fixtures/frontend_golden/fe_qemu.c): about 49k instructions (96k before the identities
 * below; 2.5 M per second of audio): ~5k window peak, ~6k normalising and packing, ~24k FFT
 * (642 butterflies of 4 32x32->64 MACs, 382 with a twiddle of exactly 1 or -i as additions),
 * ~4k split and power, ~2k power rescaling, ~7k mel and log; i.e. roughly 1 ms at 64 MHz of a
 * 20 ms hop. An all-zero window takes ~5k (peak only).
 * Known headroom: packing fused with the first FFT pass; a radix-4 FFT or 32-bit SMMULR
 * butterflies would round differently (not bit-exact).
 * Stack: about 3 KB (2 KB of FFT buffer + 1 KB of power).
 *
 * The arithmetic is defined by the plain formulas above; the code computes exactly the same
 * integers with fewer instructions, by identities that hold for every input (the golden test,
 * tests/test_frontend_golden.py, pins the output bits on every build):
 *  - the block peak only needs the bit length of max |p|, which is that of the OR of all |p|;
 *  - the window's two pieces (a, len_a; b) are read by separate loops, no per-sample branch;
 *  - a rounded shift whose result fits in 32 bits is taken from the two 32-bit halves;
 *  - a twiddle of exactly 1 or -i (cos/sin = 2^30 or 0: j = 0 and j = len/4 of every stage,
 *    so all of the first two stages) multiplies exactly, round(x * 2^30 / 2^30) = x: those
 *    butterflies are additions (checked against the tables at run time);
 *  - only the power bins that the peak and the mel filters read (k <= nk_fe_mel_max_bin) are
 *    computed and rescaled; (p >> r) + bit r-1 of p == (p + 2^(r-1)) >> r;
 *  - uint64_t sums are sums mod 2^64, so the mel sum is taken from the power's 32-bit halves. */
#include "nk_frontend.h"

#include <string.h>

#include "nk_frontend_tables.h"

#define FFT_POINTS (NK_FE_FFT_SIZE / 2) /* complex points of the packed real FFT */
#define POWER_BINS (NK_FE_UPPER_HZ * NK_FE_FFT_SIZE / NK_FE_SAMPLE_RATE + 1)
#define NORM_BITS 20  /* max |windowed sample| after normalisation: 2^19 .. 2^20 */
#define POWER_BITS 44 /* power before mel weighting: < 2^44 */
#define MEL_Q 16      /* mel weights' Q format */
#define WINDOW_Q 30   /* window's Q format */
#define TWIDDLE_Q 30  /* twiddles' Q format */
#define LOG2_Q 20     /* log2 table's Q format */
#define LEVEL_Q 44    /* Q of scale_q24 * log2_q20 */
#define TWIDDLE_HALF ((uint64_t)1 << (TWIDDLE_Q - 1))

_Static_assert((FFT_POINTS & (FFT_POINTS - 1)) == 0, "FFT size must be a power of two");
_Static_assert(FFT_POINTS <= 256, "nk_fe_bitrev is uint8_t");
_Static_assert(NK_FE_WINDOW_SAMPLES <= NK_FE_FFT_SIZE, "window longer than the FFT");
_Static_assert(NK_FE_WINDOW_SAMPLES >= NK_FE_HOP_SAMPLES && NK_FE_WINDOW_SAMPLES <= 2 * NK_FE_HOP_SAMPLES,
               "streaming keeps exactly one previous hop");
_Static_assert(POWER_BINS <= FFT_POINTS, "upper edge must lie below Nyquist");
/* |x| * w < 2^15 * 2^30: s = NORM_BITS - bitlen >= -25, so right shifts are by 1..25 < 32. */
_Static_assert(15 + WINDOW_Q - NORM_BITS < 32, "normalising shift must stay below 32");

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
static inline int64_t round_shift(int64_t v, int n) { return (v + ((int64_t)1 << (n - 1))) >> n; }

/* (int32_t)(v >> n) for int64_t v = (int64_t)u and 1 <= n <= 31: bits n .. n+31 of v, taken
 * from its two 32-bit halves (a 64-bit shift costs several instructions on a 32-bit core). The
 * same bits as the plain cast of the arithmetic shift, which wraps on every compiler used here;
 * callers pass values that fit anyway. */
static inline int32_t low32_shift(uint64_t u, int n) {
    return (int32_t)(((uint32_t)u >> n) | ((uint32_t)(u >> 32) << (32 - n)));
}

/* OR of |x[i]| * w[i], i < count. Its bit length is that of the largest term. The window is
 * a Hann window in Q30, 0 <= w <= 2^30, so (uint32_t)w is its value. */
static uint64_t or_of_magnitudes(const int16_t *x, const int32_t *w, size_t count) {
    uint32_t lo = 0, hi = 0;
    size_t i = 0;
    for (; i + 2 <= count; i += 2) { /* two at a time: less loop overhead */
        const int32_t v0 = x[i], v1 = x[i + 1];
        const uint64_t m0 = (uint64_t)(uint32_t)(v0 < 0 ? -v0 : v0) * (uint32_t)w[i];
        const uint64_t m1 = (uint64_t)(uint32_t)(v1 < 0 ? -v1 : v1) * (uint32_t)w[i + 1];
        lo |= (uint32_t)m0 | (uint32_t)m1;
        hi |= (uint32_t)(m0 >> 32) | (uint32_t)(m1 >> 32);
    }
    if (i < count) {
        const int32_t v = x[i];
        const uint64_t m = (uint64_t)(uint32_t)(v < 0 ? -v : v) * (uint32_t)w[i];
        lo |= (uint32_t)m;
        hi |= (uint32_t)(m >> 32);
    }
    return (uint64_t)hi << 32 | lo;
}

/* y = round(x * w / 2^n) for 1 <= n <= 25: the normalised windowed sample when s = -n < 0.
 * (v + 2^(n-1)) >> n of int64 v = x * w, keeping the 32 bits that hold the result. */
static inline int32_t norm_down(int32_t x, int32_t w, uint32_t half, int n) {
    return low32_shift((uint64_t)((int64_t)x * w) + half, n);
}

/* Exact y for any s (the rare case s >= 0 included): the defining formula. */
static int32_t norm_any(int32_t x, int32_t w, int s) {
    const int64_t p = (int64_t)x * w;
    return (int32_t)(s >= 0 ? p * ((int64_t)1 << s) : round_shift(p, -s));
}

/* Packs samples [2*m0, 2*m1) of the window, read from x[0 ..), as z[bitrev(m)] = y[2m] + i y[2m+1]
 * (z interleaved re, im). s < 0. */
static void pack_pairs(const int16_t *x, size_t m0, size_t m1, int s, int32_t *z) {
    const int n = -s;
    const uint32_t half = (uint32_t)1 << (n - 1);
    const int32_t *w = &nk_fe_window_q30[2 * m0];
    const uint8_t *rev = &nk_fe_bitrev[m0];
    for (size_t m = m0; m < m1; m++) {
        int32_t *dst = &z[2 * *rev++];
        dst[0] = norm_down(x[0], w[0], half, n);
        dst[1] = norm_down(x[1], w[1], half, n);
        x += 2;
        w += 2;
    }
}

/* Radix-2 decimation-in-time butterfly on a = pa[0..1], b = pb[0..1] with twiddle c - i sn:
 * t = round(b * (c - i sn) / 2^30), a' = a + t, b' = a - t. The real and imaginary halves are
 * finished one after the other (fewer live registers on the Cortex-M4). */
static inline void butterfly(int32_t *pa, int32_t *pb, int32_t c, int32_t sn) {
    const int32_t br = pb[0], bi = pb[1];
    const int64_t pr = (int64_t)br * c + (int64_t)bi * sn;
    const int32_t tr = low32_shift((uint64_t)pr + TWIDDLE_HALF, TWIDDLE_Q);
    const int32_t ar = pa[0];
    pa[0] = ar + tr;
    pb[0] = ar - tr;
    const int64_t pi = (int64_t)bi * c + (int64_t)(-br) * sn;
    const int32_t ti = low32_shift((uint64_t)pi + TWIDDLE_HALF, TWIDDLE_Q);
    const int32_t ai = pa[1];
    pa[1] = ai + ti;
    pb[1] = ai - ti;
}

/* Butterflies j = j0 .. j0+count-1 of one group of a stage with points len apart (in int32
 * units) and twiddle index stride `stride`: pa = the group's point j0. */
static void butterfly_run(int32_t *pa, size_t len, size_t j0, size_t count, size_t stride) {
    const int32_t *cp = &nk_fe_cos_q30[j0 * stride], *sp = &nk_fe_sin_q30[j0 * stride];
    for (; count > 0; count--) {
        butterfly(pa, pa + len, *cp, *sp);
        pa += 2;
        cp += stride;
        sp += stride;
    }
}

/* The 256-point FFT of z (interleaved re, im, bit-reversed input order), radix 2, in place;
 * stage len's twiddles W_len^j = W_512^(j * 512 / len). Twiddles of exactly 1 (j = 0) and -i
 * (j = len/4) multiply exactly (gen_tables.py checks those table entries), so those butterflies
 * are plain additions: the first two stages (len 2 and 4) are done together as one pass of
 * additions over groups of four points. Early
 * stages loop over groups inside each twiddle, late ones (few groups) over twiddles inside each
 * group. */
static void fft_stages(int32_t z[2 * FFT_POINTS]) {
    for (int32_t *p = z; p < z + 2 * FFT_POINTS; p += 8) {
        /* len 2: (p0, p1) and (p2, p3) with t = b; len 4: (p0', p2') with t = b, (p1', p3')
         * with t = -i b. */
        const int32_t r0 = p[0], i0 = p[1], r1 = p[2], i1 = p[3];
        const int32_t r2 = p[4], i2 = p[5], r3 = p[6], i3 = p[7];
        const int32_t ar = r0 + r1, ai = i0 + i1, br = r0 - r1, bi = i0 - i1;
        const int32_t cr = r2 + r3, ci = i2 + i3, dr = r2 - r3, di = i2 - i3;
        p[0] = ar + cr;
        p[1] = ai + ci;
        p[2] = br + di;
        p[3] = bi - dr;
        p[4] = ar - cr;
        p[5] = ai - ci;
        p[6] = br - di;
        p[7] = bi + dr;
    }
    for (size_t len = 8; len <= FFT_POINTS; len <<= 1) {
        const size_t half = len / 2, quarter = len / 4, groups = FFT_POINTS / len;
        const size_t stride = NK_FE_FFT_SIZE / len;
        if (groups < 8) { /* twiddles inside each group */
            for (int32_t *g = z; g < z + 2 * FFT_POINTS; g += 2 * len) {
                int32_t *pa = g, *pb = g + len;
                int32_t ar = pa[0], ai = pa[1], br = pb[0], bi = pb[1]; /* j = 0: t = b */
                pa[0] = ar + br;
                pa[1] = ai + bi;
                pb[0] = ar - br;
                pb[1] = ai - bi;
                butterfly_run(g + 2, len, 1, quarter - 1, stride);
                pa = g + 2 * quarter; /* j = len/4: t = -i b */
                pb = pa + len;
                ar = pa[0], ai = pa[1], br = pb[0], bi = pb[1];
                pa[0] = ar + bi;
                pa[1] = ai - br;
                pb[0] = ar - bi;
                pb[1] = ai + br;
                butterfly_run(g + 2 * quarter + 2, len, quarter + 1, quarter - 1, stride);
            }
            continue;
        }
        for (size_t j = 0; j < half; j++) { /* groups inside each twiddle */
            int32_t *pa = &z[2 * j];
            if (j == 0) { /* t = b */
                for (size_t g = groups; g > 0; g--, pa += 2 * len) {
                    int32_t *pb = pa + len;
                    const int32_t ar = pa[0], ai = pa[1], br = pb[0], bi = pb[1];
                    pa[0] = ar + br;
                    pa[1] = ai + bi;
                    pb[0] = ar - br;
                    pb[1] = ai - bi;
                }
            } else if (j == quarter) { /* t = -i b */
                for (size_t g = groups; g > 0; g--, pa += 2 * len) {
                    int32_t *pb = pa + len;
                    const int32_t ar = pa[0], ai = pa[1], br = pb[0], bi = pb[1];
                    pa[0] = ar + bi;
                    pa[1] = ai - br;
                    pb[0] = ar - bi;
                    pb[1] = ai + br;
                }
            } else {
                const int32_t c = nk_fe_cos_q30[j * stride], sn = nk_fe_sin_q30[j * stride];
                for (size_t g = groups; g > 0; g--, pa += 2 * len)
                    butterfly(pa, pa + len, c, sn);
            }
        }
    }
}

/* Bins the peak and the mel filters read: 0 .. nk_fe_mel_max_bin. */
static inline size_t used_bins(void) {
    return nk_fe_mel_max_bin < POWER_BINS ? (size_t)nk_fe_mel_max_bin + 1 : POWER_BINS;
}

/* |2X[k]|^2 from A = Z[k] = pk[0] + i pk[1] and Z[N-k] = pm[0] + i pm[1] (B = conj(Z[N-k])):
 * 2X[k] = (A + B) - i W^k (A - B) with D = A - B, computed as defined (c = cos, sn = sin):
 * xr = ar + br + round((c di - sn dr) / 2^30), xi = ai + bi - round((c dr + sn di) / 2^30). */
static inline uint64_t bin_power(const int32_t *pk, const int32_t *pm, int32_t c, int32_t sn) {
    const int32_t ar = pk[0], ai = pk[1], br = pm[0], bi = -pm[1];
    const int32_t dr = ar - br, di = ai - bi;
    const int64_t ur = (int64_t)c * di + (int64_t)(-sn) * dr;
    const int64_t ui = (int64_t)c * dr + (int64_t)sn * di;
    const int32_t xr = ar + br + low32_shift((uint64_t)ur + TWIDDLE_HALF, TWIDDLE_Q);
    const int32_t xi = ai + bi - low32_shift((uint64_t)ui + TWIDDLE_HALF, TWIDDLE_Q);
    return (uint64_t)((int64_t)xr * xr + (int64_t)xi * xi);
}

/* Steps 1-3a: power[k] = |2 X[k]|^2 * 2^(90+2s) for k <= nk_fe_mel_max_bin (the only bins read
 * afterwards), s returned in *shift, and the OR of those powers in *power_or. Returns 0 (power
 * untouched) if the window is all zero. */
static int windowed_power(const int16_t *a, size_t len_a, const int16_t *b, uint64_t power[POWER_BINS],
                          int *shift, uint64_t *power_or) {
    int32_t z[2 * FFT_POINTS]; /* interleaved re, im */
    const size_t la = len_a < NK_FE_WINDOW_SAMPLES ? len_a : NK_FE_WINDOW_SAMPLES;
    const size_t lb = NK_FE_WINDOW_SAMPLES - la;

    const uint64_t peak_or =
        or_of_magnitudes(a, nk_fe_window_q30, la) | or_of_magnitudes(b, &nk_fe_window_q30[la], lb);
    if (peak_or == 0)
        return 0;
    const int s = NORM_BITS - bitlen64(peak_or);
    *shift = s;

    /* Pack y[2n] + i y[2n+1] in bit-reversed order, zero-padding past the window. */
    const size_t pairs = NK_FE_WINDOW_SAMPLES / 2;
    if (s < 0 && la % 2 == 0) {
        pack_pairs(a, 0, la / 2, s, z);
        pack_pairs(b, la / 2, pairs, s, z);
    } else { /* s >= 0 (a near-silent window) or an odd split: sample by sample */
        for (size_t idx = 0; idx < 2 * pairs; idx++) {
            const int32_t x = idx < la ? a[idx] : b[idx - la];
            z[2 * nk_fe_bitrev[idx / 2] + idx % 2] = norm_any(x, nk_fe_window_q30[idx], s);
        }
    }
    _Static_assert(NK_FE_WINDOW_SAMPLES % 2 == 0, "the window fills whole complex points");
    for (size_t m = pairs; m < FFT_POINTS; m++) {
        int32_t *dst = &z[2 * nk_fe_bitrev[m]];
        dst[0] = 0;
        dst[1] = 0;
    }

    fft_stages(z);

    /* Split: 2X[k] = (A + B) - i W^k (A - B) with A = Z[k], B = conj(Z[N-k]); power |2X[k]|^2
     * (|2X| <= 2 * 480 * 2^20 < 2^30, so the power is < 2^61 and both parts fit in int32). */
    const size_t bins = used_bins();
    power[0] = bin_power(z, z, nk_fe_cos_q30[0], nk_fe_sin_q30[0]);
    const int32_t *pm = &z[2 * FFT_POINTS];
    for (size_t k = 1; k < bins; k++) {
        pm -= 2;
        power[k] = bin_power(&z[2 * k], pm, nk_fe_cos_q30[k], nk_fe_sin_q30[k]);
    }
    uint32_t or_lo = 0, or_hi = 0;
    for (size_t k = 0; k < bins; k++) {
        or_lo |= (uint32_t)power[k];
        or_hi |= (uint32_t)(power[k] >> 32);
    }
    *power_or = (uint64_t)or_hi << 32 | or_lo;
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
    const int64_t v =
        nk_fe_level_scale_q24 * log2_q20 + nk_fe_level_offset_q44 + bias + ((int64_t)1 << (LEVEL_Q - 1));
    int64_t level = v < 0 ? -256 : (int64_t)((uint64_t)v >> LEVEL_Q) - 256;
    if (level < -128)
        level = -128;
    if (level > 127)
        level = 127;
    return (int8_t)level;
}

void nk_frontend_compute_frame(const int16_t *a, size_t len_a, const int16_t *b,
                               int8_t frame[NK_FE_NUM_CHANNELS]) {
    uint64_t power[POWER_BINS];
    int s = 0;
    uint64_t power_or = 0;
    if (!windowed_power(a, len_a, b, power, &s, &power_or)) {
        const int8_t silent = level_of(0, NK_FE_POWER_EXP);
        for (size_t ch = 0; ch < NK_FE_NUM_CHANNELS; ch++)
            frame[ch] = silent;
        return;
    }

    /* Peak over k <= nk_fe_mel_max_bin: the bit length of the OR is that of the largest. */
    const int over = bitlen64(power_or) - POWER_BITS;
    const int r = over > 0 ? over : 0; /* power < 2^61: r <= 17 */
    if (r > 0) {
        /* (p >> r) + bit r-1 of p == (p + 2^(r-1)) >> r; p < 2^61 so the sum cannot wrap. Only
         * the bins the mel filters read are rescaled. */
        const size_t bins = used_bins();
        if (r < 32) { /* always (r <= 17): the same shift on 32-bit halves */
            const uint32_t half = (uint32_t)1 << (r - 1);
            for (size_t k = 0; k < bins; k++) {
                const uint64_t p = power[k] + half;
                const uint32_t lo = (uint32_t)p, hi = (uint32_t)(p >> 32);
                power[k] = (uint64_t)(hi >> r) << 32 | ((lo >> r) | (hi << (32 - r)));
            }
        } else {
            const uint64_t half = (uint64_t)1 << (r - 1);
            for (size_t k = 0; k < bins; k++)
                power[k] = (power[k] + half) >> r;
        }
    }

    /* |2X| = 2 |X| 2^(45+s): power = P 2^(92+2s-r); Q16 weights add 16. */
    const int exp = 92 + 2 * s - r + MEL_Q;
    for (size_t ch = 0; ch < NK_FE_NUM_CHANNELS; ch++) {
        const uint32_t *w = &nk_fe_mel_weights[nk_fe_mel_offset[ch]];
        const uint64_t *p = &power[nk_fe_mel_start[ch]];
        /* sum of p * w mod 2^64 (as uint64_t arithmetic is), from p's 32-bit halves: the low
         * halves' 64-bit products, plus the high halves' products mod 2^32 shifted by 32 */
        uint64_t mel = 0;
        uint32_t mel_hi = 0;
        for (const uint32_t *const w_end = w + nk_fe_mel_len[ch]; w < w_end; w++, p++) {
            const uint64_t pj = *p;
            const uint32_t wj = *w;
            mel_hi += (uint32_t)(pj >> 32) * wj;
            mel += (uint64_t)(uint32_t)pj * wj;
        }
        frame[ch] = level_of(mel + ((uint64_t)mel_hi << 32), exp);
    }
}

void nk_frontend_init(nk_frontend_t *fe) { memset(fe, 0, sizeof *fe); }

int nk_frontend_push_hop(nk_frontend_t *fe, const int16_t hop[NK_FE_HOP_SAMPLES],
                         int8_t frame[NK_FE_NUM_CHANNELS]) {
    int wrote = 0;
    if (fe->hops_seen > 0) {
        nk_frontend_compute_frame(fe->prev_hop, NK_FE_HOP_SAMPLES, hop, frame);
        wrote = 1;
    }
    memcpy(fe->prev_hop, hop, sizeof fe->prev_hop);
    if (fe->hops_seen < UINT32_MAX)
        fe->hops_seen++;
    return wrote;
}

size_t nk_frontend_compute_clip(const int16_t *audio, size_t num_samples, int8_t *features,
                                size_t max_frames) {
    if (num_samples < NK_FE_WINDOW_SAMPLES)
        return 0;
    size_t frames = (num_samples - NK_FE_WINDOW_SAMPLES) / NK_FE_HOP_SAMPLES + 1;
    if (frames > max_frames)
        frames = max_frames;
    for (size_t k = 0; k < frames; k++) {
        nk_frontend_compute_frame(audio + k * NK_FE_HOP_SAMPLES, NK_FE_WINDOW_SAMPLES, audio,
                                  features + k * NK_FE_NUM_CHANNELS);
    }
    return frames;
}
