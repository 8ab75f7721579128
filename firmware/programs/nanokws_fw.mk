# The nanokws firmware for host/asan/qemu: the protocol over stdin/stdout, a pty or the UART.
ALL_PROGRAMS += nanokws_fw
nanokws_fw_SRCS := programs/nanokws_fw.c
nanokws_fw_USES_MODEL := 1
