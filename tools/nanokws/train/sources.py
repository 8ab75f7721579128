"""Gather training data from Speech-Commands folders (audio) and feature-form .npz files.

Audio stays audio for training (it is augmented, then run through the C frontend every epoch);
validation is un-augmented features of the speaker-disjoint validation split.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NanokwsError

FRAMES, CHANNELS, CLIP = 49, 40, 16000


@dataclass
class TrainingData:
    labels: list[str]
    audio: np.ndarray  # int16 [na, 16000] training clips
    audio_labels: np.ndarray  # int32 [na]
    noise: list[np.ndarray]  # int16 background recordings, for audio-domain mixing
    features: np.ndarray  # int8 [nf, 49, 40] feature-form training examples
    feature_labels: np.ndarray  # int32 [nf]
    feature_noise: np.ndarray  # int8 [m, 49, 40] feature-form noise slices, for feature-domain mixing
    val_x: np.ndarray  # int8 [nv, 49, 40]
    val_y: np.ndarray  # int32 [nv]
    summary: list[dict[str, Any]] = field(default_factory=list)

    @property
    def num_train(self) -> int:
        return len(self.audio) + len(self.features)


def features_of(audio: np.ndarray, batch: int = 256) -> np.ndarray:
    """int8 features [n, 49, 40] of int16 clips [n, 16000] from the C frontend, in batches."""
    from ..features import compute_features_batch

    if len(audio) == 0:
        return np.zeros((0, FRAMES, CHANNELS), np.int8)
    return np.concatenate([compute_features_batch(audio[i:i + batch]) for i in range(0, len(audio), batch)])


def load_training_data(data: Sequence[str | os.PathLike[str]], keywords: Sequence[str], seed: int = 0,
                       progress: bool = True, unknown_share: float | None = None) -> TrainingData:
    """Load every `--data` source; folders as audio, `.npz` files as feature form. `unknown_share`:
    other-word training examples of a feature-form source per mean keyword count (None: as many as
    a keyword, the validation split's balance; math.inf: all of them)."""
    from ..data import labels_for, load_dataset, load_feature_form, noise_region

    labels = labels_for(keywords)
    audio, audio_y, noise = [], [], []
    feats, feats_y, feat_noise = [], [], []
    val_x, val_y = [], []
    summary: list[dict[str, Any]] = []
    silence = labels.index("_silence_")
    for source in data:
        path = Path(source)
        if path.is_file() and path.suffix == ".npz":
            x, y, _speaker, split = load_feature_form(path, keywords, seed=seed,
                                                      train_unknown_share=unknown_share)
            train = split == "train"
            feats.append(x[train])
            feats_y.append(y[train])
            feat_noise.append(x[train & (y == silence)])
            val_x.append(x[split == "validation"])
            val_y.append(y[split == "validation"])
            summary.append({"source": str(path), "kind": "feature_form", "train": int(train.sum()),
                            "validation": int((split == "validation").sum())})
        elif path.is_dir():
            ds = load_dataset(path, keywords, seed=seed, progress=progress)
            a, y = ds.arrays("train", progress=progress)
            va, vy = ds.arrays("validation", progress=progress)
            audio.append(a)
            audio_y.append(y)
            noise.extend(noise_region(r, "train") for r in ds.noise)  # never the validation/test parts
            val_x.append(features_of(va))
            val_y.append(vy)
            summary.append({"source": str(path), "kind": "audio", "train": len(a), "validation": len(va),
                            "noise_recordings": len(ds.noise), "skipped": len(ds.skipped)})
        else:
            raise NanokwsError(f"--data {path}: not a dataset folder or a feature-form .npz file")

    def cat(parts: list[np.ndarray], shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(shape, dtype)

    result = TrainingData(
        labels=labels,
        audio=cat(audio, (0, CLIP), np.int16), audio_labels=cat(audio_y, (0,), np.int32), noise=noise,
        features=cat(feats, (0, FRAMES, CHANNELS), np.int8), feature_labels=cat(feats_y, (0,), np.int32),
        feature_noise=cat(feat_noise, (0, FRAMES, CHANNELS), np.int8),
        val_x=cat(val_x, (0, FRAMES, CHANNELS), np.int8), val_y=cat(val_y, (0,), np.int32), summary=summary,
    )
    if result.num_train == 0:
        raise NanokwsError("no training examples in the given --data sources")
    if len(result.val_x) == 0:
        raise NanokwsError("no validation examples (the speaker-hash split put every speaker in train); "
                           "use more speakers")
    return result
