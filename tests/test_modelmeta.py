"""Model metadata: stored, read back, replaced in place, and tensor names shortened harmlessly."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from fixtures.tflite_int8 import convert_full_int8
from nanokws.errors import NanokwsError
from nanokws.modelmeta import add_metadata, read_metadata, short_tensor_name


@pytest.fixture(scope="module")
def plain_tflite() -> bytes:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(3)
    inp = tf.keras.Input((49, 40, 1), batch_size=1, name="features")
    x = tf.keras.layers.Conv2D(4, (5, 4), strides=2, activation="relu")(inp)
    x = tf.keras.layers.Flatten()(x)
    model = tf.keras.Model(inp, tf.keras.layers.Softmax()(tf.keras.layers.Dense(3)(x)))
    rng = np.random.default_rng(3)

    return convert_full_int8(model, lambda: (rng.integers(-128, 128, size=(1, 49, 40, 1)) for _ in range(8)))


def _tensor_names(tflite: bytes) -> list[str]:
    from tensorflow.lite.python import schema_py_generated as schema

    sg = schema.Model.GetRootAsModel(bytearray(tflite), 0).Subgraphs(0)
    return [sg.Tensors(i).Name().decode() for i in range(sg.TensorsLength())]


def _tflm_outputs(tflite: bytes, inputs: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(tflite)
    outs = []
    for x in inputs:
        interp.set_input(x.reshape(1, 49, 40, 1), 0)
        interp.invoke()
        outs.append(interp.get_output(0).copy())
    return np.stack(outs)


def test_metadata_round_trip_and_in_place_replacement(plain_tflite: bytes) -> None:
    with pytest.raises(NanokwsError, match="no nanokws metadata"):
        read_metadata(plain_tflite)
    first = add_metadata(plain_tflite, {"labels": ["a", "b", "c"], "model": "m"})
    assert read_metadata(first) == {"labels": ["a", "b", "c"], "model": "m"}
    second = add_metadata(first, {"labels": ["x", "y", "z"], "model": "m"})
    assert read_metadata(second) == {"labels": ["x", "y", "z"], "model": "m"}
    # Replacing reuses the buffer: same size for same-length JSON, no orphaned blob.
    assert len(second) == len(first)


def test_names_shortened_outputs_unchanged(plain_tflite: bytes) -> None:
    stored = add_metadata(plain_tflite, {"labels": ["a", "b", "c"]})
    before, after = _tensor_names(plain_tflite), _tensor_names(stored)
    assert len(before) == len(after)
    assert all(len(n) <= 40 and ";" not in n for n in after)
    assert sum(map(len, after)) < sum(map(len, before))
    x = np.random.default_rng(0).integers(-128, 128, size=(5, 49, 40)).astype(np.int8)
    assert np.array_equal(_tflm_outputs(plain_tflite, x), _tflm_outputs(stored, x))


def test_short_tensor_name() -> None:
    assert short_tensor_name("functional_1/net_1/conv2d_3_1/convolution;x/y") == "conv2d_3_1/convolution"
    assert short_tensor_name("serving_default_features:0") == "serving_default_features:0"


def test_one_tflm_wrapper_and_one_model_hash() -> None:
    """Only compiler/tflm.py makes a TFLite Micro interpreter; only modelmeta hashes a model."""
    tools = Path(__file__).resolve().parents[1] / "tools" / "nanokws"
    sources = {p.relative_to(tools).as_posix(): p.read_text() for p in tools.rglob("*.py")}
    imports_tflm = re.compile(r"^\s*(from|import)\s+tflite_micro\b", re.MULTILINE)
    assert [name for name, text in sources.items() if imports_tflm.search(text)] == ["compiler/tflm.py"]
    # Hashes of things other than a model: harness/launch.py the compiler's sources (its build stamp),
    # bench --compare-tflm its source trees and build flags (its cache key; models via modelmeta).
    not_models = {"harness/launch.py", "compiler/tflm_compare/trees.py", "compiler/tflm_compare/build.py"}
    hashes = sorted(name for name, text in sources.items() if re.search(r"\bsha256\(", text))
    assert hashes == sorted(not_models | {"modelmeta.py"})


def test_tflm_users_agree(plain_tflite: bytes) -> None:
    """The compiler's reference, eval/ship's run_tflm and the harness's Reference: one interpreter."""
    from nanokws.compiler import tflm
    from nanokws.evaluate.runtime import run_tflm
    from nanokws.harness.reference import Reference

    x = np.random.default_rng(5).integers(-128, 128, (6, 49, 40)).astype(np.int8)
    x[0], x[1] = -128, 127
    want = tflm.run(plain_tflite, x)
    assert want.dtype == np.int8 and want.shape == (6, 3)
    assert np.array_equal(run_tflm(plain_tflite, x), want)
    ref = Reference(plain_tflite)
    assert np.array_equal(np.stack([ref.scores_from_features(f) for f in x]), want)
    model = tflm.Tflm(plain_tflite)
    assert (ref.input_scale, ref.input_zero_point, ref.input_shape) == (
        model.input_scale,
        model.input_zero_point,
        model.input_shape,
    )
    assert np.array_equal(model.invoke(x[2]), model.invoke(x[2]))  # each invoke starts from a reset
