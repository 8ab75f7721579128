"""Read and write the dataset's WAV format: 16 kHz, mono, 16-bit PCM.

Every problem becomes a `WavFormatError` whose message names the file and says what is wrong,
so a dataset scan can list bad files instead of dying on the first one.
"""

from __future__ import annotations

import io
import os
import struct
import wave
from pathlib import Path

import numpy as np

from ..errors import NanokwsError

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000  # one second; the frontend's NK_FE_CLIP_SAMPLES

_FORMAT_PCM = 0x0001
_FORMAT_EXTENSIBLE = 0xFFFE
# The first two bytes of the KSDATAFORMAT_SUBTYPE_PCM GUID; the rest is the fixed base GUID.
_PCM_SUBFORMAT_TAIL = bytes.fromhex("000000001000800000aa00389b71")


class WavFormatError(NanokwsError):
    """A WAV file that is not 16 kHz mono 16-bit PCM, or cannot be read at all."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def read_wav(path: str | os.PathLike[str]) -> np.ndarray:
    """Return the samples of a 16 kHz mono 16-bit PCM WAV as int16 (any length).

    Raises WavFormatError naming the file and the problem (wrong rate, width, channel count,
    not a WAV, truncated, unreadable). WAVE_FORMAT_EXTENSIBLE files holding PCM16 are accepted.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise WavFormatError(path, f"cannot read file ({exc.strerror or exc})") from None
    return parse_wav(data, path)


def parse_wav(data: bytes, path: str | os.PathLike[str] = "<bytes>") -> np.ndarray:
    """Like read_wav, for bytes already in memory (`path` only names them in errors)."""
    if len(data) == 0:
        raise WavFormatError(path, "empty file")
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavFormatError(path, "not a WAV file (no RIFF/WAVE header)")
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            channels, width, rate, frames = (
                w.getnchannels(),
                w.getsampwidth(),
                w.getframerate(),
                w.getnframes(),
            )
            _check_params(path, channels, width, rate)
            raw = w.readframes(frames)
    except wave.Error as exc:
        if str(exc) == f"unknown format: {_FORMAT_EXTENSIBLE}":
            # Python < 3.12's wave module rejects EXTENSIBLE; parse the chunks ourselves.
            return _parse_extensible(data, path)
        if str(exc).startswith("unknown format: "):
            tag = str(exc).rsplit(" ", 1)[1]
            raise WavFormatError(
                path, f"unsupported encoding (format tag {tag}), expected 16-bit PCM"
            ) from None
        raise WavFormatError(path, f"not a valid WAV file ({exc})") from None
    except (EOFError, struct.error):
        raise WavFormatError(path, "truncated WAV header") from None
    if len(raw) != frames * 2:
        raise WavFormatError(path, f"truncated: header says {frames} samples, file holds {len(raw) // 2}")
    return np.frombuffer(raw, dtype="<i2").astype(np.int16)


def _check_params(path: str | os.PathLike[str], channels: int, width: int, rate: int) -> None:
    if channels != 1:
        raise WavFormatError(path, f"{channels} channels, expected mono")
    if width != 2:
        raise WavFormatError(path, f"{8 * width}-bit samples, expected 16-bit PCM")
    if rate != SAMPLE_RATE:
        raise WavFormatError(path, f"sample rate {rate} Hz, expected {SAMPLE_RATE} Hz")


def _chunks(data: bytes) -> dict[bytes, tuple[int, int]]:
    """Map chunk id -> (start, declared size) for the chunks after the RIFF/WAVE header."""
    chunks: dict[bytes, tuple[int, int]] = {}
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        chunks.setdefault(cid, (pos + 8, size))
        pos += 8 + size + (size & 1)  # chunks are word aligned
    return chunks


def _parse_extensible(data: bytes, path: str | os.PathLike[str]) -> np.ndarray:
    chunks = _chunks(data)
    if b"fmt " not in chunks or b"data" not in chunks:
        raise WavFormatError(path, "not a valid WAV file (fmt or data chunk missing)")
    fmt_start, fmt_size = chunks[b"fmt "]
    if fmt_size < 40 or fmt_start + 40 > len(data):
        raise WavFormatError(path, "truncated WAV header")
    _tag, channels, rate, _byte_rate, _align, bits = struct.unpack_from("<HHIIHH", data, fmt_start)
    subformat = data[fmt_start + 24 : fmt_start + 40]
    if struct.unpack_from("<H", subformat)[0] != _FORMAT_PCM or subformat[2:] != _PCM_SUBFORMAT_TAIL:
        raise WavFormatError(path, "unsupported encoding (EXTENSIBLE but not PCM), expected 16-bit PCM")
    _check_params(path, channels, (bits + 7) // 8, rate)
    start, size = chunks[b"data"]
    raw = data[start : start + size]
    if len(raw) != size or size % 2:
        raise WavFormatError(path, f"truncated: header says {size // 2} samples, file holds {len(raw) // 2}")
    return np.frombuffer(raw, dtype="<i2").astype(np.int16)


def wav_bytes(audio: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """Encode int16 mono samples as a plain PCM WAV."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(audio, dtype="<i2").tobytes())
    return buf.getvalue()


def fit_clip(audio: np.ndarray, length: int = CLIP_SAMPLES) -> np.ndarray:
    """Make a clip exactly `length` samples: short clips are zero-padded at the END (the audio
    keeps its start, as TensorFlow's speech_commands loader does); long clips keep their first
    `length` samples."""
    out = np.zeros(length, dtype=np.int16)
    n = min(length, len(audio))
    out[:n] = audio[:n]
    return out
