"""Load a folder in the Speech Commands layout into labelled, split, balanced examples.

Layout: one folder per word of 16 kHz mono 16-bit WAVs named `<speaker>_nohash_<n>.wav`;
`_background_noise_/` long recordings; optional `_silence_/` and `_unknown_/` folders whose clips
take those labels directly (the official test set's layout); optional `validation_list.txt` /
`testing_list.txt` at the root. Bad files are collected in `Dataset.skipped`, never dropped
silently and never raised.

Balancing (per split, train / validation / test; deterministic for a seed):
- every keyword clip is kept;
- `_unknown_` gets round(unknown_share * mean keyword count) clips drawn at random from all other
  words (plus `_unknown_/`); `unknown_share=None` keeps them all;
- `_silence_` gets round(silence_share * mean keyword count) clips: the real `_silence_/` clips
  first, topped up with one-second cuts of `_background_noise_/` at random offsets and random
  gain (log-uniform 0.05..1). Each noise recording is divided in time (first 80 % train, next
  10 % validation, last 10 % test) so no noise sample is shared between splits.
Splits: the list files when present, else the dataset's speaker-hash rule (`splits.which_split`);
split_mode="speaker" uses a second speaker hash instead, for folders such as ../shared/data whose
speakers mostly fall in the official rule's test split.
`examples("all")` is every clip in the folder, unbalanced and without generated silence (use it
to evaluate on an official test-set folder).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import NanokwsError
from .labels import BACKGROUND_NOISE, DEFAULT_KEYWORDS, SILENCE, UNKNOWN, labels_for
from .splits import SPLITS, speaker_of, speaker_split, which_split
from .wav import CLIP_SAMPLES, WavFormatError, fit_clip, read_wav

SPLIT_MODES = ("auto", "hash", "lists", "speaker")
# Each background recording is cut in time between the splits (no noise sample shared); "all" is the
# whole recording. The one definition: training, evaluation conditions and the stream builder use it.
NOISE_REGIONS = {"train": (0.0, 0.8), "validation": (0.8, 0.9), "test": (0.9, 1.0), "all": (0.0, 1.0)}
_MIN_SILENCE_GAIN = 0.05
_MODE_TEXT = {
    "lists": "validation_list.txt / testing_list.txt",
    "hash": "the dataset's speaker-hash rule",
    "speaker": "nanokws' second speaker hash",
}


@dataclass(frozen=True)
class Example:
    """One labelled one-second clip; `audio()` reads it on demand."""

    label: str
    label_index: int
    word: str  # the folder it came from (SILENCE for cuts of background noise)
    speaker: str
    path: Path
    split: str
    offset: int = 0  # for background-noise cuts: first sample in the recording
    gain: float = 1.0  # for background-noise cuts
    noise: np.ndarray | None = field(default=None, repr=False, compare=False)

    def audio(self) -> np.ndarray:
        """int16[16000]: short clips zero-padded at the end, long clips trimmed to the first second."""
        if self.noise is None:
            return fit_clip(read_wav(self.path))
        cut = self.noise[self.offset : self.offset + CLIP_SAMPLES].astype(np.float64) * self.gain
        return fit_clip(np.clip(np.round(cut), -32768, 32767).astype(np.int16))


@dataclass
class Dataset:
    root: Path
    keywords: list[str]
    labels: list[str]
    split_mode: str  # "lists" or "hash": what actually decided the splits
    noise: list[np.ndarray]
    noise_paths: list[Path]
    skipped: list[tuple[Path, str]]
    _splits: dict[str, list[Example]]

    def examples(self, split: str) -> list[Example]:
        """Examples of "train", "validation", "test" (balanced) or "all" (every clip, unbalanced)."""
        if split not in self._splits:
            raise NanokwsError(f"unknown split {split!r}; choose from {', '.join(self._splits)}")
        return list(self._splits[split])

    def arrays(self, split: str, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(audio int16 [n, 16000], label_index int32 [n]) for a split."""
        from tqdm import tqdm

        examples = self.examples(split)
        audio = np.zeros((len(examples), CLIP_SAMPLES), dtype=np.int16)
        for i, ex in enumerate(tqdm(examples, desc=f"reading {split}", unit="clip", disable=not progress)):
            audio[i] = ex.audio()
        return audio, np.array([ex.label_index for ex in examples], dtype=np.int32)

    def counts(self) -> dict[str, Counter[str]]:
        """split -> label -> number of examples."""
        return {split: Counter(ex.label for ex in exs) for split, exs in self._splits.items()}

    def summary(self) -> str:
        """A printable table of examples per class and split, then the skipped files."""
        counts = self.counts()
        cols = [*SPLITS, "all"]
        width = max(len(label) for label in self.labels) + 2
        lines = [
            f"dataset {self.root} (splits by {_MODE_TEXT[self.split_mode]})",
            "label".ljust(width) + "".join(c.rjust(11) for c in cols),
        ]
        for label in self.labels:
            lines.append(label.ljust(width) + "".join(str(counts[c][label]).rjust(11) for c in cols))
        lines.append("total".ljust(width) + "".join(str(sum(counts[c].values())).rjust(11) for c in cols))
        speakers = {s: len({ex.speaker for ex in self._splits[s] if ex.noise is None}) for s in cols}
        lines.append("speakers".ljust(width) + "".join(str(speakers[c]).rjust(11) for c in cols))
        seconds = sum(len(n) for n in self.noise) / 16000
        lines.append(f"background noise: {len(self.noise)} recordings, {seconds:.0f} s")
        lines.append(f"skipped files: {len(self.skipped)}")
        lines.extend(f"  {path}: {reason}" for path, reason in self.skipped)
        return "\n".join(lines)


@dataclass
class _Clip:
    path: Path
    folder: str
    speaker: str
    split: str


def load_dataset(
    root: str | os.PathLike[str],
    keywords: Sequence[str] = DEFAULT_KEYWORDS,
    *,
    unknown_share: float | None = 1.0,
    silence_share: float | None = 1.0,
    seed: int = 0,
    split_mode: str = "auto",
    progress: bool = False,
) -> Dataset:
    """Scan `root` (Speech Commands layout) and build balanced train/validation/test splits.

    unknown_share / silence_share: size of those classes relative to the mean keyword count of
    the split (default 1.0 = about as many as an average keyword; None keeps every unknown clip /
    only the real silence clips). split_mode: "auto" uses validation_list.txt / testing_list.txt
    when present, else the speaker hash; "hash" or "lists" force one; "speaker" uses a second,
    independent speaker hash (`splits.speaker_split`) for folders whose speakers all fall in one
    split of the official rule.
    """
    root = Path(root)
    labels = labels_for(keywords)
    if split_mode not in SPLIT_MODES:
        raise NanokwsError(f"unknown split mode {split_mode!r}; choose from {', '.join(SPLIT_MODES)}")
    if not root.is_dir():
        raise NanokwsError(f"dataset folder {root} does not exist (try `nanokws data synth --out {root}`)")
    lists = _read_lists(root)
    if split_mode == "lists" and lists is None:
        raise NanokwsError(f"{root} has no validation_list.txt / testing_list.txt (use split mode 'hash')")
    use_lists = lists is not None and split_mode != "hash"

    skipped: list[tuple[Path, str]] = []
    clips: list[_Clip] = []
    noise: list[np.ndarray] = []
    noise_paths: list[Path] = []
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = [
        (folder, f) for folder in folders for f in sorted(folder.iterdir()) if not f.is_dir()
    ]  # broken links too: reported, not dropped
    from tqdm import tqdm

    for folder, path in tqdm(files, desc="scanning", unit="file", disable=not progress):
        if path.suffix.lower() != ".wav":
            skipped.append((path, "not a .wav file"))
            continue
        try:
            audio = read_wav(path)
        except WavFormatError as exc:
            skipped.append((path, exc.reason))
            continue
        if folder.name == BACKGROUND_NOISE:
            if len(audio) < CLIP_SAMPLES:
                skipped.append((path, f"background noise shorter than one second ({len(audio)} samples)"))
                continue
            noise.append(audio)
            noise_paths.append(path)
            continue
        if folder.name.startswith("_") and folder.name not in (SILENCE, UNKNOWN):
            skipped.append((path, f"in unrecognised folder {folder.name}"))
            continue
        if len(audio) == 0:
            skipped.append((path, "no samples"))
            continue
        rel = f"{folder.name}/{path.name}"
        if use_lists:
            assert lists is not None
            split = "validation" if rel in lists[0] else "test" if rel in lists[1] else "train"
        elif split_mode == "speaker":
            split = speaker_split(speaker_of(path.name))
        else:
            split = which_split(path.name)
        clips.append(_Clip(path, folder.name, speaker_of(path.name), split))

    if not clips:
        raise NanokwsError(f"no usable WAV clips in {root} (expected one folder per word)")
    present = {c.folder for c in clips}
    missing = [k for k in keywords if k not in present]
    if missing:
        found = ", ".join(sorted(present)) or "none"
        raise NanokwsError(f"{root} has no clips for keyword(s) {', '.join(missing)} (word folders: {found})")

    index = {label: i for i, label in enumerate(labels)}
    kw = set(keywords)

    def example(c: _Clip) -> Example:
        label = c.folder if c.folder in kw else SILENCE if c.folder == SILENCE else UNKNOWN
        return Example(label, index[label], c.folder, c.speaker, c.path, c.split)

    splits: dict[str, list[Example]] = {}
    for split_no, split in enumerate(SPLITS):
        rng = np.random.default_rng([seed, split_no])
        mine = [example(c) for c in clips if c.split == split]
        keep = [e for e in mine if e.label in kw]
        mean_kw = len(keep) / len(keywords)
        unknown = [e for e in mine if e.label == UNKNOWN]
        keep += _pick(unknown, None if unknown_share is None else round(unknown_share * mean_kw), rng)
        silence = [e for e in mine if e.label == SILENCE]
        if silence_share is None:
            keep += silence
        else:
            target = round(silence_share * mean_kw)
            keep += _pick(silence, target, rng)
            keep += _noise_cuts(noise, noise_paths, max(0, target - len(silence)), split, index[SILENCE], rng)
        splits[split] = keep
    splits["all"] = [example(c) for c in clips]
    mode = "lists" if use_lists else "speaker" if split_mode == "speaker" else "hash"
    return Dataset(root, list(keywords), labels, mode, noise, noise_paths, skipped, splits)


def _pick(examples: list[Example], count: int | None, rng: np.random.Generator) -> list[Example]:
    """A random subset of `count` examples (all when count is None or too big), in folder order."""
    if count is None or count >= len(examples):
        return examples
    chosen = np.sort(rng.permutation(len(examples))[:count])
    return [examples[i] for i in chosen]


def noise_region(recording: np.ndarray, split: str) -> np.ndarray:
    """The part of one background recording that belongs to `split` (train: the first 80 %,
    validation: the next 10 %, test: the last 10 %), so training never mixes in noise that
    validation or test conditions use; the whole recording when that part is shorter than a clip."""
    lo_frac, hi_frac = NOISE_REGIONS[split]
    n = len(recording)
    lo, hi = int(lo_frac * n), int(hi_frac * n)
    return recording[lo:hi] if hi - lo >= CLIP_SAMPLES else recording


def _noise_cuts(
    noise: list[np.ndarray],
    paths: list[Path],
    count: int,
    split: str,
    label_index: int,
    rng: np.random.Generator,
) -> list[Example]:
    """`count` one-second cuts of the background recordings, from this split's part of each."""
    if not noise or count <= 0:
        return []
    out = []
    lo_frac, hi_frac = NOISE_REGIONS[split]
    for i in range(count):
        k = i % len(noise)  # cycle the recordings so each contributes evenly
        n = len(noise[k])
        lo, hi = int(lo_frac * n), int(hi_frac * n) - CLIP_SAMPLES
        if hi < lo:  # region shorter than a clip: use the whole recording
            lo, hi = 0, n - CLIP_SAMPLES
        offset = int(rng.integers(lo, hi + 1))
        gain = float(np.exp(rng.uniform(np.log(_MIN_SILENCE_GAIN), 0.0)))
        out.append(
            Example(
                SILENCE,
                label_index,
                SILENCE,
                f"noise:{paths[k].stem}",
                paths[k],
                split,
                offset,
                gain,
                noise[k],
            )
        )
    return out


def _read_lists(root: Path) -> tuple[set[str], set[str]] | None:
    """(validation, testing) relative paths from the dataset's list files, or None if neither exists."""
    val, test = root / "validation_list.txt", root / "testing_list.txt"
    if not val.exists() and not test.exists():
        return None

    def read(p: Path) -> set[str]:
        if not p.exists():
            return set()
        return {
            line.strip().replace("\\", "/")
            for line in p.read_text(encoding="utf-8").splitlines()
            if line.strip()
        }

    return read(val), read(test)
