"""Dataset layout: speaker-hash splits, list files, balancing, silence cuts, bad files, test-set layout."""

from __future__ import annotations

import hashlib
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from nanokws.data import SILENCE, UNKNOWN, labels_for, load_dataset, wav_bytes, which_split
from nanokws.errors import NanokwsError


def _expected_split(file_name: str) -> str:
    """The speech_commands rule written out independently, in exact rational arithmetic."""
    stem = file_name.split("_nohash_")[0] if "_nohash_" in file_name else file_name
    value = int.from_bytes(hashlib.sha1(stem.encode()).digest(), "big") % 2**27
    percent = Fraction(value * 100, 2**27 - 1)
    return "validation" if percent < 10 else "test" if percent < 20 else "train"


def _speakers(n: int, seed: int = 0) -> list[str]:
    return [f"{x:08x}" for x in np.random.default_rng(seed).integers(0, 2**32, n)]


def _write(path: Path, samples: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav_bytes(samples.astype(np.int16)))


def _make_dataset(root: Path, words: dict[str, int], speakers: list[str], noise_seconds: int = 20) -> None:
    """`count` clips per word, speakers cycled, each clip a short ramp identifying it."""
    rng = np.random.default_rng(3)
    for word, count in words.items():
        for i in range(count):
            spk = speakers[(i * 7 + len(word)) % len(speakers)]
            _write(root / word / f"{spk}_nohash_{i}.wav", rng.integers(-3000, 3000, 8000 + i))
    if noise_seconds:
        _write(root / "_background_noise_" / "hiss.wav", rng.integers(-2000, 2000, noise_seconds * 16000))
        _write(root / "_background_noise_" / "hum.wav", rng.integers(-500, 500, noise_seconds * 16000 + 7))


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sc")
    words = {"yes": 120, "no": 110, "up": 100, "cat": 90, "dog": 80, "bird": 70}
    _make_dataset(root, words, _speakers(60))
    return root


def test_which_split_matches_independent_rule() -> None:
    names = [f"{s}_nohash_{i}.wav" for i, s in enumerate(_speakers(3000, seed=9))]
    names += ["testv2_1024.wav", "noise.wav", "a_b_nohash_c_nohash_1.wav"]
    got = Counter()
    for name in names:
        assert which_split(name) == _expected_split(name), name
        got[which_split(name)] += 1
    # The rule gives about 10 % / 10 % / 80 %.
    assert 0.08 < got["validation"] / len(names) < 0.12 and 0.08 < got["test"] / len(names) < 0.12


def test_speaker_never_in_two_splits_and_splits_follow_hash(fake_root: Path) -> None:
    ds = load_dataset(fake_root, ["yes", "no", "up"])
    assert ds.split_mode == "hash" and ds.skipped == []
    where: dict[str, set[str]] = {}
    for split in ("train", "validation", "test"):
        for ex in ds.examples(split):
            if ex.label != SILENCE:
                assert ex.split == split == _expected_split(ex.path.name)
                assert ex.speaker == ex.path.name.split("_nohash_")[0]
                where.setdefault(ex.speaker, set()).add(split)
    assert where and all(len(s) == 1 for s in where.values())
    assert {"train", "validation", "test"} <= set().union(*where.values())


def test_balancing_unknown_and_silence(fake_root: Path) -> None:
    keywords = ["yes", "no", "up"]
    ds = load_dataset(fake_root, keywords, unknown_share=0.5, silence_share=1.0, seed=4)
    assert ds.labels == labels_for(keywords) == [SILENCE, UNKNOWN, *keywords]
    all_clips = ds.examples("all")
    for split in ("train", "validation", "test"):
        exs = ds.examples(split)
        c = Counter(ex.label for ex in exs)
        # Every keyword clip of the split is kept.
        for k in keywords:
            assert c[k] == sum(1 for e in all_clips if e.word == k and e.split == split)
        mean_kw = sum(c[k] for k in keywords) / len(keywords)
        available = sum(1 for e in all_clips if e.word in ("cat", "dog", "bird") and e.split == split)
        assert c[UNKNOWN] == min(available, round(0.5 * mean_kw))
        assert c[SILENCE] == round(mean_kw)
        assert all(ex.label_index == ds.labels.index(ex.label) for ex in exs)
        assert {e.word for e in exs if e.label == UNKNOWN} <= {"cat", "dog", "bird"}
    # Deterministic for a seed; a different seed draws different unknowns.
    again = load_dataset(fake_root, keywords, unknown_share=0.5, seed=4)
    assert again.examples("train") == ds.examples("train")
    other = load_dataset(fake_root, keywords, unknown_share=0.5, seed=5)
    assert other.examples("train") != ds.examples("train")
    # None keeps every unknown clip.
    everything = load_dataset(fake_root, keywords, unknown_share=None)
    assert sum(e.label == UNKNOWN for e in everything.examples("train")) == sum(
        1 for e in all_clips if e.label == UNKNOWN and e.split == "train"
    )


def test_silence_cuts_come_from_split_part_of_noise(fake_root: Path) -> None:
    ds = load_dataset(fake_root, ["yes", "no", "up"], seed=2)
    assert len(ds.noise) == 2
    regions = {"train": (0.0, 0.8), "validation": (0.8, 0.9), "test": (0.9, 1.0)}
    for split, (lo, hi) in regions.items():
        cuts = [e for e in ds.examples(split) if e.label == SILENCE]
        assert cuts
        for ex in cuts:
            k = ds.noise_paths.index(ex.path)
            n = len(ds.noise[k])
            assert lo * n <= ex.offset and ex.offset + 16000 <= hi * n + 1
            expect = ds.noise[k][ex.offset : ex.offset + 16000].astype(np.float64) * ex.gain
            audio = ex.audio()
            assert audio.dtype == np.int16 and audio.shape == (16000,)
            assert np.array_equal(audio, np.round(expect).astype(np.int16))


def test_clip_audio_is_padded_file_audio(fake_root: Path) -> None:
    ds = load_dataset(fake_root, ["yes", "no", "up"])
    ex = next(e for e in ds.examples("train") if e.label == "yes")
    audio = ex.audio()
    from nanokws.data import read_wav

    raw = read_wav(ex.path)
    assert audio.shape == (16000,) and np.array_equal(audio[: len(raw)], raw) and not audio[len(raw) :].any()
    x, y = ds.arrays("validation")
    assert x.shape == (len(ds.examples("validation")), 16000) and x.dtype == np.int16
    assert np.array_equal(y, [e.label_index for e in ds.examples("validation")])


def test_list_files_decide_splits(tmp_path: Path) -> None:
    spk = _speakers(10, seed=1)
    _make_dataset(tmp_path, {"yes": 10, "no": 10, "cat": 5}, spk)
    names = sorted(f"{p.parent.name}/{p.name}" for p in tmp_path.glob("*/*_nohash_*.wav"))
    val, test = names[:4], names[4:7]
    (tmp_path / "validation_list.txt").write_text("\n".join(val) + "\n")
    (tmp_path / "testing_list.txt").write_text("\n".join(test) + "\n")
    ds = load_dataset(tmp_path, ["yes", "no"], unknown_share=None)
    assert ds.split_mode == "lists"
    for e in ds.examples("all"):
        rel = f"{e.word}/{e.path.name}"
        assert e.split == ("validation" if rel in val else "test" if rel in test else "train")
    assert load_dataset(tmp_path, ["yes", "no"], split_mode="hash").split_mode == "hash"


def test_official_test_set_layout_with_split_all(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(6):
        _write(tmp_path / "yes" / f"aa{i:06x}_nohash_0.wav", rng.integers(-9, 9, 16000))
        _write(tmp_path / "no" / f"bb{i:06x}_nohash_0.wav", rng.integers(-9, 9, 16000))
    for i in range(4):
        _write(tmp_path / "_silence_" / f"silence_{i}.wav", np.zeros(16000))
        _write(tmp_path / "_unknown_" / f"cat_cc{i:06x}_nohash_0.wav", rng.integers(-9, 9, 16000))
    _write(tmp_path / "left" / "dd000000_nohash_0.wav", rng.integers(-9, 9, 16000))
    ds = load_dataset(tmp_path, ["yes", "no"])
    every = ds.examples("all")
    assert len(every) == 6 + 6 + 4 + 4 + 1  # every clip, no generated silence, no balancing
    c = Counter(e.label for e in every)
    assert c == {"yes": 6, "no": 6, SILENCE: 4, UNKNOWN: 5}
    assert {e.word for e in every if e.label == UNKNOWN} == {UNKNOWN, "left"}
    assert all(e.speaker == "silence_" + e.path.stem.split("_")[1] for e in every if e.label == SILENCE)
    assert not ds.noise and ds.skipped == []


def test_bad_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    import wave

    _make_dataset(tmp_path, {"yes": 5, "no": 5}, _speakers(5), noise_seconds=0)
    with wave.open(str(tmp_path / "yes" / "ee_nohash_0.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(44100), w.writeframes(b"\0\0" * 10)
    (tmp_path / "no" / "ff_nohash_0.wav").write_text("junk")
    (tmp_path / "no" / "notes.txt").write_text("x")
    (tmp_path / "no" / "gone_nohash_0.wav").symlink_to(tmp_path / "missing.wav")
    ds = load_dataset(tmp_path, ["yes", "no"])
    reasons = {p.name: r for p, r in ds.skipped}
    assert reasons == {
        "ee_nohash_0.wav": "sample rate 44100 Hz, expected 16000 Hz",
        "ff_nohash_0.wav": "not a WAV file (no RIFF/WAVE header)",
        "notes.txt": "not a .wav file",
        "gone_nohash_0.wav": "cannot read file (No such file or directory)",
    }
    assert len(ds.examples("all")) == 10
    summary = ds.summary()
    assert "skipped files: 4" in summary
    for p, r in ds.skipped:
        assert f"{p}: {r}" in summary


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(NanokwsError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    _make_dataset(tmp_path, {"yes": 3}, _speakers(3), noise_seconds=0)
    with pytest.raises(NanokwsError, match=r"no clips for keyword\(s\) no"):
        load_dataset(tmp_path, ["yes", "no"])
    with pytest.raises(NanokwsError, match="no validation_list"):
        load_dataset(tmp_path, ["yes"], split_mode="lists")
    with pytest.raises(NanokwsError, match="duplicate"):
        labels_for(["yes", "yes"])


def test_shared_real_clips(shared_speech_commands: Path) -> None:
    for mode in ("hash", "speaker"):
        ds = load_dataset(shared_speech_commands, split_mode=mode)
        assert ds.skipped == [] and len(ds.noise) >= 1
        seen: dict[str, str] = {}
        for split in ("train", "validation", "test"):
            for ex in ds.examples(split):
                if ex.noise is None:
                    assert seen.setdefault(ex.speaker, split) == split
        if mode == "hash":
            assert all(e.split == _expected_split(e.path.name) for e in ds.examples("all"))
