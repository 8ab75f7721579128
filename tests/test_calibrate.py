"""`nanokws calibrate` on a hand-built scored stream: the search finds the setting that meets the
targets with the fewest misses, each keyword's threshold is its own, and what it reports is the
replay of the chosen setting; the CLI refuses the test speakers."""

from __future__ import annotations

import numpy as np
import pytest
from nanokws.errors import NanokwsError
from nanokws.streams.builder import Segment, StreamTruth, Stretch, TruthWord
from nanokws.streams.calibrate import Targets, calibrate, judge, shortfall, source_text
from nanokws.streams.scorer import ScoreRun

LABELS = ["_silence_", "_unknown_", "yes", "no"]
HOP_S = 0.02  # 320 samples at 16 kHz
STRIDE = 2


def _scored(events: list[tuple[float, float, str, str, int]], seconds: float) -> tuple[StreamTruth, ScoreRun]:
    """A stream of words (start, end, word, kind, peak probability of the label it drives) and the
    int8 scores a model would give: the driven label's probability at `peak` for the 0.8 s after
    the word starts, everything else silence."""
    n = int(seconds / (HOP_S * STRIDE))
    hops = (np.arange(n) * STRIDE + STRIDE - 1).astype(np.uint32)
    probs = np.zeros((n, len(LABELS)))
    probs[:, 0] = 1.0
    words = []
    for start, end, word, kind, peak in events:
        label = word if kind == "keyword" else "_unknown_"
        words.append(TruthWord(start, end, word, kind, label, f"{word}/a.wav", "s", None, 0))
        driven = word if kind == "keyword" else "yes"  # every distractor looks a bit like "yes"
        t = (hops + 1) * HOP_S
        on = (t >= start) & (t <= start + 0.8)
        probs[on] = 0.0
        probs[on, LABELS.index(driven)] = peak / 255.0
        probs[on, 1] = 1.0 - peak / 255.0
    # Output quantisation of a softmax: scale 1/256, zero point -128.
    scores = np.clip(np.round(probs * 256.0) - 128, -128, 127).astype(np.int8)
    truth = StreamTruth(
        16000,
        int(seconds * 16000),
        ["yes", "no"],
        words,
        [Stretch(0.0, 1.0, "silence", None, 0)],
        [Segment(0.0, seconds, None, "silence", 1.0)],
        {},
    )
    run = ScoreRun(
        hops=hops,
        scores=scores,
        detections=[],
        labels=list(LABELS),
        output_scale=1 / 256,
        output_zero_point=-128,
        sample_rate=16000,
        hop_samples=320,
        streaming=False,
        config={},
        model_hash="x",
        model_name="hand",
        audio_seconds=seconds,
    )
    return truth, run


def _stream() -> tuple[StreamTruth, ScoreRun]:
    events = []
    t = 1.5
    for _ in range(20):
        # Keywords: "yes" peaks at 240, "no" only at 150; distractors drive "yes" to 200.
        events.append((t, t + 0.5, "yes", "keyword", 240))
        events.append((t + 2.0, t + 2.5, "no", "keyword", 150))
        events.append((t + 4.0, t + 4.5, "cat", "distractor", 200))
        t += 6.0
    return _scored(events, t + 2.0)


def test_search_meets_the_targets_with_per_keyword_thresholds() -> None:
    truth, run = _stream()
    result = calibrate(truth, run, Targets(distractor_fraction=0.0))
    cfg, val = result["config"], result["validation"]
    assert result["met"] and val["frr"] == 0.0 and val["distractor_fire_fraction"] == 0.0
    assert val["repeats"] == 0 and val["hits"] == 40
    yes, no = cfg.thresholds[2], cfg.thresholds[3]
    # "yes" must sit above the distractors' 200 and at most its own 240; "no" at most 150: one
    # threshold for both could not hit every "no" without letting the distractors through.
    assert 200 < yes <= 240 and no <= 150
    assert judge(truth, run, cfg, 1.0) == val  # what it reports is the replay of what it chose
    assert result["search"]["global"]["frr"] > 0.0  # the per-keyword pass is what got "no" back
    assert (
        "FRR 0.0%" in source_text(result, "validation", 5.0)
        and len(source_text(result, "validation", 5)) <= 96
    )


def test_unreachable_targets_are_reported_not_hidden() -> None:
    truth, run = _scored(
        [(1.5 + 3 * i, 2.0 + 3 * i, "cat", "distractor", 255) for i in range(10)]
        + [(61.5, 62.0, "yes", "keyword", 255)],
        70.0,
    )
    result = calibrate(truth, run, Targets(distractor_fraction=0.0))
    # Distractors as sure as the keyword: firing none means missing it too; the search keeps the
    # targets (no distractor) and says what that costs.
    assert result["met"] and result["validation"]["frr"] == 1.0
    assert (
        shortfall(
            {"distractor_fire_fraction": 0.5, "repeats": 0, "noise_fa_per_noise_hour": 0.0},
            Targets(distractor_fraction=0.02),
        )
        > 0
    )


def test_cli_refuses_the_test_speakers(capsys: pytest.CaptureFixture[str]) -> None:
    from nanokws.cli import main

    with pytest.raises(SystemExit):
        main(["calibrate", "--model", "m.tflite", "--split", "test", "--out", "x"])
    assert "invalid choice: 'test'" in capsys.readouterr().err


def test_threshold_search_keeps_the_library_settings_and_one_threshold() -> None:
    from nanokws.streams.replay import RecognizerConfig

    truth, run = _stream()
    full = calibrate(truth, run, Targets(distractor_fraction=0.0))
    result = calibrate(truth, run, Targets(distractor_fraction=0.0), search="threshold")
    cfg, val = result["config"], result["validation"]
    base = RecognizerConfig.defaults(len(LABELS), run.window_frames)
    assert (cfg.window, cfg.release, cfg.suppression_ms) == (base.window, base.release, base.suppression_ms)
    assert cfg.thresholds[:2] == base.thresholds[:2]  # '_' labels never fire: left as they were
    yes, no = cfg.thresholds[2], cfg.thresholds[3]
    # One threshold for both: above the distractors' 200 to meet the target, so every "no" (150)
    # is missed, which the per-keyword search of `full` avoids.
    assert yes == no and 200 < yes <= 240
    assert result["met"] and val["hits"] == 20 and val["frr"] == 0.5
    assert full["validation"]["frr"] == 0.0
    assert judge(truth, run, cfg, 1.0) == val
    assert result["search"]["kind"] == "threshold" and result["search"]["per_keyword_steps_taken"] == 0
    assert "one threshold" in source_text(result, "validation", 5.0)
    with pytest.raises(NanokwsError, match="search 'both'"):
        calibrate(truth, run, search="both")


def test_window_search_and_the_latency_cap() -> None:
    """The smoothing window is chosen with the threshold, and never past the latency cap."""
    from nanokws.streams.calibrate import WINDOWS

    # Keywords hold "yes" at 220 for 0.8 s; each distractor makes "yes" sure (255) for one inference
    # only. Without smoothing that spike fires at any threshold; averaged over 2+ inferences it does not.
    events = []
    t = 1.5
    for _ in range(20):
        events.append((t, t + 0.5, "yes", "keyword", 220))
        events.append((t + 3.0, t + 3.5, "cat", "distractor", 0))
        t += 6.0
    truth, run = _scored(events, t + 2.0)
    times = (run.hops + 1) * HOP_S
    for start, _end, _w, kind, _p in events:
        if kind == "distractor":
            j = int(np.searchsorted(times, start + 0.2))
            run.scores[j, :] = -128
            run.scores[j, LABELS.index("yes")] = 127
    one = calibrate(truth, run, Targets(distractor_fraction=0.0), search="threshold")
    assert one["config"].window == 4  # the library's: already averages the spike away
    result = calibrate(truth, run, Targets(distractor_fraction=0.0, latency_s=5.0), search="window")
    cfg, val = result["config"], result["validation"]
    assert result["search"]["kind"] == "window" and result["search"]["windows"] == sorted(WINDOWS)
    assert result["met"] and val["frr"] == 0.0 and val["distractor_fire_fraction"] == 0.0
    # Window 1 lets every spike through; from 2 up all meet the targets, and of equals the shortest
    # (the earliest answer) is kept.
    assert cfg.window == 2 and len(set(cfg.thresholds[2:])) == 1
    assert judge(truth, run, cfg, 1.0) == val
    # A latency cap under what window 2 answers in: no setting that hits a keyword meets it, so the
    # search keeps the cap and says what that costs (every keyword missed), as for any target.
    median = val["latency_s"]["median"]
    capped = calibrate(truth, run, Targets(distractor_fraction=0.0, latency_s=median - 0.05), search="window")
    assert capped["validation"]["frr"] == 1.0
    assert "window + threshold" in source_text(result, "validation", 5.0)
