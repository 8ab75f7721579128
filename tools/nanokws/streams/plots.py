"""Pictures of a scored stream (matplotlib Agg, written atomically): the DET curve, accuracy against
SNR, and a timeline of a stretch with truth, detections, misses, false accepts and score traces."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .builder import StreamTruth

KIND_COLOURS = {
    "distractor": "tab:orange",
    "noise": "tab:purple",
    "repeat": "tab:brown",
    "confusion": "tab:red",
}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path, plt: Any) -> None:
    from ..atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _floor(hours: float) -> float:
    """Where zero false accepts per hour sit on the log axis: half of one false accept in the run."""
    return 0.5 / hours if hours > 0 else 0.1


def plot_det(
    path: Path, det: dict[str, Any], operating: dict[str, Any] | None = None, title: str = ""
) -> None:
    """FRR against false accepts per hour (log x): per keyword thin lines, overall bold, the
    distractor-only and noise-only overall curves dashed, the operating point marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    floor = _floor(float(det.get("hours") or 0.0))

    def xs(values: Sequence[float | None]) -> np.ndarray:
        return np.array([max(floor, v or 0.0) for v in values])

    for k, pts in det.get("per_keyword", {}).items():
        pts = [p for p in pts if p["frr"] is not None]
        if pts:
            ax.plot(xs([p["fa_per_hour"] for p in pts]), [p["frr"] for p in pts], lw=0.8, alpha=0.7, label=k)
    ov = [p for p in det.get("overall", []) if p["frr"] is not None]
    if ov:
        ax.plot(
            xs([p["fa_per_hour"] for p in ov]),
            [p["frr"] for p in ov],
            lw=2.6,
            color="k",
            label="all keywords",
        )
        ax.plot(
            xs([p["fa_distractor_per_hour"] for p in ov]),
            [p["frr"] for p in ov],
            lw=1.2,
            ls="--",
            color="tab:orange",
            label="all: distractor FA only",
        )
        ax.plot(
            xs([p["fa_noise_per_hour"] for p in ov]),
            [p["frr"] for p in ov],
            lw=1.2,
            ls=":",
            color="tab:purple",
            label="all: noise FA only",
        )
    if operating is not None and operating.get("frr") is not None:
        ax.plot(
            [max(floor, operating.get("fa_per_hour") or 0.0)],
            [operating["frr"]],
            marker="*",
            ms=16,
            color="tab:red",
            ls="none",
            label=f"operating point ({operating.get('what', 'firmware config')})",
        )
    ax.set_xscale("log")
    ax.set_xlabel(f"false accepts per hour, distractor + noise (0 drawn at {floor:.2g})")
    ax.set_ylabel("false reject rate")
    ax.set_ylim(0, max(0.05, min(1.0, max((p["frr"] for p in ov), default=1.0) * 1.05)))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="upper right")
    ax.set_title(title or "DET curve (one threshold swept for every keyword)", fontsize=10)
    fig.tight_layout()
    _save(fig, path, plt)


def plot_snr(path: Path, per_condition: dict[str, Any], title: str = "") -> None:
    """Hit rate and the fraction of distractor words that fired, per listening condition."""
    plt = _pyplot()
    conds = list(per_condition)
    conds.sort(key=lambda c: -1e9 if per_condition[c]["snr_db"] is None else -per_condition[c]["snr_db"])
    hit = [100 * (per_condition[c]["hit_rate"] or 0.0) for c in conds]
    fa = [100 * (per_condition[c]["distractor_fire_fraction"] or 0.0) for c in conds]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = np.arange(len(conds))
    ax.plot(x, hit, marker="o", lw=2, color="tab:green", label="keywords hit (%)")
    ax.plot(x, fa, marker="s", lw=2, color="tab:orange", label="distractor words that fired (%)")
    for i in range(len(conds)):
        ax.annotate(
            f"{hit[i]:.0f}",
            (x[i], hit[i]),
            textcoords="offset points",
            xytext=(0, 6),
            fontsize=7,
            ha="center",
        )
        ax.annotate(
            f"{fa[i]:.0f}", (x[i], fa[i]), textcoords="offset points", xytext=(0, 6), fontsize=7, ha="center"
        )
    ax.set_xticks(x, conds)
    ax.set_xlabel("condition (SNR of speech over the background noise)")
    ax.set_ylabel("%")
    ax.set_ylim(0, 105)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "accuracy against SNR", fontsize=10)
    fig.tight_layout()
    _save(fig, path, plt)


def plot_timeline(
    path: Path,
    audio: np.ndarray,
    truth: StreamTruth,
    report: dict[str, Any],
    run: Any,
    start_s: float,
    end_s: float,
    threshold: int | None = None,
) -> None:
    """A stretch [start_s, end_s): waveform with truth spans (keywords green, distractors orange,
    noise-only stretches grey), hits (green), false accepts (coloured by kind) and misses (red X);
    below, the smoothed probabilities of the keywords (what thresholds compare against)."""
    from .replay import probabilities, smoothed

    plt = _pyplot()
    sr = truth.sample_rate
    a, b = int(start_s * sr), min(audio.size, int(end_s * sr))
    fig, (ax_w, ax_s) = plt.subplots(2, 1, figsize=(15, 6), sharex=True, height_ratios=[1, 1.3])
    seg = audio[a:b].astype(np.float64)
    step = max(1, seg.size // 30000)
    t = (a + np.arange(0, seg.size, step)) / sr
    ax_w.plot(t, seg[::step], lw=0.3, color="0.45")
    top = float(np.abs(seg).max()) if seg.size else 1.0
    for s in truth.stretches:
        if s.end_s > start_s and s.start_s < end_s:
            ax_w.axvspan(max(s.start_s, start_s), min(s.end_s, end_s), color="0.85", alpha=0.5, lw=0)
    for w in truth.words:
        if w.end_s > start_s and w.start_s < end_s:
            colour = "tab:green" if w.kind == "keyword" else "tab:orange"
            ax_w.axvspan(w.start_s, w.end_s, color=colour, alpha=0.22, lw=0)
            ax_w.text(w.start_s, top * 0.92, w.word, fontsize=7, color=colour)
    for tt in report.get("hit_times", {}).values():
        if start_s <= tt < end_s:
            ax_w.axvline(tt, color="tab:green", lw=1.2)
            ax_s.axvline(tt, color="tab:green", lw=1.0)
    for e in report.get("false_accept_events", []):
        if start_s <= e["time_s"] < end_s:
            colour = KIND_COLOURS.get(e["kind"], "tab:red")
            ax_w.axvline(e["time_s"], color=colour, lw=1.4, ls="--")
            ax_s.axvline(e["time_s"], color=colour, lw=1.0, ls="--")
            ax_w.text(
                e["time_s"],
                -top * 0.95,
                f"{e['label']} ({e['kind']})",
                fontsize=7,
                color=colour,
                rotation=90,
                va="bottom",
            )
    for m in report.get("missed", []):
        if start_s <= m["start_s"] < end_s:
            ax_w.plot(
                [(m["start_s"] + m["end_s"]) / 2], [top * 0.75], marker="X", ms=9, color="tab:red", ls="none"
            )
    ax_w.set_ylabel("PCM")
    ax_w.set_title(
        "truth: keywords (green), distractors (orange), noise only (grey); hits (green lines), false accepts "
        "(dashed: orange distractor, purple noise, brown repeat, red confusion), misses (red X)",
        fontsize=8,
    )
    if run is not None and run.scores.size:
        times = (run.hops.astype(np.float64) + 1) * run.hop_samples / run.sample_rate
        window = int(run.config.get("window", 1) or 1)
        sm = smoothed(probabilities(run.scores, run.output_scale, run.output_zero_point), window)
        sel = (times >= start_s) & (times < end_s)
        for j, lab in enumerate(run.labels):
            if not lab.startswith("_"):
                ax_s.plot(times[sel], sm[sel, j], lw=0.9, label=lab)
        if threshold is not None:
            ax_s.axhline(threshold, color="k", lw=0.8, ls=":", label=f"threshold {threshold}")
        ax_s.legend(fontsize=6, ncol=6, loc="upper right")
    ax_s.set_ylabel("smoothed probability (0..255)")
    ax_s.set_xlabel("time (s)")
    ax_s.set_xlim(start_s, end_s)
    fig.tight_layout()
    _save(fig, path, plt)
