"""Running the three builds under QEMU on the same inputs and counting their instructions: the two
tflm_runner ELFs (protocol in firmware/programs/tflm_bench/tflm_runner.cc) and the compiled model's
model_runner, counted as `nanokws bench` counts (SysTick around the inference under
`-icount shift=0`, ticks x 40), their outputs kept for the element-by-element comparison."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import NanokwsError
from ...qemu import INSTRUCTIONS_PER_TICK
from ..program_io import ProgramIO


class _TflmRunnerIO(ProgramIO):
    NAME = "tflm_runner"
    QUIT = b"NKTQ"


class TflmRunner:
    """tflm_runner under QEMU (protocol in firmware/programs/tflm_bench/tflm_runner.cc)."""

    HELLO_ERRORS = {
        1: "schema version",
        2: "op resolver",
        3: "AllocateTensors",
        4: "input/output not one int8 tensor each",
    }

    def __init__(self, elf: Path) -> None:
        self.io = _TflmRunnerIO(elf, "qemu")
        try:
            self.io._expect_hello(b"NKTH")
            (status,) = self.io._read_u32s(1)
            if status:
                what = self.HELLO_ERRORS.get(status, f"status {status}")
                raise NanokwsError(
                    f"TFLite Micro could not set the model up ({what}): {self._log() or 'no log line'}"
                )
            (
                self.input_len,
                self.output_len,
                self.arena_used_bytes,
                self.arena_size,
                self.init_cycles,
                self.cycle_hz,
            ) = self.io._read_u32s(6)
            self.cycle_unit = self.io._read_unit()
        except BaseException:
            self.io.__exit__(NanokwsError, None, None)
            raise

    def _log(self) -> str:
        (n,) = self.io._read_u32s(1)
        return self.io._read(n).decode(errors="replace").strip() if n else ""

    def infer(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        data = np.asarray(x, dtype=np.int8).reshape(-1)
        if data.size != self.input_len:
            raise NanokwsError(f"input has {data.size} values, TFLite Micro's input tensor {self.input_len}")
        self.io._send(b"NKTI" + data.tobytes())
        tag = self.io._read(1)
        if tag != b"O":
            raise NanokwsError(f"tflm_runner protocol error (tag {tag!r})")
        out = np.frombuffer(self.io._read(self.output_len), dtype=np.int8).copy()
        cycles, status = self.io._read_u32s(2)
        log = self._log()
        if status != 0:
            raise NanokwsError(f"TFLite Micro's Invoke() failed (status {status}): {log or 'no log line'}")
        return out, cycles

    def __enter__(self) -> TflmRunner:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.io.__exit__(*exc)


@dataclass
class Measured:
    """One build's run over the inputs: every output, every inference's SysTick ticks, and what
    else its program reported (arena, set-up ticks, the cycle unit, the ELF)."""

    outputs: np.ndarray  # int8 [inputs, output_len]
    ticks: list[int]
    extra: dict[str, Any] = field(default_factory=dict)


def bench_inputs(runs: int, input_len: int, notes: list[str]) -> tuple[np.ndarray, list[str]]:
    """`runs` seeded random int8 inputs drawn as `nanokws bench` draws them (numpy default_rng(0),
    one input at a time), then up to `runs` real feature tensors when the model takes 49x40
    features and the shared Speech Commands clips are there (as `nanokws verify` makes them)."""
    from ..verify import real_features

    rng = np.random.default_rng(0)
    rand = [rng.integers(-128, 128, size=input_len, dtype=np.int8) for _ in range(runs)]
    real = real_features(None, runs, input_len, notes)
    inputs = np.stack(rand + list(real))
    return inputs, ["random"] * len(rand) + ["features"] * len(real)


def measure_tflm(elf: Path, inputs: np.ndarray, desc: str, progress: bool) -> Measured:
    """A tflm_runner ELF over `inputs`, with its arena_used_bytes() and set-up ticks."""
    from tqdm import tqdm

    with TflmRunner(elf) as r:
        outs, ticks = [], []
        for x in tqdm(inputs, desc=desc, unit="inference", disable=not progress, leave=False):
            o, t = r.infer(x)
            outs.append(o)
            ticks.append(t)
        extra = {
            "arena_used_bytes": r.arena_used_bytes,
            "arena_size_bytes": r.arena_size,
            "init_ticks": r.init_cycles,
            "cycle_unit": r.cycle_unit,
        }
    return Measured(np.stack(outs), ticks, extra)


def measure_nanokws(
    tflite: bytes, inputs: np.ndarray, folder: Path, opt: str, float_abi: str, fast: bool, progress: bool
) -> tuple[Measured, dict[str, Any]]:
    """The compiled model over `inputs`: compiled into `folder` and built for QEMU with the same -O
    and float ABI as TFLite Micro; its run and its compile report (weights and arena bytes)."""
    from tqdm import tqdm

    from ...cbuild import build_programs
    from .. import budget
    from ..compile import compile_model
    from ..runner import ModelRunner

    comp = compile_model(tflite, folder / "model", measure_tflm=False, fast=fast)
    make_args = [] if (opt, float_abi) == ("O2", "hard") else budget.board_make_args(f"-{opt}", float_abi)
    elf = build_programs(
        "qemu", ["model_runner"], folder / "model", folder / f"qemu-{opt}-{float_abi}", make_args
    )["model_runner"]
    outs, ticks = [], []
    with ModelRunner(elf, "qemu") as r:
        unit = r.cycle_unit
        for x in tqdm(inputs, desc="nanokws", unit="inference", disable=not progress, leave=False):
            inf = r.infer(x)
            outs.append(inf.output)
            ticks.append(inf.total_cycles)
    return Measured(np.stack(outs), ticks, {"cycle_unit": unit, "elf": elf}), comp.report


def median_instructions(ticks: Sequence[int], kinds: Sequence[str], kind: str) -> int | None:
    """Median instructions over the inputs of `kind` ("random" or "features"); None when none."""
    sel = [t for t, k in zip(ticks, kinds, strict=True) if k == kind]
    return int(np.median(sel)) * INSTRUCTIONS_PER_TICK if sel else None
