"""Synthesize a small Speech-Commands-layout dataset offline with espeak-ng.

Each "speaker" is an espeak-ng voice + variant + base pitch + base speed; its id (file-name
prefix) is a hash of that description, so the dataset's speaker-hash split keeps a synthetic
voice inside one split. Every clip jitters pitch/speed/amplitude, is resampled to 16 kHz in numpy
(FFT band-limited), trimmed, placed at a random offset in the one-second clip, given a random
gain and, usually, mixed with synthetic noise at a random SNR. `_background_noise_/` gets long
deterministic noise recordings. The same arguments and seed give byte-identical files, whatever
the number of worker processes.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import struct
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import NanokwsError
from . import noise as noisegen
from .labels import BACKGROUND_NOISE, DEFAULT_KEYWORDS
from .wav import CLIP_SAMPLES, SAMPLE_RATE, wav_bytes

DEFAULT_UNKNOWN_WORDS = [
    "bed",
    "bird",
    "cat",
    "dog",
    "happy",
    "house",
    "marvin",
    "sheila",
    "tree",
    "wow",
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
]
DEFAULT_PER_WORD = 100
DEFAULT_UNKNOWN_PER_WORD = 25
DEFAULT_SPEAKERS = 120
DEFAULT_NOISE_FILES = 5
NOISE_FILE_SECONDS = 30

# espeak-ng's own English voices (the mbrola ones need extra packages) and its voice variants.
VOICES = [
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-rp",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
]
VARIANTS = [
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "klatt",
    "klatt2",
    "klatt3",
    "croak",
    "whisper",
    "Andy",
    "Annie",
    "aunty",
    "belinda",
    "david",
    "ed",
    "grandma",
    "grandpa",
    "john",
    "linda",
    "max",
    "michel",
    "paul",
    "steph",
    "travis",
    "victor",
    "zac",
]

ESPEAK_MISSING = "espeak-ng not found on PATH; install it (Debian/Ubuntu: sudo apt-get install espeak-ng)"


@dataclass(frozen=True)
class Speaker:
    voice: str
    variant: str
    pitch: int  # espeak -p, 0..99
    speed: int  # espeak -s, words per minute

    @property
    def id(self) -> str:
        return hashlib.sha1(f"{self.voice}+{self.variant}/p{self.pitch}/s{self.speed}".encode()).hexdigest()[
            :8
        ]


@dataclass(frozen=True)
class _Task:
    word: str
    speaker: Speaker
    seed: tuple[int, ...]
    rel_path: str


def make_speakers(count: int, seed: int) -> list[Speaker]:
    """`count` distinct synthetic speakers, the same for the same seed."""
    rng = np.random.default_rng([seed, 7])
    speakers: dict[str, Speaker] = {}
    while len(speakers) < count:
        s = Speaker(
            VOICES[int(rng.integers(len(VOICES)))],
            VARIANTS[int(rng.integers(len(VARIANTS)))],
            int(rng.integers(25, 76)),
            int(rng.integers(135, 196)),
        )
        speakers.setdefault(s.id, s)
    return list(speakers.values())


def espeak(text: str, voice: str, pitch: int, speed: int, amplitude: int = 100) -> tuple[np.ndarray, int]:
    """Run espeak-ng and return (float samples in [-1, 1), sample rate)."""
    cmd = [
        "espeak-ng",
        "-v",
        voice,
        "-p",
        str(pitch),
        "-s",
        str(speed),
        "-a",
        str(amplitude),
        "--stdout",
        text,
    ]
    try:
        out = subprocess.run(cmd, capture_output=True, check=True, timeout=30).stdout
    except FileNotFoundError:
        raise NanokwsError(ESPEAK_MISSING) from None
    except subprocess.CalledProcessError as exc:
        msg = exc.stderr.decode(errors="replace").strip().splitlines()
        raise NanokwsError(f"espeak-ng failed for voice {voice}: {msg[-1] if msg else exc}") from None
    # espeak-ng streams to stdout, so its header's sizes are placeholders: find the chunks ourselves.
    pos, rate, samples = 12, 22050, b""
    while pos + 8 <= len(out):
        cid, size = out[pos : pos + 4], struct.unpack_from("<I", out, pos + 4)[0]
        if cid == b"fmt ":
            rate = struct.unpack_from("<I", out, pos + 12)[0]
        if cid == b"data":
            samples = out[pos + 8 :]
            break
        pos += 8 + size
    audio = np.frombuffer(samples[: len(samples) // 2 * 2], dtype="<i2").astype(np.float64) / 32768.0
    return audio, rate


def resample(x: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling by FFT truncation (fine for speech clips of a second or so)."""
    if rate_in == rate_out or len(x) == 0:
        return x
    m = int(round(len(x) * rate_out / rate_in))
    return np.fft.irfft(np.fft.rfft(x)[: m // 2 + 1], m) * (m / len(x))


def _trim(x: np.ndarray, rel: float = 0.02) -> np.ndarray:
    loud = np.flatnonzero(np.abs(x) > rel * (np.abs(x).max() or 1.0))
    return x[loud[0] : loud[-1] + 1] if len(loud) else x


def synth_clip(task: _Task) -> bytes:
    """One clip as WAV bytes; depends only on the task (so workers can run in any order)."""
    rng = np.random.default_rng(list(task.seed))
    s = task.speaker
    pitch = int(np.clip(s.pitch + rng.integers(-6, 7), 0, 99))
    speed = int(s.speed + rng.integers(-15, 16))
    audio, rate = espeak(task.word, f"{s.voice}+{s.variant}", pitch, speed, int(rng.integers(60, 160)))
    speech = _trim(resample(audio, rate))[: CLIP_SAMPLES - 800]
    peak = np.abs(speech).max() or 1.0
    speech = speech / peak * 10 ** (rng.uniform(-24.0, -3.0) / 20.0)
    clip = np.zeros(CLIP_SAMPLES)
    start = int(rng.integers(0, CLIP_SAMPLES - len(speech) + 1))
    clip[start : start + len(speech)] = speech
    if rng.random() < 0.8:  # most clips carry some noise, at 5..40 dB SNR
        kinds = list(noisegen.GENERATORS.values())
        noise = kinds[int(rng.integers(len(kinds)))](CLIP_SAMPLES, rng)
        speech_rms = float(np.sqrt(np.mean(speech**2)))
        clip += noise * speech_rms * 10 ** (-rng.uniform(5.0, 40.0) / 20.0)
    return wav_bytes(np.clip(np.round(clip * 32768.0), -32768, 32767).astype(np.int16))


def noise_file(kind: str, seed: int, index: int) -> bytes:
    n = NOISE_FILE_SECONDS * SAMPLE_RATE
    rng = np.random.default_rng([seed, 1000 + index])
    x = noisegen.GENERATORS[kind](n, rng) * 10 ** (rng.uniform(-30.0, -15.0) / 20.0)
    return wav_bytes(np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16))


def plan(
    words: Sequence[str],
    per_word: int,
    unknown_words: Sequence[str],
    unknown_per_word: int,
    speakers: int,
    seed: int,
) -> list[_Task]:
    """Every clip to make, with its file name and its own seed."""
    pool = make_speakers(speakers, seed)
    rng = np.random.default_rng([seed, 11])
    tasks: list[_Task] = []
    counts: Counter[tuple[str, str]] = Counter()
    all_words = [(w, per_word) for w in words] + [(w, unknown_per_word) for w in unknown_words]
    for word_no, (word, count) in enumerate(all_words):
        for i in range(count):
            spk = pool[int(rng.integers(len(pool)))]
            n = counts[(word, spk.id)]
            counts[(word, spk.id)] += 1
            tasks.append(_Task(word, spk, (seed, word_no, i), f"{word}/{spk.id}_nohash_{n}.wav"))
    return tasks


def synthesize(
    out: str | os.PathLike[str],
    words: Sequence[str] = DEFAULT_KEYWORDS,
    per_word: int = DEFAULT_PER_WORD,
    unknown_words: Sequence[str] = DEFAULT_UNKNOWN_WORDS,
    unknown_per_word: int = DEFAULT_UNKNOWN_PER_WORD,
    speakers: int = DEFAULT_SPEAKERS,
    noise_files: int = DEFAULT_NOISE_FILES,
    seed: int = 0,
    jobs: int = 2,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Write the dataset to `out` (staged beside it, then renamed into place). Returns `out`."""
    from tqdm import tqdm

    out = Path(out)
    if shutil.which("espeak-ng") is None:
        raise NanokwsError(ESPEAK_MISSING)
    if out.exists() and any(out.iterdir()) and not force:
        raise NanokwsError(f"{out} already exists and is not empty; pass --force to replace it")
    overlap = sorted(set(words) & set(unknown_words))
    if overlap:
        raise NanokwsError(f"word(s) both keyword and unknown: {', '.join(overlap)}")
    if per_word < 1 or unknown_per_word < 0 or speakers < 1 or noise_files < 0:
        raise NanokwsError("--per-word and --speakers must be >= 1; counts must not be negative")
    bad = [w for w in [*words, *unknown_words] if not w or w.startswith(("_", ".")) or "/" in w]
    if bad:
        raise NanokwsError(f"invalid word(s) for folder names: {', '.join(map(repr, bad))}")

    tasks = plan(words, per_word, unknown_words, unknown_per_word, speakers, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for word in {t.word for t in tasks}:
            (staging / word).mkdir(parents=True)
        with multiprocessing.get_context("fork").Pool(max(1, jobs)) if jobs > 1 else _Serial() as pool:
            results = pool.imap(synth_clip, tasks, chunksize=8)
            for task, data in tqdm(
                zip(tasks, results, strict=True),
                total=len(tasks),
                desc="synthesizing",
                unit="clip",
                disable=not progress,
            ):
                (staging / task.rel_path).write_bytes(data)
        kinds = list(noisegen.GENERATORS)
        if noise_files:
            (staging / BACKGROUND_NOISE).mkdir()
        for k in range(noise_files):
            name = kinds[k % len(kinds)] + ("" if k < len(kinds) else f"_{k // len(kinds)}")
            (staging / BACKGROUND_NOISE / f"{name}.wav").write_bytes(
                noise_file(kinds[k % len(kinds)], seed, k)
            )
        manifest = {
            "generator": "nanokws data synth",
            "seed": seed,
            "words": list(words),
            "per_word": per_word,
            "unknown_words": list(unknown_words),
            "unknown_per_word": unknown_per_word,
            "noise_files": noise_files,
            "speakers": [dict(asdict(s), id=s.id) for s in make_speakers(speakers, seed)],
        }
        (staging / "synth.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        _swap_in(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


class _Serial:
    """Pool stand-in for jobs=1 (no fork, easier to debug)."""

    def __enter__(self) -> _Serial:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def imap(self, fn, items, chunksize: int = 1):  # type: ignore[no-untyped-def]
        return map(fn, items)


def _swap_in(staging: Path, out: Path) -> None:
    """Rename the finished staging folder to `out`, moving any old `out` aside first."""
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)
