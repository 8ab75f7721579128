"""The recognizer (firmware/lib/recognizer): hysteresis (one word, one detection), and
nanokws.streams.replay equal to the C bit for bit — the C recognizer alone (a small driver built
here under ASan/UBSan) on synthetic streams, and the host firmware over the protocol (SCORES in,
DETECTIONs compared) under configurations set with SET_CONFIG; model_config.h's NK_MODEL_REC_*
are what the firmware starts with."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from fixtures.firmware_io import FW_MODEL, HOP, build_fw, one_reply, read_model_config, talk
from nanokws.cheader import read_int_defines
from nanokws.errors import NanokwsError
from nanokws.harness import protocol as P
from nanokws.paths import FIRMWARE_LIB_DIR
from nanokws.streams.replay import (
    DEFAULT_RELEASE,
    DEFAULT_SUPPRESSION_MS,
    RECOGNIZER_HEADER,
    Detection,
    RecognizerConfig,
    RecognizerFile,
    load_recognizer_json,
    probabilities,
    replay,
    save_recognizer_json,
)

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc)")

LABELS = ["_silence_", "_unknown_", "yes", "no"]
OUT_SCALE, OUT_ZP = 1.0 / 256.0, -128  # the fixture model's output quantisation
QUANT = {"output_scale": OUT_SCALE, "output_zero_point": OUT_ZP, "hop_samples": HOP, "sample_rate": 16000}

DRIVER = r"""
/* Feeds nk_recognizer_process from stdin and prints its detections (tests/test_recognizer.py).
 * stdin: L window suppression_ms release scale_q16 zero_point hop_samples sample_rate,
 *        L label names, L thresholds, n, then n rows: hop score[0..L-1].
 * stdout: "hop label score" per detection. */
#include <stdio.h>

#include "nk_recognizer.h"

int main(void) {
    unsigned L, window, suppression, release, hop_samples, rate, n;
    long scale_q16, zero_point;
    if (scanf("%u %u %u %u %ld %ld %u %u", &L, &window, &suppression, &release, &scale_q16, &zero_point,
              &hop_samples, &rate) != 8 || L == 0 || L > NK_REC_MAX_LABELS) {
        return 2;
    }
    static char names[NK_REC_MAX_LABELS][32];
    const char *labels[NK_REC_MAX_LABELS];
    for (unsigned i = 0; i < L; i++) {
        if (scanf("%31s", names[i]) != 1) {
            return 2;
        }
        labels[i] = names[i];
    }
    static nk_recognizer_t rec;
    int32_t scale = (int32_t)scale_q16, zp = (int32_t)zero_point;
    if (nk_recognizer_init(&rec, labels, L, scale, zp, hop_samples, rate) != 0 ||
        nk_recognizer_set_window(&rec, window) != 0 || nk_recognizer_set_release(&rec, release) != 0) {
        return 3;
    }
    nk_recognizer_set_suppression_ms(&rec, (uint16_t)suppression);
    for (unsigned i = 0; i < L; i++) {
        unsigned t;
        if (scanf("%u", &t) != 1 || nk_recognizer_set_threshold(&rec, i, t) != 0) {
            return 3;
        }
    }
    if (scanf("%u", &n) != 1) {
        return 2;
    }
    for (unsigned j = 0; j < n; j++) {
        unsigned long hop;
        int8_t scores[NK_REC_MAX_LABELS];
        if (scanf("%lu", &hop) != 1) {
            return 2;
        }
        for (unsigned i = 0; i < L; i++) {
            int q;
            if (scanf("%d", &q) != 1) {
                return 2;
            }
            scores[i] = (int8_t)q;
        }
        nk_detection_t d;
        if (nk_recognizer_process(&rec, scores, (uint32_t)hop, &d)) {
            printf("%lu %u %u\n", (unsigned long)d.hop, (unsigned)d.label, (unsigned)d.score);
        }
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc)")
    work = tmp_path_factory.mktemp("rec_driver")
    (work / "driver.c").write_text(DRIVER)
    exe = work / "driver"
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
    rec = FIRMWARE_LIB_DIR / "recognizer"
    cmd = ["cc", "-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wstrict-prototypes",
           *san, f"-I{rec}", "driver.c", str(rec / "nk_recognizer.c"), "-o", str(exe)]
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return exe


def c_recognizer(
    exe: Path, scores: np.ndarray, hops: np.ndarray, cfg: RecognizerConfig, labels: list[str] = LABELS
) -> list[Detection]:
    """The C recognizer's detections on `scores` after `hops` under `cfg`."""
    scale_q16 = int(float(np.float32(OUT_SCALE)) * 255.0 * 65536.0 + 0.5)
    head = [len(labels), cfg.window, cfg.suppression_ms, cfg.release, scale_q16, OUT_ZP, HOP, 16000]
    lines = [" ".join(map(str, head)), " ".join(labels), " ".join(map(str, cfg.thresholds))]
    lines.append(str(len(hops)))
    lines += [" ".join(map(str, [h, *row])) for h, row in zip(hops.tolist(), scores.tolist(), strict=True)]
    text = "\n".join(lines) + "\n"
    proc = subprocess.run([str(exe)], input=text, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", (proc.returncode, proc.stderr[-2000:])
    return [Detection(*map(int, line.split())) for line in proc.stdout.splitlines()]


# --- synthetic streams: the smoothed probabilities are what the test says they are ----------------

_P_OF_Q = probabilities(np.arange(-128, 128), OUT_SCALE, OUT_ZP)


def q_of(p: int) -> int:
    """The int8 score whose probability is closest to p (0..255)."""
    return int(np.argmin(np.abs(_P_OF_Q - p))) - 128


def stream(*segments: tuple[int, dict[str, int]]) -> tuple[np.ndarray, np.ndarray]:
    """(scores, hops) at stride 2 from the first inference (hop 49): each segment is a number of
    inferences with the listed labels' probabilities (others 0)."""
    rows = []
    for count, probs in segments:
        row = [q_of(probs.get(label, 0)) for label in LABELS]
        rows += [row] * count
    scores = np.array(rows, np.int8)
    return scores, 49 + 2 * np.arange(len(rows))


WINDOW1 = {"window": 1}  # smoothed = the inference's own probability: segment boundaries are exact
# The first inference hop (stride 2) at or past the default suppression time after a detection:
# with 20 ms hops 38 for 750 ms, 50 for 1000 ms. The hop's length comes from the frontend's config,
# in the recognizer's own exact arithmetic (ms x sample rate against samples x 1000: no rounding).
FIRST_OUTSIDE = 2 * -(-DEFAULT_SUPPRESSION_MS * QUANT["sample_rate"] // (2 * HOP * 1000))


def both(driver: Path, scores: np.ndarray, hops: np.ndarray, cfg: RecognizerConfig) -> list[Detection]:
    """The C's detections, after checking that replay() gives the same."""
    got = c_recognizer(driver, scores, hops, cfg)
    assert replay(scores, hops, LABELS, cfg, **QUANT) == got
    return got


def test_defaults_come_from_the_c_header() -> None:
    h = read_int_defines(RECOGNIZER_HEADER, "recognizer")
    cfg = RecognizerConfig.defaults(4)
    assert cfg.thresholds == (h["NK_REC_DEFAULT_THRESHOLD"],) * 4
    assert (cfg.window, cfg.suppression_ms, cfg.release) == (
        h["NK_REC_DEFAULT_WINDOW"], h["NK_REC_DEFAULT_SUPPRESSION_MS"], h["NK_REC_DEFAULT_RELEASE"],
    )
    # Hysteresis is on by default: the release level is well below the threshold.
    assert cfg.release < cfg.thresholds[0] // 2
    assert RecognizerConfig.from_json(cfg.to_json()) == cfg
    assert RecognizerConfig.from_json({"thresholds": [1, 2]}) == RecognizerConfig((1, 2))
    for bad in ({"thresholds": [256]}, {"thresholds": [1], "window": 0}, {"thresholds": [1], "window": 33},
                {"thresholds": [1], "release": -1}, {"thresholds": [1], "suppression_ms": 65536},
                {"thresholds": [1.5]}, {"thresholds": []}, {"window": 4}, {"thresholds": [True]}):
        with pytest.raises(NanokwsError, match="recognizer"):
            RecognizerConfig.from_json(bad)


def test_a_long_word_fires_once(driver: Path) -> None:
    # "yes" stays up for 2 s (50 inferences), far longer than the default suppression (1 s).
    scores, hops = stream((5, {"_silence_": 250}), (50, {"yes": 230}), (10, {"_silence_": 250}))
    cfg = RecognizerConfig.defaults(4)
    p_word = int(_P_OF_Q[q_of(230) + 128])
    # Smoothed over 4 inferences: the word's 4th inference reaches the threshold.
    assert both(driver, scores, hops, cfg) == [Detection(int(hops[8]), 2, p_word)]
    # Before the release level existed (255: always armed) the same word fired three times.
    old = both(driver, scores, hops, RecognizerConfig((180,) * 4, release=255))
    assert len(old) >= 2 and {d.label for d in old} == {2}
    assert old[1].hop - old[0].hop == FIRST_OUTSIDE  # the first inference outside the suppression time


def test_a_dip_to_the_release_level_rearms(driver: Path) -> None:
    cfg = RecognizerConfig((180,) * 4, **WINDOW1)
    word, gap = (30, {"yes": 230}), (3, {"_silence_": 250})
    # The dip (3 inferences at 0) comes after the suppression time: the second word fires too.
    scores, hops = stream(word, gap, word)
    dets = both(driver, scores, hops, cfg)
    assert [(d.hop, d.label) for d in dets] == [(int(hops[0]), 2), (int(hops[33]), 2)]
    # A dip that stays above the release level (100 > 64) is part of the same word: no second fire.
    scores, hops = stream(word, (3, {"yes": 100}), word)
    assert [d.hop for d in both(driver, scores, hops, cfg)] == [int(hops[0])]
    # Exactly at the release level re-arms ("at or below").
    scores, hops = stream(word, (1, {"yes": DEFAULT_RELEASE}), word)
    p_rel = int(probabilities(np.array([q_of(DEFAULT_RELEASE)]), OUT_SCALE, OUT_ZP)[0])
    if p_rel <= DEFAULT_RELEASE:  # the int8 grid may not hit it; then this case says nothing
        assert len(both(driver, scores, hops, cfg)) == 2
    # Re-armed inside the suppression time (dip right after the detection), up again before it
    # ends: fires at the first inference outside it.
    scores, hops = stream((2, {"yes": 230}), (2, {"_silence_": 250}), (40, {"yes": 230}))
    dets = both(driver, scores, hops, cfg)
    assert [d.hop - dets[0].hop for d in dets] == [0, FIRST_OUTSIDE]


def test_other_labels_still_respect_the_suppression_time(driver: Path) -> None:
    cfg = RecognizerConfig((180,) * 4, **WINDOW1)
    # "yes" for 3 inferences, then "no" at once and for 1.2 s: "no" waits out the suppression time.
    scores, hops = stream((3, {"yes": 230}), (30, {"no": 220}), (5, {"_silence_": 250}))
    dets = both(driver, scores, hops, cfg)
    assert [(d.label, d.hop - dets[0].hop) for d in dets] == [(2, 0), (3, FIRST_OUTSIDE)]
    # With the suppression time off, the neighbour fires at its first inference.
    dets = both(driver, scores, hops, RecognizerConfig((180,) * 4, suppression_ms=0, **WINDOW1))
    assert [(d.label, d.hop - dets[0].hop) for d in dets] == [(2, 0), (3, 6)]
    # Labels starting with '_' never fire, whatever their threshold.
    scores, hops = stream((20, {"_unknown_": 255}))
    assert both(driver, scores, hops, RecognizerConfig((0, 0, 255, 255))) == []


def _random_stream(rng: np.random.Generator, n: int, num_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """Words: runs of one label high (with jitter and dips), over a background of one '_' label."""
    scores = np.full((n, num_labels), -128, np.int64)
    scores[:, 0] = 100
    j = 0
    while j < n:
        j += int(rng.integers(0, 40))
        length = int(rng.integers(1, 60))
        k = int(rng.integers(0, num_labels))
        scores[j : j + length, k] = rng.integers(-60, 128, size=len(scores[j : j + length]))
        scores[j : j + length, 0] = -128
        j += length
    scores += rng.integers(-20, 21, size=scores.shape) * (rng.random(scores.shape) < 0.3)
    hops = 49 + np.cumsum(rng.integers(1, 6, size=n)) - 1
    return np.clip(scores, -128, 127).astype(np.int8), hops


def test_replay_equals_the_c_recognizer_on_random_streams(driver: Path) -> None:
    rng = np.random.default_rng(14)
    labels = ["_silence_", "_unknown_", "yes", "no", "up", "down", "left"]
    checked = 0
    for case in range(40):
        scores, hops = _random_stream(rng, 1500, len(labels))
        thresholds = tuple(int(t) for t in rng.choice([0, 1, 60, 128, 150, 180, 200, 254, 255], len(labels)))
        cfg = RecognizerConfig(
            thresholds=thresholds if case % 4 else (int(rng.integers(0, 256)),) * len(labels),
            window=int(rng.choice([1, 2, 3, 4, 7, 32])),
            suppression_ms=int(rng.choice([0, 20, 39, 40, 41, 300, 750, 2000, 65535])),
            release=int(rng.choice([0, 10, 64, 128, 179, 180, 181, 255])),
        )
        want = c_recognizer(driver, scores, hops, cfg, labels)
        got = replay(scores, hops, labels, cfg, **QUANT)
        assert got == want, (case, cfg)
        checked += len(want)
    assert checked > 200  # the streams fire: the comparison is not of empty lists


def test_replay_is_fast_enough_for_sweeps() -> None:
    """One hour at stride 2 (90 000 inferences, 12 labels) in well under a second per config."""
    rng = np.random.default_rng(1)
    labels = ["_silence_", "_unknown_", *[f"k{i}" for i in range(10)]]
    scores, _ = _random_stream(rng, 90_000, len(labels))
    hops = 49 + 2 * np.arange(len(scores))
    for cfg in (RecognizerConfig.defaults(12), RecognizerConfig((120,) * 12, window=2, release=30)):
        t0 = time.process_time()
        dets = replay(scores, hops, labels, cfg, **QUANT)
        spent = time.process_time() - t0
        assert dets and spent < 1.0, spent


def test_replay_rejects_what_the_firmware_cannot_have() -> None:
    cfg = RecognizerConfig.defaults(4)
    scores, hops = stream((3, {"yes": 200}))
    with pytest.raises(NanokwsError, match="labels"):
        replay(scores[:, :3], hops, LABELS, cfg, **QUANT)
    with pytest.raises(NanokwsError, match="increase"):
        replay(scores, hops[::-1].copy(), LABELS, cfg, **QUANT)
    with pytest.raises(NanokwsError, match="thresholds"):
        replay(scores, hops, LABELS, RecognizerConfig.defaults(3), **QUANT)
    with pytest.raises(NanokwsError, match="int8"):
        replay(scores.astype(np.int16) * 3, hops, LABELS, cfg, **QUANT)
    assert replay(scores[:0], hops[:0], LABELS, cfg, **QUANT) == []


# --- the host firmware over the protocol ---------------------------------------------------------


def _noise(rng: np.random.Generator, seconds: float, level: float) -> np.ndarray:
    return np.clip(rng.normal(0, level, int(seconds * 16000)), -32768, 32767).astype(np.int16)


def _audio(seed: int) -> np.ndarray:
    """Quiet stretches and loud noise bursts long enough to outlast the suppression time (the
    fixture model's "yes" rises with the level, "no" with spectral tilt)."""
    rng = np.random.default_rng(seed)
    parts = [np.zeros(8000, np.int16)]
    for _ in range(6):
        parts.append(_noise(rng, float(rng.uniform(0.3, 2.5)), float(rng.uniform(2000, 12000))))
        parts.append(np.zeros(int(rng.integers(1000, 20000)), np.int16))
    return np.concatenate(parts)


def _config_frames(cfg: RecognizerConfig, stride: int) -> list[bytes]:
    frames = [
        P.req_set_config(1, P.ConfigKey.STREAM_SCORES, 1),
        P.req_set_config(2, P.ConfigKey.INFERENCE_STRIDE, stride),
        P.req_set_config(3, P.ConfigKey.SMOOTHING, cfg.window),
        P.req_set_config(4, P.ConfigKey.SUPPRESSION, cfg.suppression_ms),
        P.req_set_config(5, P.ConfigKey.RELEASE, cfg.release),
    ]
    return frames + [P.req_set_config(6, P.ConfigKey.THRESHOLD, k, t) for k, t in enumerate(cfg.thresholds)]


def _stream_through(
    fw: Path, audio: np.ndarray, setup: list[bytes]
) -> tuple[list[P.Message], np.ndarray, np.ndarray, list[Detection]]:
    """Stream `audio` after `setup`: (messages, SCORES' int8 rows, their hops, DETECTIONs)."""
    offsets = range(0, audio.size, 500)
    audio_frames = [P.req_audio(100 + i % 100, audio[o : o + 500]) for i, o in enumerate(offsets)]
    msgs = talk(fw, *setup, *audio_frames, P.req_info(250))
    assert not [m for m in msgs if isinstance(m, P.Error)]
    got_scores = [m for m in msgs if isinstance(m, P.Scores)]
    scores = np.array([m.scores for m in got_scores], np.int8)
    hops = np.array([m.hop for m in got_scores], np.int64)
    dets = [Detection(m.hop, m.label, m.score) for m in msgs if isinstance(m, P.Detection)]
    return msgs, scores, hops, dets


FIRMWARE_CONFIGS = [
    (2, RecognizerConfig.defaults(4)),
    (2, RecognizerConfig((180,) * 4, release=255)),  # hysteresis off: the behaviour before RELEASE
    (3, RecognizerConfig((0, 0, 170, 150), window=2, suppression_ms=300, release=100)),
    (1, RecognizerConfig((255, 255, 140, 120), window=7, suppression_ms=0, release=10)),
    (2, RecognizerConfig((0, 0, 200, 90), window=1, suppression_ms=1500, release=180)),
]


@pytest.fixture(scope="module")
def fw() -> Path:
    return build_fw("asan", FW_MODEL)


def test_replay_equals_the_host_firmware(fw: Path) -> None:
    """DETECTION events of the firmware = replay() over its own SCORES events, for configurations
    set with SET_CONFIG (the fixture model; scores as the firmware computed them)."""
    model = read_model_config(FW_MODEL)
    quant = {"output_scale": model.output_scale, "output_zero_point": model.output_zero_point,
             "hop_samples": HOP, "sample_rate": 16000}
    seen: dict[int, list[Detection]] = {}
    for seed in (3, 4):
        audio = _audio(seed)
        for n, (stride, cfg) in enumerate(FIRMWARE_CONFIGS):
            msgs, scores, hops, dets = _stream_through(fw, audio, _config_frames(cfg, stride))
            info = one_reply(msgs, 250)
            assert isinstance(info, P.Info)
            assert info.data["config"]["release"] == cfg.release
            assert info.data["config"]["thresholds"] == list(cfg.thresholds)
            acks = [m for m in msgs if isinstance(m, P.AudioAck)]
            assert len(scores) == acks[-1].inferences_total > 0  # every inference reported
            assert replay(scores, hops, model.labels, cfg, **quant) == dets, (seed, stride, cfg)
            seen.setdefault(n, []).extend(dets)
    assert all(seen[n] for n in range(len(FIRMWARE_CONFIGS))), "every configuration should detect something"
    # The long bursts fire repeatedly without hysteresis and once per burst with it.
    assert len(seen[1]) > len(seen[0])


def test_the_firmware_starts_with_model_config_recognizer_settings(fw: Path, tmp_path: Path) -> None:
    """A model_config.h with NK_MODEL_REC_* (as `nanokws compile --recognizer` writes it): INFO
    reports those settings and their source, and detections follow them without any SET_CONFIG."""
    from nanokws.cbuild import build_programs
    from nanokws.export.model_config import read_recognizer_defines, render_recognizer_defines

    model_dir = tmp_path / "model"
    shutil.copytree(FW_MODEL, model_dir)
    cfg = RecognizerConfig((7, 8, 150, 140), window=3, suppression_ms=500, release=99)
    rec_json = tmp_path / "recognizer.json"
    save_recognizer_json(rec_json, cfg, LABELS, "test calibration (val speakers)")
    loaded = load_recognizer_json(rec_json)
    assert loaded == RecognizerFile(cfg, tuple(LABELS), "test calibration (val speakers)")
    header = model_dir / "model_config.h"
    text = header.read_text()
    block = "\n".join(render_recognizer_defines(LABELS, loaded)) + "\n\n"
    assert read_recognizer_defines(block) == cfg  # the header says what was rendered
    header.write_text(text.replace("#ifdef __cplusplus", block + "#ifdef __cplusplus", 1))
    exe = build_programs("asan", ["nanokws_fw"], model_dir=model_dir, out_dir=tmp_path / "b")["nanokws_fw"]

    audio = _audio(5)
    setup = [P.req_set_config(1, P.ConfigKey.STREAM_SCORES, 1)]
    msgs, scores, hops, dets = _stream_through(exe, audio, setup)
    info = one_reply(msgs, 250)
    assert isinstance(info, P.Info)
    assert info.data["config"] == {
        "inference_stride": 2, "smoothing": 3, "thresholds": [7, 8, 150, 140],
        "suppression_ms": 500, "release": 99, "stream_scores": 1,
    }
    assert info.config_source == "test calibration (val speakers)"
    assert dets and replay(scores, hops, LABELS, cfg, **QUANT) == dets
    assert dets != replay(scores, hops, LABELS, RecognizerConfig.defaults(4), **QUANT)
    # The fixture's own model_config.h (no NK_MODEL_REC_*) starts with the library's defaults.
    (info_plain,) = talk(fw, P.req_info(1))
    assert isinstance(info_plain, P.Info) and info_plain.config_source == "library defaults"
    assert info_plain.data["config"]["release"] == DEFAULT_RELEASE


@needs_cc
def test_a_thresholds_list_of_the_wrong_length_does_not_compile(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(FW_MODEL, model_dir)
    header = model_dir / "model_config.h"
    block = "#define NK_MODEL_REC_THRESHOLDS { 1, 2, 3 }\n"
    header.write_text(header.read_text().replace("#ifdef __cplusplus", block + "#ifdef __cplusplus", 1))
    incs = [f"-I{d}" for d in sorted(FIRMWARE_LIB_DIR.iterdir()) if d.is_dir()] + [f"-I{model_dir}"]
    proc = subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", *incs, "-fsyntax-only",
                           str(FIRMWARE_LIB_DIR / "kws" / "nk_kws.c")], capture_output=True, text=True)
    assert proc.returncode != 0 and "one value per label" in proc.stderr


def test_recognizer_json_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rec.json"
    path.write_text('{"labels": ["_silence_", "yes"], "thresholds": {"yes": 200}, "release": 20}')
    loaded = load_recognizer_json(path)
    assert loaded.config == RecognizerConfig((180, 200), release=20) and loaded.source == "rec.json"
    for text, what in (
        ("not json", "cannot read"),
        ('{"thresholds": {"yes": 1}}', "need 'labels'"),
        ('{"labels": ["a"], "thresholds": {"b": 1}}', "not in 'labels'"),
        ('{"labels": ["a", "b"], "thresholds": [1]}', "1 thresholds for 2 labels"),
        ('{"thresholds": [1], "window": 99}', "window 99"),
    ):
        path.write_text(text)
        with pytest.raises(NanokwsError, match=what) as err:
            load_recognizer_json(path)
        assert str(path) in str(err.value)
    with pytest.raises(NanokwsError, match="model has"):
        from nanokws.export.model_config import render_recognizer_defines

        render_recognizer_defines(["x", "y"], RecognizerFile(RecognizerConfig((1, 2)), ("a", "b"), "s"))


def test_real_words_back_to_back_fire_once(shared_speech_commands: Path, tmp_path: Path) -> None:
    """The shipped model on real keywords played back to back with 0.2-0.8 s of silence between
    clips (the host firmware, default settings): every word fires at most once, and replaying its
    own scores without the release level (255) shows the repeats that hysteresis removed."""
    from nanokws.data import read_wav
    from nanokws.harness.launch import build_firmware
    from nanokws.paths import FIRMWARE_MODEL_DIR

    exe = build_firmware(FIRMWARE_MODEL_DIR / "model.tflite", "host", tmp_path)
    (info,) = talk(exe, P.req_info(1))
    assert isinstance(info, P.Info)
    labels = info.labels
    rng = np.random.default_rng(14)
    parts, starts, words = [np.zeros(8000, np.int16)], [], []
    for n in range(24):
        word = [x for x in labels if not x.startswith("_")][n % (len(labels) - 2)]
        clips = sorted((shared_speech_commands / word).glob("*.wav"))
        starts.append(sum(p.size for p in parts))
        words.append(labels.index(word))
        parts.append(read_wav(clips[int(rng.integers(len(clips)))]).astype(np.int16))
        parts.append(np.zeros(int(rng.uniform(0.2, 0.8) * 16000), np.int16))
    audio = np.concatenate(parts)
    _, scores, hops, dets = _stream_through(exe, audio, [P.req_set_config(1, P.ConfigKey.STREAM_SCORES, 1)])
    model = read_model_config(FIRMWARE_MODEL_DIR)
    quant = {"output_scale": model.output_scale, "output_zero_point": model.output_zero_point,
             "hop_samples": HOP, "sample_rate": 16000}
    from nanokws.export.model_config import read_recognizer_defines

    # The settings the built firmware starts with: its compiled model_config.h (beside the build).
    start_up = read_recognizer_defines((exe.parents[1] / "model" / "model_config.h").read_text())
    assert replay(scores, hops, labels, start_up, **quant) == dets

    def per_word(found: list[Detection]) -> list[list[int]]:
        """Labels detected while each word was the newest audio (from its start to the next's)."""
        out: list[list[int]] = [[] for _ in starts]
        for d in found:
            out[int(np.searchsorted(starts, d.hop * HOP, side="right")) - 1].append(d.label)
        return out

    fired = per_word(dets)
    assert all(len(set(f)) == len(f) for f in fired), fired  # 0 repeats: no label twice for one word
    assert sum(len(f) > 1 for f in fired) <= 2, fired  # a neighbouring label after the suppression time
    assert sum(w in f for f, w in zip(fired, words, strict=True)) >= 0.8 * len(words), fired
    # (750 ms: the suppression time the repeats were first measured with.)
    no_release = RecognizerConfig((180,) * len(labels), release=255, suppression_ms=750)
    old = per_word(replay(scores, hops, labels, no_release, **quant))
    assert sum(len(set(f)) < len(f) for f in old) >= 3, old  # without hysteresis, words fire twice


def test_the_default_suppression_lasts_as_long_as_a_word_stays_in_the_window() -> None:
    """One word, one detection: the library's default suppression is the model's window, at least
    NK_REC_DEFAULT_SUPPRESSION_MS (a one-second window's); model_config.h gets it from compile."""
    from nanokws.export.model_config import read_recognizer_defines, render_recognizer_defines
    from nanokws.streams.replay import DEFAULT_SUPPRESSION_MS, window_suppression_ms

    assert DEFAULT_SUPPRESSION_MS == 1000
    assert window_suppression_ms(49) == 1000 and window_suppression_ms(60) == 1200
    assert window_suppression_ms(74) == 1480 and window_suppression_ms(75) == 1500
    assert RecognizerConfig.defaults(4).suppression_ms == 1000
    assert RecognizerConfig.defaults(4, 74).suppression_ms == 1480
    text = "\n".join(render_recognizer_defines(LABELS, None, 74))
    assert read_recognizer_defines(text) == RecognizerConfig.defaults(4, 74)
    with pytest.raises(NanokwsError, match="NK_MODEL_REC"):
        read_recognizer_defines("#define NK_MODEL_REC_WINDOW 4\n")
