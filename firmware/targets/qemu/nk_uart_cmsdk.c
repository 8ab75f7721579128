/* CMSDK APB UART0 of mps2-an386 at 0x40004000: polled transmit and receive. */
#include "nk_qemu.h"

#define UART0_BASE 0x40004000u
#define UART_DATA (UART0_BASE + 0x00u)
#define UART_STATE (UART0_BASE + 0x04u)
#define UART_CTRL (UART0_BASE + 0x08u)
#define UART_BAUDDIV (UART0_BASE + 0x10u)
#define STATE_TX_FULL 0x1u
#define STATE_RX_FULL 0x2u
#define CTRL_TX_EN 0x1u
#define CTRL_RX_EN 0x2u

void nk_qemu_uart_init(void) {
    NK_REG(UART_BAUDDIV) = 16u; /* the smallest legal divider; QEMU does not model line timing */
    NK_REG(UART_CTRL) = CTRL_TX_EN | CTRL_RX_EN;
}

void nk_qemu_uart_putc(uint8_t c) {
    while (NK_REG(UART_STATE) & STATE_TX_FULL) {
    }
    NK_REG(UART_DATA) = c;
}

int nk_qemu_uart_getc(void) {
    while (!(NK_REG(UART_STATE) & STATE_RX_FULL)) {
    }
    return (int)(NK_REG(UART_DATA) & 0xFFu);
}
