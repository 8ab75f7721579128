"""Full-int8 conversion: int8 input/output, per-channel conv weights, calibrated on features.

The input quantisation is forced to scale 1 / zero point 0 by putting an all -128 and an all 127
example into the calibration set: the calibrated input range is then exactly [-128, 127], so the
frontend's int8 frames are the model input with no requantisation on the device.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..errors import NanokwsError
from ..export.model_config import tensor_quantization
from ..modelmeta import add_metadata
from ..window import pad_to_window
from .compact import drop_unread_bias_quantization
from .models import ALLOWED_OPS


def operator_names(tflite: bytes) -> list[str]:
    """Builtin operator names of subgraph 0, in execution order."""
    from tensorflow.lite.python import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.Model.GetRootAsModel(bytearray(tflite), 0)
    graph = model.Subgraphs(0)
    out = []
    for i in range(graph.OperatorsLength()):
        code = model.OperatorCodes(graph.Operators(i).OpcodeIndex())
        # Codes above 127 live only in BuiltinCode; older ones in DeprecatedBuiltinCode too.
        out.append(names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM"))
    return out


def full_int8(model: Any, representative: Callable[[], Iterator[list[np.ndarray]]]) -> bytes:
    """TFLite's full-int8 conversion of a Keras model (int8 input and output, builtin int8 ops only),
    calibrated on what `representative()` yields; no checks, no metadata (convert_int8 adds those)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints its SavedModel signature
        return bytes(converter.convert())


def convert_int8(model: Any, calibration: np.ndarray, metadata: dict[str, Any], max_calibration: int = 300,
                 seed: int = 0) -> bytes:
    """Convert a Keras model to a full-int8 .tflite carrying `metadata`; check the result.

    `calibration` is int8 (or int8-valued) features [n, 49, 40], centred in the model's window when
    that is longer (window.py); up to `max_calibration` of them,
    picked at random with `seed`, calibrate the activation ranges.
    """
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(calibration))[:max_calibration]
    shape = tuple(int(d) for d in model.input_shape[1:])  # a clip's frames, or a longer window
    samples = pad_to_window(np.asarray(calibration)[pick], shape[0]).astype(np.float32)

    def representative() -> Iterator[list[np.ndarray]]:
        yield [np.full((1, *shape), -128.0, np.float32)]
        yield [np.full((1, *shape), 127.0, np.float32)]
        for s in samples:
            yield [s.reshape(1, *shape)]

    import keras

    # A fixed batch of 1 keeps Flatten a plain RESHAPE (no SHAPE/STRIDED_SLICE/PACK ops).
    inp = keras.Input(shape, batch_size=1, name="features")
    fixed = keras.Model(inp, model(inp, training=False))
    tflite = full_int8(fixed, representative)

    scale, zero_point = tensor_quantization(tflite, "input")
    if scale != 1.0 or zero_point != 0:
        raise NanokwsError(f"int8 input quantisation came out scale={scale} zero_point={zero_point}, "
                           "not 1/0; the frontend output would need requantising")
    ops = operator_names(tflite)
    bad = sorted(set(ops) - ALLOWED_OPS)
    if bad:
        raise NanokwsError(f"converted model uses operators outside the supported set: {', '.join(bad)}")
    return add_metadata(drop_unread_bias_quantization(tflite), metadata)
