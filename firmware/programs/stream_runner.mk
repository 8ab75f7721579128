# stream_runner: pushes frames through the compiled model's streaming form (nk_model_stream.h, from
# `nanokws compile --streaming`) and returns the scores of every inference with cycle counts; also
# runs the clip model (nk_model_invoke) on request. Protocol in programs/stream_runner.c. Built for
# any MODEL_DIR: without nk_model_stream.h it only says so and exits with status 4.
ALL_PROGRAMS += stream_runner
stream_runner_SRCS := programs/stream_runner.c programs/program_io.c
stream_runner_USES_MODEL := 1
