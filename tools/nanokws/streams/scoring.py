"""Score a built stream through the firmware's own path and write what `nanokws stream score` (and
`nanokws ship --stream`) report: every inference's scores, the detections, the metrics, the DET
curve by exact replay, and the SNR and timeline pictures."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..errors import NanokwsError


def score_stream(
    model: Path,
    stream: Path,
    out: Path,
    cfg: Any = None,
    *,
    target: str = "host",
    tolerance_s: float | None = None,
    det: bool = True,
    timeline: tuple[float | None, float] = (None, 40.0),
    progress: bool = False,
) -> dict[str, Any]:
    """Score the built stream in `stream` through kws_runner for `model` (a .tflite or a compiled
    folder, whose model_config.h settings the runner starts with; `cfg`, a scorer.KwsConfig, changes
    them) and write into `out`: scores.npz, detections.json, report.json, det.json/det.png (unless
    not `det`), snr.png, timeline.png. Returns the report. `tolerance_s` None: a detection counts
    for a word as long as the word stays in the model's window (metrics.window_tolerance_s)."""
    from .. import atomic
    from . import metrics, plots
    from .builder import read_stream
    from .scorer import score_audio

    audio, truth = read_stream(stream)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    run = score_audio(model, audio, cfg, target=target, progress=progress)
    wall = time.monotonic() - t0
    model_kws = [lab for lab in run.labels if not lab.startswith("_")]
    if sorted(model_kws) != sorted(truth.keywords):
        raise NanokwsError(
            f"the model's keywords {model_kws} are not the stream's {truth.keywords}; build the stream with "
            f"--model {model}"
        )
    run.save_npz(out / "scores.npz")
    timed = metrics.timed(run.detections, run.labels, run.hop_samples, run.sample_rate)
    atomic.write_json(
        out / "detections.json",
        [{"time_s": round(d.time_s, 3), "hop": d.hop, "label": d.label, "score": d.score} for d in timed],
    )
    if tolerance_s is None:
        tolerance_s = metrics.window_tolerance_s(run.window_frames, run.hop_samples, run.sample_rate)
    report = metrics.evaluate(truth, timed, tolerance_s)
    rec_cfg, replay_ok = _replay_check(run)
    summary: dict[str, Any] = {
        "model": str(model),
        "model_name": run.model_name,
        "model_hash": run.model_hash,
        "model_form": "streaming" if run.streaming else "whole window",
        "stream": str(stream),
        "stream_options": truth.options,
        "stream_summary": truth.summary,
        "stream_command": truth.command or None,
        "config": run.config,
        "scoring": {
            "audio_seconds": round(run.audio_seconds, 3),
            "inferences": int(run.scores.shape[0]),
            "wall_seconds_run": round(run.wall_seconds, 3),
            "wall_seconds_with_build": round(wall, 3),
            "seconds_per_hour_of_audio": round(run.wall_seconds * 3600.0 / max(run.audio_seconds, 1e-9), 1),
            "target": target,
        },
        "replay_equals_firmware": replay_ok,
    }
    report = {**summary, **report}
    files = {"scores": "scores.npz", "detections": "detections.json"}
    if det:
        curves = metrics.det_curves(truth, run, rec_cfg, tolerance_s=tolerance_s, progress=progress)
        atomic.write_json(out / "det.json", curves)
        op = {"frr": report["frr"], "fa_per_hour": report["fa_per_hour"], "what": _config_text(run.config)}
        plots.plot_det(
            out / "det.png",
            curves,
            op,
            f"DET: {run.model_name} on {truth.seconds / 60:.0f} min ({truth.options.get('split')} split)",
        )
        files.update({"det": "det.json", "det_png": "det.png"})
    plots.plot_snr(out / "snr.png", report["per_condition"], f"{run.model_name}: accuracy against SNR")
    start = timeline[0] if timeline[0] is not None else _interesting(report)
    threshold = run.config["thresholds"][len(run.labels) - 1] if run.labels else None
    plots.plot_timeline(
        out / "timeline.png", audio, truth, report, run, start, start + timeline[1], threshold
    )
    files.update({"snr_png": "snr.png", "timeline_png": "timeline.png"})
    report["files"] = files
    atomic.write_json(out / "report.json", report)
    return report


def _config_text(config: dict[str, Any]) -> str:
    ths = sorted(set(config.get("thresholds", [])))
    th = ths[0] if len(ths) == 1 else "per label"
    return f"threshold {th}, smoothing {config.get('window')}, suppression {config.get('suppression_ms')} ms"


def _replay_check(run: Any) -> tuple[Any, bool | None]:
    """The run's configuration as a replay RecognizerConfig, and whether replay() over the run's own
    scores gives exactly the firmware's detections."""
    from .replay import RecognizerConfig, replay_run

    c = run.config
    kwargs: dict[str, Any] = {
        "thresholds": tuple(c["thresholds"]),
        "window": c["window"],
        "suppression_ms": c["suppression_ms"],
    }
    if c.get("release") is not None:
        kwargs["release"] = c["release"]
    cfg = RecognizerConfig(**kwargs)
    dets = replay_run(run, cfg)
    mine = [(d.hop, d.label, d.score) for d in dets]
    theirs = [(d.hop, d.label, d.score) for d in run.detections]
    return cfg, mine == theirs


def _interesting(report: dict[str, Any]) -> float:
    """A timeline start a little before the first false accept or miss (else 0)."""
    times = [e["time_s"] for e in report.get("false_accept_events", [])]
    times += [m["start_s"] for m in report.get("missed", [])]
    return max(0.0, min(times) - 5.0) if times else 0.0
