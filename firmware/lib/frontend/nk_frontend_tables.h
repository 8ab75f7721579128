/* Constant tables of the frontend, generated into nk_frontend_tables.c by
 * tools/nanokws/features/gen_tables.py (fixed-point formats are fixed there and here). */
#ifndef NK_FRONTEND_TABLES_H
#define NK_FRONTEND_TABLES_H

#include <stdint.h>

#include "nk_frontend_config.h"

#define NK_FE_LOG2_TABLE_BITS 8 /* log2 table: 2^8 + 1 entries, linear interpolation */
#define NK_FE_POWER_EXP 40      /* the log stage sees mel power * 2^40 */

extern const int32_t nk_fe_window_q30[NK_FE_WINDOW_SAMPLES];
extern const int32_t nk_fe_cos_q30[NK_FE_FFT_SIZE / 2];
extern const int32_t nk_fe_sin_q30[NK_FE_FFT_SIZE / 2];
extern const uint8_t nk_fe_bitrev[NK_FE_FFT_SIZE / 2];
extern const uint16_t nk_fe_mel_start[NK_FE_NUM_CHANNELS];
extern const uint8_t nk_fe_mel_len[NK_FE_NUM_CHANNELS];
extern const uint16_t nk_fe_mel_offset[NK_FE_NUM_CHANNELS];
extern const uint32_t nk_fe_mel_weights[]; /* Q16, see nk_fe_mel_offset */
extern const uint16_t nk_fe_mel_max_bin;
extern const uint32_t nk_fe_log2_q20[(1 << NK_FE_LOG2_TABLE_BITS) + 1];
extern const uint64_t nk_fe_log_floor_q40;
extern const int64_t nk_fe_level_scale_q24;
extern const int64_t nk_fe_level_offset_q44;

#endif /* NK_FRONTEND_TABLES_H */
