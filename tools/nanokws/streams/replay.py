"""The firmware's recognizer (firmware/lib/recognizer/nk_recognizer.c) replayed in Python, bit for bit.

Given every inference's int8 scores of a stream (as SCORES reports them, or as streams/scorer.py
keeps them) and the hop after which each ran, `replay` returns exactly the detections the C
recognizer would make under any `RecognizerConfig`: thresholds, smoothing window, suppression
time and release level can be swept without running inference again.

The rules (PROTOCOL.md, "Streaming and recognition"), all in integers as the C does them:
- probability p = clamp(((q - zero_point) * scale_q16 + 2^15) >> 16, 0, 255), scale_q16 =
  (int32)(output_scale_as_float32 * 255 * 65536 + 0.5);
- smoothed = (sum of the last `window` probabilities, zeros before the first inference) // window;
- every label starts armed; at each inference a label whose smoothed value is <= release is armed;
- outside the suppression time of the last detection ((hop - last_hop) * hop_samples * 1000 <
  suppression_ms * sample_rate means inside), the armed label not starting with '_' with the
  highest smoothed value at or above its threshold (the first on ties) fires and is disarmed.

The stream must start at a reset of the recognizer (RESET, begin, a SMOOTHING change) and use one
configuration throughout. The default values are read from nk_recognizer.h, never retyped here.

Speed: the moving sums, thresholds and release tests are numpy over the whole [n, labels] array;
the sequential part is event-driven: one Python step per detection, each label's next chance to
fire found by binary search (its next inference at or above threshold once re-armed and outside
the suppression time), so the cost does not grow with the inferences that cannot fire. See
`replay`'s docstring for measured times.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..cheader import need, read_int_defines
from ..errors import NanokwsError
from ..paths import FIRMWARE_LIB_DIR

RECOGNIZER_HEADER = FIRMWARE_LIB_DIR / "recognizer" / "nk_recognizer.h"
_H = read_int_defines(RECOGNIZER_HEADER, "recognizer")

MAX_LABELS = need(_H, "NK_REC_MAX_LABELS", RECOGNIZER_HEADER)
MAX_WINDOW = need(_H, "NK_REC_MAX_WINDOW", RECOGNIZER_HEADER)
DEFAULT_WINDOW = need(_H, "NK_REC_DEFAULT_WINDOW", RECOGNIZER_HEADER)
DEFAULT_THRESHOLD = need(_H, "NK_REC_DEFAULT_THRESHOLD", RECOGNIZER_HEADER)
DEFAULT_SUPPRESSION_MS = need(_H, "NK_REC_DEFAULT_SUPPRESSION_MS", RECOGNIZER_HEADER)
DEFAULT_RELEASE = need(_H, "NK_REC_DEFAULT_RELEASE", RECOGNIZER_HEADER)
FRONTEND_HEADER = FIRMWARE_LIB_DIR / "frontend" / "nk_frontend_config.h"
CLIP_FRAMES = need(read_int_defines(FRONTEND_HEADER, "frontend"), "NK_FE_CLIP_FRAMES", FRONTEND_HEADER)


def window_suppression_ms(window_frames: int, hop_samples: int = 320, sample_rate: int = 16000) -> int:
    """The default suppression time for a model: as long as a word stays in its window, and at least
    the library's NK_REC_DEFAULT_SUPPRESSION_MS (which is a one-second window's). A 74-frame model
    gets 1480 ms: with 1000 ms a word still in its window could fire a second time."""
    window_ms = -(-window_frames * hop_samples * 1000 // sample_rate)  # rounded up
    return max(DEFAULT_SUPPRESSION_MS, window_ms)


@dataclass(frozen=True)
class RecognizerConfig:
    """The recognizer's settings: what SET_CONFIG sets and model_config.h's NK_MODEL_REC_* start with."""

    thresholds: tuple[int, ...]  # per label, 0..255; labels starting with '_' never fire
    window: int = DEFAULT_WINDOW  # SMOOTHING: inferences averaged, 1..NK_REC_MAX_WINDOW
    suppression_ms: int = DEFAULT_SUPPRESSION_MS  # no detection this long after one, 0..65535
    release: int = DEFAULT_RELEASE  # a label that fired re-arms at or below this, 0..255 (255: off)

    def __post_init__(self) -> None:
        thresholds = tuple(self.thresholds)
        if not 1 <= len(thresholds) <= MAX_LABELS:
            raise NanokwsError(f"recognizer: {len(thresholds)} thresholds; need 1..{MAX_LABELS} (per label)")
        for name, value, lo, hi in (
            ("window", self.window, 1, MAX_WINDOW),
            ("suppression_ms", self.suppression_ms, 0, 65535),
            ("release", self.release, 0, 255),
            *(("threshold", t, 0, 255) for t in thresholds),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
                raise NanokwsError(f"recognizer: {name} {value!r} is not an integer in {lo}..{hi}")
        # Plain ints (numpy integers compare and hash alike, but would not go into JSON).
        object.__setattr__(self, "thresholds", tuple(int(t) for t in thresholds))
        for name in ("window", "suppression_ms", "release"):
            object.__setattr__(self, name, int(getattr(self, name)))

    @classmethod
    def defaults(cls, num_labels: int, window_frames: int = CLIP_FRAMES) -> RecognizerConfig:
        """The library's defaults (nk_recognizer.h) for a model with `num_labels` outputs over a
        `window_frames` window (its suppression: window_suppression_ms)."""
        suppression = window_suppression_ms(window_frames)
        return cls(thresholds=(DEFAULT_THRESHOLD,) * num_labels, suppression_ms=suppression)

    def to_json(self) -> dict[str, Any]:
        return {
            "thresholds": list(self.thresholds),
            "window": self.window,
            "suppression_ms": self.suppression_ms,
            "release": self.release,
        }

    def with_keyword_threshold(self, labels: Sequence[str], value: int) -> RecognizerConfig:
        """This setting with every keyword's threshold (labels not starting with '_') set to `value`."""
        from dataclasses import replace

        ths = tuple(
            t if lab.startswith("_") else value for lab, t in zip(labels, self.thresholds, strict=True)
        )
        return replace(self, thresholds=ths)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RecognizerConfig:
        """Inverse of `to_json`; `window`, `suppression_ms` and `release` may be left out (library
        defaults), other keys are ignored (a recognizer.json also names its labels and source)."""
        if not isinstance(d, Mapping):
            raise NanokwsError(f"recognizer: expected a JSON object, got {type(d).__name__}")
        thresholds = d.get("thresholds")
        if not isinstance(thresholds, list):
            raise NanokwsError("recognizer: 'thresholds' must be a list with one integer per label")
        opts = {k: d[k] for k in ("window", "suppression_ms", "release") if k in d}
        return cls(thresholds=tuple(thresholds), **opts)


@dataclass(frozen=True)
class Detection:
    hop: int  # hop index of the inference that fired (DETECTION's hop)
    label: int  # index into the labels
    score: int  # smoothed probability 0..255


def scale_q16(output_scale: float) -> int:
    """NK_REC_SCALE_Q16 of the model's output scale, as the firmware computes it from the float32
    literal in model_config.h: (int32)(scale * 255.0 * 65536.0 + 0.5) in double."""
    return int(float(np.float32(output_scale)) * 255.0 * 65536.0 + 0.5)


def probabilities(scores: np.ndarray, output_scale: float, output_zero_point: int) -> np.ndarray:
    """nk_recognizer_probability of every int8 score: int64 array of 0..255, same shape."""
    q = np.asarray(scores).astype(np.int64)
    p = ((q - int(output_zero_point)) * scale_q16(output_scale) + 32768) >> 16
    return np.clip(p, 0, 255)


def smoothed(probs: np.ndarray, window: int) -> np.ndarray:
    """nk_recognizer_smoothed after each inference: the sum of the last `window` rows of `probs`
    (zeros before the first) // window, as int64 [n, labels]."""
    n = probs.shape[0]
    csum = np.zeros((n + 1, probs.shape[1]), np.int64)
    np.cumsum(probs, axis=0, out=csum[1:])
    lo = np.maximum(np.arange(1, n + 1) - window, 0)
    return (csum[1:] - csum[lo]) // window


def _check(
    scores: np.ndarray, hops: np.ndarray, labels: Sequence[str], cfg: RecognizerConfig
) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores)
    h = np.asarray(hops)
    if s.ndim != 2 or s.shape[1] != len(labels):
        raise NanokwsError(f"replay: scores of shape {s.shape}; need [inferences, {len(labels)} labels]")
    if s.size and (s.dtype.kind not in "iu" or s.min() < -128 or s.max() > 127):
        raise NanokwsError("replay: scores must be int8 values")
    if h.shape != (s.shape[0],) or (h.size and h.dtype.kind not in "iu"):
        raise NanokwsError(f"replay: hops of shape {h.shape}; need one integer hop per row ({s.shape[0]})")
    h = h.astype(np.int64)
    if h.size and (h[0] < 0 or np.any(np.diff(h) <= 0) or h[-1] > 0xFFFFFFFF):
        raise NanokwsError("replay: hops must increase from inference to inference (uint32 hop indices)")
    if len(cfg.thresholds) != len(labels):
        raise NanokwsError(f"replay: {len(cfg.thresholds)} thresholds for {len(labels)} labels")
    return s, h


def replay(
    scores: np.ndarray,
    hops: np.ndarray,
    labels: Sequence[str],
    cfg: RecognizerConfig,
    *,
    output_scale: float,
    output_zero_point: int,
    hop_samples: int,
    sample_rate: int,
) -> list[Detection]:
    """The detections nk_recognizer_process makes on `scores` (int8 [n, labels], one row per
    inference since a reset, in order) after hops `hops` ([n], increasing) under `cfg`.

    `output_scale`/`output_zero_point` are the model's output quantisation (model_config.h's
    NK_MODEL_OUTPUT_SCALE / _ZERO_POINT or the .tflite's), `hop_samples`/`sample_rate` the
    frontend's (320 / 16000).

    Cost: numpy over [n, labels] plus ~15 us of Python per detection. Measured (CPU time, one
    hour at stride 2 = 90 000 inferences x 12 labels, ~1 100 words): ~55 ms at the default
    settings or thresholds of 100; ~0.2 s with every threshold 0 (a detection every 750 ms); a
    setting that fires at every inference (threshold 0, no suppression, release 255) ~1.6 s.
    tests/test_recognizer.py checks the first two kinds stay under a second.
    """
    s, h = _check(scores, hops, labels, cfg)
    n, num_labels = s.shape
    num, den = int(hop_samples) * 1000, int(sample_rate)
    if num <= 0 or den <= 0:
        raise NanokwsError("replay: hop_samples and sample_rate must be positive")
    if n == 0:
        return []
    sm = smoothed(probabilities(s, output_scale, output_zero_point), cfg.window)
    active = np.array([not str(lab).startswith("_") for lab in labels], bool)
    above = (sm >= np.asarray(cfg.thresholds, np.int64)) & active
    # Per label, ascending: the inferences where it is at or above its threshold (it fires at one of
    # them if armed and outside the suppression time), and those that re-arm it (<= release).
    above_at = [np.flatnonzero(above[:, k]).tolist() for k in range(num_labels)]
    # lows[k][j]: how many of inferences 0..j re-armed label k (non-decreasing, one row per label).
    lows = np.ascontiguousarray(np.cumsum(sm <= cfg.release, axis=0, dtype=np.int64).T)
    # Inside the suppression time while (hop - last) * hop_ms_num < suppression_ms * hop_ms_den:
    # the first hop distance outside it is ceil(suppression_ms * den / num).
    min_gap = -(-cfg.suppression_ms * den // num)
    never = n

    def first_above(k: int, frm: int) -> int:
        at = above_at[k]
        i = bisect_left(at, frm)
        return at[i] if i < len(at) else never

    # A label is armed from armed_from[k] on until it fires (from 0: all start armed). Each label's
    # next chance e[k] is its first inference at or above threshold, armed and outside the
    # suppression time; the next detection is at min(e), by the best label among those there.
    armed_from = [0] * num_labels
    e = [first_above(k, 0) for k in range(num_labels)]
    out: list[Detection] = []
    while True:
        j = min(e)
        if j >= never:
            return out
        row = sm[j].tolist()
        best, best_score = -1, -1
        for k in range(num_labels):
            if e[k] == j and row[k] > best_score:
                best, best_score = k, row[k]
        hop = int(h[j])
        out.append(Detection(hop, best, best_score))
        after = max(j + 1, int(np.searchsorted(h, hop + min_gap)))  # first inference outside
        # Re-armed at the first inference after j at or below release.
        armed_from[best] = int(np.searchsorted(lows[best], lows[best, j], side="right"))
        for k in range(num_labels):
            if e[k] < after or k == best:
                e[k] = first_above(k, max(armed_from[k], after))


# --- recognizer.json ----------------------------------------------------------------------------


def replay_run(run: Any, cfg: RecognizerConfig) -> list[Detection]:
    """replay() over a scored run (streams.scorer.ScoreRun, or anything with its scores, hops,
    labels, output quantisation, hop_samples and sample_rate)."""
    return replay(
        run.scores,
        run.hops,
        run.labels,
        cfg,
        output_scale=run.output_scale,
        output_zero_point=run.output_zero_point,
        hop_samples=run.hop_samples,
        sample_rate=run.sample_rate,
    )


@dataclass(frozen=True)
class RecognizerFile:
    """A recognizer.json: settings for one model's labels and where they came from."""

    config: RecognizerConfig
    labels: tuple[str, ...] | None  # the labels the thresholds are for, in order (None: not stated)
    source: str  # e.g. "nanokws calibrate on runs/x/val (FRR 5.1%, 0.4 FA/h)"


def recognizer_json(cfg: RecognizerConfig, labels: Sequence[str], source: str) -> dict[str, Any]:
    """The recognizer.json object for `cfg` (thresholds in the order of `labels`)."""
    if len(labels) != len(cfg.thresholds):
        raise NanokwsError(f"recognizer: {len(cfg.thresholds)} thresholds for {len(labels)} labels")
    return {"labels": [str(x) for x in labels], "source": str(source), **cfg.to_json()}


def save_recognizer_json(path: Path, cfg: RecognizerConfig, labels: Sequence[str], source: str) -> None:
    """Write recognizer.json atomically (a reader never sees half a file)."""
    from ..atomic import write_json

    write_json(path, recognizer_json(cfg, labels, source))


def load_recognizer_json(path: Path) -> RecognizerFile:
    """Read a recognizer.json: {"labels": [...], "source": "...", "thresholds": [...] or
    {label: value}, "window", "suppression_ms", "release"} (only "thresholds" required; a mapping
    needs "labels" to order it, its missing labels get the library's threshold). NanokwsError
    naming the file on anything else."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NanokwsError(f"{path}: cannot read the recognizer settings ({exc})") from exc
    if not isinstance(data, dict):
        raise NanokwsError(f"{path}: expected a JSON object with 'thresholds'")
    labels = data.get("labels")
    if labels is not None and (not isinstance(labels, list) or not all(isinstance(x, str) for x in labels)):
        raise NanokwsError(f"{path}: 'labels' must be a list of label names")
    source = data.get("source", path.name)
    if not isinstance(source, str):
        raise NanokwsError(f"{path}: 'source' must be a string")
    thresholds = data.get("thresholds")
    if isinstance(thresholds, dict):
        if labels is None:
            raise NanokwsError(f"{path}: thresholds by label name need 'labels' (the model's, in order)")
        unknown = sorted(set(thresholds) - set(labels))
        if unknown:
            raise NanokwsError(f"{path}: thresholds for labels not in 'labels': {', '.join(unknown)}")
        data = {**data, "thresholds": [thresholds.get(x, DEFAULT_THRESHOLD) for x in labels]}
    try:
        cfg = RecognizerConfig.from_json(data)
    except NanokwsError as exc:
        raise NanokwsError(f"{path}: {exc}") from None
    if labels is not None and len(labels) != len(cfg.thresholds):
        raise NanokwsError(f"{path}: {len(cfg.thresholds)} thresholds for {len(labels)} labels")
    return RecognizerFile(cfg, tuple(labels) if labels is not None else None, source)
