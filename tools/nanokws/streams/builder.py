"""Realistic test streams: long 16 kHz int16 recordings made from a Speech-Commands-layout folder,
with the truth of what was said where.

A stream is a run of *segments* (default 60 s each), one listening condition each: clean, or the
dataset's background noise at a chosen SNR (default conditions: clean, 20, 10, 5, 0 dB, cycled in
a seeded order so each gets its share). In a segment, words follow one another with realistic gaps:
back to back (0.05-0.3 s between one word's end and the next word's start), conversational
(0.3-1.5 s) or a pause (2-6 s); each segment starts with a 2-5 s stretch of noise or silence alone.
Words are keywords (the model's labels) and distractors (`_unknown_` and every other word folder),
by default half and half, each kind in a balanced shuffled order.

Words. Each clip's active part is found from its energy (10 ms frames above the loudest frame
-30 dB, with a floor); the word placed is that part with 100 ms of the clip's own audio either
side and 10 ms fades. A word's truth span (start_s, end_s) is its active part in the stream.

SNR. Per segment: 10 log10(P_speech / P_noise) where P_speech is the mean power over the active
parts of all words of the segment (after any level change) and P_noise the mean power of the
segment's noise bed; the bed (a background recording from this split's part of it, looped from a
random offset) is scaled to meet it. A clean segment's bed is a 1-LSB dither ("silence").

Level. `level_db` (e.g. -30) scales all speech: a distant speaker or a low microphone gain; the
SNR definition above still holds (the noise follows the speech).

Split isolation. Only clips of the asked split are used (the dataset's speaker-hash rule or its
list files, as `load_dataset` decides); background recordings are cut to the split's own part of
each recording (first 80 % train, next 10 % validation, last 10 % test). With "all", everything.
Deterministic: the same folder, options and seed give the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.dataset import NOISE_REGIONS
from ..errors import NanokwsError

SAMPLE_RATE = 16000
FORMAT = "nanokws-stream/1"
DEFAULT_SNRS: tuple[float | None, ...] = (None, 20.0, 10.0, 5.0, 0.0)
SNR_DEFINITION = (
    "per segment: 10*log10(P_speech / P_noise), P_speech = mean power over the active parts of the "
    "segment's words (after the level change), P_noise = mean power of the segment's noise bed"
)
WAV_NAME = "stream.wav"
TRUTH_NAME = "truth.json"

_FRAME = 160  # 10 ms energy frames
_ACTIVE_DB = 30.0  # a frame is active within this many dB of the clip's loudest frame
_ACTIVE_FLOOR = 50.0  # ... and above this RMS (int16 units)
_MARGIN = int(0.1 * SAMPLE_RATE)
_FADE = int(0.01 * SAMPLE_RATE)
_DITHER = 1.0
_LEAD = (2.0, 5.0)  # noise/silence alone at the start of each segment
# Gaps (s) between one word's active end and the next word's active start: (probability, lo, hi).
DEFAULT_GAPS: tuple[tuple[float, float, float], ...] = ((0.2, 0.05, 0.3), (0.6, 0.3, 1.5), (0.2, 2.0, 6.0))
MIN_STRETCH_S = 1.0  # noise-only gaps at least this long are listed as stretches


def snr_list(text: str) -> tuple[float | None, ...]:
    """argparse type: "clean,20,10,5,0" -> (None, 20.0, 10.0, 5.0, 0.0)."""
    import argparse

    out: list[float | None] = []
    for part in text.split(","):
        part = part.strip().lower()
        if part in ("clean", "none"):
            out.append(None)
            continue
        try:
            value = float(part.removesuffix("db"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} is not an SNR in dB or 'clean'") from None
        if not -30.0 <= value <= 60.0:
            raise argparse.ArgumentTypeError(f"SNR {value:g} dB is out of range, need -30..60")
        out.append(value)
    return tuple(out)


@dataclass(frozen=True)
class StreamOptions:
    minutes: float = 10.0
    seed: int = 0
    split: str = "test"
    keyword_fraction: float = 0.5
    snrs: tuple[float | None, ...] = DEFAULT_SNRS  # None: clean
    segment_s: float = 60.0
    level_db: float = 0.0
    gaps: tuple[tuple[float, float, float], ...] = DEFAULT_GAPS
    noise_gain: float = 1.0  # extra gain on the noise bed after the SNR (hil's --noise-gain)
    lead_s: tuple[float, float] = _LEAD  # noise/silence alone at the start of each segment


@dataclass(frozen=True)
class TruthWord:
    start_s: float  # active speech, in the stream
    end_s: float
    word: str  # the folder it came from
    kind: str  # "keyword" or "distractor"
    label: str  # the model label it should give: the keyword, or _unknown_
    clip: str  # folder/file of the source clip
    speaker: str
    snr_db: float | None  # the segment's condition (None: clean)
    segment: int


@dataclass(frozen=True)
class Stretch:
    start_s: float
    end_s: float
    kind: str  # "noise" or "silence" (a clean segment)
    snr_db: float | None
    segment: int


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    snr_db: float | None
    noise: str  # the background recording, or "silence"
    noise_gain: float


@dataclass
class StreamTruth:
    sample_rate: int
    samples: int
    keywords: list[str]
    words: list[TruthWord]
    stretches: list[Stretch]
    segments: list[Segment]
    options: dict[str, Any]
    data: str = ""
    split_mode: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    command: str = ""  # the `nanokws stream build` command line that wrote it (model cards cite it)

    @property
    def seconds(self) -> float:
        return self.samples / self.sample_rate

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "sample_rate": self.sample_rate,
            "samples": self.samples,
            "seconds": round(self.seconds, 3),
            "data": self.data,
            "split_mode": self.split_mode,
            "keywords": self.keywords,
            "options": self.options,
            "snr_definition": SNR_DEFINITION,
            "summary": self.summary,
            "segments": [asdict(s) for s in self.segments],
            "stretches": [asdict(s) for s in self.stretches],
            "words": [asdict(w) for w in self.words],
            **({"command": self.command} if self.command else {}),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> StreamTruth:
        if obj.get("format") != FORMAT:
            raise NanokwsError(f"not a {FORMAT} truth file (format {obj.get('format')!r})")
        return cls(
            sample_rate=int(obj["sample_rate"]),
            samples=int(obj["samples"]),
            keywords=list(obj["keywords"]),
            words=[TruthWord(**w) for w in obj["words"]],
            stretches=[Stretch(**s) for s in obj["stretches"]],
            segments=[Segment(**s) for s in obj["segments"]],
            options=dict(obj["options"]),
            data=str(obj.get("data", "")),
            split_mode=str(obj.get("split_mode", "")),
            summary=dict(obj.get("summary", {})),
            command=str(obj.get("command", "")),
        )


@dataclass(frozen=True)
class Clip:
    """One source clip: its word, kind, and where it is."""

    path: Path
    word: str
    kind: str
    label: str
    speaker: str
    split: str

    @property
    def name(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}"


@dataclass
class Material:
    """What a stream is made of: clips of one split and that split's part of the noise recordings."""

    keywords: list[str]
    keyword_clips: list[Clip]
    distractor_clips: list[Clip]
    noise: list[tuple[str, np.ndarray]]  # (name, int16 samples of this split's region)
    root: str = ""
    split_mode: str = ""
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def load_material(
    root: Path, keywords: Sequence[str], split: str, split_mode: str = "auto", progress: bool = False
) -> Material:
    """Clips of `split` ("train", "validation", "test" or "all") from a Speech-Commands-layout folder."""
    from ..data import SILENCE, UNKNOWN, load_dataset

    if split not in NOISE_REGIONS:
        raise NanokwsError(f"unknown split {split!r}; choose from {', '.join(NOISE_REGIONS)}")
    ds = load_dataset(
        root, keywords, unknown_share=None, silence_share=None, split_mode=split_mode, progress=progress
    )
    kw = set(keywords)
    chosen = [ex for ex in ds.examples("all") if split == "all" or ex.split == split]
    clips_kw: list[Clip] = []
    clips_d: list[Clip] = []
    for ex in chosen:
        if ex.word == SILENCE or ex.noise is not None:
            continue
        if ex.word in kw:
            clips_kw.append(Clip(ex.path, ex.word, "keyword", ex.word, ex.speaker, ex.split))
        else:
            clips_d.append(Clip(ex.path, ex.word, "distractor", UNKNOWN, ex.speaker, ex.split))
    lo, hi = NOISE_REGIONS[split]
    noise = []
    for path, rec in zip(ds.noise_paths, ds.noise, strict=True):
        a, b = int(lo * rec.size), int(hi * rec.size)
        if b - a >= SAMPLE_RATE:
            noise.append((path.name, rec[a:b]))
    return Material(list(keywords), clips_kw, clips_d, noise, str(root), ds.split_mode, list(ds.skipped))


def active_span(audio: np.ndarray) -> tuple[int, int]:
    """[first, last) sample of a clip's active part, from 10 ms frame energy."""
    x = np.asarray(audio, dtype=np.float64)
    n = x.size // _FRAME
    if n == 0:
        return 0, x.size
    rms = np.sqrt(np.mean(x[: n * _FRAME].reshape(n, _FRAME) ** 2, axis=1))
    level = max(float(rms.max()) * 10 ** (-_ACTIVE_DB / 20.0), _ACTIVE_FLOOR)
    on = np.flatnonzero(rms >= level)
    if on.size == 0:
        return 0, x.size
    return int(on[0]) * _FRAME, min(x.size, (int(on[-1]) + 1) * _FRAME)


def _word_audio(clip_audio: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The active part with margins and fades (float64), and the active span inside it."""
    a, b = active_span(clip_audio)
    lo, hi = max(0, a - _MARGIN), min(clip_audio.size, b + _MARGIN)
    piece = clip_audio[lo:hi].astype(np.float64)
    fade = min(_FADE, piece.size // 2)
    if fade > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)
        piece[:fade] *= ramp
        piece[-fade:] *= ramp[::-1]
    return piece, a - lo, b - lo


class _Cycle:
    """Items in a seeded shuffled order, reshuffled each time round; counts the rounds."""

    def __init__(self, items: Sequence[Any], rng: np.random.Generator) -> None:
        self.items = list(items)
        self.rng = rng
        self.order: list[int] = []
        self.used = 0

    def next(self) -> Any:
        if not self.order:
            self.order = [int(i) for i in self.rng.permutation(len(self.items))]
        self.used += 1
        return self.items[self.order.pop()]


def _kinds(fraction: float, rng: np.random.Generator) -> _Cycle:
    block = 20
    n_kw = round(block * fraction)
    return _Cycle(["keyword"] * n_kw + ["distractor"] * (block - n_kw), rng)


def _gap(gaps: Sequence[tuple[float, float, float]], rng: np.random.Generator) -> float:
    probs = np.array([g[0] for g in gaps], dtype=np.float64)
    k = int(rng.choice(len(gaps), p=probs / probs.sum()))
    return float(rng.uniform(gaps[k][1], gaps[k][2]))


def _bed(
    material: Material, noise_pick: _Cycle | None, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, str]:
    """n samples of unit-RMS noise bed and its name: a background recording looped from a random
    offset, or (no recordings in the dataset) seeded synthetic noise."""
    if noise_pick is not None:
        name, rec = noise_pick.next()
        x = rec.astype(np.float64)
        off = int(rng.integers(x.size))
        reps = (off + n) // x.size + 1
        bed = np.tile(x, reps)[off : off + n]
        bed = bed - bed.mean()
    else:
        from ..data import noise as synth_noise

        kind = ("pink_noise", "babble", "brown_noise", "white_noise")[int(rng.integers(4))]
        bed = synth_noise.GENERATORS[kind](n, rng).astype(np.float64)
        name = f"synthetic:{kind}"
    rms = float(np.sqrt(np.mean(bed**2))) if bed.size else 0.0
    return (bed / rms if rms > 0 else bed), str(name)


def build_stream(
    material: Material,
    opts: StreamOptions,
    read: Callable[[Path], np.ndarray] | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, StreamTruth]:
    """The stream (int16) and its truth, from `material`, deterministic for `opts.seed`."""
    from tqdm import tqdm

    from ..data.wav import read_wav

    if opts.minutes <= 0:
        raise NanokwsError("a stream needs a positive length (minutes)")
    if not 0.0 <= opts.keyword_fraction <= 1.0:
        raise NanokwsError("keyword fraction must be 0..1")
    if not opts.snrs:
        raise NanokwsError("no SNR conditions given")
    if opts.keyword_fraction > 0 and not material.keyword_clips:
        raise NanokwsError(f"{material.root}: no keyword clips in split '{opts.split}'")
    if opts.keyword_fraction < 1 and not material.distractor_clips:
        raise NanokwsError(f"{material.root}: no distractor (other word) clips in split '{opts.split}'")
    read = read or read_wav
    rng = np.random.default_rng([opts.seed, 14])
    kinds = _kinds(opts.keyword_fraction, rng)
    pick = {
        "keyword": _Cycle(material.keyword_clips, rng),
        "distractor": _Cycle(material.distractor_clips, rng),
    }
    noise_pick = _Cycle(material.noise, rng) if material.noise else None
    cond_order = _Cycle(list(opts.snrs), rng)
    speech_gain = 10 ** (opts.level_db / 20.0)
    total = int(round(opts.minutes * 60 * SAMPLE_RATE))
    seg_len = int(round(opts.segment_s * SAMPLE_RATE))
    cache: dict[Path, tuple[np.ndarray, int, int]] = {}

    pieces: list[np.ndarray] = []
    words: list[TruthWord] = []
    stretches: list[Stretch] = []
    segments: list[Segment] = []
    clipped = 0
    pos = 0
    with tqdm(total=round(total / SAMPLE_RATE), desc="building", unit="s audio", disable=not progress) as bar:
        while pos < total:
            seg_no = len(segments)
            snr = cond_order.next()
            n = min(seg_len, total - pos)
            speech = np.zeros(n, dtype=np.float64)
            active_power, active_n = 0.0, 0
            seg_words: list[tuple[int, int, Clip]] = []
            cursor = int(rng.uniform(*opts.lead_s) * SAMPLE_RATE)  # where the next word's activity starts
            while True:
                kind = kinds.next()
                clip = pick[kind].next()
                if clip.path not in cache:
                    cache[clip.path] = _word_audio(read(clip.path))
                piece, a, b = cache[clip.path]
                start = cursor - a  # the piece's first sample in the segment
                if start + piece.size > n:  # the segment is full (this draw is dropped, seeded all the same)
                    break
                speech[max(0, start) : start + piece.size] += piece[max(0, -start) :] * speech_gain
                act = piece[a:b] * speech_gain
                active_power += float(np.sum(act**2))
                active_n += act.size
                seg_words.append((cursor, cursor + (b - a), clip))
                cursor += (b - a) + int(_gap(opts.gaps, rng) * SAMPLE_RATE)
            bed, name = _bed(material, noise_pick, n, rng)
            if snr is None:
                gain = _DITHER
                mix = speech + rng.normal(0.0, _DITHER, n)
                name = "silence"
            else:
                p_speech = active_power / active_n if active_n else (1000.0 * speech_gain) ** 2
                gain = float(np.sqrt(p_speech / 10 ** (float(snr) / 10.0))) * opts.noise_gain
                mix = speech + bed * gain
            out = np.clip(np.round(mix), -32768, 32767)
            clipped += int(np.count_nonzero(np.abs(mix) > 32767.5))
            pieces.append(out.astype(np.int16))
            t0 = pos / SAMPLE_RATE
            segments.append(
                Segment(
                    round(t0, 4),
                    round((pos + n) / SAMPLE_RATE, 4),
                    None if snr is None else float(snr),
                    name,
                    round(gain, 4),
                )
            )
            prev_end = 0
            stretch_kind = "silence" if snr is None else "noise"
            for s, e, clip in seg_words:
                if s - prev_end >= MIN_STRETCH_S * SAMPLE_RATE:
                    stretches.append(
                        Stretch(
                            round(t0 + prev_end / SAMPLE_RATE, 4),
                            round(t0 + s / SAMPLE_RATE, 4),
                            stretch_kind,
                            None if snr is None else float(snr),
                            seg_no,
                        )
                    )
                words.append(
                    TruthWord(
                        round(t0 + s / SAMPLE_RATE, 4),
                        round(t0 + e / SAMPLE_RATE, 4),
                        clip.word,
                        clip.kind,
                        clip.label,
                        clip.name,
                        clip.speaker,
                        None if snr is None else float(snr),
                        seg_no,
                    )
                )
                prev_end = e
            if n - prev_end >= MIN_STRETCH_S * SAMPLE_RATE:
                stretches.append(
                    Stretch(
                        round(t0 + prev_end / SAMPLE_RATE, 4),
                        round((pos + n) / SAMPLE_RATE, 4),
                        stretch_kind,
                        None if snr is None else float(snr),
                        seg_no,
                    )
                )
            pos += n
            bar.n = round(pos / SAMPLE_RATE)
            bar.refresh()
    audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)
    n_kw = sum(w.kind == "keyword" for w in words)
    summary = {
        "words": len(words),
        "keywords": n_kw,
        "distractors": len(words) - n_kw,
        "keyword_clips_available": len(material.keyword_clips),
        "distractor_clips_available": len(material.distractor_clips),
        "distinct_clips_used": len({w.clip for w in words}),
        "speakers": len({w.speaker for w in words}),
        "noise_recordings": [name for name, _ in material.noise] or ["synthetic"],
        "noise_only_seconds": round(sum(s.end_s - s.start_s for s in stretches), 3),
        "clipped_samples": clipped,
        "per_word": {k: sum(w.word == k for w in words) for k in sorted({w.word for w in words})},
    }
    options = asdict(opts)
    options["snrs"] = [None if s is None else float(s) for s in opts.snrs]
    options["gaps"] = [list(g) for g in opts.gaps]
    options["lead_s"] = list(opts.lead_s)
    truth = StreamTruth(
        SAMPLE_RATE,
        int(audio.size),
        list(material.keywords),
        words,
        stretches,
        segments,
        options,
        material.root,
        material.split_mode,
        summary,
    )
    return audio, truth


def write_stream(out_dir: Path, audio: np.ndarray, truth: StreamTruth) -> tuple[Path, Path]:
    """stream.wav and truth.json in `out_dir`, each written atomically."""
    from ..atomic import write_bytes, write_json
    from ..data.wav import wav_bytes

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wav, js = out_dir / WAV_NAME, out_dir / TRUTH_NAME
    write_bytes(wav, wav_bytes(audio))
    write_json(js, truth.to_json())
    return wav, js


def read_stream(folder: Path) -> tuple[np.ndarray, StreamTruth]:
    """A stream written by `write_stream` (a folder, or its truth.json / stream.wav)."""
    from ..data.wav import WavFormatError, read_wav

    folder = Path(folder)
    if folder.is_file():
        folder = folder.parent
    wav, js = folder / WAV_NAME, folder / TRUTH_NAME
    if not js.is_file() or not wav.is_file():
        raise NanokwsError(
            f"{folder}: not a stream folder (needs {WAV_NAME} and {TRUTH_NAME}; "
            "make one with `nanokws stream build`)"
        )
    try:
        truth = StreamTruth.from_json(json.loads(js.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise NanokwsError(f"{js}: unreadable truth ({exc})") from exc
    try:
        audio = read_wav(wav)
    except WavFormatError as exc:
        raise NanokwsError(f"{wav}: {exc.reason}") from exc
    if audio.size != truth.samples:
        raise NanokwsError(f"{wav} has {audio.size} samples, its truth says {truth.samples}")
    return audio, truth
