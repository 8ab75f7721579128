"""Numbers and artifacts for people and CI: latency summaries, threshold checks, table, JUnit."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..atomic import write_text


def distribution(values: Sequence[float], unit: str) -> dict[str, Any]:
    """p50/p95/max/mean of `values`, with the unit named, or just the unit when empty."""
    if len(values) == 0:
        return {"unit": unit, "n": 0}
    arr = np.asarray(values, dtype=np.float64)
    return {
        "unit": unit,
        "n": int(arr.size),
        "p50": round(float(np.percentile(arr, 50)), 4),
        "p95": round(float(np.percentile(arr, 95)), 4),
        "max": round(float(arr.max()), 4),
        "mean": round(float(arr.mean()), 4),
    }


def cycles_to_ms(cycles: Sequence[int] | np.ndarray, cycle_hz: float) -> list[float]:
    if cycle_hz <= 0:
        return []
    return [float(c) * 1000.0 / cycle_hz for c in cycles]


@dataclass(frozen=True)
class TimeBase:
    """How a device's counter (INFO cycle_unit / cycle_hz) becomes time.

    On a board (cpu_cycles) or the host (host_ns) the counter is a real clock: ms = counts / hz.
    Under QEMU (qemu_systick_ticks) the counter runs on QEMU's virtual clock, which under
    -icount is 1 ns per guest instruction, not the board's time: counts become guest instructions
    (ticks x instructions per tick) and ms is the Nano 33 BLE's lower bound, instructions / 64 MHz
    at one instruction per cycle.
    """

    unit: str
    hz: float
    instructions_per_tick: float | None = None  # set for QEMU only
    board_hz: float = 0.0

    @property
    def emulated(self) -> bool:
        return self.instructions_per_tick is not None

    def ms(self, counts: Sequence[int] | np.ndarray) -> list[float]:
        if self.instructions_per_tick is not None:
            return [float(c) * self.instructions_per_tick * 1000.0 / self.board_hz for c in counts]
        return cycles_to_ms(counts, self.hz)

    def instructions(self, counts: Sequence[int] | np.ndarray) -> list[float]:
        if self.instructions_per_tick is None:
            return []
        return [float(c) * self.instructions_per_tick for c in counts]

    @property
    def source(self) -> str:
        if self.instructions_per_tick is not None:
            mhz = f"{self.board_hz / 1e6:g} MHz"
            return (
                f"Nano 33 BLE lower bound at {mhz}, 1 instruction/cycle: QEMU {self.unit} "
                f"x {self.instructions_per_tick:g} = guest instructions, / {mhz}"
            )
        return f"device counter: {self.unit} at {self.hz:g} Hz"


def time_base(cycle_unit: str, cycle_hz: float) -> TimeBase:
    """The TimeBase for a device that reports `cycle_unit` at `cycle_hz` (its INFO)."""
    from ..qemu import BOARD_CPU_HZ, QEMU_CYCLE_UNIT, instructions_per_tick

    if cycle_unit == QEMU_CYCLE_UNIT and cycle_hz > 0:
        return TimeBase(cycle_unit, cycle_hz, instructions_per_tick(cycle_hz), float(BOARD_CPU_HZ))
    return TimeBase(cycle_unit, cycle_hz)


def work_rate(
    frontend_counts: Sequence[int], inference_counts: Sequence[int], hops: int, seconds: float, tb: TimeBase
) -> dict[str, Any]:
    """The real-time factor of a streamed run: device work seconds per second of audio, work =
    mean frontend time per hop x `hops` + the sum of the inference times. Under QEMU it is the board
    lower bound (work instructions / 64 MHz), named so; raw instruction counts go beside it."""
    out: dict[str, Any] = {"real_time_factor": None}
    if not frontend_counts or seconds <= 0 or tb.hz <= 0:
        return out
    fe_ms, inf_ms = tb.ms(frontend_counts), tb.ms(inference_counts)
    work_s = (float(np.mean(fe_ms)) * hops + float(np.sum(inf_ms))) / 1000.0
    out["real_time_factor"] = round(work_s / seconds, 6)
    if tb.emulated:
        fe_i, inf_i = tb.instructions(frontend_counts), tb.instructions(inference_counts)
        work_i = float(np.mean(fe_i)) * hops + float(np.sum(inf_i))
        out["real_time_factor_kind"] = "board_lower_bound"
        out["real_time_factor_means"] = (
            f"Nano 33 BLE lower bound: QEMU work instructions / {tb.board_hz / 1e6:g} MHz (1 instruction/"
            "cycle) per second of this run's audio; < 1 is needed to keep up but does not prove it "
            "(real cycles per instruction >= 1)"
        )
        out["work_instructions_per_second_of_audio"] = round(work_i / seconds)
        out["core_percent_lower_bound"] = round(100.0 * work_i / seconds / tb.board_hz, 1)
    else:
        out["real_time_factor_kind"] = "measured"
        out["real_time_factor_means"] = f"device work seconds ({tb.unit}) per second of audio (< 1 keeps up)"
    return out


@dataclass
class Check:
    name: str
    value: float | None
    limit: float
    kind: str  # "min" or "max"

    @property
    def passed(self) -> bool:
        if self.value is None:
            return False
        return self.value >= self.limit if self.kind == "min" else self.value <= self.limit

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, self.kind: self.limit, "passed": self.passed}

    def line(self) -> str:
        op = ">=" if self.kind == "min" else "<="
        shown = "n/a" if self.value is None else f"{self.value:.4g}"
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name} = {shown} (need {op} {self.limit:g})"


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*(str(x) for x in r)) for r in rows]
    return "\n".join(lines)


def write_junit(path: str | os.PathLike[str], suite: str, cases: Sequence[dict[str, Any]]) -> None:
    """cases: {"name", "classname", "time" (s), optional "failure" (message), optional "error"}."""
    failures = sum(1 for c in cases if c.get("failure"))
    errors = sum(1 for c in cases if c.get("error"))
    root = ET.Element("testsuites")
    ts = ET.SubElement(
        root, "testsuite", name=suite, tests=str(len(cases)), failures=str(failures), errors=str(errors)
    )
    for c in cases:
        tc = ET.SubElement(
            ts,
            "testcase",
            name=str(c["name"]),
            classname=str(c.get("classname", suite)),
            time=f"{float(c.get('time', 0.0)):.6f}",
        )
        if c.get("failure"):
            ET.SubElement(tc, "failure", message=str(c["failure"]))
        if c.get("error"):
            ET.SubElement(tc, "error", message=str(c["error"]))
    ET.indent(root)
    write_text(path, ET.tostring(root, encoding="unicode") + "\n")
