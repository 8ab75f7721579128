# kws_runner: the firmware's whole streaming path (nk_kws: frontend, the compiled model of MODEL_DIR
# every stride hops, the recognizer) over nk_platform bytes; audio in, every inference's int8 scores
# and every detection out. Used by `nanokws stream score` (tools/nanokws/streams/scorer.py).
# Protocol in programs/kws_runner.c.
ALL_PROGRAMS += kws_runner
kws_runner_SRCS := programs/kws_runner.c programs/program_io.c
kws_runner_USES_MODEL := 1
