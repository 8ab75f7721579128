"""Feature-form loader: int8 = u8 - 128, labels by labels_for, noise -> silence, unknown balancing."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from nanokws.data import SILENCE, UNKNOWN, labels_for, load_feature_form
from nanokws.errors import NanokwsError


def _fake_npz(path: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    words = ["yes"] * 30 + ["no"] * 20 + ["cat"] * 40 + ["dog"] * 15 + ["_background_noise_"] * 12
    n = len(words)
    speakers = [f"s{i % 9}" if w != "_background_noise_" else "" for i, w in enumerate(words)]
    split = [
        "noise" if w == "_background_noise_" else ("validation" if i % 9 == 0 else "training")
        for i, w in enumerate(words)
    ]
    arrays = {
        "features": rng.integers(0, 256, (n, 49, 40)).astype(np.uint8),
        "word": np.array(words),
        "speaker": np.array(speakers),
        "utterance": np.array(["0"] * n),
        "split": np.array(split),
    }
    np.savez(path, **arrays)
    return arrays


def test_mapping_is_exact_and_labels_follow_labels_for(tmp_path: Path) -> None:
    raw = _fake_npz(tmp_path / "f.npz")
    labels = labels_for(["yes", "no"])
    feats, idx, spk, split = load_feature_form(tmp_path / "f.npz", ["yes", "no"], unknown_share=None)
    assert feats.dtype == np.int8 and feats.shape == raw["features"].shape
    assert np.array_equal(feats.astype(np.int16), raw["features"].astype(np.int16) - 128)
    expect = [
        labels.index(w if w in ("yes", "no") else SILENCE if w == "_background_noise_" else UNKNOWN)
        for w in raw["word"]
    ]
    assert np.array_equal(idx, expect)
    assert set(split.tolist()) <= {"train", "validation"}
    is_noise = raw["word"] == "_background_noise_"
    assert np.array_equal(
        split[~is_noise], np.where(raw["split"][~is_noise] == "training", "train", "validation")
    )
    assert len(set(spk[is_noise].tolist())) == is_noise.sum()  # each noise slice its own "speaker"


def test_unknown_is_balanced_per_split_and_deterministic(tmp_path: Path) -> None:
    _fake_npz(tmp_path / "f.npz")
    unk = labels_for(["yes", "no"]).index(UNKNOWN)
    _, idx, _, split = load_feature_form(tmp_path / "f.npz", ["yes", "no"], unknown_share=1.0, seed=3)
    _, idx_all, _, split_all = load_feature_form(tmp_path / "f.npz", ["yes", "no"], unknown_share=None)
    for name in ("train", "validation"):
        mean_kw = np.count_nonzero((split == name) & (idx >= 2)) / 2
        available = np.count_nonzero((split_all == name) & (idx_all == unk))
        assert np.count_nonzero((split == name) & (idx == unk)) == min(available, round(mean_kw))
    again = load_feature_form(tmp_path / "f.npz", ["yes", "no"], seed=3)
    other = load_feature_form(tmp_path / "f.npz", ["yes", "no"], seed=4)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(again, load_feature_form(tmp_path / "f.npz", ["yes", "no"], seed=3), strict=True)
    )
    assert not np.array_equal(again[0], other[0])


def test_train_unknown_share_grows_only_the_train_split(tmp_path: Path) -> None:
    """--unknown-share: more other words in train (the balanced draw plus more, never others), the
    validation split exactly as balanced as before; math.inf keeps every train unknown."""
    _fake_npz(tmp_path / "f.npz")
    unk = labels_for(["yes", "no"]).index(UNKNOWN)

    def rows(result: tuple[np.ndarray, ...], name: str, only_unknown: bool) -> set[bytes]:
        feats, idx, _, split = result
        pick = (split == name) & ((idx == unk) if only_unknown else np.ones(len(idx), bool))
        return {f.tobytes() for f in feats[pick]}

    base = load_feature_form(tmp_path / "f.npz", ["yes", "no"], seed=3)
    more = load_feature_form(tmp_path / "f.npz", ["yes", "no"], seed=3, train_unknown_share=1.5)
    every = load_feature_form(tmp_path / "f.npz", ["yes", "no"], seed=3, train_unknown_share=math.inf)
    full = load_feature_form(tmp_path / "f.npz", ["yes", "no"], unknown_share=None)
    mean_kw = np.count_nonzero((more[3] == "train") & (more[1] >= 2)) / 2
    assert len(rows(more, "train", True)) == round(1.5 * mean_kw) > len(rows(base, "train", True))
    assert rows(base, "train", True) < rows(more, "train", True)  # the balanced draw, plus more
    assert rows(every, "train", True) == rows(full, "train", True)
    assert rows(base, "train", False) - rows(base, "train", True) == rows(more, "train", False) - rows(
        more, "train", True)  # keywords and silence untouched
    for result in (more, every):
        assert rows(result, "validation", False) == rows(base, "validation", False)


def test_bad_npz_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "x.npz").write_bytes(b"nope")
    with pytest.raises(NanokwsError, match="cannot read feature-form npz"):
        load_feature_form(tmp_path / "x.npz", ["yes"])


@pytest.mark.slow
def test_shared_npz(shared_gsc_logmel: Path) -> None:
    feats, idx, spk, split = load_feature_form(shared_gsc_logmel, unknown_share=None)
    with np.load(shared_gsc_logmel) as z:
        pixels, words = z["features"], z["word"]
    assert feats.shape == pixels.shape == (len(idx), 49, 40)
    assert np.array_equal(feats.astype(np.int16), pixels.astype(np.int16) - 128)
    labels = labels_for(["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"])
    counts = Counter(labels[i] for i in idx.tolist())
    assert counts[SILENCE] == int(np.count_nonzero(words == "_background_noise_"))
    assert counts["yes"] == int(np.count_nonzero(words == "yes"))
    tr = set(spk[(split == "train") & (idx != 0)].tolist())
    va = set(spk[(split == "validation") & (idx != 0)].tolist())
    assert tr and va and not tr & va  # the dataset's speaker split survives
    _, bal, _, bsplit = load_feature_form(shared_gsc_logmel)
    mean_kw = np.count_nonzero((bsplit == "train") & (bal >= 2)) / 10
    assert np.count_nonzero((bsplit == "train") & (bal == 1)) == round(mean_kw)
