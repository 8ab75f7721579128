# model_runner: runs the compiled model (MODEL_DIR) on requests read over nk_platform bytes;
# used by `nanokws verify` and `nanokws bench`. Protocol in programs/model_runner.c.
ALL_PROGRAMS += model_runner
model_runner_SRCS := programs/model_runner.c programs/program_io.c
model_runner_USES_MODEL := 1
