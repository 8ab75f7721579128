"""`nanokws hil`: drive a device (serial port, QEMU, or the host build) with test audio and check it."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ..argtypes import SEED, float_in, int_in
from ..errors import NanokwsError
from ..paths import FIRMWARE_MODEL_DIR
from ..streams.builder import DEFAULT_SNRS, snr_list

EPILOG = """\
Where the device is (choose one):
  --port URL    a board or anything pyserial opens: /dev/ttyACM0, socket://127.0.0.1:5555
  --emulate     compile the model, build nanokws_fw for QEMU mps2-an386, boot it, test, shut it down
  --host        the same with the host build over a pipe (fastest; bit-exact with the board)

Modes:
  clip    each clip: CLIP_LOAD + CLIP_RUN; device label vs truth and device int8 scores vs the host
          reference (C frontend + TFLite Micro), element by element. Report: accuracy, n,
          bit_exact_fraction, per_class, latency (ms from the device's cycle counter, and round
          trip), device (its INFO), mismatches.
  stream  a long recording (--duration, default 60 s) from the stream builder (`nanokws stream build`):
          keywords and distractor words (_unknown_ and other word folders) at realistic gaps, in
          segments of silence or background noise at --snr conditions, sent at --speed x real time;
          detections judged within --tolerance by the offline scorer's matcher: hits, misses, false
          accepts per hour split into distractor speech and noise/silence, distractor words fired,
          repeats, confusions (report "stream_metrics"), timeline PNG.
  bench   --duration (default 20 s) of audio as fast as the device goes; per-hop frontend and
          per-call inference latency histograms (PNG) and the real-time factor.

Time: on a board (cycle_unit cpu_cycles) and the host, ms and the real-time factor come from the
device's own clock. Under QEMU they are the Nano 33 BLE's LOWER BOUND at 64 MHz: SysTick ticks x 40
= guest instructions, / 64e6 at 1 instruction/cycle (real_time_factor_kind "board_lower_bound";
ticks and instructions are in the report beside). QEMU's virtual clock is not the board's.

Thresholds (exit 1 when one fails; 3 when the device faults; a report is written either way):
  --min-accuracy     clip: accuracy; stream: hit rate
  --min-bit-exact    clip: fraction of clips whose scores equal the host reference
  --max-latency-ms   clip: p95 of device frontend + inference per clip; bench: p95 inference per call

Examples:
  nanokws hil --host --data runs/synth --model runs/tiny/model.tflite --report runs/tiny/hil.json
  nanokws hil --emulate --data runs/synth --limit 20 --report hil.json --junit hil.xml --min-bit-exact 1
  nanokws hil --port /dev/ttyACM0 --data ../shared/data/speech_commands --mode stream --report s.json
"""

DEFAULT_MODEL = FIRMWARE_MODEL_DIR / "model.tflite"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", metavar="URL", help="serial port or pyserial URL of a running device")
    where.add_argument("--emulate", action="store_true", help="build the firmware for QEMU and run it there")
    where.add_argument("--host", action="store_true", help="build the firmware for this machine and run it")
    parser.add_argument("--data", required=True, type=Path, help="dataset folder (Speech Commands layout)")
    parser.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_MODEL,
        help="full-int8 .tflite the device runs (default: firmware/model/model.tflite)",
    )
    parser.add_argument(
        "--split", choices=("test", "all"), default="test", help="which clips (default: test)"
    )
    parser.add_argument(
        "--limit",
        type=int_in(1),
        default=None,
        metavar="N",
        help="use N clips drawn evenly at random (seeded) instead of all",
    )
    parser.add_argument("--mode", choices=("clip", "stream", "bench"), default="clip", help="default: clip")
    parser.add_argument("--report", required=True, type=Path, metavar="OUT.json", help="JSON report to write")
    parser.add_argument(
        "--junit", type=Path, metavar="OUT.xml", help="also write JUnit XML (one case per clip/check)"
    )
    parser.add_argument(
        "--min-accuracy", type=float_in(0.0, 1.0), metavar="X", help="fail below this accuracy (0..1)"
    )
    parser.add_argument(
        "--min-bit-exact", type=float_in(0.0, 1.0), metavar="X", help="fail below this bit-exact fraction"
    )
    parser.add_argument(
        "--max-latency-ms", type=float_in(0.0, lo_open=True), metavar="X", help="fail above this p95 latency"
    )
    parser.add_argument(
        "--duration",
        type=float_in(0.0, 86_400.0, lo_open=True),
        default=None,
        metavar="S",
        help="stream/bench audio length in seconds (default: 60 stream, 20 bench)",
    )
    parser.add_argument(
        "--speed",
        type=float_in(0.0, 1000.0),
        default=1.0,
        metavar="X",
        help="stream pace as a multiple of real time; 0 = as fast as possible (default: 1)",
    )
    parser.add_argument(
        "--tolerance",
        type=float_in(0.0, 60.0),
        default=None,
        metavar="S",
        help="stream: a detection counts within [clip start, clip end + S] (default: as long as a word "
        "stays in the device's model window, INFO window_frames: 1.0 s for a one-second model)",
    )
    parser.add_argument(
        "--threshold",
        type=int_in(0, 255),
        default=None,
        metavar="0..255",
        help="stream: set every keyword's detection threshold (smoothed probability x 255) first "
        "(default: keep the device's)",
    )
    parser.add_argument(
        "--save-stream",
        type=Path,
        default=None,
        metavar="DIR",
        help="stream: also write the recording sent (stream.wav + truth.json), so that `nanokws stream "
        "score --stream DIR` runs the same audio offline; the report lists every detection to compare",
    )
    parser.add_argument(
        "--noise-gain",
        type=float_in(0.0, 1000.0),
        default=1.0,
        metavar="G",
        help="stream/bench: gain on the dataset's background noise under the words (stream: on top of "
        "--snr; default: 1)",
    )
    parser.add_argument(
        "--snr",
        type=snr_list,
        default=DEFAULT_SNRS,
        metavar="LIST",
        help="stream: noise conditions cycled by segment, e.g. clean,20,10,5,0 (the default)",
    )
    parser.add_argument(
        "--keyword-fraction",
        type=float_in(0.0, 1.0),
        default=0.5,
        metavar="X",
        help="stream: share of words that are keywords, the rest distractors (default: 0.5)",
    )
    parser.add_argument(
        "--png",
        type=Path,
        default=None,
        help="stream timeline / bench histogram PNG (default: beside the report)",
    )
    parser.add_argument(
        "--seed", type=SEED, default=0, help="clip selection and stream layout seed (default: 0)"
    )
    parser.add_argument(
        "--timeout",
        type=float_in(0.0, 3600.0, lo_open=True),
        default=10.0,
        help="seconds to wait for a reply (default: 10)",
    )
    parser.add_argument(
        "--baud", type=int_in(1, 100_000_000), default=115200, help="serial baud rate (default: 115200)"
    )
    parser.add_argument(
        "--build-dir", type=Path, default=None, help="where --host/--emulate build (default: build/hil)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from .. import atomic
    from ..errors import check_output_file

    # Every output is checked before the run: a report that cannot be written after a long run is
    # a lost run. These failures happen before a report exists, so they leave none behind.
    check_output_file(args.report, "--report")
    if args.junit:
        check_output_file(args.junit, "--junit")
    if args.png:
        check_output_file(args.png, "--png")
    if args.save_stream is not None:
        from ..errors import check_output_dir

        check_output_dir(args.save_stream, "--save-stream")

    report: dict[str, Any] = {
        "mode": args.mode,
        "status": "starting",
        "model": str(args.model),
        "data": str(args.data),
        "split": args.split,
    }
    t_start = time.monotonic()
    try:
        return _run(args, report)
    except BaseException as exc:  # every way a run ends that is not its own verdict: `fault`
        report["fault_phase"] = report["status"]  # starting, building, connecting or running
        report["status"] = "fault"
        report["fault"] = _fault_reason(exc)
        report["fault_kind"] = _fault_kind(exc)
        raise
    finally:
        report["wall_seconds"] = round(time.monotonic() - t_start, 3)
        junit = report.pop("_junit", None)
        atomic.write_json(args.report, report)
        if args.junit:
            from .summary import write_junit

            cases = list(junit or [])
            if report["status"] == "fault":  # the fault itself is a failing case, so CI shows it
                cases.append({"name": "device", "classname": "hil.run", "error": report.get("fault")})
            write_junit(args.junit, f"nanokws hil {args.mode}", cases)


def _fault_reason(exc: BaseException) -> str:
    from ..errors import describe

    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, (NanokwsError, OSError)):
        return describe(exc)
    return f"internal error: {describe(exc)}"


def _fault_kind(exc: BaseException) -> str:
    """device (exit 3), input (exit 2), interrupted, internal (a bug, exit 1)."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, NanokwsError):
        return "device" if exc.exit_code == 3 else "input"
    if isinstance(exc, OSError):
        return "input" if exc.filename is not None else "internal"
    return "internal"


def _run(args: argparse.Namespace, report: dict[str, Any]) -> int:
    from .. import modelmeta
    from .launch import build_firmware, host_device, qemu_device, serial_device

    if args.limit is not None and args.limit < 1:
        raise NanokwsError("--limit must be at least 1")
    if args.threshold is not None and not 0 <= args.threshold <= 255:
        raise NanokwsError("--threshold must be 0..255 (smoothed probability x 255)")
    model_bytes = modelmeta.read_model_bytes(args.model)
    meta = modelmeta.read_metadata(model_bytes, str(args.model))
    labels = list(meta["labels"])
    digest = modelmeta.model_hash(model_bytes)
    report["model_hash"] = digest
    report["labels"] = labels
    examples, dataset = _examples(args, labels)
    report["skipped_files"] = [{"path": str(path), "reason": reason} for path, reason in dataset.skipped]
    report["status"] = "building" if not args.port else "connecting"

    if args.port:
        ctx = serial_device(args.port, args.baud, args.timeout)
    elif args.host:
        ctx = host_device(build_firmware(args.model, "host", args.build_dir), args.timeout)
    else:
        ctx = qemu_device(build_firmware(args.model, "qemu", args.build_dir), args.timeout)
    with ctx as device:
        try:
            return _run_device(args, report, device, model_bytes, digest, labels, examples, dataset)
        finally:
            report["link"] = device.link_stats()


def _run_device(
    args: argparse.Namespace,
    report: dict[str, Any],
    device: Any,
    model_bytes: bytes,
    digest: str,
    labels: list[str],
    examples: list[Any],
    dataset: Any,
) -> int:
    from .reference import Reference

    progress = not args.no_progress and sys.stderr.isatty()
    report["status"] = "connecting"
    info = device.connect()
    report["device"] = info.data
    if info.model_hash != digest:
        raise NanokwsError(
            f"device runs model {info.model_hash or '(none)'}, not {args.model} ({digest}); "
            "flash/compile the same model or pass the right --model"
        )
    if info.labels and info.labels != labels:
        raise NanokwsError(f"device labels {info.labels} differ from the model's {labels}")
    report["status"] = "running"
    checks = _run_mode(args, device, examples, dataset, labels, report, progress, Reference, model_bytes)
    report["device_bad_frames"] = device.bad_frames
    failed = [c for c in checks if not c.passed]
    report["checks"] = [c.as_dict() for c in checks]
    report["status"] = "failed" if failed else "passed"
    junit = report.setdefault("_junit", [])
    junit += [
        {"name": c.name, "classname": "hil.check", "failure": None if c.passed else c.line()} for c in checks
    ]
    for c in checks:
        print(c.line())
    print(f"report: {args.report}")
    return 1 if failed else 0


def _examples(args: argparse.Namespace, labels: list[str]) -> tuple[list[Any], Any]:
    import numpy as np

    from ..data import SILENCE, UNKNOWN, labels_for, load_dataset

    if not args.data.is_dir():
        raise NanokwsError(f"{args.data}: dataset folder not found")
    keywords = [name for name in labels if name not in (SILENCE, UNKNOWN)]
    if labels_for(keywords) != labels:
        raise NanokwsError(f"model labels {labels} are not [{SILENCE}, {UNKNOWN}, keywords...]")
    dataset = load_dataset(args.data, keywords, seed=args.seed)
    if dataset.skipped:  # unreadable or malformed files: skipped, listed in the report
        print(
            f"note: skipped {len(dataset.skipped)} files of {args.data} (first: {dataset.skipped[0][0]}: "
            f"{dataset.skipped[0][1]}); all are listed in the report"
        )
    examples = dataset.examples(args.split)
    if not examples:
        raise NanokwsError(f"{args.data}: no clips in split '{args.split}' (try --split all)")
    if args.limit is not None and args.limit < len(examples):
        rng = np.random.default_rng(args.seed)
        pick = sorted(rng.choice(len(examples), size=args.limit, replace=False).tolist())
        examples = [examples[i] for i in pick]
    return examples, dataset


def _run_mode(
    args: argparse.Namespace,
    device: Any,
    examples: list[Any],
    dataset: Any,
    labels: list[str],
    report: dict[str, Any],
    progress: bool,
    reference_cls: Any,
    model_bytes: bytes,
) -> list[Any]:
    from .summary import Check

    checks: list[Check] = []
    if args.mode == "clip":
        from .clipmode import run_clips

        reference = reference_cls(model_bytes)
        run = run_clips(device, examples, labels, reference, report, progress)
        print(run.people_table())
        print(
            f"accuracy {report['accuracy']:.4f} on {report['n']} clips; bit-exact "
            f"{report['bit_exact_fraction']:.4f}; mismatches {len(report['mismatches'])}"
        )
        if args.min_accuracy is not None:
            checks.append(Check("accuracy", report["accuracy"], args.min_accuracy, "min"))
        if args.min_bit_exact is not None:
            checks.append(
                Check("bit_exact_fraction", report["bit_exact_fraction"], args.min_bit_exact, "min")
            )
        if args.max_latency_ms is not None:
            p95 = report["latency"]["device_total_ms"].get("p95")
            checks.append(Check("device_total_ms_p95", p95, args.max_latency_ms, "max"))
        return checks

    from ..export.model_config import tensor_quantization
    from .streammode import run_bench, run_stream

    duration = args.duration if args.duration is not None else (60.0 if args.mode == "stream" else 20.0)
    if args.mode == "stream":
        audio, truth = _stream_audio(args, labels, duration)
        if args.save_stream is not None:
            from ..streams.builder import write_stream

            write_stream(args.save_stream, audio, truth)
            report["saved_stream"] = str(args.save_stream)
        png = args.png or args.report.with_suffix(".timeline.png")
        run_stream(
            device,
            audio,
            truth,
            labels,
            report,
            args.speed,
            args.tolerance,
            png,
            progress,
            args.threshold,
            output_quant=tensor_quantization(model_bytes, "output"),
        )
        sm = report["stream_metrics"]
        by_kind = sm["fa_per_hour_by_kind"]
        print(
            f"stream {report['stream_seconds']:.0f} s: hits {report['hits']}/{report['keywords_judged']}, "
            f"false accepts {report['false_accepts']} ({report['false_accepts_per_hour']:.1f}/h: distractor "
            f"{by_kind['distractor']}/h, noise {by_kind['noise']}/h, repeats {sm['repeats']}, confusions "
            f"{sm['confusions']}); distractor words fired {sm['distractor_words_fired']}/{sm['distractors']}"
        )
        if report.get("real_time_factor") is not None:
            print(_rate_line(report))
        report["_junit"] = [
            {
                "name": f"{t['label']}@{t['start_s']}s",
                "classname": "hil.stream",
                "failure": None if t["detected_at_s"] is not None else "missed",
            }
            for t in report["truth"]
        ]
        if args.min_accuracy is not None:
            checks.append(Check("hit_rate", report["hit_rate"], args.min_accuracy, "min"))
        return checks

    audio, truth = _stream_audio(args, labels, duration)  # the same recording stream mode would send
    report["stream_options"] = truth.options
    report["words_placed"] = len(truth.words)
    png = args.png or args.report.with_suffix(".latency.png")
    run_bench(device, audio, report, png, progress)
    inf = report["latency"]["inference_per_call_ms"]
    if inf.get("n"):
        print(_rate_line(report))
    report["_junit"] = []
    if args.max_latency_ms is not None:
        checks.append(Check("inference_per_call_ms_p95", inf.get("p95"), args.max_latency_ms, "max"))
    return checks


# Gaps between words in hil streams (s): back to back, conversational, a short pause; shorter than
# `nanokws stream build`'s, so that a short --duration still holds several words.
HIL_GAPS = ((0.3, 0.05, 0.3), (0.6, 0.3, 1.2), (0.1, 1.5, 3.0))


def _stream_audio(args: argparse.Namespace, labels: list[str], duration: float) -> tuple[Any, Any]:
    """The stream builder's recording for stream mode: keywords and distractors of --split over
    segments of silence / background noise at --snr conditions (streams/builder.py)."""
    import numpy as np

    from ..streams.builder import StreamOptions, build_stream, load_material

    keywords = [name for name in labels if not name.startswith("_")]
    material = load_material(args.data, keywords, args.split)
    if args.limit is not None:  # --limit N: N clips drawn at random (seeded), keywords and distractors
        rng = np.random.default_rng(args.seed)
        pool = material.keyword_clips + material.distractor_clips
        if args.limit < len(pool):
            keep = {pool[i].path for i in rng.choice(len(pool), size=args.limit, replace=False)}
            material.keyword_clips = [c for c in material.keyword_clips if c.path in keep]
            material.distractor_clips = [c for c in material.distractor_clips if c.path in keep]
    fraction = args.keyword_fraction
    if not material.distractor_clips:
        fraction = 1.0
    if not material.keyword_clips:
        raise NanokwsError(f"{args.data}: no keyword clips in split '{args.split}' (try --split all)")
    opts = StreamOptions(
        minutes=duration / 60.0,
        seed=args.seed,
        split=args.split,
        keyword_fraction=fraction,
        snrs=tuple(args.snr),
        segment_s=duration / min(len(args.snr), max(1, int(duration // 10))),  # segments of >= 10 s
        gaps=HIL_GAPS,
        noise_gain=args.noise_gain,
        lead_s=(0.5, 1.5),
    )
    return build_stream(material, opts)


def _rate_line(report: dict[str, Any]) -> str:
    """One line: latency p50/p95 and the real-time factor, saying whether it is a board lower bound."""
    lat = report.get("latency", {})
    fe, inf = lat.get("frontend_per_hop_ms", {}), lat.get("inference_per_call_ms", {})
    rtf = report.get("real_time_factor")
    times = (
        f"frontend per hop p50 {fe.get('p50', 0):.3f} ms, inference p50 {inf.get('p50', 0):.3f} ms "
        f"p95 {inf.get('p95', 0):.3f} ms"
    )
    after = lat.get("inference_per_call_after_first_ms", {})
    if after.get("n"):
        times += (
            f", max {after.get('max', 0):.3f} ms after the first inference (the first, "
            f"{lat.get('first_inference_ms', 0):.3f} ms, computes the streaming model's whole window)"
        )
    if report.get("real_time_factor_kind") == "board_lower_bound":
        return (
            f"Nano 33 BLE lower bound at 64 MHz (QEMU instructions, 1 instruction/cycle): {times}; "
            f"real-time factor >= {rtf} ({report['work_instructions_per_second_of_audio']} instructions per "
            f"second of audio, >= {report['core_percent_lower_bound']}% of the core)"
        )
    return f"{times}; real-time factor {rtf} ({fe.get('source', '')})"
