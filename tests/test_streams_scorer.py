"""kws_runner + streams/scorer.py: the firmware's streaming path, exactly.

- every inference's scores equal the compiled model (model_runner) on the same frontend frames;
- the C recognizer's detections equal replay() over the run's own scores, at several settings;
- configuration round-trips and bad settings are refused in one line;
- a streaming-form model gives the same scores as its whole-window form (slow: compiles twice).
Built for AddressSanitizer + UBSan, so memory errors in the program fail the test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fixtures.shipped import shipped_model_streams
from nanokws.cbuild import build_programs
from nanokws.errors import NanokwsError
from nanokws.paths import REPO_ROOT
from nanokws.streams.scorer import KwsConfig, KwsRunner, ScoreRun

FIXTURE_MODEL = Path(__file__).parent / "fixtures" / "fw_model"
SR = 16000


def _audio(seconds: float, seed: int = 0) -> np.ndarray:
    """Tone bursts of varying pitch over noise: scores that move, so detections happen."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    x = rng.normal(0, 200, n)
    t = np.arange(SR // 2) / SR
    for start in range(SR // 4, n - SR // 2, int(0.7 * SR)):
        f = rng.uniform(150, 3000)
        x[start : start + t.size] += rng.uniform(1000, 12000) * np.sin(2 * np.pi * f * t) * np.hanning(t.size)
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


@pytest.fixture(scope="module")
def progs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """kws_runner for the small fixture model (tests/fixtures/fw_model, 4 labels)."""
    out = tmp_path_factory.mktemp("kws_runner")
    return build_programs("asan", ["kws_runner"], FIXTURE_MODEL, out_dir=out)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """kws_runner and model_runner for the shipped model, compiled by this checkout's compiler."""
    from nanokws.harness.launch import compile_model

    root = tmp_path_factory.mktemp("shipped")
    folder = compile_model(REPO_ROOT / "firmware" / "model" / "model.tflite", root / "model")
    return build_programs("asan", ["kws_runner", "model_runner"], folder, out_dir=root / "asan")


def _replay_cfg(run: ScoreRun):  # type: ignore[no-untyped-def]
    from nanokws.streams.replay import RecognizerConfig

    c = run.config
    return RecognizerConfig(tuple(c["thresholds"]), c["window"], c["suppression_ms"], c["release"])


def _replayed(run: ScoreRun) -> list[tuple[int, int, int]]:
    from nanokws.streams.replay import replay

    dets = replay(
        run.scores,
        run.hops,
        run.labels,
        _replay_cfg(run),
        output_scale=run.output_scale,
        output_zero_point=run.output_zero_point,
        hop_samples=run.hop_samples,
        sample_rate=run.sample_rate,
    )
    return [(d.hop, d.label, d.score) for d in dets]


def test_scores_equal_the_compiled_model_on_the_same_frames(shipped: dict[str, Path]) -> None:
    """The shipped model in either form: streaming (then every inference is also the streaming
    form against the whole window) or full-window; over its window, one clip's 49 frames or more."""
    from nanokws.compiler.runner import ModelRunner
    from nanokws.features import compute_features

    streams = shipped_model_streams()
    audio = _audio(4.0)
    with KwsRunner(shipped["kws_runner"], "asan") as r:
        assert r.labels[:2] == ["_silence_", "_unknown_"] and r.streaming == streams
        run = r.run(audio, chunk=3001)  # chunks that split hops
    frames = compute_features(audio)
    hops = run.hops.astype(int)
    with ModelRunner(shipped["model_runner"], "asan") as m:
        window = m.input_len // frames.shape[1]
        assert run.window_frames == window  # kws_runner's hello names the model's window
        assert hops[0] == window and np.all(np.diff(hops) == 2)  # first full window, then stride 2
        assert len(hops) == (len(frames) - window) // 2 + 1
        for hop, scores in zip(hops, run.scores, strict=True):
            x = frames[hop - window : hop]  # frames 0..hop-1 are complete after hop `hop`
            assert x.shape == (window, 40)
            assert np.array_equal(m.infer(x).output, scores), hop
    assert run.scores.dtype == np.int8 and run.scores.shape == (len(hops), len(run.labels))


@pytest.mark.parametrize(
    "cfg",
    [
        KwsConfig(),
        KwsConfig(threshold=0, release=255),
        KwsConfig(threshold=30),
        KwsConfig(threshold=60, window=1, suppression_ms=0, release=255),
        KwsConfig(thresholds=(255, 255, 40, 90), window=3, suppression_ms=300, release=20, stride=3),
    ],
)
def test_detections_equal_replay(progs: dict[str, Path], cfg: KwsConfig) -> None:
    with KwsRunner(progs["kws_runner"], "asan") as r:
        run = r.run(_audio(12.0, seed=1), cfg)
    got = [(d.hop, d.label, d.score) for d in run.detections]
    if cfg.threshold == 0:
        assert len(got) > 5  # the check below must have something to compare
    assert got == _replayed(run)
    if cfg.stride is not None:
        assert run.config["stride"] == cfg.stride and np.all(np.diff(run.hops.astype(int)) == cfg.stride)


def test_config_round_trip_and_refusals(progs: dict[str, Path], tmp_path: Path) -> None:
    with KwsRunner(progs["kws_runner"], "asan") as r:
        run = r.run(_audio(2.0), KwsConfig(threshold=77, window=5, suppression_ms=1234, release=9))
        assert run.config == {
            "stride": 2,
            "window": 5,
            "suppression_ms": 1234,
            "release": 9,
            "thresholds": [77, 77, 77, 77],
        }
        with pytest.raises(NanokwsError, match="smoothing window 0"):
            r.configure(KwsConfig(window=0))
        with pytest.raises(NanokwsError, match="stride 51"):
            r.configure(KwsConfig(stride=51))
        with pytest.raises(NanokwsError, match="3 thresholds"):
            r.configure(KwsConfig(thresholds=(1, 2, 3)))
        again = r.run(_audio(2.0))  # a reset keeps the configuration and starts the audio afresh
        assert np.array_equal(again.hops, run.hops) and np.array_equal(again.scores, run.scores)
    run.save_npz(tmp_path / "s.npz")
    back = ScoreRun.load_npz(tmp_path / "s.npz")
    assert np.array_equal(back.scores, run.scores) and back.detections == run.detections
    assert back.config == run.config and back.labels == run.labels


@pytest.mark.slow
def test_streaming_form_equals_whole_window(tmp_path: Path) -> None:
    """docs/candidates/ds_cnn_stream compiled with and without its streaming form: same scores and
    detections from kws_runner, bit for bit, and replay agrees with both."""
    from nanokws.harness.launch import compile_model

    model = REPO_ROOT / "docs" / "candidates" / "ds_cnn_stream" / "model.tflite"
    if not model.is_file():
        pytest.skip("docs/candidates/ds_cnn_stream/model.tflite not in this checkout")
    stream_dir = compile_model(model, tmp_path / "stream")
    assert (stream_dir / "nk_model_stream.h").is_file()
    from nanokws.cli import main

    assert main(["compile", "--model", str(model), "--out", str(tmp_path / "window"), "--no-streaming"]) == 0
    audio = _audio(6.0, seed=2)
    runs = []
    for name in ("stream", "window"):
        exe = build_programs("host", ["kws_runner"], tmp_path / name, out_dir=tmp_path / f"b-{name}")[
            "kws_runner"
        ]
        with KwsRunner(exe) as r:
            runs.append(r.run(audio, KwsConfig(threshold=100)))
    s, w = runs
    assert s.streaming and not w.streaming
    assert np.array_equal(s.hops, w.hops) and np.array_equal(s.scores, w.scores)
    assert s.detections == w.detections
    assert [(d.hop, d.label, d.score) for d in s.detections] == _replayed(s)
