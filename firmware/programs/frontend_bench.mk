# frontend_bench: times nk_frontend_push_hop hop by hop over nk_platform bytes (host/asan/qemu);
# used by `nanokws bench` for the frontend's share of the live-mode budget. Protocol in the .c.
ALL_PROGRAMS += frontend_bench
frontend_bench_SRCS := programs/frontend_bench.c programs/program_io.c
