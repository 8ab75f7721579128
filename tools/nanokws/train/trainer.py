"""Train a model, convert it to full int8, and write the run's artifacts atomically."""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_dir
from ..errors import NanokwsError
from ..modelmeta import model_sha256
from ..window import pad_to_window
from .augment import AudioAugment, FeatureAugment
from .models import build_model

DEFAULT_EPOCHS = 80  # tiny on `nanokws data synth` output: about 80 s on 2 cores
DEFAULT_BATCH_SIZE = 64
DEFAULT_LR = 3e-3
DEFAULT_PATIENCE = 15
SPEED_RANGE = (0.9, 1.1)
PROGRESS_EVERY = 25  # batches between progress-bar refreshes: per-batch refreshes cost ~25% of a CPU epoch


@dataclass
class TrainResult:
    out_dir: Path
    keras_path: Path
    tflite_path: Path
    metrics_path: Path
    curves_path: Path
    metrics: dict[str, Any]


def set_seeds(seed: int) -> None:
    """Seed python, numpy and TensorFlow; ask TF for deterministic ops (cheap on CPU)."""
    import keras
    import tensorflow as tf

    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except (AttributeError, RuntimeError):  # older TF, or already initialised
        pass


def _tqdm_callback(epochs: int, verbose: bool) -> Any:
    import keras
    from tqdm import tqdm

    class TqdmProgress(keras.callbacks.Callback):  # type: ignore[misc]
        """One bar per epoch (batches), then a line with the validation metrics."""

        def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            # Bars only on a terminal: in CI logs their carriage-return updates are pages of noise.
            self.bar = tqdm(total=self.params.get("steps"), desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                            leave=False, disable=not (verbose and sys.stderr.isatty()))
            self.pending = 0

        def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
            self.pending += 1
            if self.bar.disable or self.pending < PROGRESS_EVERY:
                return
            self.bar.update(self.pending)
            self.pending = 0
            if logs:
                self.bar.set_postfix(loss=f"{logs.get('loss', 0):.3f}", acc=f"{logs.get('accuracy', 0):.3f}")

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            self.bar.update(self.pending)
            self.bar.close()
            if verbose and logs:
                print(f"epoch {epoch + 1}/{epochs}: loss {logs['loss']:.3f} acc {logs['accuracy']:.3f} "
                      f"val_loss {logs['val_loss']:.3f} val_acc {logs['val_accuracy']:.3f}", flush=True)

    return TqdmProgress()


def int8_accuracy(tflite: bytes, x: np.ndarray, y: np.ndarray) -> float:
    from ..evaluate.runtime import run_litert

    out = run_litert(tflite, x)
    return float(np.mean(np.argmax(out, axis=1) == y)) if len(y) else 0.0


def train_model(
    data: Sequence[str | os.PathLike[str]],
    model_name: str,
    out_dir: str | os.PathLike[str],
    *,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = 0,
    keywords: Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    specaugment: bool = False,
    speed_pitch: bool = False,
    level_db: float = 0.0,
    snr_db: tuple[float, float] | None = None,
    unknown_shift_ms: int = 0,
    unknown_share: float | None = None,
    neighbours: float = 0.0,
    window_frames: int | None = None,
    label_smoothing: float = 0.0,
    mixup: float = 0.0,
    weight_decay: float = 0.0,
    ema: float = 0.0,
    patience: int = DEFAULT_PATIENCE,
    teacher: str | os.PathLike[str] | None = None,
    teacher_weight: float = 0.5,
    command: str | None = None,
    verbose: bool = True,
) -> TrainResult:
    """Train `model_name` on `data`; write model.keras, model.tflite, metrics.json, training_curves.png.

    Regularisers (all off by default, compared in docs/models.md): `label_smoothing` (0..1, spread over
    the classes), `mixup` (Beta alpha; 0 = off), `weight_decay` (AdamW's decoupled decay, on top of the
    architectures' own small L2), `specaugment` (time/frequency masks on feature-form examples),
    `speed_pitch` (audio resampled x0.9-1.1; feature-form frames stretched x0.9-1.1 and mel channels
    shifted by up to one), `level_db` (half the examples made up to this many dB quieter, noise
    included), `snr_db` ((lo, hi): background noise mixed at a true SNR from lo..hi dB, audio and
    feature form alike; None keeps audio at 0..20 dB and feature-form noise at its own level),
    `unknown_shift_ms` (> 0: feature-form `_unknown_` examples shifted by up to +-this many ms instead
    of 100, other words at the offsets a stream shows them), `unknown_share` (feature-form `_unknown_`
    training examples per mean keyword count; None = 1, as balanced as validation; math.inf = all),
    `neighbours` (0..1: that share of feature-form words get another word of the batch beside them, cut
    by the window's edge, label unchanged: the word before or after as a stream's windows show it).
    `window_frames` (None = a clip's 49): the model's window, longer for a model VALID in time; every
    example is centred in it (window.py).
    `ema` (0 = off, else the momentum, e.g. 0.999): validate, keep and convert the exponential moving
    average of the weights over the training steps (Polyak averaging) instead of the last step's.
    `teacher`: an int8 .tflite whose probabilities on each augmented batch are
    blended into the targets with `teacher_weight` (train/distill.py).
    """
    if epochs < 1 or batch_size < 1 or lr <= 0 or patience < 1:
        raise NanokwsError("epochs, batch size, learning rate and patience must be positive")
    if not 0.0 <= label_smoothing < 1.0 or mixup < 0 or weight_decay < 0:
        raise NanokwsError("label smoothing must be in [0, 1); mixup alpha and weight decay must be >= 0")
    if not 0.0 <= level_db <= 60.0:
        raise NanokwsError("the level augmentation must be 0..60 dB")
    if snr_db is not None and not -30.0 <= snr_db[0] <= snr_db[1] <= 60.0:
        raise NanokwsError("the SNR range must be LO <= HI within -30..60 dB")
    if not 0 <= unknown_shift_ms <= 1000:
        raise NanokwsError("the _unknown_ shift must be 0..1000 ms")
    if not 0.0 <= neighbours <= 1.0:
        raise NanokwsError("the neighbour probability must be 0..1")
    if not 0.0 <= ema < 1.0:
        raise NanokwsError("the weight-average momentum must be in [0, 1)")
    if unknown_share is not None and not unknown_share > 0:
        raise NanokwsError("the _unknown_ share must be positive")
    if not 0.0 < teacher_weight <= 1.0:
        raise NanokwsError("the teacher weight must be in (0, 1]")
    from ..data import DEFAULT_KEYWORDS, SILENCE
    from ..features import FRONTEND_CONFIG
    from ..versions import tool_versions
    from .batches import make_batches
    from .convert import convert_int8
    from .models import MODELS
    from .plots import plot_history
    from .sources import load_training_data

    if model_name not in MODELS:
        raise NanokwsError(f"unknown model '{model_name}' (choose from {', '.join(MODELS)})")
    keywords = list(keywords or DEFAULT_KEYWORDS)
    started = time.monotonic()
    td = load_training_data(data, keywords, seed=seed, progress=verbose, unknown_share=unknown_share)
    set_seeds(seed)
    import keras

    model = build_model(model_name, len(td.labels), window_frames)
    teacher_fn = None
    if teacher is not None:  # after the model: the teacher must see the student's window
        from .distill import load_teacher

        teacher_fn = load_teacher(teacher, td.labels, int(model.input_shape[1]))
    steps = max(1, -(-td.num_train // batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=epochs * steps, alpha=0.05)
    averaging = {"use_ema": True, "ema_momentum": ema} if ema > 0 else {}
    optimizer = (keras.optimizers.AdamW(schedule, weight_decay=weight_decay, **averaging) if weight_decay > 0
                 else keras.optimizers.Adam(schedule, **averaging))
    model.compile(optimizer=optimizer,
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
                  metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    feature_cfg = FeatureAugment(specaugment=specaugment, stretch=SPEED_RANGE if speed_pitch else None,
                                 max_channel_shift=1 if speed_pitch else 0, level_db=level_db,
                                 speech_snr_db=snr_db,
                                 wide_shift=_wide_shift(td.labels, unknown_shift_ms, FRONTEND_CONFIG),
                                 neighbour=(td.labels.index(SILENCE), neighbours) if neighbours > 0 else None,
                                 window_frames=window_frames)
    audio_cfg = AudioAugment(speed=SPEED_RANGE if speed_pitch else None, level_db=level_db,
                             **({} if snr_db is None else {"snr_db": snr_db}))
    train_batches = make_batches(td, batch_size, seed, feature_cfg, audio_cfg, mixup_alpha=mixup,
                                 teacher=teacher_fn, teacher_weight=teacher_weight)
    val_x = pad_to_window(td.val_x, int(model.input_shape[1])).astype(np.float32)[..., None]
    val_onehot = np.eye(len(td.labels), dtype=np.float32)[td.val_y]
    if verbose:
        print(f"training '{model_name}' ({model.count_params()} params) on {td.num_train} examples "
              f"({len(td.audio)} audio, {len(td.features)} feature-form), validating on {len(td.val_x)}; "
              f"labels {', '.join(td.labels)}", flush=True)
    stopper = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=patience, mode="max",
                                            restore_best_weights=True)
    # With --ema the averaged weights are what validation scores, what the stopper keeps as the best
    # epoch's and what is converted: the swap callback puts them in the model before the stopper looks.
    swap = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if ema > 0 else []
    fit = model.fit(train_batches, validation_data=(val_x, val_onehot), epochs=epochs, verbose=0,
                    callbacks=[_tqdm_callback(epochs, verbose), *swap, stopper])
    history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
    best_epoch = int(np.argmax(history["val_accuracy"])) + 1
    float_acc = float(model.evaluate(val_x, val_onehot, verbose=0, batch_size=256)[1])

    calib_rng = np.random.default_rng([seed, 3])
    calibration = np.concatenate([
        _features_sample(td.audio, seed),
        td.features[np.sort(calib_rng.permutation(len(td.features))[:300])],
    ])
    meta = {
        "labels": td.labels, "frontend": dict(FRONTEND_CONFIG), "model": model_name,
        "training_data": td.summary, "seed": seed,
    }
    tflite = convert_int8(model, calibration, meta, seed=seed)
    int8_acc = int8_accuracy(tflite, td.val_x, td.val_y)
    metrics = {
        "model": model_name, "labels": td.labels, "keywords": keywords,
        "float_val_accuracy": float_acc, "int8_val_accuracy": int8_acc,
        "best_epoch": best_epoch, "epochs_run": len(history["loss"]), "history": history,
        "params": int(model.count_params()), "int8_size_bytes": len(tflite),
        "data": td.summary, "num_train": td.num_train, "num_validation": len(td.val_x),
        "seed": seed, "batch_size": batch_size, "lr": lr, "specaugment": specaugment,
        "speed_pitch": speed_pitch, "level_db": level_db, "snr_db": None if snr_db is None else list(snr_db),
        "unknown_shift_ms": unknown_shift_ms,
        "neighbours": neighbours, "window_frames": int(model.input_shape[1]),
        "unknown_share": "all" if unknown_share is not None and math.isinf(unknown_share) else unknown_share,
        "label_smoothing": label_smoothing, "mixup": mixup, "weight_decay": weight_decay,
        "ema": ema, "patience": patience,
        # The teacher's sha256: its path alone would not find it again (runs/ is not in the repository).
        "teacher": None if teacher is None else {"model": str(teacher), "weight": teacher_weight,
                                                 "sha256": model_sha256(Path(teacher).read_bytes())},
        "command": command if command is not None else " ".join(sys.argv),
        "versions": tool_versions(),
        "train_seconds": round(time.monotonic() - started, 1),
    }
    out = Path(out_dir)
    names = ("model.keras", "model.tflite", "metrics.json", "training_curves.png")
    with atomic_dir(out) as staging:
        model.save(staging / names[0])
        (staging / names[1]).write_bytes(tflite)
        import json

        (staging / names[2]).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        plot_history(history, staging / names[3], f"{model_name}: float {float_acc:.1%}, int8 {int8_acc:.1%}")
    if verbose:
        print(f"validation accuracy: float {float_acc:.2%}, int8 {int8_acc:.2%}; "
              f"int8 model {len(tflite)} bytes; wrote {out}/{{{','.join(names)}}}", flush=True)
    return TrainResult(out, *(out / n for n in names), metrics=metrics)


def _wide_shift(labels: Sequence[str], unknown_shift_ms: int,
                frontend: dict[str, int]) -> tuple[int, int] | None:
    """FeatureAugment.wide_shift for `_unknown_` at +-unknown_shift_ms (frames of the frontend's hop)."""
    if unknown_shift_ms <= 0 or "_unknown_" not in labels:
        return None
    frame_ms = 1000.0 * frontend["NK_FE_HOP_SAMPLES"] / frontend["NK_FE_SAMPLE_RATE"]
    return labels.index("_unknown_"), int(round(unknown_shift_ms / frame_ms))


def _features_sample(audio: np.ndarray, seed: int, count: int = 300) -> np.ndarray:
    """Un-augmented features of up to `count` training clips, for int8 calibration."""
    from .sources import features_of

    pick = np.sort(np.random.default_rng([seed, 3]).permutation(len(audio))[:count])
    return features_of(audio[pick])
