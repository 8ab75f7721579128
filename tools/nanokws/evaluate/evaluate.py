"""Evaluate an int8 .tflite on a dataset: LiteRT for the numbers, TFLite Micro for agreement."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_json
from ..errors import NanokwsError
from ..modelmeta import model_hash, read_metadata, read_model_bytes
from .conditions import Condition, apply_condition, conditions_from, plot_conditions
from .metrics import format_report, plot_confusion, summarize
from .runtime import run_litert, run_tflm

SPLITS = ("test", "validation", "all")


def load_eval_data(data: Sequence[str | os.PathLike[str]], keywords: list[str], split: str, limit: int | None,
                   seed: int = 0, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """int8 features [n, 49, 40] (C frontend) and label indices of `split` from every source."""
    from ..data import load_dataset, load_feature_form

    xs, ys = [], []
    for source in data:
        path = Path(source)
        if path.is_file() and path.suffix == ".npz":
            if split == "test":
                raise NanokwsError(f"{path}: the feature-form npz has no test split; use --split validation")
            x, y, _speaker, sp = load_feature_form(path, keywords, seed=seed)
            keep = np.ones(len(y), bool) if split == "all" else sp == split
            xs.append(x[keep])
            ys.append(y[keep])
        elif path.is_dir():
            from ..train.sources import features_of

            dataset = load_dataset(path, keywords, seed=seed)
            if dataset.skipped and progress:  # unreadable or malformed files: skipped, never fatal
                first, reason = dataset.skipped[0]
                print(f"note: skipped {len(dataset.skipped)} files of {path} (first: {first}: {reason}); "
                      f"`nanokws data --data {path}` lists them all")
            audio, y = dataset.arrays(split, progress=progress)
            xs.append(features_of(audio))
            ys.append(y)
        else:
            raise NanokwsError(f"--data {path}: not a dataset folder or a feature-form .npz file")
    x = np.concatenate(xs)
    y = np.concatenate(ys).astype(np.int64)
    if limit is not None and limit < len(y):
        pick = np.sort(np.random.default_rng([seed, 4]).permutation(len(y))[:limit])
        x, y = x[pick], y[pick]
    if len(y) == 0:
        raise NanokwsError(f"no examples in split '{split}' of the given --data")
    return x, y


def load_eval_audio(data: Sequence[str | os.PathLike[str]], keywords: list[str], split: str,
                    limit: int | None, seed: int = 0,
                    progress: bool = True) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """int16 clips, label indices and this split's background noise (data.noise_region) from
    dataset folders only: the robustness conditions change the audio before the frontend."""
    from ..data import load_dataset, noise_region

    audio, ys, noise = [], [], []
    for source in data:
        path = Path(source)
        if not path.is_dir():
            raise NanokwsError(f"--data {path}: --snr/--quieter-db/--shift-ms need audio (a dataset folder), "
                               "not a feature-form file")
        dataset = load_dataset(path, keywords, seed=seed)
        a, y = dataset.arrays(split, progress=progress)
        audio.append(a)
        ys.append(y)
        noise.extend(noise_region(r, "test" if split == "all" else split) for r in dataset.noise)
    x = np.concatenate(audio)
    y = np.concatenate(ys).astype(np.int64)
    if limit is not None and limit < len(y):  # the same subset load_eval_data picks
        pick = np.sort(np.random.default_rng([seed, 4]).permutation(len(y))[:limit])
        x, y = x[pick], y[pick]
    if len(y) == 0:
        raise NanokwsError(f"no examples in split '{split}' of the given --data")
    return x, y, noise


def load_eval_inputs(data: Sequence[str | os.PathLike[str]], keywords: list[str], split: str,
                     limit: int | None, conditions: Sequence[Condition], progress: bool = True,
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[np.ndarray]]:
    """Features and labels; with robustness conditions beyond clean also the clips and this split's
    noise they need (load_eval_audio), else (x, y, None, [])."""
    if len(conditions) > 1:
        from ..train.sources import features_of

        clips, y, noise = load_eval_audio(data, keywords, split, limit, progress=progress)
        return features_of(clips), y, clips, noise
    x, y = load_eval_data(data, keywords, split, limit, progress=progress)
    return x, y, None, []


def evaluate_model(
    model_path: str | os.PathLike[str],
    data: Sequence[str | os.PathLike[str]],
    *,
    split: str = "test",
    limit: int | None = None,
    json_path: str | os.PathLike[str] | None = None,
    plot_path: str | os.PathLike[str] | None = None,
    snrs: Sequence[float] = (),
    quieter_db: Sequence[float] = (),
    shifts_ms: Sequence[float] = (),
    conditions_plot: str | os.PathLike[str] | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Evaluate; return (and optionally write) the report dict described in `nanokws eval --help`.
    `snrs` / `quieter_db` / `shifts_ms` add robustness conditions (evaluate/conditions.py), reported under
    "conditions" with the clean accuracy first."""
    from tqdm import tqdm

    from ..data import SILENCE, UNKNOWN

    if split not in SPLITS:
        raise NanokwsError(f"unknown split '{split}' (choose from {', '.join(SPLITS)})")
    if limit is not None and limit < 1:
        raise NanokwsError("--limit must be at least 1")
    tflite = read_model_bytes(model_path)
    meta = read_metadata(tflite, source=str(model_path))
    labels = [str(x) for x in meta.get("labels", [])]
    if labels[:2] != [SILENCE, UNKNOWN] or len(labels) < 3:
        raise NanokwsError(f"{model_path}: metadata labels {labels} do not start with {SILENCE}, {UNKNOWN}")
    _check_frontend(meta.get("frontend"), str(model_path))
    conditions = conditions_from(snrs, quieter_db, shifts_ms)
    x, y, clips, noise = load_eval_inputs(data, labels[2:], split, limit, conditions, verbose)

    with tqdm(total=len(y), desc="LiteRT", unit="clip", disable=not verbose, leave=False) as bar:
        litert = run_litert(tflite, x, bar.update)
    with tqdm(total=len(y), desc="TFLite Micro", unit="clip", disable=not verbose, leave=False) as bar:
        tflm = run_tflm(tflite, x, bar.update)
    if litert.shape != (len(y), len(labels)):
        raise NanokwsError(f"model output has {litert.shape[1]} values but the metadata lists "
                           f"{len(labels)} labels")
    pred = np.argmax(litert, axis=1)
    report = summarize(y, pred, labels)
    mismatches = int(np.count_nonzero(np.any(litert != tflm, axis=1)))
    report.update({
        "tflm_agrees": bool(np.array_equal(litert, tflm)),
        "tflm_mismatches": mismatches,
        "tflm_accuracy": float(np.mean(np.argmax(tflm, axis=1) == y)),
        "model": str(model_path), "model_name": meta.get("model"), "model_hash": model_hash(tflite),
        "split": split, "data": [str(d) for d in data], "limit": limit,
    })
    if clips is not None:
        report["conditions"] = _run_conditions(tflite, clips, y, noise, conditions, pred, verbose)
    if verbose:
        print(f"{model_path} on {report['n']} clips ({split}): accuracy {report['accuracy']:.2%} "
              f"(balanced: mean per-class recall {report['balanced_accuracy']:.2%})")
        cm = np.array(report["confusion"])
        print(format_report(cm, labels, report["per_class"]))
        print(f"TFLite Micro vs LiteRT int8 outputs: {'identical' if report['tflm_agrees'] else 'DIFFER'} "
              f"({mismatches} of {report['n']} clips differ)")
        for row in report.get("conditions", []):
            print(f"  {row['name']:>24}: {row['accuracy']:.2%} ({row['accuracy'] - report['accuracy']:+.2%} "
                  "against clean)")
    if json_path:
        write_json(json_path, report)
    if conditions_plot and "conditions" in report:
        plot_conditions(str(conditions_plot), report["conditions"],
                        f"{meta.get('model', 'model')} ({split}, {report['n']} clips): "
                        "int8 accuracy by condition")
    if plot_path:
        plot_confusion(np.array(report["confusion"]), labels, plot_path,
                       f"{meta.get('model', 'model')} ({split}): {report['accuracy']:.1%} of {report['n']}")
    return report


def _run_conditions(tflite: bytes, clips: np.ndarray, y: np.ndarray, noise: list[np.ndarray],
                    conditions: list[Condition], clean_pred: np.ndarray,
                    verbose: bool) -> list[dict[str, Any]]:
    """int8 accuracy (LiteRT) of every condition; the clean row reuses the main evaluation."""
    from tqdm import tqdm

    from ..train.sources import features_of

    rows = []
    for index, cond in enumerate(conditions):
        if index == 0:
            pred = clean_pred
        else:
            feats = features_of(apply_condition(clips, noise, cond, seed=0, index=index))
            with tqdm(total=len(y), desc=cond.name, unit="clip", disable=not verbose, leave=False) as bar:
                pred = np.argmax(run_litert(tflite, feats, bar.update), axis=1)
        rows.append({**cond.to_json(), "accuracy": float(np.mean(pred == y)), "n": int(len(y))})
    return rows


def _check_frontend(frontend: Any, source: str) -> None:
    from ..features import FRONTEND_CONFIG

    if not isinstance(frontend, dict):
        raise NanokwsError(f"{source}: metadata has no frontend parameters")
    diff = {k: (frontend.get(k), v) for k, v in FRONTEND_CONFIG.items() if frontend.get(k) != v}
    if diff:
        first = ", ".join(f"{k}: model {m} vs frontend {f}" for k, (m, f) in list(diff.items())[:3])
        raise NanokwsError(f"{source}: trained with different frontend parameters ({first})")
