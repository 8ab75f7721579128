/* Shared definitions of the QEMU mps2-an386 target files. */
#ifndef NK_QEMU_H
#define NK_QEMU_H

#include <stdint.h>

#define NK_REG(addr) (*(volatile uint32_t *)(addr))

/* SysTick runs from the 25 MHz processor clock of mps2-an386. */
#define NK_QEMU_SYSCLK_HZ 25000000u

void nk_qemu_systick_handler(void);
void nk_qemu_uart_init(void);
void nk_qemu_uart_putc(uint8_t c);
int nk_qemu_uart_getc(void);
void nk_qemu_semihost_exit(int code) __attribute__((noreturn));

#endif /* NK_QEMU_H */
