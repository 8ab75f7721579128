# frontend_dump: raw int16 LE PCM (file or stdin) -> int8 features on stdout (host/asan).
ALL_PROGRAMS += frontend_dump
frontend_dump_SRCS := programs/frontend_dump.c
