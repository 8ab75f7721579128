/* nk_platform for QEMU mps2-an386: UART0 bytes, SysTick as the cycle counter, semihosting exit.
 *
 * Cycle counter: SysTick counts down from the 25 MHz processor clock; an interrupt every 2^24
 * ticks extends it to 32 bits. Under `-icount shift=0` QEMU advances virtual time by exactly
 * 1 ns per guest instruction, so one SysTick tick (40 ns at 25 MHz) = 40 guest instructions:
 * instructions = ticks * 40, to a resolution of 40. These are emulator instruction counts,
 * not Cortex-M4 cycles. */
#include "nk_platform.h"
#include "nk_qemu.h"

#define SYST_CSR 0xE000E010u
#define SYST_RVR 0xE000E014u
#define SYST_CVR 0xE000E018u
#define SCB_ICSR 0xE000ED04u
#define ICSR_PENDSTSET (1u << 26)
#define SYST_MAX 0x00FFFFFFu

static volatile uint32_t g_wraps;

void nk_qemu_systick_handler(void) { g_wraps = g_wraps + 1u; }

void nk_platform_init(void) {
    nk_qemu_uart_init();
    NK_REG(SYST_RVR) = SYST_MAX;
    NK_REG(SYST_CVR) = 0u;
    NK_REG(SYST_CSR) = 0x7u; /* enable, interrupt on wrap, processor clock */
    /* Writing CVR zeroes it; the counter loads RVR on its next tick. Until then nk_platform_cycles()
     * would read a whole period and then jump back, so wait for the load (bounded: a few instructions). */
    for (uint32_t spin = 0; spin < 100000u && (NK_REG(SYST_CVR) & SYST_MAX) == 0u; ++spin) {
    }
}

int nk_platform_read_byte(void) { return nk_qemu_uart_getc(); }

void nk_platform_write(const uint8_t *data, size_t len) {
    for (size_t i = 0; i < len; ++i) {
        nk_qemu_uart_putc(data[i]);
    }
}

uint32_t nk_platform_cycles(void) {
    uint32_t wraps;
    uint32_t val;
    uint32_t pending;
    do { /* retry if the wrap interrupt ran while we were reading */
        wraps = g_wraps;
        val = NK_REG(SYST_CVR) & SYST_MAX;
        pending = NK_REG(SCB_ICSR) & ICSR_PENDSTSET;
    } while (wraps != g_wraps);
    if (pending && val > SYST_MAX / 2u) {
        wraps += 1u; /* wrapped before we read val, interrupt not yet taken */
    }
    return (wraps << 24) + (SYST_MAX - val);
}

const char *nk_platform_cycle_unit(void) { return "qemu_systick_ticks"; }

uint32_t nk_platform_cycle_hz(void) { return NK_QEMU_SYSCLK_HZ; }

void nk_platform_exit(int code) { nk_qemu_semihost_exit(code); }
