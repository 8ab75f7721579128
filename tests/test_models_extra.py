"""The extra architectures (models_extra): each builds, converts to full int8 using only the builtins
our compiler supports, and compiles; BC-ResNet's broadcast-free frequency mean is exact; bc_resnet_1
compiled to C matches TFLite Micro bit for bit under ASan/UBSan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from nanokws.train.models import ALLOWED_OPS, INPUT_SHAPE
from nanokws.train.models_extra import EXTRA_MODELS

_TFLITE: dict[str, bytes] = {}  # conversion takes seconds: once per architecture per session


def _int8(name: str) -> bytes:
    """Full-int8 .tflite of an untrained `name`, calibrated on seeded random int8 frames."""
    if name not in _TFLITE:
        import keras
        from nanokws.train.convert import convert_int8
        from nanokws.train.models import build_model

        keras.utils.set_random_seed(0)
        model = build_model(name, 12)
        calibration = np.random.default_rng(1).integers(-128, 128, (40, *INPUT_SHAPE[:2])).astype(np.int8)
        meta = {"labels": [f"l{i}" for i in range(12)], "model": name}
        _TFLITE[name] = convert_int8(model, calibration, meta)
    return _TFLITE[name]


# bc_resnet_2 converts slowly (~20 s) and shares bc_resnet_1's code: slow only.
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "bc_resnet_2" else n
                                  for n in sorted(EXTRA_MODELS)])
def test_builds_converts_and_compiles(name: str, tmp_path: Path) -> None:
    from nanokws.compiler import compile_model
    from nanokws.train.convert import operator_names
    from nanokws.train.models import build_model

    model = build_model(name, 12)
    assert tuple(model.input_shape[1:]) == INPUT_SHAPE
    assert tuple(model.output_shape[1:]) == (12,)
    tflite = _int8(name)
    ops = operator_names(tflite)
    assert set(ops) <= ALLOWED_OPS, sorted(set(ops) - ALLOWED_OPS)
    assert ops[-1] == "SOFTMAX"
    report = compile_model(tflite, tmp_path / "c", measure_tflm=False).report
    assert report["input_len"] == INPUT_SHAPE[0] * INPUT_SHAPE[1]
    assert report["output_len"] == 12
    # int8 weights in the compiled C: at least one byte per trainable weight (biases are int32).
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert report["weights_flash_bytes"] >= trainable * 0.9
    assert report["total_macs"] > 0 and report["arena_bytes"] > 0
    assert (tmp_path / "c" / "nk_model.c").is_file()


def test_bc_resnet_uses_same_shape_adds_only() -> None:
    """The broadcast residual is built from same-shape ADDs (the compiler rejects broadcasting)."""
    from nanokws.compiler.tflite_reader import read_graph

    g = read_graph(_int8("bc_resnet_1"))
    adds = [op for op in g.operators if op.opcode == "ADD"]
    assert len(adds) >= 12  # at least one per block
    for op in adds:
        a, b = (list(g.tensors[i].shape) for i in op.inputs[:2])
        assert a == b, f"broadcasting ADD {a} + {b}"


def test_freq_mean_broadcast_is_the_frequency_mean() -> None:
    import keras
    from nanokws.train.models_extra import _freq_mean_broadcast

    x = np.random.default_rng(2).normal(size=(2, 7, 11, 3)).astype(np.float32)
    inp = keras.Input(x.shape[1:])
    got = keras.Model(inp, _freq_mean_broadcast(keras, inp)).predict(x, verbose=0)
    want = np.broadcast_to(x.mean(axis=2, keepdims=True), x.shape)
    assert got.shape == x.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_bc_resnet_1_bit_exact_on_asan(tmp_path: Path) -> None:
    from nanokws.compiler import verify as verify_mod

    res: Any = verify_mod.verify(_int8("bc_resnet_1"), "asan", 6, data=tmp_path / "no-data", seed=5,
                                 build_dir=tmp_path, progress=False)
    assert res.n == 6
    assert res.ok, f"compiled bc_resnet_1 differs from TFLite Micro: {res.mismatch}"
