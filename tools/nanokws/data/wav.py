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
    """Like read_wav, for bytes already in memory (`path` only names them in errors).

    Our own chunk walk rather than the standard library's `wave`, which raises RuntimeError,
    EOFError or struct.error on some corrupt files: here every malformed file is a WavFormatError.
    Chunks other than `fmt ` and `data` (LIST, fact, ...) are skipped; the RIFF size is ignored, as
    many writers get it wrong.
    """
    if len(data) == 0:
        raise WavFormatError(path, "empty file")
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavFormatError(path, "not a WAV file (no RIFF/WAVE header)")
    fmt: tuple[int, int] | None = None
    pos = 12
    while True:
        if pos + 8 > len(data):
            if pos == len(data) and fmt is not None:
                raise WavFormatError(path, "not a valid WAV file (no data chunk)")
            raise WavFormatError(path, "truncated WAV header")
        cid, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if not all(32 <= c < 127 for c in cid):
            raise WavFormatError(path, f"not a valid WAV file (corrupt chunk id {cid!r} at byte {pos})")
        start = pos + 8
        if cid == b"fmt ":
            if start + size > len(data) or size < 16:
                raise WavFormatError(path, "truncated WAV header")
            fmt = (start, size)
        elif cid == b"data":
            if fmt is None:
                raise WavFormatError(path, "not a valid WAV file (data chunk before the fmt chunk)")
            _check_fmt(data, fmt, path)
            raw = data[start : start + size]
            if len(raw) < size:
                raise WavFormatError(
                    path, f"truncated: header says {size // 2} samples, file holds {len(raw) // 2}"
                )
            raw = raw[: len(raw) - len(raw) % 2]
            return np.frombuffer(raw, dtype="<i2").astype(np.int16)
        pos = start + size + (size & 1)  # chunks are word aligned


def _check_fmt(data: bytes, fmt: tuple[int, int], path: str | os.PathLike[str]) -> None:
    start, size = fmt
    tag, channels, rate, _byte_rate, align, bits = struct.unpack_from("<HHIIHH", data, start)
    if tag == _FORMAT_EXTENSIBLE:
        if size < 40:
            raise WavFormatError(path, f"not a valid WAV file (EXTENSIBLE fmt chunk of {size} bytes)")
        subformat = data[start + 24 : start + 40]
        if struct.unpack_from("<H", subformat)[0] != _FORMAT_PCM or subformat[2:] != _PCM_SUBFORMAT_TAIL:
            raise WavFormatError(path, "unsupported encoding (EXTENSIBLE but not PCM), expected 16-bit PCM")
    elif tag != _FORMAT_PCM:
        raise WavFormatError(path, f"unsupported encoding (format tag {tag}), expected 16-bit PCM")
    _check_params(path, channels, (bits + 7) // 8, rate)
    if align != 2:
        raise WavFormatError(path, f"not a valid WAV file (block align {align}, expected 2)")


def _check_params(path: str | os.PathLike[str], channels: int, width: int, rate: int) -> None:
    if channels != 1:
        raise WavFormatError(path, f"{channels} channels, expected mono")
    if width != 2:
        raise WavFormatError(path, f"{8 * width}-bit samples, expected 16-bit PCM")
    if rate != SAMPLE_RATE:
        raise WavFormatError(path, f"sample rate {rate} Hz, expected {SAMPLE_RATE} Hz")


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
