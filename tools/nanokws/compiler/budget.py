"""The board budget next to `nanokws bench`'s instruction counts.

- `header_define` / `default_stride`: constants read from the firmware's headers, never retyped
  (NK_APP_DEFAULT_STRIDE in firmware/lib/app/nk_app.h: one inference every `stride` hops).
- `FrontendRunner` / `measure_frontend`: the `frontend_bench` program (firmware/programs) times
  nk_frontend_push_hop hop by hop; under QEMU that is the frontend's instructions per hop. Its hello
  carries the sample rate and hop size as compiled (nk_frontend_config.h).
- `live_budget`: instructions per second of audio in live mode = frontend per hop x hops per second
  + inference x (hops per second / stride), and the share of the board's 64 MHz core at one
  instruction per cycle (a lower bound: real cycles per instruction are >= 1).
- `StreamRunner` (stream_runner.py) / `measure_stream` / `streaming_live_budget`: for a model with a
  streaming form the firmware pushes every frame and runs the head every stride frames; the live
  budget then uses the steady-state instructions per inference step (the pushes of stride frames).
- Board flags: PlatformIO compiles the Nano 33 BLE build with the variant's flags; `BOARD_FLAGS`
  lists those that change code generation (-Os, -mfloat-abi=soft), `board_make_args` builds the
  QEMU programs with them, `elf_float_abi` checks which float ABI an ELF was linked for.
"""

from __future__ import annotations

import math
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NanokwsError
from ..paths import FIRMWARE_LIB_DIR
from .program_io import ProgramIO

APP_HEADER = FIRMWARE_LIB_DIR / "app" / "nk_app.h"

# What the PlatformIO build of the Nano 33 BLE compiles with, where it differs in code generation
# from firmware/Makefile's qemu target (-O2 -mfloat-abi=hard): the variant's cflags.txt has -Os
# (platformio.ini removes it with build_unflags, so the board now builds -O2) and the builder
# appends -mfloat-abi=soft (kept: the firmware has no float arithmetic on the hot path).
BOARD_OPT = "-Os"
BOARD_FLOAT_ABI = "soft"
BOARD_FLAGS = f"{BOARD_OPT} -mfloat-abi={BOARD_FLOAT_ABI}"
# firmware/Makefile's qemu ARCH with the board's float ABI (overriding ARCH on the make command
# line changes both compile and link flags, so the soft-float C libraries are linked).
_BOARD_ARCH = f"-mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi={BOARD_FLOAT_ABI}"


def board_make_args(opt: str = BOARD_OPT, float_abi: str = BOARD_FLOAT_ABI) -> list[str]:
    """firmware/Makefile arguments that build TARGET=qemu with the board's optimisation and float ABI."""
    arch = _BOARD_ARCH.replace(f"-mfloat-abi={BOARD_FLOAT_ABI}", f"-mfloat-abi={float_abi}")
    return [f"ARCH={arch}", f"EXTRA_CFLAGS={opt}"]


def elf_float_abi(elf: Path) -> str:
    """ "hard" when the ELF passes floats in VFP registers (Tag_ABI_VFP_args), else "soft"."""
    from ..cbuild import require_tool

    out = subprocess.run(
        [require_tool("arm-none-eabi-readelf"), "-A", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    return "hard" if re.search(r"Tag_ABI_VFP_args:\s*VFP registers", out) else "soft"


def header_define(path: Path, name: str) -> int:
    """The integer value of `#define name N` (suffixes u/U/l/L allowed) in a C header."""
    text = Path(path).read_text(encoding="utf-8")
    m = re.search(rf"^\s*#\s*define\s+{re.escape(name)}\s+\(?\s*(\d+)[uUlL]*\s*\)?", text, re.MULTILINE)
    if not m:
        raise NanokwsError(f"{path}: no integer #define {name}")
    return int(m.group(1))


def default_stride() -> int:
    """NK_APP_DEFAULT_STRIDE: the live mode's inference stride in hops, from the firmware header."""
    return header_define(APP_HEADER, "NK_APP_DEFAULT_STRIDE")


def max_stride() -> int:
    """NK_APP_MAX_STRIDE: the largest stride the firmware accepts, from the firmware header."""
    return header_define(APP_HEADER, "NK_APP_MAX_STRIDE")


class FrontendRunner(ProgramIO):
    """Start `frontend_bench` for `target` ("host", "asan" or "qemu") and push hops through it."""

    NAME = "frontend_bench"
    QUIT = b"NKFQ"

    def __init__(self, program: str | Path, target: str) -> None:
        super().__init__(program, target)
        self._expect_hello(b"NKFH")
        self.sample_rate, self.hop_samples, self.num_channels, self.cycle_hz = self._read_u32s(4)
        self.cycle_unit = self._read_unit()

    def reset(self) -> None:
        self._send(b"NKFR")

    def push_hop(self, hop: np.ndarray) -> tuple[np.ndarray | None, int]:
        """One hop of int16 PCM -> (the completed int8 frame or None, counter ticks it took)."""
        data = np.asarray(hop, dtype="<i2").reshape(-1)
        if data.size != self.hop_samples:
            raise NanokwsError(f"a hop has {self.hop_samples} samples, not {data.size}")
        self._send(b"NKFP" + data.tobytes())
        got = self._read(1)[0]
        (cycles,) = self._read_u32s(1)
        frame = np.frombuffer(self._read(self.num_channels), dtype=np.int8).copy() if got else None
        return frame, cycles


def bench_audio(num_samples: int, sample_rate: int, seed: int = 0) -> np.ndarray:
    """Deterministic speech-band test audio: a gliding tone with harmonics over noise, its loudness
    swept from quiet to near full scale, so every hop sees a different level and spectrum."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / sample_rate
    f0 = 120.0 + 180.0 * (0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    level = np.geomspace(30.0, 12000.0, num_samples)
    x = level * (voice / 3.0 + 0.3 * rng.standard_normal(num_samples))
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def measure_frontend(elf: Path, target: str, seconds: float = 1.0, seed: int = 0) -> dict[str, Any]:
    """Run `seconds` of `bench_audio` through frontend_bench hop by hop. Per-hop counts are taken
    only for hops that complete a frame (the steady state of live mode); the first hop, which only
    fills the window, is left out. Returns raw counter ticks; the caller converts the unit."""
    with FrontendRunner(elf, target) as fe:
        hops = max(2, int(round(seconds * fe.sample_rate / fe.hop_samples)) + 1)
        audio = bench_audio(hops * fe.hop_samples, fe.sample_rate, seed)
        ticks: list[int] = []
        for k in range(hops):
            frame, cycles = fe.push_hop(audio[k * fe.hop_samples : (k + 1) * fe.hop_samples])
            if frame is not None:
                ticks.append(cycles)
        info = {
            "sample_rate_hz": fe.sample_rate,
            "hop_samples": fe.hop_samples,
            "num_channels": fe.num_channels,
            "cycle_unit": fe.cycle_unit,
            "cycle_hz": fe.cycle_hz,
        }
    if not ticks:
        raise NanokwsError("frontend_bench completed no frame")
    return {**info, "hops_timed": len(ticks), "ticks": ticks}


def measure_stream(
    elf: Path, target: str, strides: Sequence[int], inferences: int = 24, seed: int = 0
) -> dict[str, Any]:
    """Time the streaming form (the `stream_runner` program) as the firmware runs it: every frame
    pushed (nk_model_stream_push), the head every `stride` frames. For each stride: set it, reset,
    warm up (a full window and two more inferences), then push `inferences` x stride more frames of
    seeded random int8 features and count the ticks of all those pushes. Raw counter ticks; the
    caller converts the unit. Returns the stream's `align`, compiled `default_stride`, `cycle_unit`
    and `strides` {stride: counts}; a stride the streaming form refuses is left out of `strides`."""
    from .stream_runner import StreamRunner

    out: dict[int, dict[str, Any]] = {}
    with StreamRunner(elf, target) as sr:
        rng = np.random.default_rng(seed)
        for stride in strides:
            if sr.set_stride(stride) != 0:
                continue
            sr.reset()
            warm = sr.window_frames + 2 * stride
            frames = rng.integers(-128, 128, size=(warm + inferences * stride, sr.frame_len), dtype=np.int8)
            sr.push(frames[:warm])
            batch = sr.push(frames[warm:])
            if len(batch.scores) != inferences:
                raise NanokwsError(
                    f"stream_runner gave {len(batch.scores)} inferences in {batch.frames} frames at "
                    f"stride {stride}, not {inferences}"
                )
            out[stride] = {
                "frames": batch.frames,
                "inferences": len(batch.scores),
                "total_ticks": batch.total_cycles,
                "max_push_ticks": batch.max_cycles,
                "head_push_ticks": [s.cycles for s in batch.scores],
                "layer_ticks": list(batch.layer_cycles),
            }
        info = {"align": sr.align, "default_stride": sr.stride, "cycle_unit": sr.cycle_unit}
    return {**info, "strides": out}


def live_budget(
    frontend_instructions_per_hop: float,
    inference_instructions: float,
    sample_rate: int,
    hop_samples: int,
    stride: int,
    cpu_hz: float,
    stride_limit: int | None = None,
) -> dict[str, Any]:
    """Instructions per second of audio in live mode and the share of a `cpu_hz` core they need at
    one instruction per cycle (so a lower bound on the real share). `min_stride_within_core`: the
    smallest stride (<= `stride_limit`) whose lower bound fits in the core, None if none does."""
    if stride < 1:
        raise NanokwsError("stride must be at least 1")
    hops_per_s = sample_rate / hop_samples
    inferences_per_s = hops_per_s / stride
    fe_per_s = frontend_instructions_per_hop * hops_per_s
    inf_per_s = inference_instructions * inferences_per_s
    total = fe_per_s + inf_per_s
    fits = None
    if fe_per_s < cpu_hz:
        need = max(1, math.ceil(inference_instructions * hops_per_s / (cpu_hz - fe_per_s)))
        fits = need if stride_limit is None or need <= stride_limit else None
    return {
        "kind": "full_window",
        "stride": stride,
        "sample_rate_hz": sample_rate,
        "hop_samples": hop_samples,
        "hops_per_second": hops_per_s,
        "inferences_per_second": inferences_per_s,
        "frontend_instructions_per_hop": round(frontend_instructions_per_hop),
        "inference_instructions": round(inference_instructions),
        "frontend_instructions_per_second": round(fe_per_s),
        "inference_instructions_per_second": round(inf_per_s),
        "instructions_per_second_of_audio": round(total),
        "cpu_hz": cpu_hz,
        "core_percent_lower_bound": round(100.0 * total / cpu_hz, 1),
        "min_stride_within_core": fits,
    }


def streaming_live_budget(
    frontend_instructions_per_hop: float,
    step_instructions: float,
    sample_rate: int,
    hop_samples: int,
    stride: int,
    cpu_hz: float,
    rows_per_frame: float | None = None,
    head_instructions: float | None = None,
    align: int = 1,
    stride_limit: int | None = None,
) -> dict[str, Any]:
    """`live_budget` for a model the firmware streams: one frame per hop goes through
    nk_model_stream_push and the head runs every `stride` frames, so an inference step (all pushes
    of `stride` frames, `step_instructions`) recurs hops/s / stride times a second:
    instructions per second = frontend per hop x hops/s + step x hops/s / stride (= the mean push
    x frames/s). A step costs about stride x `rows_per_frame` + `head_instructions` (from steps
    measured at two strides); with them, `min_stride_within_core` is the smallest multiple of
    `align` (<= `stride_limit`) whose lower bound fits in the core, else None."""
    if stride % align:
        raise NanokwsError(f"stride {stride} is not a multiple of the streaming form's alignment {align}")
    live = live_budget(
        frontend_instructions_per_hop, step_instructions, sample_rate, hop_samples, stride, cpu_hz
    )
    fits = None
    if rows_per_frame is not None and head_instructions is not None:
        hops_per_s = sample_rate / hop_samples
        room = cpu_hz - frontend_instructions_per_hop * hops_per_s - rows_per_frame * hops_per_s
        if room > 0:
            need = max(1, math.ceil(head_instructions * hops_per_s / room))
            need = math.ceil(need / align) * align
            fits = need if stride_limit is None or need <= stride_limit else None
    return {
        **live,
        "kind": "streaming",
        "inference_instructions_per_step": round(step_instructions),
        "instructions_per_frame": round(step_instructions / stride),
        "min_stride_within_core": fits,
    }


def summarize_ticks(ticks: Sequence[int], per_tick: float) -> dict[str, int]:
    """Mean, median and max of counter ticks, in instructions (`per_tick` instructions a tick)."""
    arr = np.asarray(ticks, dtype=np.float64) * per_tick
    return {
        "mean": round(float(arr.mean())),
        "median": round(float(np.median(arr))),
        "max": round(float(arr.max())),
    }


def compare_table(reports: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of `nanokws bench --json` reports side by side (build flags, per inference,
    frontend per hop, live budget), every number as the reports hold it."""
    rows = [
        "| build | instructions per inference | Nano 33 BLE per inference (lower bound) | frontend "
        "instructions per hop | live mode: instructions per second of audio (stride) | share of the 64 MHz "
        "core (lower bound) | smallest stride that fits | flash (model_runner ELF) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        b, live = r["build"], r["live_budget"]
        rows.append(
            f"| {b['opt']} -mfloat-abi={b['float_abi']} | {r['instructions_per_inference']} | "
            f">= {r['board']['inference_ms_lower_bound']:.1f} ms | "
            f"{r['frontend']['instructions_per_hop']['mean']} | "
            f"{live['instructions_per_second_of_audio']} ({live['stride']}"
            f"{', streaming' if live.get('kind') == 'streaming' else ''}) | "
            f">= {live['core_percent_lower_bound']:.1f}% | {live['min_stride_within_core'] or 'none'} | "
            f"{r['flash_bytes']} B |"
        )
    return "\n".join(rows)


def layer_table(r: dict[str, Any]) -> str:
    """A Markdown table of one bench report's layers and total, as the report holds them."""
    rows = ["| layer | op | MACs | instructions | MACs/instr |", "|---|---|---|---|---|"]
    for row in r["layers"]:
        mpi = row["macs_per_instruction"] if row["macs_per_instruction"] is not None else "-"
        rows.append(f"| {row['layer']} | {row['op']} | {row['macs']} | {row['instructions']} | {mpi} |")
    total, mpi_total = r["instructions_per_inference"], r["macs_per_instruction"]
    rows.append(f"| **total** | | {r['total_macs']} | {total} | {mpi_total} |")
    return "\n".join(rows)


def stream_layer_table(r: dict[str, Any]) -> str:
    """A Markdown table of one bench report's streaming form, layer by layer (the layer hook's
    instructions per inference step) beside the whole window's instructions per output row."""
    st = r.get("streaming") or {}
    if not st.get("layers"):
        raise NanokwsError("no streaming layers in the bench JSON: bench a streaming model with this version")
    rows = ["| layer | op | instructions per step | whole window per output row |", "|---|---|---|---|"]
    for x in st["layers"]:
        rows.append(f"| {x['layer']} | {x['op']} | {x['instructions_per_step']} | "
                    f"{x['full_window_instructions_per_row']} |")
    total = sum(x["instructions_per_step"] for x in st["layers"])
    rows.append(f"| **layers** | | {total} | |")
    step = st["instructions_per_inference_step"]
    rows.append(f"| **step** (stride {st['stride_frames']}, all pushes) | | {step} | |")
    return "\n".join(rows)


TABLES = {"compare": lambda loaded: compare_table(loaded),
          "layers": lambda loaded: "\n\n".join(map(layer_table, loaded)),
          "stream-layers": lambda loaded: "\n\n".join(map(stream_layer_table, loaded))}

_BLOCK = re.compile(
    r"(<!-- bench-table: (compare|layers|stream-layers) ([^>]+?) -->\n)(.*?)(<!-- /bench-table -->)",
    re.DOTALL,
)


def fill_tables(text: str, root: Path) -> str:
    """Regenerate every `<!-- bench-table: compare|layers|stream-layers A.json ... -->` ...
    `<!-- /bench-table -->` block of a Markdown text from the bench JSON files it names (paths
    relative to `root`)."""

    def table(m: re.Match[str]) -> str:
        loaded = [_load(root / name) for name in m.group(3).split()]
        return f"{m.group(1)}{TABLES[m.group(2)](loaded)}\n{m.group(5)}"

    return _BLOCK.sub(table, text)


def _load(path: Path) -> dict[str, Any]:
    import json

    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise NanokwsError(f"{path}: cannot read the bench JSON ({exc})") from None


def main(argv: Sequence[str]) -> int:
    """python -m nanokws.compiler.budget [--layers] BENCH.json...  (print a Markdown table)
    python -m nanokws.compiler.budget --fill DOC.md  (regenerate DOC's bench-table blocks in place)"""
    from ..paths import REPO_ROOT

    if argv[:1] == ["--fill"]:
        for doc in map(Path, argv[1:]):
            doc.write_text(fill_tables(doc.read_text(encoding="utf-8"), REPO_ROOT), encoding="utf-8")
        return 0
    loaded = [_load(Path(a)) for a in argv if a != "--layers"]
    print("\n\n".join(map(layer_table, loaded)) if "--layers" in argv else compare_table(loaded))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
