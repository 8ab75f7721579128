/* Reset and vector table for the QEMU mps2-an386 target: enable the FPU, copy .data, clear .bss,
 * run main, then leave the emulator through semihosting. */
#include <stdint.h>

#include "nk_platform.h"
#include "nk_qemu.h"

extern uint32_t __data_start__, __data_end__, __data_load__, __bss_start__, __bss_end__, __stack_top__;
extern int main(void);

void nk_reset_handler(void);
void nk_default_handler(void);

void nk_default_handler(void) {
    nk_platform_exit(125); /* an unexpected fault or interrupt: stop rather than hang */
}

void nk_reset_handler(void) {
    /* CPACR: full access to CP10/CP11 (the FPU) before any float instruction runs. */
    NK_REG(0xE000ED88u) |= (0xFu << 20);
    __asm volatile("dsb\n\tisb" ::: "memory");
    uint32_t *src = &__data_load__;
    for (uint32_t *dst = &__data_start__; dst < &__data_end__;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &__bss_start__; dst < &__bss_end__;) {
        *dst++ = 0;
    }
    nk_platform_exit(main());
}

/* Cortex-M4 core exceptions (16 entries) + a few device interrupts; unused ones stop. Laid out by
 * hand, four to a line: the formatter would give each its own line. */
// clang-format off
__attribute__((section(".isr_vector"), used)) static void (*const nk_vectors[32])(void) = {
    (void (*)(void))(&__stack_top__),
    nk_reset_handler,
    nk_default_handler, /* NMI */
    nk_default_handler, /* HardFault */
    nk_default_handler, /* MemManage */
    nk_default_handler, /* BusFault */
    nk_default_handler, /* UsageFault */
    0, 0, 0, 0,
    nk_default_handler, /* SVCall */
    nk_default_handler, /* DebugMon */
    0,
    nk_default_handler, /* PendSV */
    nk_qemu_systick_handler,
    nk_default_handler, nk_default_handler, nk_default_handler, nk_default_handler,
    nk_default_handler, nk_default_handler, nk_default_handler, nk_default_handler,
    nk_default_handler, nk_default_handler, nk_default_handler, nk_default_handler,
    nk_default_handler, nk_default_handler, nk_default_handler, nk_default_handler,
};
// clang-format on
