"""streams/metrics.py on hand-built truth and detections: hit, miss, repeat, confusion, distractor
and noise false accepts, per keyword, per condition, and the judged window of a run cut short."""

from __future__ import annotations

import pytest
from nanokws.streams.builder import Segment, StreamTruth, Stretch, TruthWord
from nanokws.streams.metrics import TimedDetection, evaluate, timed


def _word(start: float, end: float, word: str, snr: float | None = None) -> TruthWord:
    kind = "keyword" if word in ("yes", "no", "up") else "distractor"
    label = word if kind == "keyword" else "_unknown_"
    return TruthWord(start, end, word, kind, label, f"{word}/x.wav", "spk", snr, 0 if snr is None else 1)


def _truth() -> StreamTruth:
    words = [
        _word(1.0, 1.5, "yes"),  # hit at 1.8, repeat at 2.3
        _word(3.0, 3.5, "cat"),  # distractor -> "no" at 3.7
        _word(5.0, 5.5, "no"),  # "up" at 5.6 (confusion), then hit at 5.9
        _word(8.0, 8.5, "yes"),  # missed
        _word(21.0, 21.5, "cat", 10.0),  # distractor that does not fire
        _word(23.0, 23.4, "up", 10.0),  # hit at 23.5
    ]
    segments = [Segment(0.0, 20.0, None, "silence", 1.0), Segment(20.0, 40.0, 10.0, "white.wav", 300.0)]
    stretches = [Stretch(10.0, 20.0, "silence", None, 0), Stretch(24.0, 40.0, "noise", 10.0, 1)]
    return StreamTruth(16000, 40 * 16000, ["yes", "no", "up"], words, stretches, segments, {})


DETS = [
    TimedDetection(1.8, "yes"),
    TimedDetection(2.3, "yes"),
    TimedDetection(3.7, "no"),
    TimedDetection(5.6, "up"),
    TimedDetection(5.9, "no"),
    TimedDetection(15.0, "up"),  # silence alone
    TimedDetection(23.5, "up"),
    TimedDetection(30.0, "no"),  # noise alone
    TimedDetection(31.0, "no"),  # noise alone
]


def test_each_kind_of_outcome() -> None:
    r = evaluate(_truth(), DETS, tolerance_s=1.0)
    assert (r["keywords"], r["hits"], r["misses"]) == (4, 3, 1)
    assert r["frr"] == pytest.approx(0.25)
    assert r["false_accepts"] == {"distractor": 1, "noise": 3, "repeat": 1, "confusion": 1, "total": 6}
    assert r["hits"] + r["false_accepts"]["total"] == r["detections"] == len(DETS)
    assert (r["distractors"], r["distractor_words_fired"], r["distractor_fire_fraction"]) == (2, 1, 0.5)
    hours = 40 / 3600
    assert r["fa_per_hour"] == pytest.approx(4 / hours, rel=1e-3)  # distractor + noise
    assert r["fa_per_hour_by_kind"]["repeat"] == pytest.approx(1 / hours, rel=1e-3)
    assert r["noise_only_seconds"] == 26.0
    kinds = {(e["time_s"], e["kind"]) for e in r["false_accept_events"]}
    assert kinds == {
        (2.3, "repeat"),
        (3.7, "distractor"),
        (5.6, "confusion"),
        (15.0, "noise"),
        (30.0, "noise"),
        (31.0, "noise"),
    }
    assert [m["start_s"] for m in r["missed"]] == [8.0]
    assert r["distractor_pairs"] == {"cat -> no": 1}
    # Hits came 0.3 s ("yes"), 0.4 s ("no") and 0.1 s ("up") after their words' ends.
    assert r["latency_s"] == {"median": 0.3, "p90": 0.4}
    assert evaluate(_truth(), [], tolerance_s=1.0)["latency_s"] == {"median": None, "p90": None}
    pk = r["per_keyword"]
    assert (pk["yes"]["n"], pk["yes"]["hits"], pk["yes"]["false_accepts"]["repeat"]) == (2, 1, 1)
    assert pk["no"]["false_accepts"]["distractor"] == 1 and pk["no"]["false_accepts"]["noise"] == 2
    assert pk["up"]["false_accepts"]["confusion"] == 1 and pk["up"]["false_accepts"]["noise"] == 1
    pc = r["per_condition"]
    assert (
        pc["clean"]["hits"] == 2 and pc["clean"]["keywords"] == 3 and pc["clean"]["noise_false_accepts"] == 1
    )
    assert pc["10 dB"]["hit_rate"] == 1.0 and pc["10 dB"]["distractor_fire_fraction"] == 0.0
    assert pc["10 dB"]["noise_false_accepts"] == 2


def test_tolerance_and_wrong_label() -> None:
    truth = _truth()
    late = [TimedDetection(1.5 + 1.0, "yes")]  # exactly at end + tolerance: still a hit
    assert evaluate(truth, late, tolerance_s=1.0)["hits"] == 1
    too_late = [TimedDetection(1.5 + 1.01, "yes")]
    r = evaluate(truth, too_late, tolerance_s=1.0)
    assert r["hits"] == 0 and r["false_accepts"]["noise"] == 1
    early = [TimedDetection(0.99, "yes")]  # before the word starts
    assert evaluate(truth, early, tolerance_s=1.0)["hits"] == 0
    wrong = [TimedDetection(1.4, "no")]  # another keyword during "yes", and "yes" never fired
    r = evaluate(truth, wrong, tolerance_s=1.0)
    assert r["hits"] == 0 and r["confusions"] == 1 and r["misses"] == 4


def test_run_cut_short_judges_only_what_was_sent() -> None:
    r = evaluate(_truth(), DETS, tolerance_s=1.0, until_s=10.0)
    assert r["seconds"] == 10.0 and r["keywords"] == 3 and r["distractors"] == 1
    assert r["detections"] == 5  # those up to 10 s


def test_timed_uses_hop_end() -> None:
    class D:
        def __init__(self, hop: int, label: int, score: int) -> None:
            self.hop, self.label, self.score = hop, label, score

    (d,) = timed([D(49, 2, 200)], ["_silence_", "_unknown_", "yes"], 320, 16000)
    assert d == TimedDetection(1.0, "yes", 200, 49)


def test_the_default_tolerance_is_as_long_as_a_word_stays_in_the_window() -> None:
    """A 74-frame (1.48 s) model's detection 1.3 s after a word's end is that word's hit; judged with a
    one-second model's tolerance it would be a miss plus a false accept on noise."""
    from nanokws.streams.metrics import window_tolerance_s

    assert window_tolerance_s(49) == 1.0 and window_tolerance_s(60) == 1.2
    assert window_tolerance_s(74) == 1.48 and window_tolerance_s(74, 160, 16000) == 1.0
    truth = _truth()
    late = [TimedDetection(1.5 + 1.3, "yes")]
    hit = evaluate(truth, late, tolerance_s=window_tolerance_s(74))
    assert hit["hits"] == 1 and hit["false_accepts"]["noise"] == 0
    short = evaluate(truth, late, tolerance_s=window_tolerance_s(49))
    assert short["hits"] == 0 and short["false_accepts"]["noise"] == 1
