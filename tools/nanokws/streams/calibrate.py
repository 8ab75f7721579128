"""`nanokws calibrate`: choose the recognizer's start-up settings from data, never by hand.

A stream is built from the **validation** speakers (never the test speakers, whose numbers would
then be optimistic) and run once through the firmware's own path (kws_runner). Every candidate
setting is then judged by the exact Python replay of the C recognizer over the stored int8 scores:
no inference is repeated.

Search (the operating point: fewest missed keywords under the false-accept targets), `full`:
1. every smoothing window x release level x suppression time of the grids below, each with one
   threshold for all keywords swept over the DET grid;
2. from the best of those, each keyword's own threshold lowered step by step while the targets
   still hold and its misses fall (two passes).
`threshold` (SEARCHES) chooses only one threshold for every keyword, swept over the DET grid, and
keeps the library's smoothing, release and the model's suppression: one number fitted to the
validation voices instead of 10 thresholds and three settings, for a validation set with few
speakers (the shared one has 5). `window` chooses one threshold and the smoothing window (WINDOWS),
keeping the library's release and the model's suppression: two numbers.
A setting meets the targets when no spoken word fires twice, at most `distractor_fraction` of the
distractor words fire, noise or silence alone gives at most `noise_fa_per_hour` (a short
stream resolves only whole false accepts: one in 6 minutes of noise is 10 per hour), and the median
detection comes at most `latency_s` after its word's end (a longer smoothing window misses fewer
words at the same false accepts, but answers later). When nothing
meets them, the setting with the smallest shortfall is chosen and the report says so.

Writes recognizer.json (`nanokws compile/export/ship --recognizer` put it into model_config.h, so
live and protocol mode start with it), calibration.json (the search, the stream, the chosen
setting's validation metrics) and det.png (the chosen window/release/suppression's DET curve with
the operating point).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..argtypes import float_in, int_in
from ..errors import NanokwsError
from .metrics import judge

WINDOWS = (1, 2, 3, 4, 6, 8, 12, 16, 24)
RELEASES = (32, 64, 128)
SUPPRESSIONS_MS = (750, 1000, 1500)
SEARCHES = ("full", "window", "threshold")  # see the module docstring
MAX_SOURCE_CHARS = 96  # model_config.h's NK_MODEL_REC_SOURCE goes into INFO (one frame)


@dataclass(frozen=True)
class Targets:
    distractor_fraction: float = 0.02  # issue #14: <= 2% of distractor words fire
    noise_fa_per_hour: float = 0.5  # on noise and silence alone
    latency_s: float = 0.5  # median time from a keyword's end to its detection
    frr: float = 0.10  # reported against, not searched for: the search minimises FRR


def _noise_rate(rep: dict[str, Any]) -> float:
    return float(rep.get("noise_fa_per_noise_hour") or 0.0)


def shortfall(rep: dict[str, Any], targets: Targets) -> float:
    """0 when `rep` meets the targets; otherwise how far off (repeats weigh most)."""
    over_d = max(0.0, float(rep["distractor_fire_fraction"] or 0.0) - targets.distractor_fraction)
    over_n = max(0.0, _noise_rate(rep) - targets.noise_fa_per_hour) / max(targets.noise_fa_per_hour, 1e-9)
    median = (rep.get("latency_s") or {}).get("median")
    over_l = max(0.0, float(median) - targets.latency_s) if median is not None else 0.0
    return 10.0 * rep["repeats"] + 5.0 * over_d + 0.01 * over_n + 1.0 * over_l


def _rank(rep: dict[str, Any], targets: Targets) -> tuple[float, float, float]:
    """Smaller is better: shortfall first, then misses, then false accepts per hour."""
    return (round(shortfall(rep, targets), 9), float(rep["frr"] or 0.0), float(rep["fa_per_hour"] or 0.0))


def calibrate(
    truth: Any,
    run: Any,
    targets: Targets = Targets(),
    tolerance_s: float | None = None,
    progress: bool = False,
    search: str = "full",
) -> dict[str, Any]:
    """The search above over one scored stream; returns {"config", "validation", "met", "search"}.
    `tolerance_s` None: as long as a word stays in the model's window (metrics.window_tolerance_s).
    `search`: "full", "window" (the smoothing window and one threshold) or "threshold" (one
    threshold at the library's other settings)."""
    from tqdm import tqdm

    from .metrics import default_threshold_grid, window_tolerance_s
    from .replay import RecognizerConfig

    if tolerance_s is None:
        tolerance_s = window_tolerance_s(run.window_frames, run.hop_samples, run.sample_rate)

    labels = list(run.labels)
    active = [not lab.startswith("_") for lab in labels]
    if not any(active):
        raise NanokwsError("the model has no keyword labels (every label starts with '_')")
    if search not in SEARCHES:
        raise NanokwsError(f"calibrate: search {search!r}; expected one of {', '.join(SEARCHES)}")
    grid = default_threshold_grid()
    base = RecognizerConfig.defaults(len(labels), run.window_frames)
    if search == "full":
        combos = [(w, r, s) for w in WINDOWS for r in RELEASES for s in SUPPRESSIONS_MS]
    elif search == "window":
        combos = [(w, base.release, base.suppression_ms) for w in WINDOWS]
    else:
        combos = [(base.window, base.release, base.suppression_ms)]
    best: tuple[tuple[float, float, float], Any, dict[str, Any]] | None = None
    per_combo = []
    with tqdm(
        total=len(combos) * len(grid), desc="calibrate: global sweep", unit="setting", disable=not progress
    ) as bar:
        for w, r, s in combos:
            combo_best = None
            for t in grid:
                cfg = replace(base, window=w, release=r, suppression_ms=s).with_keyword_threshold(labels, t)
                rep = judge(truth, run, cfg, tolerance_s)
                key = _rank(rep, targets)
                if combo_best is None or key < combo_best[0]:
                    combo_best = (key, cfg, rep)
                bar.update(1)
            assert combo_best is not None
            per_combo.append(
                {
                    "window": w,
                    "release": r,
                    "suppression_ms": s,
                    "threshold": combo_best[1].thresholds[active.index(True)],
                    "frr": combo_best[2]["frr"],
                    "met": combo_best[0][0] == 0.0,
                    "distractor_fire_fraction": combo_best[2]["distractor_fire_fraction"],
                    "noise_fa_per_noise_hour": combo_best[2]["noise_fa_per_noise_hour"],
                    "latency_s": combo_best[2]["latency_s"],
                }
            )
            if best is None or combo_best[0] < best[0]:
                best = combo_best
    assert best is not None
    key, cfg, rep = best
    global_cfg, global_rep = cfg, rep
    # Per keyword (the full search only): lower its own threshold while the targets hold and it
    # misses fewer words.
    keyword_steps = 0
    if search == "full":
        with tqdm(
            total=2 * sum(active), desc="calibrate: per keyword", unit="keyword", disable=not progress
        ) as bar:
            for _ in range(2):
                for i, a in enumerate(active):
                    if not a:
                        continue
                    for t in sorted((g for g in grid if g < cfg.thresholds[i]), reverse=True):
                        trial = replace(
                            cfg, thresholds=tuple(t if j == i else v for j, v in enumerate(cfg.thresholds))
                        )
                        trial_rep = judge(truth, run, trial, tolerance_s)
                        trial_key = _rank(trial_rep, targets)
                        if trial_key[0] > key[0]:
                            break  # this keyword now costs the targets: stop lowering it
                        if trial_key < key:
                            key, cfg, rep = trial_key, trial, trial_rep
                            keyword_steps += 1
                    bar.update(1)
    return {
        "config": cfg,
        "validation": rep,
        "met": key[0] == 0.0,
        "tolerance_s": tolerance_s,
        "search": {
            "kind": search,
            "windows": sorted({w for w, _, _ in combos}),
            "releases": sorted({r for _, r, _ in combos}),
            "suppressions_ms": sorted({s for _, _, s in combos}),
            "threshold_grid": grid,
            "per_combo_best": per_combo,
            "global": {
                "config": global_cfg.to_json(),
                "frr": global_rep["frr"],
                "distractor_fire_fraction": global_rep["distractor_fire_fraction"],
            },
            "per_keyword_steps_taken": keyword_steps,
        },
    }


def source_text(result: dict[str, Any], split: str, minutes: float) -> str:
    """NK_MODEL_REC_SOURCE: where the settings came from and what they gave, in one short line."""
    v = result["validation"]
    kind = {"threshold": ", one threshold", "window": ", window + threshold"}.get(
        result["search"].get("kind", "full"), ""
    )
    text = (
        f"nanokws calibrate ({split}, {minutes:g} min{kind}): FRR {100 * (v['frr'] or 0):.1f}%, "
        f"distractors fired {100 * (v['distractor_fire_fraction'] or 0):.1f}%"
        f"{'' if result['met'] else ', targets not met'}"
    )
    return text[:MAX_SOURCE_CHARS]


EPILOG = """\
examples:
  nanokws calibrate --model firmware/model/model.tflite --data ../shared/data/speech_commands \\
      --out runs/cal
  nanokws compile --model firmware/model/model.tflite --recognizer runs/cal/recognizer.json --out runs/c
  nanokws ship --model runs/m/model.tflite --recognizer runs/cal/recognizer.json

The stream comes from --split (validation by default; test is refused: calibrating on the test
speakers would make every test number optimistic). recognizer.json holds per-label thresholds
(0..255 on the smoothed probability), the smoothing window (inferences), the suppression time
(ms after any detection) and the release level (a label re-arms at or below it), plus where they
came from; calibration.json the search and the chosen setting's validation metrics; det.png its
DET curve with the operating point.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..paths import SHARED_SPEECH_COMMANDS
    from .builder import snr_list

    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--model", type=Path, required=True, help="int8 .tflite (or a `nanokws compile` folder)"
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=SHARED_SPEECH_COMMANDS,
        help="Speech-Commands-layout folder with _background_noise_ (default: %(default)s)",
    )
    parser.add_argument(
        "--split",
        default="validation",
        choices=["train", "validation"],
        help="speakers the stream is built from (default: %(default)s; never test)",
    )
    parser.add_argument(
        "--minutes", type=float_in(0.5, 600.0), default=30.0, help="stream length (default: %(default)s)"
    )
    parser.add_argument(
        "--seed", type=int_in(0, 2**31 - 1), default=0, help="stream seed (default: %(default)s)"
    )
    parser.add_argument(
        "--distractor-target",
        type=float_in(0.0, 1.0),
        default=Targets.distractor_fraction,
        metavar="FRACTION",
        help="most distractor words that may fire (default: %(default)s)",
    )
    parser.add_argument(
        "--noise-target",
        type=float_in(0.0, 1e6),
        default=Targets.noise_fa_per_hour,
        metavar="PER_HOUR",
        help="most false accepts per hour of noise/silence alone (default: %(default)s)",
    )
    parser.add_argument(
        "--search",
        choices=SEARCHES,
        default="full",
        help="full: smoothing x release x suppression, then each keyword's own threshold; window: the "
        "smoothing window and one threshold for every keyword; threshold: one threshold, the library's "
        "smoothing; window and threshold keep the library's release and the model's suppression "
        "(fewer numbers fitted to few validation voices) (default: %(default)s)",
    )
    parser.add_argument(
        "--max-latency",
        type=float_in(0.0, 10.0),
        default=Targets.latency_s,
        metavar="SECONDS",
        help="median time from a keyword's end to its detection that the setting may take; a longer "
        "smoothing window misses fewer words but answers later (default: %(default)s)",
    )
    parser.add_argument(
        "--snr",
        type=snr_list,
        default=None,
        metavar="LIST",
        help="the stream's conditions, e.g. clean,20,10 (default: the stream builder's, clean,20,10,5,0): "
        "the thresholds are chosen for this mix",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="folder for recognizer.json, calibration.json, det.png"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from ..atomic import write_json
    from ..cli import invoked_command
    from ..errors import check_output_dir
    from . import metrics
    from .builder import StreamOptions, build_stream, load_material
    from .plots import plot_det
    from .replay import recognizer_json, save_recognizer_json
    from .scorer import score_audio

    if not args.data.is_dir():
        raise NanokwsError(f"--data {args.data}: dataset folder not found")
    if not args.model.exists():
        raise NanokwsError(f"--model {args.model}: not found")
    check_output_dir(args.out, "--out")
    progress = not args.no_progress and sys.stderr.isatty()
    from .. import modelmeta

    model_file = args.model / "model.tflite" if args.model.is_dir() else args.model
    tflite = modelmeta.read_model_bytes(model_file)
    meta = modelmeta.read_metadata(tflite, str(model_file))
    labels = [str(x) for x in meta["labels"]]
    keywords = [lab for lab in labels if not lab.startswith("_")]
    material = load_material(args.data, keywords, args.split, progress=progress)
    opts = StreamOptions(minutes=args.minutes, seed=args.seed, split=args.split)
    if args.snr is not None:
        opts = replace(opts, snrs=tuple(args.snr))
    audio, truth = build_stream(material, opts, progress=progress)
    scored = score_audio(args.model, audio, progress=progress)
    targets = Targets(
        distractor_fraction=args.distractor_target,
        noise_fa_per_hour=args.noise_target,
        latency_s=args.max_latency,
    )
    result = calibrate(truth, scored, targets, progress=progress, search=args.search)
    cfg, val = result["config"], result["validation"]
    source = source_text(result, args.split, args.minutes)
    args.out.mkdir(parents=True, exist_ok=True)
    save_recognizer_json(args.out / "recognizer.json", cfg, labels, source)
    det = metrics.det_curves(truth, scored, cfg, tolerance_s=result["tolerance_s"])
    operating = {"frr": val["frr"], "fa_per_hour": val["fa_per_hour"], "label": "calibrated"}
    plot_det(
        args.out / "det.png",
        det,
        operating,
        f"{meta.get('model', 'model')}: {args.split} stream, {args.minutes:g} min (window {cfg.window}, "
        f"release {cfg.release}, suppression {cfg.suppression_ms} ms)",
    )
    write_json(
        args.out / "calibration.json",
        {
            "command": invoked_command("calibrate"),
            "model": str(args.model),
            "model_hash": modelmeta.model_hash(tflite),
            "data": str(args.data),
            "split": args.split,
            "minutes": args.minutes,
            "seed": args.seed,
            "stream": truth.summary,
            "targets": vars(targets),
            "met": result["met"],
            "recognizer": recognizer_json(cfg, labels, source),
            "validation": val,
            "search": result["search"],
            "det": det,
        },
    )
    print(
        f"calibrated on {args.minutes:g} min of {args.split} speech ({val['keywords']} keywords, "
        f"{val['distractors']} distractors): window {cfg.window}, release {cfg.release}, suppression "
        f"{cfg.suppression_ms} ms, thresholds "
        + ", ".join(
            f"{lab} {t}" for lab, t in zip(labels, cfg.thresholds, strict=True) if not lab.startswith("_")
        )
    )
    print(
        f"validation stream: FRR {100 * (val['frr'] or 0):.1f}%, distractor words fired "
        f"{100 * (val['distractor_fire_fraction'] or 0):.1f}%, noise false accepts "
        f"{val['false_accepts']['noise']} ({_noise_rate(val):g} per hour of noise), "
        f"repeats {val['repeats']}, median latency {(val.get('latency_s') or {}).get('median')} s"
        f" -> targets {'met' if result['met'] else 'NOT met'}"
    )
    print(f"wrote {args.out}/recognizer.json, calibration.json, det.png")
    return 0
