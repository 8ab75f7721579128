/* Small helpers shared by the kernels' Cortex-M4 DSP paths (only included where NK_KERNELS_DSP).
 *
 * Each helper is one DSP instruction in GCC/clang extended asm instead of an <arm_acle.h> SIMD32
 * intrinsic: GCC only gained those (int16x2_t, __smlad, __sxtb16, ...) in version 10, and the
 * Nano 33 BLE's PlatformIO toolchain is GCC 7. The asm is not volatile and has no clobbers, so the
 * compiler still schedules, hoists and CSEs it like a builtin. Packed values are plain int32_t:
 * two signed 16-bit lanes, bottom (bits 0-15) and top (bits 16-31). */
#ifndef NK_SIMD_H
#define NK_SIMD_H

#include <stdint.h>
#include <string.h>

/* Four int8 from memory (any alignment; LDR allows unaligned access on Cortex-M4). */
static inline int32_t nk_load4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Bytes 0 and 2 sign-extended into the two 16-bit lanes (SXTB16). */
static inline int32_t nk_sxtb16(int32_t v) {
    int32_t r;
    __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(v));
    return r;
}

/* Bytes 1 and 3 sign-extended into the two 16-bit lanes: SXTB16 with its ROR #8 operand, which
 * GCC does not fold from a separate rotate. */
static inline int32_t nk_sxtb16_odd(int32_t v) {
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

/* a + bytes 0 and 2 of v, per 16-bit lane (SXTAB16; lane sums wrap at 16 bits). */
static inline int32_t nk_sxtab16(int32_t a, int32_t v) {
    int32_t r;
    __asm__("sxtab16 %0, %1, %2" : "=r"(r) : "r"(a), "r"(v));
    return r;
}

/* a + bytes 1 and 3 of v, per 16-bit lane (SXTAB16 with ROR #8, one instruction for both). */
static inline int32_t nk_sxtab16_odd(int32_t a, int32_t v) {
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(v));
    return r;
}

/* acc + x.bottom * y.bottom + x.top * y.top (SMLAD). */
static inline int32_t nk_smlad(int32_t x, int32_t y, int32_t acc) {
    int32_t r;
    __asm__("smlad %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}

/* acc + x.bottom * y.bottom (SMLABB). */
static inline int32_t nk_smlabb(int32_t x, int32_t y, int32_t acc) {
    int32_t r;
    __asm__("smlabb %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}

/* acc + x.top * y.top (SMLATT). */
static inline int32_t nk_smlatt(int32_t x, int32_t y, int32_t acc) {
    int32_t r;
    __asm__("smlatt %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}

/* x.bottom * y.bottom + x.top * y.top (SMUAD: SMLAD without an accumulator). */
static inline int32_t nk_smuad(int32_t x, int32_t y) {
    int32_t r;
    __asm__("smuad %0, %1, %2" : "=r"(r) : "r"(x), "r"(y));
    return r;
}

/* acc + x.bottom * y.top (SMLABT). */
static inline int32_t nk_smlabt(int32_t x, int32_t y, int32_t acc) {
    int32_t r;
    __asm__("smlabt %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}

/* v saturated to [-128, 127] (SSAT #8). */
static inline int32_t nk_ssat8(int32_t v) {
    int32_t r;
    __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(v));
    return r;
}

/* acc + x.top * y.bottom (SMLATB). */
static inline int32_t nk_smlatb(int32_t x, int32_t y, int32_t acc) {
    int32_t r;
    __asm__("smlatb %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}

/* (a * b + 2^31) >> 32, the rounded high word of the 64-bit product (SMMULR). */
static inline int32_t nk_smmulr(int32_t a, int32_t b) {
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* c + ((a * b + 2^31) >> 32): SMMULR with a 32-bit addend in the high word (SMMLAR); exact
 * whenever the sum fits int32. */
static inline int32_t nk_smmlar(int32_t a, int32_t b, int32_t c) {
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(c));
    return r;
}

/* Two int16 packed into one word: lo in the bottom lane, hi in the top (GCC emits PKHBT). */
static inline int32_t nk_pack16(int32_t lo, int32_t hi) {
    return (int32_t)(((uint32_t)(uint16_t)hi << 16) | (uint16_t)lo);
}

#endif /* NK_SIMD_H */
