/* Small helpers shared by the kernels' Cortex-M4 DSP paths (only included where NK_KERNELS_DSP). */
#ifndef NK_SIMD_H
#define NK_SIMD_H

#include <stdint.h>
#include <string.h>

#include <arm_acle.h>

/* Four int8 from memory (any alignment; LDR allows unaligned access on Cortex-M4). */
static inline int32_t nk_load4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Bytes 1 and 3 sign-extended into two 16-bit lanes: one SXTB16 with its ROR #8 operand (GCC
 * does not fold a separate rotate into it, and ACLE has no intrinsic for the rotated form). */
static inline int16x2_t nk_sxtb16_odd(int32_t v)
{
    int16x2_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

#endif /* NK_SIMD_H */
