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
