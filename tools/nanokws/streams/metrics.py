"""Judge a stream's detections against its truth: hits, misses, false accepts of each kind, DET curves.

Matching (times in seconds; a detection's time is the end of the hop after which it fired):
1. Each keyword word, in time order, is *hit* by the first unused detection of its label within
   [start, end + tolerance].
2. Every other detection is false. It is judged by the words whose window [start, end + tolerance]
   holds it:
   - a keyword of the same label there (already hit): a *repeat* (one word, two detections);
   - else the nearest such word (0 inside its span, else the time since its end): a distractor ->
     a *distractor false accept* (a second one on the same word is also a distractor repeat);
     a keyword of another label -> a *confusion*;
   - no word there: a *noise false accept* (noise or silence alone).
False accepts per hour are counted per hour of the stream judged, by kind; `fa_per_hour` is
distractor + noise. The distractor rate is also the fraction of distractor words that fired.
DET curves sweep one threshold for every keyword through `replay` (the exact Python recognizer).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .builder import StreamTruth, TruthWord

DEFAULT_TOLERANCE_S = 1.0


def window_tolerance_s(window_frames: int, hop_samples: int = 320, sample_rate: int = 16000) -> float:
    """How long after a word's end a detection still counts for it: as long as any of the word is in
    the model's window (window_frames hops), and at least DEFAULT_TOLERANCE_S. A one-second model
    gets 1.0 s; a 74-frame (1.48 s) window 1.48 s: its detections come later, and a detection of a
    word still in the window is that word's, not one on noise."""
    return max(DEFAULT_TOLERANCE_S, round(window_frames * hop_samples / sample_rate, 3))
FALSE_KINDS = ("distractor", "noise", "repeat", "confusion")


@dataclass(frozen=True)
class TimedDetection:
    time_s: float
    label: str
    score: int = 0
    hop: int = -1


def timed(
    detections: Sequence[Any], labels: Sequence[str], hop_samples: int, sample_rate: int
) -> list[TimedDetection]:
    """Detections with (hop, label index, score) -> TimedDetection at the end of their hop."""
    out = []
    for d in detections:
        name = labels[d.label] if 0 <= d.label < len(labels) else f"#{d.label}"
        out.append(TimedDetection((d.hop + 1) * hop_samples / sample_rate, name, int(d.score), int(d.hop)))
    return out


def condition_name(snr: float | None) -> str:
    """A segment condition's name in reports: "clean" or e.g. "10 dB"."""
    return "clean" if snr is None else f"{snr:g} dB"


def evaluate(
    truth: StreamTruth,
    detections: Sequence[TimedDetection],
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    until_s: float | None = None,
    keep_events: bool = True,
) -> dict[str, Any]:
    """All the stream metrics for one set of detections. `until_s`: judge only audio up to there
    (a run that stopped early): words whose window ends later and later detections are left out."""
    seconds = truth.seconds if until_s is None else min(until_s, truth.seconds)
    words = [w for w in truth.words if w.end_s + tolerance_s <= seconds + 1e-9]
    dets = sorted((d for d in detections if d.time_s <= seconds + 1e-9), key=lambda d: d.time_s)
    times = [d.time_s for d in dets]
    used = [False] * len(dets)
    hit_at: dict[int, float] = {}
    for wi, w in enumerate(words):
        if w.kind != "keyword":
            continue
        j = bisect.bisect_left(times, w.start_s - 1e-9)
        while j < len(dets) and dets[j].time_s <= w.end_s + tolerance_s + 1e-9:
            if not used[j] and dets[j].label == w.label:
                used[j] = True
                hit_at[wi] = dets[j].time_s
                break
            j += 1
    starts = [w.start_s for w in words]
    longest = max((w.end_s - w.start_s for w in words), default=0.0) + tolerance_s
    events: list[dict[str, Any]] = []
    fired: dict[int, int] = {}
    for j, d in enumerate(dets):
        if used[j]:
            continue
        lo = bisect.bisect_left(starts, d.time_s - longest - 1e-9)
        hi = bisect.bisect_right(starts, d.time_s + 1e-9)
        cands = [
            wi
            for wi in range(lo, hi)
            if words[wi].start_s <= d.time_s <= words[wi].end_s + tolerance_s + 1e-9
        ]
        same = [wi for wi in cands if words[wi].kind == "keyword" and words[wi].label == d.label]
        if same:
            kind, wi = "repeat", same[-1]
        elif cands:
            wi = min(cands, key=lambda k: (max(0.0, d.time_s - words[k].end_s), -words[k].start_s))
            kind = "distractor" if words[wi].kind == "distractor" else "confusion"
        else:
            kind, wi = "noise", -1
        if kind == "distractor":
            fired[wi] = fired.get(wi, 0) + 1
        ev: dict[str, Any] = {"time_s": round(d.time_s, 3), "label": d.label, "score": d.score, "kind": kind}
        if wi >= 0:
            w = words[wi]
            ev.update({"word": w.word, "word_start_s": w.start_s, "clip": w.clip})
        ev["condition"] = condition_name(_snr_at(truth, d.time_s))
        events.append(ev)

    hours = seconds / 3600.0
    counts = {k: sum(e["kind"] == k for e in events) for k in FALSE_KINDS}
    kws = [wi for wi, w in enumerate(words) if w.kind == "keyword"]
    dis = [wi for wi, w in enumerate(words) if w.kind == "distractor"]
    hits = len(hit_at)
    noise_seconds = sum(
        max(0.0, min(s.end_s, seconds) - s.start_s) for s in truth.stretches if s.start_s < seconds
    )

    def rate(n: int) -> float | None:
        return round(n / hours, 3) if hours > 0 else None

    report: dict[str, Any] = {
        "seconds": round(seconds, 3),
        "hours": round(hours, 5),
        "tolerance_s": tolerance_s,
        "keywords": len(kws),
        "hits": hits,
        "misses": len(kws) - hits,
        "hit_rate": round(hits / len(kws), 5) if kws else None,
        "frr": round(1 - hits / len(kws), 5) if kws else None,
        "distractors": len(dis),
        "distractor_words_fired": len(fired),
        "distractor_fire_fraction": round(len(fired) / len(dis), 5) if dis else None,
        "distractor_repeats": sum(v - 1 for v in fired.values()),
        "detections": len(dets),
        "false_accepts": {**counts, "total": sum(counts.values())},
        "fa_per_hour": rate(counts["distractor"] + counts["noise"]),
        "fa_per_hour_by_kind": {k: rate(v) for k, v in counts.items()},
        "noise_only_seconds": round(noise_seconds, 3),
        "noise_fa_per_noise_hour": round(counts["noise"] / (noise_seconds / 3600.0), 3)
        if noise_seconds
        else None,
        "repeats": counts["repeat"],
        "confusions": counts["confusion"],
        "latency_s": _latency(words, hit_at),
    }
    per_kw: dict[str, Any] = {}
    for k in truth.keywords:
        mine = [wi for wi in kws if words[wi].label == k]
        h = sum(wi in hit_at for wi in mine)
        fa = [e for e in events if e["label"] == k]
        fk = {kind: sum(e["kind"] == kind for e in fa) for kind in FALSE_KINDS}
        per_kw[k] = {
            "n": len(mine),
            "hits": h,
            "frr": round(1 - h / len(mine), 5) if mine else None,
            "false_accepts": fk,
            "fa_per_hour": rate(fk["distractor"] + fk["noise"]),
        }
    report["per_keyword"] = per_kw
    report["per_condition"] = per_condition(truth, words, hit_at, fired, events, seconds)
    confused: dict[str, int] = {}
    for e in events:
        if e["kind"] == "distractor":
            key = f"{e['word']} -> {e['label']}"
            confused[key] = confused.get(key, 0) + 1
    report["distractor_pairs"] = dict(sorted(confused.items(), key=lambda kv: -kv[1])[:20])
    if keep_events:
        report["false_accept_events"] = events
        report["missed"] = [
            {
                "start_s": words[wi].start_s,
                "end_s": words[wi].end_s,
                "word": words[wi].word,
                "clip": words[wi].clip,
                "condition": condition_name(words[wi].snr_db),
            }
            for wi in kws
            if wi not in hit_at
        ]
        report["hit_times"] = {str(wi): t for wi, t in hit_at.items()}
    return report


def _latency(words: Sequence[TruthWord], hit_at: dict[int, float]) -> dict[str, float | None]:
    """How long after a keyword's end its detection came (the end of the hop it fired after), over
    the hits: what a user waits for, before the device's own inference time. A longer smoothing
    window trades it for fewer misses and false accepts."""
    delays = sorted(hit_at[wi] - words[wi].end_s for wi in hit_at)
    if not delays:
        return {"median": None, "p90": None}

    def at(q: float) -> float:
        return round(delays[min(len(delays) - 1, int(q * len(delays)))], 3)

    return {"median": at(0.5), "p90": at(0.9)}


def _snr_at(truth: StreamTruth, t: float) -> float | None:
    for s in truth.segments:
        if s.start_s <= t < s.end_s:
            return s.snr_db
    return truth.segments[-1].snr_db if truth.segments else None


def per_condition(
    truth: StreamTruth,
    words: Sequence[TruthWord],
    hit_at: dict[int, float],
    fired: dict[int, int],
    events: Sequence[dict[str, Any]],
    seconds: float,
) -> dict[str, Any]:
    """Hit rate, distractor fire fraction and noise false accepts per listening condition."""
    out: dict[str, Any] = {}
    conds = []
    for s in truth.segments:
        c = condition_name(s.snr_db)
        if c not in conds:
            conds.append(c)
    for c in conds:
        secs = sum(
            max(0.0, min(s.end_s, seconds) - s.start_s)
            for s in truth.segments
            if condition_name(s.snr_db) == c
        )
        kw = [wi for wi, w in enumerate(words) if w.kind == "keyword" and condition_name(w.snr_db) == c]
        di = [wi for wi, w in enumerate(words) if w.kind == "distractor" and condition_name(w.snr_db) == c]
        h = sum(wi in hit_at for wi in kw)
        f = sum(wi in fired for wi in di)
        noise = sum(e["kind"] == "noise" and e["condition"] == c for e in events)
        out[c] = {
            "snr_db": next((s.snr_db for s in truth.segments if condition_name(s.snr_db) == c), None),
            "seconds": round(secs, 3),
            "keywords": len(kw),
            "hits": h,
            "hit_rate": round(h / len(kw), 5) if kw else None,
            "distractors": len(di),
            "distractor_words_fired": f,
            "distractor_fire_fraction": round(f / len(di), 5) if di else None,
            "noise_false_accepts": noise,
            "noise_fa_per_hour": round(noise / (secs / 3600.0), 3) if secs > 0 else None,
        }
    return out


def judge(truth: StreamTruth, run: Any, cfg: Any, tolerance_s: float = DEFAULT_TOLERANCE_S) -> dict[str, Any]:
    """evaluate() of the detections the recognizer setting `cfg` (replay.RecognizerConfig) makes on
    `run`'s stored scores (a scorer.ScoreRun), by the exact replay: no inference is run."""
    from .replay import replay_run

    dets = replay_run(run, cfg)
    return evaluate(
        truth, timed(dets, run.labels, run.hop_samples, run.sample_rate), tolerance_s, keep_events=False
    )


def default_threshold_grid() -> list[int]:
    """Thresholds swept for DET curves: coarse low, fine near the top where operating points live."""
    return sorted({*range(16, 160, 16), *range(160, 256, 4), 255})


def det_curves(
    truth: StreamTruth,
    run: Any,
    base: Any,
    thresholds: Sequence[int] | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    progress: bool = False,
) -> dict[str, Any]:
    """DET curves by replaying `run` (a scorer.ScoreRun: hops, scores, labels, quantisation) with
    every keyword's threshold set to each value of `thresholds`, the rest of `base` (a replay
    RecognizerConfig: window, suppression, release) kept. Overall and per keyword: FRR against
    false accepts per hour (distractor + noise), with each kind beside."""

    from tqdm import tqdm

    grid = list(thresholds) if thresholds is not None else default_threshold_grid()
    overall: list[dict[str, Any]] = []
    per_kw: dict[str, list[dict[str, Any]]] = {k: [] for k in truth.keywords}
    for t in tqdm(grid, desc="DET sweep", unit="threshold", disable=not progress):
        cfg = base.with_keyword_threshold(run.labels, t)
        rep = judge(truth, run, cfg, tolerance_s)
        bk = rep["fa_per_hour_by_kind"]
        overall.append(
            {
                "threshold": t,
                "frr": rep["frr"],
                "fa_per_hour": rep["fa_per_hour"],
                "fa_distractor_per_hour": bk["distractor"],
                "fa_noise_per_hour": bk["noise"],
                "repeats_per_hour": bk["repeat"],
                "confusions_per_hour": bk["confusion"],
                "distractor_fire_fraction": rep["distractor_fire_fraction"],
            }
        )
        for k, v in rep["per_keyword"].items():
            if k in per_kw:
                per_kw[k].append(
                    {
                        "threshold": t,
                        "frr": v["frr"],
                        "fa_per_hour": v["fa_per_hour"],
                        "fa_distractor": v["false_accepts"]["distractor"],
                        "fa_noise": v["false_accepts"]["noise"],
                    }
                )
    return {
        "x": "false accepts per hour (distractor + noise)",
        "y": "false reject rate",
        "hours": round(truth.seconds / 3600.0, 5),
        "tolerance_s": tolerance_s,
        "base_config": base.to_json() if hasattr(base, "to_json") else None,
        "overall": overall,
        "per_keyword": per_kw,
    }
