/* program_io: the byte I/O that the request/response programs (model_runner, stream_runner,
 * frontend_bench) share over the nk_platform byte stream: little-endian u32 out, exact reads,
 * the cycle unit that ends each hello, and the 'E' + exit(3) answer to an unknown request.
 * Programs list programs/program_io.c in their <name>_SRCS (programs/<name>.mk). */
#ifndef NK_PROGRAM_IO_H
#define NK_PROGRAM_IO_H

#include <stddef.h>
#include <stdint.h>

/* Write v as 4 little-endian bytes. */
void prog_put_u32(uint32_t v);
/* Write one tag byte. */
void prog_put_tag(uint8_t tag);
/* Read exactly len bytes into dst: 0, or -1 at the end of the stream. */
int prog_read_exact(uint8_t *dst, size_t len);
/* Read a little-endian u32: 0, or -1 at the end of the stream. */
int prog_read_u32(uint32_t *v);
/* Read a request's 4-byte magic; at the end of the stream (the host hung up) exit with status 0. */
void prog_read_magic(uint8_t magic[4]);
/* The hello's tail: u32 cycle_hz, u8 unit_len, unit_len bytes of nk_platform_cycle_unit(). */
void prog_put_cycle_info(void);
/* Answer 'E' and exit with status 3: an unknown request, or a step that failed. */
void prog_fail_request(void);

#endif
