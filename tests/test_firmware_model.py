"""The firmware with a real compiled model: a random-weight `tiny` Keras model converted to full
int8 (with nanokws metadata), compiled by `nanokws compile`, built under ASan/UBSan; CLIP_RUN and
streaming scores must equal TFLite Micro on the C frontend's features, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fixtures.firmware_io import build_fw, one_reply, talk
from nanokws.features import FRONTEND_CONFIG, compute_features
from nanokws.harness import protocol as P

LABELS = ["_silence_", "_unknown_", "yes", "no", "up", "down"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    import keras
    from nanokws.compiler.compile import compile_model
    from nanokws.train.convert import convert_int8
    from nanokws.train.models import build_model

    keras.utils.set_random_seed(7)
    model = build_model("tiny", len(LABELS))
    rng = np.random.default_rng(7)
    calibration = rng.integers(-128, 128, size=(40, 49, 40)).astype(np.int8)
    meta = {"labels": LABELS, "frontend": dict(FRONTEND_CONFIG), "model": "tiny"}
    tflite = convert_int8(model, calibration, meta, max_calibration=40)
    out = tmp_path_factory.mktemp("fw_real_model")
    compile_model(tflite, out, measure_tflm=False)
    return out, tflite


@pytest.mark.slow
def test_real_model_clip_and_stream_match_tflite_micro(compiled: tuple[Path, bytes]) -> None:
    from nanokws.compiler import tflm

    model_dir, tflite = compiled
    exe = build_fw("asan", model_dir)
    rng = np.random.default_rng(8)
    clips = [np.clip(rng.normal(0, s, 16000), -32768, 32767).astype(np.int16) for s in (300, 6000)]
    stream = np.concatenate([clips[0], clips[1], clips[0][:3200]])
    wire = [P.req_info(1), P.req_set_config(2, P.ConfigKey.STREAM_SCORES, 1)]
    for n, clip in enumerate(clips):
        wire += [*P.clip_load_frames(range(10, 50), clip), P.req_clip_run(100 + n)]
    wire += [P.req_audio(120, stream[i : i + 500]) for i in range(0, stream.size, 500)]
    msgs = talk(exe, *wire, timeout=120)
    assert not [m for m in msgs if isinstance(m, P.Error)]

    info = one_reply(msgs, 1)
    assert isinstance(info, P.Info) and info.data["labels"] == LABELS
    want_hash = (model_dir / "model_config.h").read_text().split('NK_MODEL_HASH "')[1][:16]
    assert info.data["model_hash"] == want_hash

    want = tflm.run(tflite, np.stack([compute_features(c) for c in clips]))
    assert not np.array_equal(want[0], want[1]), "the model should tell quiet from loud input apart"
    for n in range(len(clips)):
        result = one_reply(msgs, 100 + n)
        assert isinstance(result, P.Result)
        assert np.array_equal(result.scores, want[n])

    features = compute_features(stream[: stream.size // 320 * 320])
    got = [m for m in msgs if isinstance(m, P.Scores)]
    frames = [m.hop - 1 for m in got]  # the newest frame of each inference's window
    assert frames == list(range(48, len(features), 2))
    want_stream = tflm.run(tflite, np.stack([features[f - 48 : f + 1] for f in frames]))
    for g, w in zip(got, want_stream, strict=True):
        assert np.array_equal(g.scores, w), g.hop
