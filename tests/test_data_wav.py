"""WAV reading: good files round-trip bit-exactly; every bad file gives its documented message."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest
from nanokws.data import WavFormatError, fit_clip, read_wav, wav_bytes


def _riff(fmt: bytes, data: bytes) -> bytes:
    body = (
        b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _extensible(samples: np.ndarray, subformat_tag: int = 1, rate: int = 16000) -> bytes:
    guid = struct.pack("<H", subformat_tag) + bytes.fromhex("000000001000800000aa00389b71")
    fmt = struct.pack("<HHIIHH", 0xFFFE, 1, rate, rate * 2, 2, 16) + struct.pack("<HHI", 22, 16, 4) + guid
    return _riff(fmt, samples.astype("<i2").tobytes())


def _stdlib_wav(path: Path, channels: int = 1, width: int = 2, rate: int = 16000, frames: int = 100) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(b"\x01" * frames * channels * width)
    return path


@pytest.fixture
def samples() -> np.ndarray:
    return np.random.default_rng(5).integers(-32768, 32768, 1234).astype(np.int16)


def test_pcm_round_trip(tmp_path: Path, samples: np.ndarray) -> None:
    path = tmp_path / "a.wav"
    path.write_bytes(wav_bytes(samples))
    got = read_wav(path)
    assert got.dtype == np.int16
    assert np.array_equal(got, samples)


def test_extensible_pcm16_is_read(tmp_path: Path, samples: np.ndarray) -> None:
    path = tmp_path / "ext.wav"
    path.write_bytes(_extensible(samples))
    assert np.array_equal(read_wav(path), samples)


def _bad_cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    ok = wav_bytes(np.arange(200, dtype=np.int16))
    cases: dict[str, tuple[Path, str]] = {
        "rate": (_stdlib_wav(tmp_path / "r.wav", rate=8000), "sample rate 8000 Hz, expected 16000 Hz"),
        "width": (_stdlib_wav(tmp_path / "w.wav", width=1), "8-bit samples, expected 16-bit PCM"),
        "width24": (_stdlib_wav(tmp_path / "w24.wav", width=3), "24-bit samples, expected 16-bit PCM"),
        "stereo": (_stdlib_wav(tmp_path / "s.wav", channels=2), "2 channels, expected mono"),
    }
    (tmp_path / "text.wav").write_text("hello, not audio at all")
    cases["not_wav"] = (tmp_path / "text.wav", "not a WAV file (no RIFF/WAVE header)")
    (tmp_path / "trunc.wav").write_bytes(ok[:-100])
    cases["truncated"] = (tmp_path / "trunc.wav", "truncated: header says 200 samples, file holds 150")
    (tmp_path / "hdr.wav").write_bytes(ok[:30])
    cases["truncated_header"] = (tmp_path / "hdr.wav", "truncated WAV header")
    (tmp_path / "empty.wav").write_bytes(b"")
    cases["empty"] = (tmp_path / "empty.wav", "empty file")
    fmt_float = struct.pack("<HHIIHH", 3, 1, 16000, 64000, 4, 32)
    (tmp_path / "float.wav").write_bytes(_riff(fmt_float, b"\0" * 40))
    cases["float"] = (tmp_path / "float.wav", "unsupported encoding (format tag 3), expected 16-bit PCM")
    (tmp_path / "extf.wav").write_bytes(_extensible(np.zeros(4, np.int16), subformat_tag=3))
    cases["ext_float"] = (
        tmp_path / "extf.wav",
        "unsupported encoding (EXTENSIBLE but not PCM), expected 16-bit PCM",
    )
    (tmp_path / "ext8k.wav").write_bytes(_extensible(np.zeros(4, np.int16), rate=8000))
    cases["ext_rate"] = (tmp_path / "ext8k.wav", "sample rate 8000 Hz, expected 16000 Hz")
    (tmp_path / "gone.wav").symlink_to(tmp_path / "nowhere.wav")
    cases["unreadable"] = (tmp_path / "gone.wav", "cannot read file (No such file or directory)")
    return cases


def test_each_bad_file_names_file_and_problem(tmp_path: Path) -> None:
    for name, (path, reason) in _bad_cases(tmp_path).items():
        with pytest.raises(WavFormatError) as info:
            read_wav(path)
        assert info.value.reason == reason, name
        assert str(info.value) == f"{path}: {reason}", name
        assert "\n" not in str(info.value)


def test_fit_clip_pads_at_end_and_trims_to_first_second() -> None:
    short = np.arange(1, 101, dtype=np.int16)
    padded = fit_clip(short)
    assert padded.shape == (16000,) and padded.dtype == np.int16
    assert np.array_equal(padded[:100], short) and not padded[100:].any()
    long = np.random.default_rng(1).integers(-999, 999, 20000).astype(np.int16)
    assert np.array_equal(fit_clip(long), long[:16000])
