"""Stream builder (tools/nanokws/streams/builder.py): seeded, split-isolated, truthful, SNR as
documented; on a synthetic Speech-Commands folder (no ../shared needed) and on the real clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from nanokws.data.splits import which_split
from nanokws.errors import NanokwsError
from nanokws.streams.builder import (
    StreamOptions,
    active_span,
    build_stream,
    load_material,
    read_stream,
    write_stream,
)

KEYWORDS = ["yes", "no"]
SR = 16000


def make_dataset(root: Path, speakers: int = 30, seed: int = 7) -> Path:
    """Tone bursts per word (one frequency per word) from many speakers, so every split has
    clips, plus one stationary background recording."""
    from nanokws.data import wav_bytes

    rng = np.random.default_rng(seed)
    t = np.arange(SR) / SR
    for w, word in enumerate([*KEYWORDS, "cat", "dog"]):
        (root / word).mkdir(parents=True)
        for s in range(speakers):
            centre = rng.uniform(0.35, 0.65)
            env = np.exp(-((t - centre) ** 2) / 0.01)
            audio = 6000 * env * np.sin(2 * np.pi * (300 + 200 * w) * t) + rng.normal(0, 20, SR)
            name = f"{w:02d}{s:06x}ab_nohash_0.wav"
            (root / word / name).write_bytes(wav_bytes(np.clip(audio, -32768, 32767).astype(np.int16)))
    (root / "_background_noise_").mkdir()
    noise = rng.normal(0, 2000, SR * 60).astype(np.int16)
    (root / "_background_noise_" / "white.wav").write_bytes(wav_bytes(noise))
    return root


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("streams_data"))


def _build(root: Path, **kw: object) -> tuple[np.ndarray, object]:
    split = str(kw.pop("split", "all"))
    material = load_material(root, KEYWORDS, split)
    return build_stream(material, StreamOptions(split=split, **kw))  # type: ignore[arg-type]


def test_deterministic_by_seed(synth: Path) -> None:
    a1, t1 = _build(synth, minutes=1.0, seed=3)
    a2, t2 = _build(synth, minutes=1.0, seed=3)
    a3, t3 = _build(synth, minutes=1.0, seed=4)
    assert a1.dtype == np.int16 and a1.size == 60 * SR
    assert np.array_equal(a1, a2) and t1.to_json() == t2.to_json()
    assert not np.array_equal(a1, a3) and t1.words != t3.words


def test_split_isolation(synth: Path) -> None:
    for split in ("train", "test"):
        material = load_material(synth, KEYWORDS, split)
        assert material.keyword_clips and material.distractor_clips
        assert all(
            which_split(c.path.name) == split for c in material.keyword_clips + material.distractor_clips
        )
        # the noise is this split's own part of each recording (test: the last 10 %)
        assert material.noise[0][1].size == (
            int(1.0 * 60 * SR) - int(0.9 * 60 * SR) if split == "test" else int(0.8 * 60 * SR)
        )
        audio, truth = build_stream(material, StreamOptions(minutes=2.0, split=split, seed=1))
        names = {c.name for c in material.keyword_clips + material.distractor_clips}
        assert truth.words and all(w.clip in names for w in truth.words)
        assert all(which_split(Path(w.clip).name) == split for w in truth.words)


def test_truth_consistent(synth: Path, tmp_path: Path) -> None:
    audio, truth = _build(synth, minutes=3.0, seed=2)
    seconds = audio.size / SR
    assert truth.samples == audio.size
    words = truth.words
    kinds = {w.kind for w in words}
    assert kinds == {"keyword", "distractor"}
    for w in words:
        assert 0 <= w.start_s < w.end_s <= seconds
        if w.kind == "keyword":
            assert w.word in KEYWORDS and w.label == w.word
        else:
            assert w.word in ("cat", "dog") and w.label == "_unknown_"
    starts = [w.start_s for w in words]
    assert starts == sorted(starts)
    assert all(a.end_s < b.start_s for a, b in zip(words, words[1:], strict=False))  # no overlap of speech
    gaps = [b.start_s - a.end_s for a, b in zip(words, words[1:], strict=False) if a.segment == b.segment]
    assert min(gaps) < 0.35  # some words back to back
    n_kw = sum(w.kind == "keyword" for w in words)
    assert abs(n_kw / len(words) - 0.5) < 0.15  # the default mix: half keywords
    for s in truth.stretches:  # noise-only stretches hold no word
        assert s.end_s - s.start_s >= 1.0 - 1e-6
        assert not any(w.start_s < s.end_s - 1e-6 and w.end_s > s.start_s + 1e-6 for w in words)
    segs = truth.segments
    assert segs[0].start_s == 0 and segs[-1].end_s == pytest.approx(seconds)
    assert all(a.end_s == b.start_s for a, b in zip(segs, segs[1:], strict=False))
    conds = [s.snr_db for s in segs]
    assert len(set(conds)) == 3 and set(conds) <= {None, 20.0, 10.0, 5.0, 0.0}  # 3 minutes: 3 of the 5
    # the written form reads back the same
    write_stream(tmp_path / "s", audio, truth)
    a2, t2 = read_stream(tmp_path / "s")
    assert np.array_equal(a2, audio) and t2.to_json() == truth.to_json()


def test_snr_and_level_as_documented(synth: Path) -> None:
    """Same seed, one condition each: the words are the same; the noise power in the segment meets
    the SNR over the words' active speech power, and a level change scales the speech."""
    clean, tc = _build(synth, minutes=1.0, seed=5, snrs=(None,))
    noisy, tn = _build(synth, minutes=1.0, seed=5, snrs=(10.0,))
    quiet, tq = _build(synth, minutes=1.0, seed=5, snrs=(None,), level_db=-20.0)
    assert [w.clip for w in tc.words] == [w.clip for w in tn.words] == [w.clip for w in tq.words]
    x = clean.astype(np.float64)
    active = np.concatenate([x[int(w.start_s * SR) : int(w.end_s * SR)] for w in tc.words])
    p_speech = float(np.mean(active**2))
    noise = noisy.astype(np.float64) - x  # the bed alone (plus rounding and the clean dither)
    p_noise = float(np.mean(noise**2))
    assert 10 * np.log10(p_speech / p_noise) == pytest.approx(10.0, abs=0.3)
    q = quiet.astype(np.float64)
    q_active = np.concatenate([q[int(w.start_s * SR) : int(w.end_s * SR)] for w in tq.words])
    assert 10 * np.log10(p_speech / float(np.mean(q_active**2))) == pytest.approx(20.0, abs=0.3)
    # clean segments: silence (1-LSB dither) between words
    s = tc.stretches[0]
    assert (
        tc.stretches[0].kind == "silence"
        and np.abs(clean[int(s.start_s * SR) + 2400 : int(s.end_s * SR) - 2400]).max() < 8
    )


def test_active_span_and_errors(synth: Path) -> None:
    t = np.arange(SR) / SR
    tone = np.where((t > 0.3) & (t < 0.6), 8000 * np.sin(2 * np.pi * 440 * t), 0).astype(np.int16)
    a, b = active_span(tone)
    assert abs(a / SR - 0.3) < 0.011 and abs(b / SR - 0.6) < 0.011
    with pytest.raises(NanokwsError, match="split"):
        load_material(synth, KEYWORDS, "nope")
    material = load_material(synth, KEYWORDS, "all")
    material.distractor_clips = []
    with pytest.raises(NanokwsError, match="distractor"):
        build_stream(material, StreamOptions(minutes=0.5))
    with pytest.raises(NanokwsError, match="not a stream folder"):
        read_stream(synth)


def test_real_clips_split_test(shared_speech_commands: Path) -> None:
    from nanokws.data import DEFAULT_KEYWORDS

    material = load_material(shared_speech_commands, DEFAULT_KEYWORDS, "test")
    audio, truth = build_stream(material, StreamOptions(minutes=2.0, seed=0))
    assert all(which_split(Path(w.clip).name) == "test" for w in truth.words)
    assert {w.word for w in truth.words if w.kind == "distractor"}.isdisjoint(DEFAULT_KEYWORDS)
    assert truth.summary["keywords"] > 10 and truth.summary["distractors"] > 10


def test_cli_build_records_its_command(synth: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`nanokws stream build` writes its own command line into truth.json (model cards scored on the
    stream cite it); building in Python records none."""
    import shlex
    import sys

    from nanokws.cli import main

    argv = ["stream", "build", "--data", str(synth), "--keywords", *KEYWORDS, "--split", "all", "--minutes",
            "0.5", "--seed", "1", "--out", str(tmp_path / "s"), "--no-progress"]
    monkeypatch.setattr(sys, "argv", ["nanokws", *argv])
    assert main(argv) == 0
    assert read_stream(tmp_path / "s")[1].command == shlex.join(["nanokws", *argv])
    _, truth = _build(synth, minutes=0.5, seed=1)
    assert truth.command == "" and "command" not in truth.to_json()
