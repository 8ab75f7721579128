"""`nanokws bench`: the compiled model under QEMU: instructions per inference and per layer, MACs
per instruction, flash and RAM of the firmware ELF, next to TFLite Micro's arena; the frontend's
instructions per hop, the board lower bound at 64 MHz and the live-mode budget (compiler/budget.py),
from the streaming form's steady-state instructions per inference step when the model has one."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Any

from ..argtypes import int_in
from ..cli import invoked_command
from ..errors import NanokwsError
from ..modelmeta import model_sha256

EPILOG = """\
examples:
  nanokws bench --model runs/tiny/model.tflite --target qemu
  nanokws bench --model runs/ds_cnn/model.tflite --target qemu --runs 5 --json runs/ds_cnn/bench.json
  nanokws bench --model firmware/model/model.tflite --runs 1 --reference-kernels   # the slow baseline
  nanokws bench --model firmware/model/model.tflite --runs 1 --float-abi soft   # as the board builds
  nanokws bench --model firmware/model/model.tflite --runs 1 --board-flags   # -Os -mfloat-abi=soft
  nanokws bench --model firmware/model/model.tflite --compare-tflm ../tflm-sources   # beside TFLite Micro

Counts come from QEMU mps2-an386 under `-icount shift=0`: SysTick ticks x 40 = guest instructions
(resolution 40). These are EMULATOR INSTRUCTION COUNTS, not Cortex-M4 cycles: loads, multiplies
and branches take more than one cycle on a real M4 (and flash wait states add more), so measure
cycles on the board. "Board lower bound" = instructions / 64 MHz (the Nano 33 BLE's clock) at one
instruction per cycle: the board cannot be faster than that. QEMU's own virtual clock (1 ns per
instruction) is not the board's and is never reported as board time.

Live-mode budget: instructions per second of audio = frontend instructions per hop x hops per
second (sample rate / hop, from nk_frontend_config.h as compiled into the frontend_bench program)
+ inference instructions x hops per second / stride (default NK_APP_DEFAULT_STRIDE, read from
firmware/lib/app/nk_app.h), and that as a percentage of a 64 MHz core (> 100%: live mode cannot
keep up at that stride, even at one instruction per cycle). The frontend is timed hop by hop on
deterministic speech-band test audio (mean over the hops that complete a frame).

Streaming models (compile report "streaming": generated): the firmware pushes every frame through
nk_model_stream_push and runs the head every stride frames, so bench also times that form under
QEMU (stream_runner: reset, a full window and two steps of warm-up, then 24 inference steps of
seeded random int8 frames) and the live budget uses its mean instructions per inference step (the
pushes of stride frames) instead of the whole window: JSON `streaming` and `live_budget` (kind
"streaming"), with the whole-window budget kept as `live_budget_full_window` (kind "full_window").
A second stride splits a step into rows per frame + head, for the smallest stride that fits.

Build flags: by default firmware/Makefile's qemu flags (-O2, -mfloat-abi=hard). The board's
PlatformIO build compiles -O2 -mfloat-abi=soft (platformio.ini removes the variant's -Os; the
builder appends -mfloat-abi=soft): `--float-abi soft` measures exactly that. --board-flags builds
with the variant's own -Os -mfloat-abi=soft (what the board built before build_unflags = -Os).

Flash = .text + .rodata + .data (+ .ARM.exidx), RAM = .data + .bss + stack of the model_runner ELF
(program + kernels + model + runtime library).

--compare-tflm PATH also builds TensorFlow Lite Micro for the same QEMU target and flags, twice
(reference kernels; CMSIS-NN kernels), from source trees in PATH that you provide (nothing is
downloaded or vendored): PATH/tflite-micro, PATH/CMSIS-NN, PATH/flatbuffers, PATH/gemmlowp,
PATH/ruy as work trees (git clone https://github.com/tensorflow/tflite-micro etc.), or bare
mirrors PATH/<owner>+<name>/repo. CMSIS-NN, flatbuffers, gemmlowp and ruy are taken at the commits
TFLite Micro's download scripts pin when the tree has them (else as they are, and it says so).
Both run on the same inputs as the compiled model (the seeded random ones, plus real features when
the model takes 49x40 and the shared clips are there); it prints instructions per inference for
all three, nanokws / CMSIS-NN, whether every output is equal element by element, TFLite Micro's
arena_used_bytes() and flash, and adds a `tflm_compare` section to --json. Objects are cached in
build/tflm_compare/<commits+flags>/: a cold build compiles about 200 files at -j2 (the model's kernels
only; 5 to 20 minutes on two cores), a second run none. See nanokws/compiler/tflm_compare/.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("--model", required=True, type=Path, help="full-int8 .tflite file")
    parser.add_argument("--target", choices=("qemu",), default="qemu", help="only qemu (default)")
    parser.add_argument(
        "--runs", type=int_in(1, 10_000), default=3,
        help="inferences to run; the median is reported (default: 3)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument(
        "--reference-kernels",
        action="store_true",
        help="compile with the reference kernels only, to compare with the fast ones (default: fast)",
    )
    parser.add_argument(
        "--stride",
        type=int_in(1, 50),
        default=None,
        metavar="N",
        help="live-mode budget: one inference every N hops (default: NK_APP_DEFAULT_STRIDE from "
        "firmware/lib/app/nk_app.h)",
    )
    parser.add_argument(
        "--opt", choices=("O2", "Os"), default="O2", help="optimisation level (default: O2, the Makefile's)"
    )
    parser.add_argument(
        "--float-abi",
        choices=("hard", "soft"),
        default="hard",
        help="float ABI (default: hard, the Makefile's; the board's PlatformIO build uses soft)",
    )
    parser.add_argument(
        "--board-flags",
        action="store_true",
        help="build with the Nano 33 BLE variant's code-generation flags, -Os -mfloat-abi=soft "
        "(= --opt Os --float-abi soft)",
    )
    parser.add_argument(
        "--compare-tflm",
        type=Path,
        default=None,
        metavar="PATH",
        help="also build and run TensorFlow Lite Micro (reference and CMSIS-NN kernels) from the source "
        "trees in PATH, on the same inputs, and print the ratio table (see below)",
    )
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=None,
        help="where to put the compiled C and the build (default: build/bench/<model hash>)",
    )


def flash_bytes(sections: dict[str, int]) -> int:
    """Flash of an ELF as bench counts it: .text + .rodata + .data (+ .ARM.exidx)."""
    return sum(sections.get(s, 0) for s in (".text", ".rodata", ".data", ".ARM.exidx"))


def elf_sections(elf: Path) -> dict[str, int]:
    """Section sizes from `arm-none-eabi-size -A`."""
    from ..cbuild import require_tool

    out = subprocess.run(
        [require_tool("arm-none-eabi-size"), "-A", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    sizes: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sizes


def bench(
    tflite: bytes,
    runs: int = 3,
    build_dir: Path | None = None,
    source: str = "model.tflite",
    fast: bool = True,
    measure_tflm: bool = True,
    stride: int | None = None,
    opt: str = "O2",
    float_abi: str = "hard",
    frontend: bool = True,
) -> dict[str, Any]:
    """Instructions per inference and per layer under QEMU, the board lower bound and (with
    `frontend`) the frontend's instructions per hop and the live-mode budget at `stride` (default
    NK_APP_DEFAULT_STRIDE): for a model with a streaming form, from its steady-state instructions per
    inference step under QEMU (`streaming`, `live_budget_full_window` beside it). `fast=False`
    benches the reference kernels only (the "before" column of
    docs/performance.md). `opt` ("O2" or "Os") and `float_abi` ("hard" or "soft") pick the code
    generation: the Makefile's is O2/hard, the board's (platformio.ini) O2/soft, the Nano 33 BLE
    variant's own Os/soft (`budget.BOARD_OPT`/`BOARD_FLOAT_ABI`, what `--board-flags` selects)."""
    import numpy as np

    from ..cbuild import build_programs
    from ..paths import BUILD_DIR
    from ..qemu import BOARD_CPU_HZ, BOARD_LOWER_BOUND, INSTRUCTIONS_PER_TICK, board_lower_bound_ms
    from . import budget
    from .compile import compile_model
    from .runner import ModelRunner

    base = build_dir or BUILD_DIR / "bench" / model_sha256(tflite)[:12]
    if opt not in ("O2", "Os") or float_abi not in ("hard", "soft"):
        raise NanokwsError(f"unsupported build -{opt} -mfloat-abi={float_abi}")
    comp = compile_model(tflite, base / "model", source=source, measure_tflm=measure_tflm, fast=fast)
    makefile_flags = (opt, float_abi) == ("O2", "hard")
    make_args = [] if makefile_flags else budget.board_make_args(f"-{opt}", float_abi)
    rep = comp.report
    streams = bool((rep.get("streaming") or {}).get("generated"))
    # The streaming form (what the firmware runs for such a model) is timed with the live budget.
    programs = ["model_runner"] + (
        ["frontend_bench"] + (["stream_runner"] if streams else []) if frontend else []
    )
    elfs = build_programs(
        "qemu",
        programs,
        base / "model",
        base / ("qemu" if makefile_flags else f"qemu-{opt}-{float_abi}"),
        make_args,
    )
    elf = elfs["model_runner"]
    linked_abi = budget.elf_float_abi(elf)
    if linked_abi != float_abi:
        raise NanokwsError(f"{elf}: linked for the {linked_abi}-float ABI, not {float_abi}")
    rng = np.random.default_rng(0)
    totals, per_layer = [], []
    with ModelRunner(elf, "qemu") as runner:
        for _ in range(max(1, runs)):
            inf = runner.infer(rng.integers(-128, 128, size=rep["input_len"], dtype=np.int8))
            totals.append(inf.total_cycles)
            per_layer.append(inf.layer_cycles)
    ticks = int(np.median(totals))
    layer_ticks = [int(v) for v in np.median(np.array(per_layer), axis=0)]
    sec = elf_sections(elf)
    flash = flash_bytes(sec)
    ram = sec.get(".data", 0) + sec.get(".bss", 0) + sec.get(".stack", 0)
    instr = ticks * INSTRUCTIONS_PER_TICK
    layers = []
    for row, t in zip(rep["layers"], layer_ticks, strict=True):
        n = t * INSTRUCTIONS_PER_TICK
        layers.append(
            {
                **{k: row[k] for k in ("layer", "op", "output_shape", "macs")},
                "instructions": n,
                "macs_per_instruction": round(row["macs"] / n, 3) if n and row["macs"] else None,
            }
        )
    result: dict[str, Any] = {
        "unit": "QEMU guest instructions (-icount shift=0, SysTick ticks x 40); NOT Cortex-M4 cycles",
        "build": {
            "flags": "firmware/Makefile TARGET=qemu"
            + ("" if makefile_flags else f" with {' '.join(make_args)}"),
            "opt": f"-{opt}",
            "float_abi": float_abi,
            "kernels": "fast" if fast else "reference",
        },
        "instructions_per_inference": instr,
        "board": {
            "cpu_hz": BOARD_CPU_HZ,
            "inference_ms_lower_bound": round(board_lower_bound_ms(instr), 3),
            "means": f"Nano 33 BLE time at 64 MHz, {BOARD_LOWER_BOUND}: instructions / 64e6 "
            "(real cycles per instruction are >= 1)",
        },
        "total_macs": rep["total_macs"],
        "macs_per_instruction": round(rep["total_macs"] / instr, 3) if instr else None,
        "layers": layers,
        "flash_bytes": flash,
        "ram_bytes": ram,
        "sections": sec,
        "weights_flash_bytes": rep["weights_flash_bytes"],
        "arena_bytes": rep["arena_bytes"],
        "tflm_arena_total_bytes": rep.get("tflm_arena_total_bytes"),
        "tflm_arena_head_bytes": rep.get("tflm_arena_head_bytes"),
        "runs": len(totals),
    }
    if frontend:
        fe = budget.measure_frontend(elfs["frontend_bench"], "qemu")
        if fe["cycle_unit"] != runner.cycle_unit:
            raise NanokwsError(f"frontend_bench counts {fe['cycle_unit']}, model_runner {runner.cycle_unit}")
        per_hop = budget.summarize_ticks(fe["ticks"], INSTRUCTIONS_PER_TICK)
        result["frontend"] = {
            "instructions_per_hop": per_hop,
            "hops_timed": fe["hops_timed"],
            "audio": "bench_audio: deterministic speech-band tone + noise, quiet to loud (budget.py)",
            "board_ms_per_hop_lower_bound": round(board_lower_bound_ms(per_hop["mean"]), 3),
        }
        stride_source = "--stride"
        if stride is None:
            stride, stride_source = (
                budget.default_stride(),
                "NK_APP_DEFAULT_STRIDE (firmware/lib/app/nk_app.h)",
            )
        live = budget.live_budget(
            per_hop["mean"],
            instr,
            fe["sample_rate_hz"],
            fe["hop_samples"],
            stride,
            BOARD_CPU_HZ,
            stride_limit=budget.max_stride(),
        )
        result["live_budget"] = {
            **live,
            "stride_source": stride_source,
            "means": "QEMU instructions per second of audio in live mode = frontend instructions per hop "
            "(mean) x hops/s + inference instructions x hops/s / stride; core_percent_lower_bound = that "
            f"/ 64e6 x 100 ({BOARD_LOWER_BOUND}; > 100 means the board cannot keep up). "
            "min_stride_within_core: the smallest stride (<= NK_APP_MAX_STRIDE) whose lower bound fits in "
            "100%. Excludes the window copy and input requantisation, the recognizer, microphone and "
            "serial I/O.",
        }
        if streams:  # the firmware pushes every frame through nk_model_stream_push instead
            _bench_stream(
                result,
                elfs["stream_runner"],
                rep["streaming"],
                per_hop["mean"],
                fe,
                stride,
                stride_source,
                instr,
            )
        else:
            result["live_budget"]["model_streams"] = False
    return result


STREAM_INFERENCES = 24  # inference steps timed per stride, after the warm-up


def _bench_stream(
    result: dict[str, Any],
    elf: Path,
    report: dict[str, Any],
    frontend_per_hop: float,
    fe: dict[str, Any],
    stride: int,
    stride_source: str,
    full_window_instructions: int,
) -> None:
    """Time the streaming form under QEMU at the live stride (and at one more stride, to split a
    step into its per-frame rows and its head), then make the streaming live budget the report's
    `live_budget`, keeping the whole-window one as `live_budget_full_window`."""
    from ..qemu import BOARD_CPU_HZ, BOARD_LOWER_BOUND, INSTRUCTIONS_PER_TICK, board_lower_bound_ms
    from . import budget

    align = int(report["stride_align_frames"])
    if stride % align:
        if stride_source == "--stride":
            raise NanokwsError(
                f"--stride {stride}: the firmware refuses it for this streaming model (a multiple of {align})"
            )
        # nk_app.c's NK_APP_INITIAL_STRIDE: the streaming form's own stride when the default is not aligned
        stride, stride_source = (
            int(report["stride_frames"]),
            "NK_MODEL_STREAM_STRIDE (nk_model_stream.h)",
        )
    other = stride + align if stride + align <= budget.max_stride() else stride - align
    strides = [stride] + ([other] if other >= align else [])
    got = budget.measure_stream(elf, "qemu", strides, STREAM_INFERENCES)
    if got["align"] != align:
        raise NanokwsError(f"stream_runner aligns to {got['align']} frames, the compile report {align}")
    if got["cycle_unit"] != fe["cycle_unit"]:
        raise NanokwsError(f"stream_runner counts {got['cycle_unit']}, frontend_bench {fe['cycle_unit']}")
    if stride not in got["strides"]:
        raise NanokwsError(f"the streaming form refused stride {stride}")

    def step(s: int) -> float:
        m = got["strides"][s]
        return float(m["total_ticks"]) * INSTRUCTIONS_PER_TICK / m["inferences"]

    m = got["strides"][stride]
    per_step = step(stride)
    rows = head = None
    if len(got["strides"]) == 2:
        rows = (step(other) - per_step) / (other - stride)
        head = max(0.0, per_step - stride * rows)
    heads = [t * INSTRUCTIONS_PER_TICK for t in m["head_push_ticks"]]
    result["streaming"] = {
        "stride_frames": stride,
        "align_frames": align,
        "inferences_timed": m["inferences"],
        "frames_timed": m["frames"],
        "warm_up": "reset, then a full window and two inference steps before the timed pushes",
        "input": "seeded random int8 frames (numpy default_rng(0))",
        "instructions_per_inference_step": round(per_step),
        "instructions_per_frame": round(per_step / stride),
        "push_with_head_instructions": {
            "mean": round(sum(heads) / len(heads)),
            "max": round(max(heads)),
        },
        "max_push_instructions": m["max_push_ticks"] * INSTRUCTIONS_PER_TICK,
        "rows_instructions_per_frame": None if rows is None else round(rows),
        "head_instructions": None if head is None else round(head),
        "split_from_strides": sorted(got["strides"]),
        "full_window_instructions": full_window_instructions,
        "step_vs_full_window": round(per_step / full_window_instructions, 4),
        "board_ms_per_step_lower_bound": round(board_lower_bound_ms(per_step), 3),
        "means": "QEMU instructions of nk_model_stream_push, mean over the timed inference steps; an "
        "inference step = the pushes of stride frames, the last of which runs the head. rows/head: "
        "step = stride x rows + head, solved from the steps at two strides (an estimate).",
        "layers": _stream_layers(result["layers"], m),
    }
    full = result["live_budget"]  # the whole-window budget, replaced below
    live = budget.streaming_live_budget(
        frontend_per_hop,
        round(per_step),  # as reported in `streaming`, so the JSON adds up
        fe["sample_rate_hz"],
        fe["hop_samples"],
        stride,
        BOARD_CPU_HZ,
        rows_per_frame=rows,
        head_instructions=head,
        align=align,
        stride_limit=budget.max_stride(),
    )
    result["live_budget_full_window"] = {
        **full,
        "means": "as if the firmware ran the whole window (nk_model_invoke) every stride hops; it does "
        "not for this model (see live_budget): kept for comparison",
    }
    result["live_budget"] = {
        **live,
        "stride_source": stride_source,
        "model_streams": True,
        "means": "QEMU instructions per second of audio in live mode as the firmware runs a streaming "
        "model = frontend instructions per hop (mean) x hops/s + streaming instructions per inference "
        "step (every frame pushed, the head every stride frames) x hops/s / stride; "
        f"core_percent_lower_bound = that / 64e6 x 100 ({BOARD_LOWER_BOUND}). min_stride_within_core: "
        "the smallest stride (a multiple of the stream's alignment, <= NK_APP_MAX_STRIDE) whose lower "
        "bound fits, from the rows/head split. Excludes the input requantisation, the recognizer, "
        "microphone and serial I/O.",
        "full_window_instructions_per_second_of_audio": full["instructions_per_second_of_audio"],
        "full_window_core_percent_lower_bound": full["core_percent_lower_bound"],
    }


def _stream_layers(full: list[dict[str, Any]], m: dict[str, Any]) -> list[dict[str, Any]]:
    """Per layer: its instructions per inference step in the streaming form (the layer hook: its row
    work and its head work, mean over the timed steps) beside the full window's per output row (the
    layer's instructions / output rows). A layer after a time stride of s computes stride / s rows a
    step."""
    from ..qemu import INSTRUCTIONS_PER_TICK

    out = []
    for row, ticks in zip(full, m.get("layer_ticks") or [], strict=False):
        if not ticks:
            continue
        shape = row.get("output_shape") or []
        rows = int(shape[1]) if len(shape) == 4 else 1
        out.append({
            "layer": row["layer"],
            "op": row["op"],
            "instructions_per_step": round(ticks * INSTRUCTIONS_PER_TICK / m["inferences"]),
            "full_window_instructions_per_row": round(row["instructions"] / rows),
        })
    return out


def _live_line(label: str, live: dict[str, Any]) -> str:
    return (
        f"{label} (stride {live['stride']}, {live['hops_per_second']:g} hops/s, "
        f"{live['inferences_per_second']:g} inferences/s): {live['instructions_per_second_of_audio']} "
        f"instructions per second of audio = {live['core_percent_lower_bound']}% of a 64 MHz core "
        "(lower bound, 1 instruction/cycle); smallest stride whose lower bound fits the core: "
        f"{live['min_stride_within_core'] or 'none'}"
    )


def format_table(r: dict[str, Any]) -> str:
    lines = [f"{'layer':>5} {'op':<18} {'MACs':>10} {'instructions':>13} {'MACs/instr':>10}"]
    for row in r["layers"]:
        mpi = f"{row['macs_per_instruction']:.3f}" if row["macs_per_instruction"] else "-"
        lines.append(
            f"{row['layer']:>5} {row['op']:<18} {row['macs']:>10} {row['instructions']:>13} {mpi:>10}"
        )
    board, build = r["board"], r["build"]
    lines += [
        f"build: {build['flags']} (float ABI {build['float_abi']}, {build['kernels']} kernels)",
        f"total: {r['instructions_per_inference']} instructions per inference, {r['total_macs']} MACs, "
        f"{r['macs_per_instruction']} MACs/instruction",
        f"Nano 33 BLE per inference: >= {board['inference_ms_lower_bound']:.1f} ms at 64 MHz "
        "(lower bound, 1 instruction/cycle)",
    ]
    if "live_budget" in r:
        fe, live = r["frontend"]["instructions_per_hop"], r["live_budget"]
        lines += [
            f"frontend: {fe['mean']} instructions per hop (mean of {r['frontend']['hops_timed']} hops; "
            f"max {fe['max']}), >= {r['frontend']['board_ms_per_hop_lower_bound']:.2f} ms per hop at 64 MHz",
        ]
        if "streaming" in r:
            st, full = r["streaming"], r["live_budget_full_window"]
            split = ""
            if st["rows_instructions_per_frame"] is not None:
                split = (
                    f"; ~{st['rows_instructions_per_frame']} rows per frame + ~{st['head_instructions']} head"
                )
            lines += [
                "streaming form (what the firmware runs: every frame pushed, the head every "
                f"{st['stride_frames']} frames): {st['instructions_per_inference_step']} instructions per "
                f"inference step (mean of {st['inferences_timed']} steps after warm-up; "
                f"{st['instructions_per_frame']} per frame{split}), "
                f"{st['step_vs_full_window']:.3f} x the full window's {st['full_window_instructions']}, "
                f">= {st['board_ms_per_step_lower_bound']:.2f} ms "
                "per step at 64 MHz",
                *(
                    [f"{'layer':>5} {'op':<18} {'per step':>10} {'full window per row':>20}"]
                    + [f"{x['layer']:>5} {x['op']:<18} {x['instructions_per_step']:>10} "
                       f"{x['full_window_instructions_per_row']:>20}" for x in st.get("layers", [])]
                ),
                _live_line("live budget, streaming", live),
                f"  for comparison, a whole-window inference every {full['stride']} hops: "
                f"{full['instructions_per_second_of_audio']} instructions per second of audio = "
                f"{full['core_percent_lower_bound']}% of a 64 MHz core",
            ]
        else:
            lines.append(_live_line("live budget", live))
    lines += [
        f"ELF: flash {r['flash_bytes']} B (.text+.rodata+.data), RAM {r['ram_bytes']} B (.data+.bss+stack)",
        f"arena: ours {r['arena_bytes']} B, TFLite Micro {r['tflm_arena_total_bytes']} B total "
        f"({r['tflm_arena_head_bytes']} B tensors/scratch, 64-bit host build)",
        "NOTE: emulator instruction counts (QEMU -icount), not Cortex-M4 cycles; cycles need the real board.",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from .. import atomic
    from ..errors import check_output_file
    from ..modelmeta import read_model_bytes

    if args.json:
        check_output_file(args.json, "--json")

    if args.stride is not None and args.stride < 1:
        raise NanokwsError("--stride must be at least 1")
    if args.compare_tflm is not None:
        from . import tflm_compare

        tflm_compare.check(args)
    tflite = read_model_bytes(args.model)
    r = bench(
        tflite,
        args.runs,
        args.build_dir,
        source=args.model.name,
        fast=not args.reference_kernels,
        stride=args.stride,
        opt="Os" if args.board_flags else args.opt,
        float_abi="soft" if args.board_flags else args.float_abi,
    )
    r["model"] = str(args.model)
    r["model_sha256"] = model_sha256(tflite)
    command = invoked_command("bench")
    if command is not None:
        r["command"] = command
    print(format_table(r))
    if args.compare_tflm is not None:
        tflm_compare.run(args, tflite, r)
    if args.json:
        atomic.write_json(args.json, r)
    return 0
