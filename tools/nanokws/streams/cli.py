"""`nanokws stream`: build realistic test streams, score them through the firmware's own streaming
path, and measure hits, false accepts of each kind, DET curves and accuracy against SNR."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ..argtypes import SEED, float_in, int_in
from ..errors import NanokwsError

EPILOG = """\
Actions:
  build   a long recording (stream.wav) and its truth (truth.json) from a Speech-Commands folder:
          keywords and distractor words (_unknown_ and every other word) at realistic gaps, in
          segments of silence or background noise at chosen SNRs; only clips of --split.
  score   run a stream through the firmware's streaming path on this machine (kws_runner: the
          frontend, the compiled model every stride hops, the C recognizer) and judge it:
          scores.npz (every inference's int8 scores), detections.json, report.json (hits, FRR,
          false accepts per hour by kind, distractor words fired, repeats, confusions, per keyword,
          per SNR), det.json + det.png (threshold swept by the exact Python recognizer replay),
          snr.png, timeline.png.

Examples:
  nanokws stream build --data ../shared/data/speech_commands --split test --minutes 60 --seed 0 \\
      --out runs/s/stream
  nanokws stream build --data runs/synth --split all --minutes 5 --snr clean --level-db -30 --out runs/q
  nanokws stream score --model firmware/model/model.tflite --stream runs/s/stream --out runs/s/score
  nanokws stream score --model docs/candidates/ds_cnn_stream/model.tflite --stream runs/s/stream \\
      --out runs/s/score_stream --threshold 200 --suppression-ms 1000

How to read the DET curve: docs/streams.md.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    fmt = argparse.RawDescriptionHelpFormatter
    from . import builder

    b = sub.add_parser(
        "build",
        help="build a stream and its truth",
        description=builder.__doc__,
        formatter_class=fmt,
        epilog=EPILOG,
    )
    b.add_argument("--data", type=Path, required=True, metavar="DIR", help="Speech-Commands-layout folder")
    b.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="folder for stream.wav + truth.json"
    )
    b.add_argument(
        "--split",
        choices=("train", "validation", "test", "all"),
        default="test",
        help="clips of which speakers (default: test)",
    )
    b.add_argument(
        "--split-mode",
        choices=("auto", "hash", "lists", "speaker"),
        default="auto",
        help="how the dataset decides splits (as `nanokws data`; default: auto)",
    )
    b.add_argument(
        "--minutes",
        type=float_in(0.0, 24 * 60.0, lo_open=True),
        default=10.0,
        help="stream length (default: 10)",
    )
    b.add_argument("--seed", type=SEED, default=0, help="same seed, same stream (default: 0)")
    b.add_argument(
        "--keywords",
        nargs="+",
        default=None,
        metavar="WORD",
        help="keyword folders (default: the --model's labels, else yes no up down left right on off stop go)",
    )
    b.add_argument("--model", type=Path, default=None, help="take the keywords from this model's labels")
    b.add_argument(
        "--snr",
        type=builder.snr_list,
        default=builder.DEFAULT_SNRS,
        metavar="LIST",
        help="conditions, cycled by segment: e.g. clean,20,10,5,0 (the default)",
    )
    b.add_argument(
        "--keyword-fraction",
        type=float_in(0.0, 1.0),
        default=0.5,
        help="share of words that are keywords; the rest are distractors (default: 0.5)",
    )
    b.add_argument(
        "--segment-seconds",
        type=float_in(5.0, 3600.0),
        default=60.0,
        help="length of one condition's segment (default: 60)",
    )
    b.add_argument(
        "--level-db",
        type=float_in(-80.0, 20.0),
        default=0.0,
        help="speech level change in dB, e.g. -30 for a distant speaker (default: 0)",
    )
    b.add_argument("--no-progress", action="store_true", help="no progress bar")

    s = sub.add_parser(
        "score",
        help="score a stream through the firmware path and measure it",
        description=__doc__,
        formatter_class=fmt,
        epilog=EPILOG,
    )
    s.add_argument(
        "--model",
        type=Path,
        required=True,
        help="full-int8 .tflite, or a `nanokws compile` folder (e.g. firmware/model)",
    )
    s.add_argument(
        "--stream", type=Path, required=True, metavar="DIR", help="a `nanokws stream build` folder"
    )
    s.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the results")
    s.add_argument(
        "--threshold", type=int_in(0, 255), default=None, help="every keyword's threshold (0..255)"
    )
    s.add_argument("--smoothing", type=int_in(1, 32), default=None, help="inferences averaged (1..32)")
    s.add_argument(
        "--suppression-ms", type=int_in(0, 65535), default=None, help="quiet time after a detection"
    )
    s.add_argument(
        "--release",
        type=int_in(0, 255),
        default=None,
        help="re-arm level: a label fires again only after its smoothed score fell to this",
    )
    s.add_argument("--stride", type=int_in(1, 50), default=None, help="hops between inferences")
    s.add_argument(
        "--tolerance",
        type=float_in(0.0, 10.0),
        default=1.0,
        help="a keyword's detection counts until its end + this many seconds (default: 1.0)",
    )
    s.add_argument("--no-det", action="store_true", help="skip the DET sweep")
    s.add_argument(
        "--timeline-start",
        type=float_in(0.0),
        default=None,
        metavar="S",
        help="timeline PNG from here (default: around the first false accept or miss)",
    )
    s.add_argument("--timeline-seconds", type=float_in(1.0, 600.0), default=40.0, help="timeline length (40)")
    s.add_argument(
        "--target",
        choices=("host", "asan"),
        default="host",
        help="build of kws_runner (asan: AddressSanitizer + UBSan, slower)",
    )
    s.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    if args.action == "build":
        return _build(args)
    if args.action == "score":
        return _score(args)
    raise NanokwsError("give an action: build or score (see `nanokws stream --help`)")


def _keywords(args: argparse.Namespace) -> list[str]:
    from ..data import DEFAULT_KEYWORDS

    if args.keywords:
        return list(args.keywords)
    if args.model is not None:
        from .. import modelmeta

        labels = modelmeta.read_metadata(modelmeta.read_model_bytes(args.model), str(args.model))["labels"]
        return [lab for lab in labels if not lab.startswith("_")]
    return list(DEFAULT_KEYWORDS)


def _build(args: argparse.Namespace) -> int:
    from ..errors import check_output_dir
    from .builder import StreamOptions, build_stream, load_material, write_stream

    if not args.data.is_dir():
        raise NanokwsError(f"--data {args.data}: dataset folder not found")
    check_output_dir(args.out, "--out")
    progress = not args.no_progress and sys.stderr.isatty()
    material = load_material(args.data, _keywords(args), args.split, args.split_mode, progress)
    opts = StreamOptions(
        minutes=args.minutes,
        seed=args.seed,
        split=args.split,
        keyword_fraction=args.keyword_fraction,
        snrs=tuple(args.snr),
        segment_s=args.segment_seconds,
        level_db=args.level_db,
    )
    audio, truth = build_stream(material, opts, progress=progress)
    wav, js = write_stream(args.out, audio, truth)
    s = truth.summary
    print(
        f"stream {truth.seconds / 60:.1f} min: {s['keywords']} keywords, {s['distractors']} distractors "
        f"({s['distinct_clips_used']} distinct clips of {s['speakers']} speakers, split {args.split}), "
        f"{s['noise_only_seconds']:.0f} s noise/silence alone"
    )
    if material.skipped:
        print(f"note: skipped {len(material.skipped)} unreadable files of {args.data}")
    print(f"wrote {wav} and {js}")
    return 0


def _score(args: argparse.Namespace) -> int:
    from ..errors import check_output_dir
    from .scorer import KwsConfig

    check_output_dir(args.out, "--out")
    progress = not args.no_progress and sys.stderr.isatty()
    cfg = KwsConfig(
        threshold=args.threshold,
        window=args.smoothing,
        suppression_ms=args.suppression_ms,
        stride=args.stride,
        release=args.release,
    )
    report = score_stream(
        args.model,
        Path(args.stream),
        Path(args.out),
        cfg,
        target=args.target,
        tolerance_s=args.tolerance,
        det=not args.no_det,
        timeline=(args.timeline_start, args.timeline_seconds),
        progress=progress,
    )
    scoring = report["scoring"]
    by_kind = report["fa_per_hour_by_kind"]
    fired = 100 * (report["distractor_fire_fraction"] or 0)
    print(
        f"{report['seconds'] / 60:.1f} min scored in {scoring['wall_seconds_run']:.1f} s "
        f"({scoring['seconds_per_hour_of_audio']:.0f} s per hour of audio, {report['model_form']})"
    )
    print(
        f"hits {report['hits']}/{report['keywords']} (FRR {100 * (report['frr'] or 0):.1f}%); "
        f"false accepts per hour: distractor {by_kind['distractor']}, noise {by_kind['noise']}; "
        f"distractor words fired {report['distractor_words_fired']}/{report['distractors']} ({fired:.1f}%); "
        f"repeats {report['repeats']}, confusions {report['confusions']}"
    )
    if not report["replay_equals_firmware"]:
        print("warning: the Python recognizer replay differs from the firmware's detections", file=sys.stderr)
    print(f"wrote {Path(args.out) / 'report.json'} and the PNGs beside it")
    return 0


def score_stream(
    model: Path,
    stream: Path,
    out: Path,
    cfg: Any = None,
    *,
    target: str = "host",
    tolerance_s: float = 1.0,
    det: bool = True,
    timeline: tuple[float | None, float] = (None, 40.0),
    progress: bool = False,
) -> dict[str, Any]:
    """Score the built stream in `stream` through kws_runner for `model` (a .tflite or a compiled
    folder, whose model_config.h settings the runner starts with; `cfg`, a scorer.KwsConfig, changes
    them) and write into `out`: scores.npz, detections.json, report.json, det.json/det.png (unless
    not `det`), snr.png, timeline.png. Returns the report."""
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
    scores gives exactly the firmware's detections (None when the replay module is absent)."""
    try:
        from .replay import RecognizerConfig, replay_run
    except ImportError:  # pragma: no cover - replay.py arrives with the recognizer's release level
        return None, None
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
