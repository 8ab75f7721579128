"""Clip mode: classify one-second clips on the device and check each against the host reference.

Per clip: CLIP_LOAD x 32 + CLIP_RUN; the device's top label vs the truth, and its int8 scores vs
the same C frontend + TFLite Micro on the host, element by element. Device latency in ms is the
device counter's time, except under QEMU: there it is the Nano 33 BLE's lower bound at 64 MHz from
the guest instruction count (summary.TimeBase), with ticks and instructions beside. The report
dict is filled as clips complete, so a fault mid-run still leaves everything measured so far.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from .device import Device
from .reference import Reference, clip_features
from .summary import distribution, table, time_base


class ClipRun:
    def __init__(
        self, report: dict[str, Any], labels: Sequence[str], cycle_hz: float, cycle_unit: str
    ) -> None:
        self.report = report
        self.labels = list(labels)
        self.cycle_hz = cycle_hz
        self.cycle_unit = cycle_unit
        self.time_base = time_base(cycle_unit, cycle_hz)  # QEMU ticks -> board lower bound
        self.clips: list[dict[str, Any]] = []
        self.fe_cycles: list[int] = []
        self.inf_cycles: list[int] = []
        self.round_trip_ms: list[float] = []
        self.mismatches: list[dict[str, Any]] = []
        self.junit: list[dict[str, Any]] = []

    def add(
        self,
        name: str,
        label: int,
        result_top: int,
        dev_scores: np.ndarray,
        ref_scores: np.ndarray | None,
        fe: int,
        inf: int,
        rt_ms: float,
    ) -> None:
        correct = result_top == label
        bit_exact = (
            None
            if ref_scores is None
            else bool(dev_scores.shape == ref_scores.shape and np.array_equal(dev_scores, ref_scores))
        )
        self.fe_cycles.append(fe)
        self.inf_cycles.append(inf)
        self.round_trip_ms.append(rt_ms)
        self.clips.append(
            {
                "clip": name,
                "label": self.labels[label],
                "predicted": self._name(result_top),
                "correct": correct,
                "bit_exact": bit_exact,
            }
        )
        failure = None
        if bit_exact is False:
            assert ref_scores is not None
            diff = (
                (dev_scores.astype(np.int16) - ref_scores.astype(np.int16))
                if dev_scores.shape == ref_scores.shape
                else None
            )
            self.mismatches.append(
                {
                    "clip": name,
                    "device": dev_scores.tolist(),
                    "reference": ref_scores.tolist(),
                    "max_abs_diff": None if diff is None else int(np.abs(diff).max()),
                    "elements_differing": None if diff is None else int(np.count_nonzero(diff)),
                }
            )
            failure = "device scores differ from the host reference (frontend + TFLite Micro)"
        self.junit.append({"name": name, "classname": "hil.clip", "time": rt_ms / 1000.0, "failure": failure})
        self.update_report()

    def _name(self, index: int) -> str:
        return self.labels[index] if 0 <= index < len(self.labels) else f"#{index}"

    def update_report(self) -> None:
        n = len(self.clips)
        compared = [c for c in self.clips if c["bit_exact"] is not None]
        per_class: dict[str, dict[str, Any]] = {}
        for name in self.labels:
            mine = [c for c in self.clips if c["label"] == name]
            hits = sum(c["correct"] for c in mine)
            per_class[name] = {
                "n": len(mine),
                "correct": hits,
                "accuracy": (hits / len(mine)) if mine else None,
            }
        tb = self.time_base
        fe_ms, inf_ms = tb.ms(self.fe_cycles), tb.ms(self.inf_cycles)
        total_ms = [a + b for a, b in zip(fe_ms, inf_ms, strict=False)]
        source = tb.source
        latency: dict[str, Any] = {
            "device_frontend_ms": {**distribution(fe_ms, "ms"), "source": source, "per": "clip (49 frames)"},
            "device_inference_ms": {**distribution(inf_ms, "ms"), "source": source, "per": "clip"},
            "device_total_ms": {**distribution(total_ms, "ms"), "source": source, "per": "clip"},
            "device_frontend_cycles": distribution(self.fe_cycles, self.cycle_unit),
            "device_inference_cycles": distribution(self.inf_cycles, self.cycle_unit),
        }
        if tb.emulated:
            unit = "QEMU guest instructions"
            latency["device_frontend_instructions"] = distribution(tb.instructions(self.fe_cycles), unit)
            latency["device_inference_instructions"] = distribution(tb.instructions(self.inf_cycles), unit)
        latency["round_trip_ms"] = {
            **distribution(self.round_trip_ms, "ms"),
            "source": "host wall clock: CLIP_LOAD x 32 + CLIP_RUN, incl. transfer",
        }
        self.report.update(
            {
                "n": n,
                "accuracy": (sum(c["correct"] for c in self.clips) / n) if n else None,
                "bit_exact_fraction": (sum(bool(c["bit_exact"]) for c in compared) / len(compared))
                if compared
                else None,
                "bit_exact_compared": len(compared),
                "per_class": per_class,
                "latency": latency,
                "mismatches": self.mismatches,
                "clips": self.clips,
            }
        )

    def people_table(self) -> str:
        rows = []
        for name, pc in self.report.get("per_class", {}).items():
            if pc["n"]:
                rows.append([name, pc["n"], pc["correct"], f"{pc['accuracy']:.3f}"])
        text = table(rows, ["label", "clips", "correct", "accuracy"])
        lat = self.report.get("latency", {})
        lines = [text, ""]
        for key in ("device_frontend_ms", "device_inference_ms", "device_total_ms", "round_trip_ms"):
            d = lat.get(key, {})
            if d.get("n"):
                lines.append(f"{key:<22} p50 {d['p50']:.3f}  p95 {d['p95']:.3f}  max {d['max']:.3f} ms")
        return "\n".join(lines)


def run_clips(
    device: Device,
    examples: Sequence[Any],
    labels: Sequence[str],
    reference: Reference | None,
    report: dict[str, Any],
    progress: bool = True,
) -> ClipRun:
    """Run every example through the device; fills `report` as it goes and returns the run."""
    info = device.info.data if device.info else {}
    run = ClipRun(report, labels, float(info.get("cycle_hz", 0) or 0), str(info.get("cycle_unit", "cycles")))
    report["planned"] = len(examples)
    report["_junit"] = run.junit  # the same list, filled per clip: kept even if a clip faults
    batch = 64  # features for the reference are computed in batches: one C call per batch
    bar = tqdm(total=len(examples), desc="hil clips", unit="clip", disable=not progress)
    try:
        for start in range(0, len(examples), batch):
            chunk = examples[start : start + batch]
            audio = np.stack([np.asarray(ex.audio(), dtype=np.int16) for ex in chunk])
            feats = clip_features(audio) if reference is not None else None
            for i, ex in enumerate(chunk):
                t0 = time.perf_counter()
                result = device.classify(audio[i])
                rt_ms = (time.perf_counter() - t0) * 1000.0
                ref = (
                    reference.scores_from_features(feats[i])
                    if reference is not None and feats is not None
                    else None
                )
                run.add(
                    _clip_name(ex),
                    int(ex.label_index),
                    result.top,
                    result.scores,
                    ref,
                    result.frontend_cycles,
                    result.inference_cycles,
                    rt_ms,
                )
                bar.update(1)
                bar.set_postfix(
                    acc=f"{report['accuracy']:.3f}", exact=f"{report['bit_exact_fraction'] or 0:.3f}"
                )
    finally:
        bar.close()
    return run


def _clip_name(ex: Any) -> str:
    path = getattr(ex, "path", None)
    offset = getattr(ex, "offset", 0)
    if path is None:
        return str(ex)
    name = f"{path.parent.name}/{path.name}"
    return f"{name}@{offset}" if getattr(ex, "noise", None) is not None else name
