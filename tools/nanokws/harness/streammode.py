"""Stream and bench modes: continuous audio through the device's streaming path.

stream: a long recording from the stream builder (streams/builder.py: keywords and distractor
  words at realistic gaps, in segments of silence or background noise at chosen SNRs) is sent with
  AUDIO at real-time pace x `speed`; DETECTION events are judged by streams/metrics.py, the same
  matcher `nanokws stream score` uses -> hits, misses, false accepts per hour split into distractor
  speech and noise/silence, distractor words fired, repeats, confusions, and a timeline PNG.
  (`build_stream` below is the older keywords-only builder: bench mode still uses it for its
  audio.)
bench: the same path with a SCORES event after every inference; the device's own cycle counts
  give the frontend-per-hop and inference-per-call distributions (histogram PNG) and the
  sustained real-time factor (device work seconds per second of audio).
Time on a board (cpu_cycles) or the host is its counter's; under QEMU (qemu_systick_ticks) the
counter is QEMU's virtual clock, so ticks become guest instructions and ms / real-time factor are
the Nano 33 BLE's lower bound at 64 MHz, 1 instruction/cycle (summary.TimeBase), named so in the
report (real_time_factor_kind "board_lower_bound"), with the raw ticks and instructions beside.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..features.config_header import read_config
from . import protocol as P
from .device import Device
from .summary import TimeBase, distribution, time_base, work_rate

# From the frontend's config header, the one place they are written (the firmware compiles it).
_FE = read_config()
SAMPLE_RATE = _FE["NK_FE_SAMPLE_RATE"]
HOP = _FE["NK_FE_HOP_SAMPLES"]
CLIP = _FE["NK_FE_CLIP_SAMPLES"]


@dataclass(frozen=True)
class Placed:
    start: int  # sample where the one-second clip begins
    label: int
    name: str


def build_stream(
    keyword_examples: Sequence[Any],
    noise: Sequence[np.ndarray],
    seconds: float,
    seed: int = 0,
    noise_gain: float = 1.0,
    spacing_s: tuple[float, float] = (2.0, 3.5),
) -> tuple[np.ndarray, list[Placed]]:
    """int16 audio of `seconds` with keyword clips at random known times over background noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    if noise:
        rec = np.asarray(noise[int(rng.integers(len(noise)))], dtype=np.float64)
        reps = int(np.ceil(n / max(rec.size, 1))) + 1
        off = int(rng.integers(max(rec.size, 1)))
        bed = np.tile(rec, reps)[off : off + n] * noise_gain
    else:  # no background recordings in this dataset: a quiet hiss keeps the frontend busy
        bed = rng.normal(0.0, 60.0, n)
    mix = bed.astype(np.float64)
    placed: list[Placed] = []
    t = int(SAMPLE_RATE * 1.0)
    order = rng.permutation(len(keyword_examples)) if len(keyword_examples) else np.array([], int)
    k = 0
    while len(order) and t + CLIP <= n:
        ex = keyword_examples[int(order[k % len(order)])]
        k += 1
        mix[t : t + CLIP] += np.asarray(ex.audio(), dtype=np.float64)
        placed.append(Placed(t, int(ex.label_index), f"{ex.path.parent.name}/{ex.path.name}"))
        t += CLIP + int(rng.uniform(*spacing_s) * SAMPLE_RATE) - SAMPLE_RATE
    return np.clip(np.round(mix), -32768, 32767).astype(np.int16), placed


def hop_time_s(hop: int) -> float:
    """Time at the end of hop `hop` (hop k covers samples [320k, 320k + 320))."""
    return (hop + 1) * HOP / SAMPLE_RATE


def send_stream(
    device: Device,
    audio: np.ndarray,
    speed: float,
    progress: bool,
    desc: str,
    report: dict[str, Any] | None = None,
    chunk: int = P.MAX_AUDIO_SAMPLES,
) -> P.AudioAck | None:
    """AUDIO frames at real-time pace x speed (0 = as fast as the device acknowledges)."""
    ack = None
    t0 = time.monotonic()
    with tqdm(
        total=round(audio.size / SAMPLE_RATE, 1), desc=desc, unit="s audio", disable=not progress
    ) as bar:
        for off in range(0, audio.size, chunk):
            if speed > 0:
                due = t0 + off / SAMPLE_RATE / speed
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            ack = device.audio(audio[off : off + chunk])
            if report is not None:
                report["sent_seconds"] = round(min(off + chunk, audio.size) / SAMPLE_RATE, 4)
            bar.n = round(min(off + chunk, audio.size) / SAMPLE_RATE, 1)
            bar.refresh()
    return ack


def run_stream(
    device: Device,
    audio: np.ndarray,
    truth: Any,
    labels: Sequence[str],
    report: dict[str, Any],
    speed: float,
    tolerance_s: float,
    png: Path | None,
    progress: bool = True,
    threshold: int | None = None,
) -> None:
    """Send a built stream (`truth`: streams.builder.StreamTruth) and judge the device's detections
    with streams.metrics.evaluate (the offline scorer's matcher)."""
    from ..streams import metrics

    n_kw = sum(w.kind == "keyword" for w in truth.words)
    report.update(
        {
            "stream_seconds": round(audio.size / SAMPLE_RATE, 3),
            "keywords_placed": n_kw,
            "distractors_placed": len(truth.words) - n_kw,
            "speed": speed,
            "sent_seconds": 0.0,
        }
    )
    tb = _time_base(device)
    device.reset()
    device.set_config(P.ConfigKey.STREAM_SCORES, 1)  # scores for the timeline strip
    if threshold is not None:
        for index, name in enumerate(labels):
            if not name.startswith("_"):
                device.set_config(P.ConfigKey.THRESHOLD, index, threshold)
        report["threshold"] = threshold
    device.take_events()
    ack = None
    try:
        ack = send_stream(device, audio, speed, progress, "hil stream", report)
        report["device_stats"] = {k: v for k, v in vars(device.stats()).items() if k != "seq"}
    finally:
        events = device.take_events()
        det_events = [e for e in events if isinstance(e, P.Detection)]
        scores = [e for e in events if isinstance(e, P.Scores)]
        dets = [(hop_time_s(e.hop), e.label) for e in det_events]
        timed = metrics.timed(det_events, labels, HOP, SAMPLE_RATE)
        # After a fault only the audio actually sent is judged: words whose window it covered.
        seconds = float(report["sent_seconds"])
        m = metrics.evaluate(truth, timed, tolerance_s, until_s=seconds)
        fa = m["false_accepts"]
        hit_times = {int(k): v for k, v in m["hit_times"].items()}
        judged = [w for w in truth.words if w.end_s + tolerance_s <= min(seconds, truth.seconds) + 1e-9]
        truth_rows = [
            {
                "start_s": w.start_s,
                "end_s": w.end_s,
                "label": w.label,
                "clip": w.clip,
                "condition": metrics.condition_name(w.snr_db),
                "detected_at_s": hit_times.get(i),
            }
            for i, w in enumerate(judged)
            if w.kind == "keyword"
        ]
        report.update(
            {
                "hits": m["hits"],
                "misses": m["misses"],
                "false_accepts": fa["total"],
                "keywords_judged": m["keywords"],
                "hit_rate": m["hit_rate"],
                "false_accepts_per_hour": round(fa["total"] / (seconds / 3600.0), 3) if seconds else None,
                "tolerance_s": tolerance_s,
                "detections": len(dets),
                # Every detection as the device sent it: compare with `nanokws stream score` on the
                # same recording (hil --save-stream), which must give exactly these.
                "detection_list": [{"hop": e.hop, "label": e.label, "score": e.score} for e in det_events],
                "truth": truth_rows,
                "false_accept_events": m["false_accept_events"],
                "scores_events": len(scores),
                "stream_metrics": {
                    k: v for k, v in m.items() if k not in ("false_accept_events", "missed", "hit_times")
                },
                "stream_options": truth.options,
            }
        )
        # The device's work per second of the audio sent, from the cycle counts in its SCORES events.
        fe = [e.frontend_cycles for e in scores]
        inf = [e.inference_cycles for e in scores]
        report.update(work_rate(fe, inf, int(seconds * SAMPLE_RATE) // HOP, seconds, tb))
        report["latency"] = {
            "frontend_per_hop_ms": {**distribution(tb.ms(fe), "ms"), "source": tb.source},
            "inference_per_call_ms": {**distribution(tb.ms(inf), "ms"), "source": tb.source},
        }
        if png is not None and (dets or scores or truth.words):
            placed = [
                Placed(int(round(w.start_s * SAMPLE_RATE)), labels.index(w.label), w.clip)
                for w in truth.words
                if w.kind == "keyword" and w.label in labels
            ]
            plot_timeline(png, audio, placed, dets, scores, labels)
            report["timeline_png"] = str(png)
    if ack is not None:
        report["device_counters"] = {
            "samples": ack.samples_total,
            "frames": ack.frames_total,
            "inferences": ack.inferences_total,
        }


def run_bench(
    device: Device,
    audio: np.ndarray,
    report: dict[str, Any],
    png: Path | None,
    progress: bool = True,
) -> None:
    tb = _time_base(device)
    device.reset()
    device.set_config(P.ConfigKey.STREAM_SCORES, 1)
    device.take_events()
    seconds = audio.size / SAMPLE_RATE
    report["bench_seconds"] = round(seconds, 3)
    try:
        send_stream(device, audio, 0.0, progress, "hil bench", report)
        stats = device.stats()
        report["device_stats"] = {k: v for k, v in vars(stats).items() if k != "seq"}
    finally:
        scores = [e for e in device.take_events() if isinstance(e, P.Scores)]
        fe = [e.frontend_cycles for e in scores]
        inf = [e.inference_cycles for e in scores]
        fe_ms, inf_ms = tb.ms(fe), tb.ms(inf)
        latency: dict[str, Any] = {
            "frontend_per_hop_ms": {**distribution(fe_ms, "ms"), "source": tb.source},
            "inference_per_call_ms": {**distribution(inf_ms, "ms"), "source": tb.source},
            "frontend_per_hop_cycles": distribution(fe, tb.unit),
            "inference_per_call_cycles": distribution(inf, tb.unit),
        }
        if tb.emulated:
            unit = "QEMU guest instructions"
            latency["frontend_per_hop_instructions"] = distribution(tb.instructions(fe), unit)
            latency["inference_per_call_instructions"] = distribution(tb.instructions(inf), unit)
        report["latency"] = latency
        report.update(work_rate(fe, inf, audio.size // HOP, seconds, tb))
        report["n"] = len(scores)
        if png is not None and fe_ms:
            plot_histograms(png, fe_ms, inf_ms, tb.source)
            report["histogram_png"] = str(png)


def _time_base(device: Device) -> TimeBase:
    info = device.info
    return time_base(info.cycle_unit, info.cycle_hz) if info else time_base("cycles", 0.0)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_timeline(
    path: Path,
    audio: np.ndarray,
    placed: Sequence[Placed],
    dets: Sequence[tuple[float, int]],
    scores: Sequence[P.Scores],
    labels: Sequence[str],
) -> None:
    from ..atomic import atomic_path

    plt = _pyplot()
    fig, (ax_w, ax_s) = plt.subplots(2, 1, figsize=(14, 5), sharex=True, height_ratios=[1, 1.2])
    step = max(1, audio.size // 20000)
    t = np.arange(0, audio.size, step) / SAMPLE_RATE
    ax_w.plot(t, audio[::step], lw=0.4, color="0.4")
    for p in placed:
        ax_w.axvspan(p.start / SAMPLE_RATE, p.start / SAMPLE_RATE + 1.0, color="tab:green", alpha=0.15)
        ax_w.text(
            p.start / SAMPLE_RATE,
            audio.max() * 0.9 if audio.size else 0,
            labels[p.label],
            fontsize=7,
            color="tab:green",
        )
    for tt, lab in dets:
        ax_w.axvline(tt, color="tab:red", lw=1)
        ax_s.axvline(tt, color="tab:red", lw=1)
        ax_w.text(
            tt,
            audio.min() * 0.9 if audio.size else 0,
            labels[lab] if lab < len(labels) else str(lab),
            fontsize=7,
            color="tab:red",
        )
    ax_w.set_ylabel("PCM")
    ax_w.set_title("stream: true keywords (green spans), detections (red lines)")
    if scores:
        st = np.array([hop_time_s(s.hop) for s in scores])
        mat = np.stack([s.scores for s in scores]).astype(np.int16)
        for j in range(min(mat.shape[1], len(labels))):
            if labels[j].startswith("_"):
                continue
            ax_s.plot(st, mat[:, j], lw=0.8, label=labels[j])
        ax_s.legend(fontsize=6, ncol=6, loc="upper right")
    ax_s.set_ylabel("int8 score")
    ax_s.set_xlabel("time (s)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def plot_histograms(path: Path, fe_ms: Sequence[float], inf_ms: Sequence[float], source: str) -> None:
    from ..atomic import atomic_path

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, vals, title in ((axes[0], fe_ms, "frontend per hop"), (axes[1], inf_ms, "inference per call")):
        ax.hist(vals, bins=40, color="tab:blue")
        ax.set_title(title)
        ax.set_xlabel("ms")
        ax.set_ylabel("count")
    fig.suptitle(f"device latency ({source})", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
