"""drop_unread_bias_quantization: smaller .tflite, identical outputs in LiteRT and TFLite Micro."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="module")
def raw_and_compact() -> tuple[bytes, bytes]:
    """A small DS-CNN converted without compaction, and its compacted copy."""
    import keras
    from nanokws.train import convert
    from nanokws.train.compact import drop_unread_bias_quantization
    from nanokws.train.models_extra import _ds_cnn_strided

    keras.utils.set_random_seed(3)
    model = _ds_cnn_strided(5, 8, 16, 1, "compact_probe")
    calib = np.random.default_rng(0).integers(-128, 128, (40, 49, 40)).astype(np.int8)
    original = convert.drop_unread_bias_quantization
    convert.drop_unread_bias_quantization = lambda t: t  # type: ignore[assignment]
    try:
        raw = convert.convert_int8(model, calib, {"labels": list("abcde")})
    finally:
        convert.drop_unread_bias_quantization = original  # type: ignore[assignment]
    return raw, drop_unread_bias_quantization(raw)


def _bias_quantization(tflite: bytes) -> dict[str, bool]:
    """op name -> whether its bias tensor still carries quantisation scales."""
    from nanokws.train.convert import operator_names
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(bytearray(tflite), 0)
    graph = model.Subgraphs(0)
    out = {}
    for i, name in enumerate(operator_names(tflite)):
        op = graph.Operators(i)
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") and op.InputsLength() >= 3 \
                and op.Inputs(2) >= 0:
            q = graph.Tensors(op.Inputs(2)).Quantization()
            out[f"{name}#{i}"] = q is not None and q.ScaleLength() > 0
    return out


def test_drops_conv_bias_parameters_only(raw_and_compact: tuple[bytes, bytes]) -> None:
    raw, compact = raw_and_compact
    before, after = _bias_quantization(raw), _bias_quantization(compact)
    assert before.keys() == after.keys() and all(before.values())
    for op, kept in after.items():
        assert kept == op.startswith("FULLY_CONNECTED"), op
    assert len(compact) < len(raw)
    from nanokws.train.compact import drop_unread_bias_quantization

    assert drop_unread_bias_quantization(compact) == compact  # nothing left to drop


def test_outputs_identical_in_litert_and_tflm(raw_and_compact: tuple[bytes, bytes]) -> None:
    from nanokws.evaluate.runtime import run_litert, run_tflm

    raw, compact = raw_and_compact
    x = np.random.default_rng(1).integers(-128, 128, (16, 49, 40)).astype(np.int8)
    for runner in (run_litert, run_tflm):
        a, b = runner(raw, x), runner(compact, x)
        assert a.shape == (16, 5)
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_compiled_c_is_bit_exact_on_compacted_model(raw_and_compact: tuple[bytes, bytes],
                                                    tmp_path: Path) -> None:
    """Our compiler must not need the dropped parameters either."""
    from nanokws.compiler import verify as verify_mod

    _, compact = raw_and_compact
    res = verify_mod.verify(compact, "asan", 6, data=tmp_path / "no-data", seed=2, build_dir=tmp_path / "b",
                            progress=False)
    assert res.ok, res.mismatch
    assert res.n == 6
