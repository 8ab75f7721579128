"""`nanokws data synth`: layout, speaker-hash-friendly names, byte-identical for a seed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from nanokws.data import SILENCE, load_dataset, read_wav
from nanokws.data.synth import make_speakers, synthesize
from nanokws.errors import NanokwsError

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
TINY = dict(
    words=["yes", "no", "up"],
    per_word=4,
    unknown_words=["cat"],
    unknown_per_word=3,
    speakers=6,
    noise_files=2,
    progress=False,
)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_synth_layout_and_determinism(tmp_path: Path) -> None:
    a = synthesize(tmp_path / "a", seed=1, jobs=2, **TINY)
    b = synthesize(tmp_path / "b", seed=1, jobs=1, **TINY)
    c = synthesize(tmp_path / "c", seed=2, jobs=2, **TINY)
    fa, fb, fc = _files(a), _files(b), _files(c)
    assert fa == fb  # same seed -> same bytes, whatever the worker count
    assert fa != fc and set(fa) != set(fc)  # another seed -> other voices, other audio
    wavs = [k for k in fa if k.endswith(".wav") and not k.startswith("_background_noise_")]
    assert sorted({k.split("/")[0] for k in wavs}) == ["cat", "no", "up", "yes"]
    assert sum(k.startswith("yes/") for k in wavs) == 4 and sum(k.startswith("cat/") for k in wavs) == 3
    ids = {s.id for s in make_speakers(6, 1)}
    assert {Path(k).name.split("_nohash_")[0] for k in wavs} <= ids
    assert len([k for k in fa if k.startswith("_background_noise_/")]) == 2
    assert json.loads(fa["synth.json"])["seed"] == 1
    assert not list(tmp_path.glob(".*"))  # staging folders are gone

    for k in wavs:
        audio = read_wav(a / k)
        assert audio.shape == (16000,) and np.abs(audio.astype(np.int32)).max() > 300  # speech, not silence
    ds = load_dataset(a, ["yes", "no", "up"])
    assert ds.skipped == [] and len(ds.noise) == 2 and len(ds.examples("all")) == 15
    assert any(e.label == SILENCE for e in ds.examples("train"))


def test_synth_refuses_to_overwrite_and_reports_missing_espeak(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "d"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(NanokwsError, match="--force"):
        synthesize(out, **TINY)
    assert (out / "keep.txt").read_text() == "mine"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(NanokwsError, match="apt-get install espeak-ng"):
        synthesize(tmp_path / "e", **TINY)
