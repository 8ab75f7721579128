"""`nanokws features`: compute features with the device frontend; compare them to the float
definition and to the shared feature-form set."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from ..argtypes import int_in
from ..atomic import atomic_path, write_json
from ..errors import NanokwsError
from ..paths import SHARED_GSC_LOGMEL, SHARED_SPEECH_COMMANDS

KEYWORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]

EPILOG = f"""\
examples:
  nanokws features compute --wav clip.wav                      # print shape and level range
  nanokws features compute --wav clip.wav --out f.npy --plot f.png
  nanokws features compare                                     # all real clips, ~10 s
  nanokws features compare --limit 20 --json cmp.json --plot means.png

Features are int8 [frames, 40]: frame k covers samples [320k, 320k + 480) of 16 kHz audio;
level = round(10.04 ln(mel power + 1e-6) + 145.9) - 128 (the shared log-mel pixel minus 128),
computed in fixed point by firmware/lib/frontend, bit-identical to the device.
compare defaults: --data {SHARED_SPEECH_COMMANDS}, --npz {SHARED_GSC_LOGMEL}.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    sub = parser.add_subparsers(dest="features_command", metavar="ACTION", required=True)
    comp = sub.add_parser(
        "compute",
        help="features of one WAV file (16 kHz mono int16)",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    comp.add_argument("--wav", type=Path, required=True, help="input WAV, 16 kHz mono 16-bit")
    comp.add_argument("--out", type=Path, help="write the int8 [frames, 40] array as .npy")
    comp.add_argument("--plot", type=Path, help="write a spectrogram image (.png)")

    cmp_ = sub.add_parser(
        "compare",
        help="closeness to the float definition and to the shared 47k feature-form set",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmp_.add_argument(
        "--data",
        type=Path,
        default=SHARED_SPEECH_COMMANDS,
        help="Speech Commands folder with one folder per word (default: %(default)s)",
    )
    cmp_.add_argument(
        "--npz",
        type=Path,
        default=SHARED_GSC_LOGMEL,
        help="feature-form set; skipped if absent (default: %(default)s)",
    )
    cmp_.add_argument(
        "--keywords", nargs="+", default=KEYWORDS, help="word folders to use (default: 10 keywords)"
    )
    cmp_.add_argument("--limit", type=int_in(1), default=None, help="at most N clips per word (default: all)")
    cmp_.add_argument("--json", type=Path, help="write all numbers as JSON")
    cmp_.add_argument("--plot", type=Path, help="write per-channel means, ours vs the npz (.png)")


def run(args: argparse.Namespace) -> int:
    if args.features_command == "compute":
        return _compute(args)
    return _compare(args)


def _read_clip(path: Path) -> np.ndarray:
    from ..data import read_wav

    return read_wav(path)


def _compute(args: argparse.Namespace) -> int:
    from . import compute_features

    audio = _read_clip(args.wav)
    feats = compute_features(audio)
    if len(feats) == 0:
        raise NanokwsError(f"{args.wav}: {len(audio)} samples is shorter than one 480-sample window")
    print(
        f"{args.wav}: {len(audio)} samples -> features {feats.shape[0]} frames x {feats.shape[1]} channels, "
        f"levels {int(feats.min())}..{int(feats.max())}, mean {feats.mean():.1f}"
    )
    if args.out:
        with atomic_path(args.out) as tmp, open(tmp, "wb") as fh:
            np.save(fh, feats)
        print(f"wrote {args.out}")
    if args.plot:
        fig = _figure()
        ax = fig.add_subplot(1, 1, 1)
        im = ax.imshow(
            feats.T,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=-128,
            vmax=127,
            extent=(0, len(feats) * 0.02, 0, feats.shape[1]),
        )
        ax.set(xlabel="time (s, frame start)", ylabel="mel channel", title=str(args.wav.name))
        fig.colorbar(im, ax=ax, label="int8 level")
        _save(fig, args.plot)
    return 0


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(8, 4.5))


def _save(fig: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=110, bbox_inches="tight")
    print(f"wrote {path}")


def _load_word(folder: Path, limit: int | None) -> np.ndarray:
    files = sorted(folder.glob("*.wav"))[:limit]
    clips = []
    for f in files:
        audio = _read_clip(f)[:16000]
        clips.append(np.pad(audio, (0, 16000 - len(audio))))
    return np.stack(clips).astype(np.int16) if clips else np.zeros((0, 16000), np.int16)


def _compare(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from . import compute_features_batch
    from .reference import floor_level, reference_levels

    if not args.data.is_dir():
        raise NanokwsError(f"{args.data}: no such folder (point --data at a Speech Commands folder)")
    words = [w for w in args.keywords if (args.data / w).is_dir()]
    if not words:
        raise NanokwsError(f"{args.data}: none of the word folders {args.keywords} exist")
    ours: dict[str, np.ndarray] = {}
    diffs, levels_all, ours_vals = [], [], []
    floor = floor_level()
    for w in tqdm(words, desc="words", unit="word"):
        clips = _load_word(args.data / w, args.limit)
        feats = compute_features_batch(clips)
        ours[w] = feats
        for clip, f in zip(clips, feats, strict=True):
            lv = reference_levels(clip)
            diffs.append((f.astype(np.int64) - np.clip(np.round(lv), -128, 127)).ravel())
            levels_all.append(lv.ravel())
            ours_vals.append(f.ravel())
    d, lv, ov = np.concatenate(diffs), np.concatenate(levels_all), np.concatenate(ours_vals)
    above = lv > floor + 1
    ref = {
        "clips": int(sum(len(v) for v in ours.values())),
        "values": int(d.size),
        "correlation": float(np.corrcoef(ov, np.clip(lv, -128, 127))[0, 1]),
        "mean_abs_diff": float(np.mean(np.abs(d))),
        "exact": float(np.mean(d == 0)),
        "within_1": float(np.mean(np.abs(d) <= 1)),
        "within_2": float(np.mean(np.abs(d) <= 2)),
        "max_abs_diff_above_floor": int(np.abs(d[above]).max()) if above.any() else 0,
    }
    print(f"\n(a) C frontend vs float64 definition on {ref['clips']} real clips ({ref['values']} values)")
    for key in ("correlation", "mean_abs_diff", "exact", "within_1", "within_2", "max_abs_diff_above_floor"):
        print(f"  {key:26s} {ref[key]:.6g}")

    result: dict[str, Any] = {"float_reference": ref, "feature_form": None}
    if args.npz.is_file():
        result["feature_form"] = _compare_npz(args.npz, ours, args.plot)
    else:
        print(f"\n(b) skipped: {args.npz} not found")
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


def _stats(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = a.astype(np.float64)
    return x.mean(axis=(0, 1)), x.std(axis=(0, 1))


def _compare_npz(npz_path: Path, ours: dict[str, np.ndarray], plot: Path | None) -> dict[str, Any]:
    with np.load(npz_path) as npz:
        words, pixels = npz["word"], npz["features"]
    print(f"\n(b) per-channel statistics, ours on real clips vs {npz_path.name} (int8 = u8 - 128)")
    print(
        f"  {'word':8s} {'ours':>5s} {'npz':>6s} {'offset':>7s} {'rms':>6s} {'maxabs':>7s} {'corr':>6s} "
        f"{'std ours':>8s} {'std npz':>8s}"
    )
    rows: dict[str, Any] = {}
    pooled_ours, pooled_npz = [], []
    for w, feats in list(ours.items()) + [("ALL", None)]:
        if feats is None:
            o_mean, o_std = _stats(np.concatenate(pooled_ours))
            sel = np.isin(words, list(ours))
            n_ours = sum(len(v) for v in ours.values())
        else:
            o_mean, o_std = _stats(feats)
            sel = words == w
            n_ours = len(feats)
            pooled_ours.append(feats)
        if not sel.any():
            print(f"  {w:8s} (not in the npz)")
            continue
        theirs = pixels[sel].astype(np.int16) - 128
        t_mean, t_std = _stats(theirs)
        if feats is None:
            pooled_npz = [o_mean, t_mean]
        diff = o_mean - t_mean
        row = {
            "clips": n_ours,
            "npz_examples": int(sel.sum()),
            "mean_offset": float(diff.mean()),
            "rms": float(np.sqrt(np.mean(diff**2))),
            "max_abs": float(np.abs(diff).max()),
            "correlation": float(np.corrcoef(o_mean, t_mean)[0, 1]),
            "std_ours": float(o_std.mean()),
            "std_npz": float(t_std.mean()),
            "channel_mean_ours": o_mean.round(3).tolist(),
            "channel_mean_npz": t_mean.round(3).tolist(),
        }
        rows[w] = row
        print(
            f"  {w:8s} {n_ours:5d} {row['npz_examples']:6d} {row['mean_offset']:7.2f} {row['rms']:6.2f} "
            f"{row['max_abs']:7.2f} {row['correlation']:6.3f} {row['std_ours']:8.2f} {row['std_npz']:8.2f}"
        )
    if plot and pooled_npz:
        fig = _figure()
        ax = fig.add_subplot(1, 1, 1)
        ax.plot(pooled_npz[0], label="ours (C frontend, real clips)")
        ax.plot(pooled_npz[1], label=f"{npz_path.name} - 128")
        ax.set(xlabel="mel channel", ylabel="mean int8 level", title="per-channel mean, keywords pooled")
        ax.legend()
        _save(fig, plot)
    return rows
