"""Stream and bench modes: continuous audio through the device's streaming path.

stream: a long recording from the stream builder (streams/builder.py: keywords and distractor
  words at realistic gaps, in segments of silence or background noise at chosen SNRs) is sent with
  AUDIO at real-time pace x `speed`; DETECTION events are judged by streams/metrics.py, the same
  matcher `nanokws stream score` uses -> hits, misses, false accepts per hour split into distractor
  speech and noise/silence, distractor words fired, repeats, confusions, and the same timeline PNG
  as the offline scorer's (streams/plots.py), from the device's own SCORES events.
bench: the same builder's recording through the same path, with a SCORES event after every
  inference; the device's own cycle counts give the frontend-per-hop and inference-per-call
  distributions (histogram PNG) and the sustained real-time factor (device work seconds per second of audio).
Time on a board (cpu_cycles) or the host is its counter's; under QEMU (qemu_systick_ticks) the
counter is QEMU's virtual clock, so ticks become guest instructions and ms / real-time factor are
the Nano 33 BLE's lower bound at 64 MHz, 1 instruction/cycle (summary.TimeBase), named so in the
report (real_time_factor_kind "board_lower_bound"), with the raw ticks and instructions beside.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
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
    tolerance_s: float | None,
    png: Path | None,
    progress: bool = True,
    threshold: int | None = None,
    *,
    output_quant: tuple[float, int],
) -> None:
    """Send a built stream (`truth`: streams.builder.StreamTruth) and judge the device's detections
    with streams.metrics.evaluate (the offline scorer's matcher). `output_quant`: the model's output
    (scale, zero point), for the timeline's smoothed probabilities. `tolerance_s` None: as long as a
    word stays in the device's model window (INFO window_frames; metrics.window_tolerance_s)."""
    from ..streams import metrics

    if tolerance_s is None:
        from ..streams.replay import CLIP_FRAMES

        window = device.info.window_frames if device.info else CLIP_FRAMES
        tolerance_s = metrics.window_tolerance_s(window, HOP, SAMPLE_RATE)

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
                "detections": len(det_events),
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
        if png is not None and (det_events or scores or truth.words):
            _plot_stream_timeline(
                png, audio, truth, m, scores, labels, device, output_quant, seconds, threshold
            )
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
        if device.info is not None and device.info.streaming and len(inf) > 1:
            # A streaming model's first inference after RESET counts every frame pushed since (its
            # whole window): a one-off, not a stall. The steady state is every call after it.
            latency["first_inference_ms"] = round(tb.ms(inf[:1])[0], 4)
            steady = distribution(inf_ms[1:], "ms")
            latency["inference_per_call_after_first_ms"] = {**steady, "source": tb.source}
            latency["first_inference_note"] = (
                "streaming model: the first inference after RESET computes the rows of its whole window"
            )
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


def _plot_stream_timeline(
    png: Path,
    audio: np.ndarray,
    truth: Any,
    judged: dict[str, Any],
    scores: Sequence[P.Scores],
    labels: Sequence[str],
    device: Device,
    output_quant: tuple[float, int],
    seconds: float,
    threshold: int | None,
) -> None:
    """streams/plots.plot_timeline over the audio sent, its lower strip from the device's SCORES events
    smoothed with the device's own window (INFO config), as `nanokws stream score` draws it."""
    from types import SimpleNamespace

    from ..streams import plots

    config = dict(device.info.data.get("config", {})) if device.info is not None else {}
    run = SimpleNamespace(
        scores=np.stack([s.scores for s in scores]).astype(np.int8)
        if scores
        else np.zeros((0, len(labels)), np.int8),
        hops=np.array([s.hop for s in scores], dtype=np.int64),
        hop_samples=HOP,
        sample_rate=SAMPLE_RATE,
        config={"window": int(config.get("smoothing", 1) or 1)},
        output_scale=output_quant[0],
        output_zero_point=output_quant[1],
        labels=list(labels),
    )
    ths = config.get("thresholds")
    if threshold is None and isinstance(ths, list) and ths:
        threshold = int(ths[-1])
    end = max(min(seconds, truth.seconds), 1.0)
    plots.plot_timeline(png, audio, truth, judged, run, 0.0, min(end, 60.0), threshold)


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
