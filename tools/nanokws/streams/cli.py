"""`nanokws stream`: build realistic test streams, score them through the firmware's own streaming
path, and measure hits, false accepts of each kind, DET curves and accuracy against SNR."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ..argtypes import SEED, float_in, int_in
from ..cli import invoked_command
from ..errors import NanokwsError

EPILOG = """\
Actions:
  build   a long recording (stream.wav) and its truth (truth.json) from a Speech-Commands folder:
          keywords and distractor words (_unknown_ and every other word) at realistic gaps, in
          segments of silence or background noise at chosen SNRs; only clips of --split.
  score   run a stream through the firmware's streaming path on this machine (kws_runner: the
          frontend, the compiled model every stride hops, the C recognizer) and judge it:
          scores.npz (every inference's int8 scores), detections.json, report.json (hits, FRR,
          false accepts per hour by kind, distractor words fired, repeats, confusions, latency
          after the word, per keyword, per SNR), det.json + det.png (threshold swept by the exact
          Python recognizer replay), snr.png, timeline.png.

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
        default=None,
        help="a keyword's detection counts until its end + this many seconds (default: as long as the "
        "word stays in the model's window: 1.0 s for a one-second model, 1.48 s for a 74-frame one)",
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
    command = invoked_command("stream", "build")
    if command is not None:  # recorded for the model cards that score on it
        truth = dataclasses.replace(truth, command=command)
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
    from .scoring import score_stream

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
    lat = report.get("latency_s") or {}
    if lat.get("median") is not None:
        print(
            f"detections came {lat['median']} s after the word's end "
            f"(median; 90th percentile {lat['p90']} s)"
        )
    if not report["replay_equals_firmware"]:
        print("warning: the Python recognizer replay differs from the firmware's detections", file=sys.stderr)
    print(f"wrote {Path(args.out) / 'report.json'} and the PNGs beside it")
    return 0
