"""Load the shared `gsc_v2_logmel` npz: Speech Commands v0.02 in feature form only.

Its uint8 pixels map into the frontend's int8 domain as `u8 - 128` (docs/architecture.md).
Labels follow `labels_for(keywords)`: keywords as themselves, `_background_noise_` slices as
silence, every other word as unknown. The npz's "training" / "validation" splits (the dataset's
hash rule) become "train" / "validation"; it has no test split (those speakers are kept aside).
The 1000 noise slices have no speaker; a seeded 10 % of them go to validation, the rest to
train, and their speaker is "noise:<i>".
Unknown balancing is the same as `load_dataset`'s: per split, round(unknown_share * mean keyword
count) other-word examples drawn at random (None keeps all). `train_unknown_share`, when given,
replaces it for the train split only (math.inf keeps all): more other words to learn from, while the
validation split stays balanced and comparable between runs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..errors import NanokwsError
from .labels import BACKGROUND_NOISE, DEFAULT_KEYWORDS, SILENCE, UNKNOWN, labels_for

_SPLIT_NAMES = {"training": "train", "validation": "validation"}
_NOISE_VALIDATION_SHARE = 0.1


def load_feature_form(
    path: str | os.PathLike[str],
    keywords: Sequence[str] = DEFAULT_KEYWORDS,
    *,
    unknown_share: float | None = 1.0,
    train_unknown_share: float | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(features int8 [N, 49, 40], label_index int32 [N], speaker str [N], split str [N])."""
    labels = labels_for(keywords)
    try:
        with np.load(path, allow_pickle=False) as z:
            pixels, words, speakers, npz_split = z["features"], z["word"], z["speaker"], z["split"]
    except (OSError, ValueError, KeyError) as exc:
        raise NanokwsError(f"cannot read feature-form npz {path}: {exc}") from None
    if pixels.dtype != np.uint8 or pixels.ndim != 3:
        raise NanokwsError(
            f"{path}: expected uint8 features [N, frames, channels], got {pixels.dtype} {pixels.shape}"
        )

    n = len(words)
    index = {label: i for i, label in enumerate(labels)}
    label_index = np.full(n, index[UNKNOWN], dtype=np.int32)
    for word in keywords:
        label_index[words == word] = index[word]
    is_noise = words == BACKGROUND_NOISE
    label_index[is_noise] = index[SILENCE]

    split = np.array([_SPLIT_NAMES.get(s, "") for s in npz_split.tolist()], dtype="<U10")
    speaker = speakers.astype("<U16")
    rng = np.random.default_rng([seed, 1])
    noise_idx = np.flatnonzero(is_noise)
    to_validation = rng.random(len(noise_idx)) < _NOISE_VALIDATION_SHARE
    split[noise_idx] = np.where(to_validation, "validation", "train")
    speaker[noise_idx] = [f"noise:{i}" for i in range(len(noise_idx))]

    keep = split != ""  # anything with an unexpected split tag is left out
    for split_no, name in enumerate(("train", "validation")):
        share = train_unknown_share if name == "train" and train_unknown_share is not None else unknown_share
        if share is not None:
            in_split = keep & (split == name)
            mean_kw = np.count_nonzero(in_split & (label_index >= 2)) / len(keywords)
            unknown = np.flatnonzero(in_split & (label_index == index[UNKNOWN]))
            if share * mean_kw < len(unknown):
                target = round(share * mean_kw)
                drop = np.random.default_rng([seed, 2, split_no]).permutation(unknown)[target:]
                keep[drop] = False

    sel = np.flatnonzero(keep)
    features = (pixels[sel] ^ np.uint8(0x80)).view(np.int8)  # u8 - 128 without a wider temporary
    return features, label_index[sel], speaker[sel], split[sel]
