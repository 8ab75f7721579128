"""Host reference for the device: the same C frontend (nanokws.features) + TFLite Micro.

A device's int8 scores for a clip must equal these element by element; any difference is a
firmware bug (frontend, kernels, requantisation) and is recorded as a mismatch.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ..errors import NanokwsError


def model_hash(model_bytes: bytes) -> str:
    """What the firmware's NK_MODEL_HASH holds: the first 16 hex digits of the .tflite's sha256."""
    return hashlib.sha256(model_bytes).hexdigest()[:16]


def requantize_input(features: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Map frontend int8 features to the model's input quantisation.

    Identity when scale == 1 and zero point == 0 (what the trainer arranges); otherwise, like
    the firmware's table: lroundf((float)x / scale) + zero_point, saturated to int8. The division
    is float32 and rounding is half away from zero, so the table is reproduced exactly.
    """
    f = np.asarray(features, dtype=np.int8)
    if scale == 1.0 and zero_point == 0:
        return f
    v = (f.astype(np.float32) / np.float32(scale)).astype(np.float64)
    q = np.where(v >= 0, np.floor(v + 0.5), np.ceil(v - 0.5)) + int(zero_point)
    return np.clip(q, -128, 127).astype(np.int8)


class Reference:
    """TFLite Micro interpreter for one model, fed by the device frontend's features."""

    def __init__(self, model_bytes: bytes) -> None:
        try:
            from tflite_micro.python.tflite_micro import runtime
        except ImportError as exc:
            raise NanokwsError(f"tflite-micro is needed for the host reference: {exc}") from exc
        self._interp = runtime.Interpreter.from_bytes(model_bytes)
        inp: dict[str, Any] = self._interp.get_input_details(0)
        out: dict[str, Any] = self._interp.get_output_details(0)
        if inp["dtype"] != np.int8 or out["dtype"] != np.int8:
            raise NanokwsError(
                "model is not full-int8 (int8 input and output); convert it with `nanokws train`"
            )
        self.input_shape = tuple(int(d) for d in inp["shape"])
        q = inp["quantization_parameters"]
        self.input_scale = float(q["scales"][0]) if len(q["scales"]) else 1.0
        self.input_zero_point = int(q["zero_points"][0]) if len(q["zero_points"]) else 0
        oq = out["quantization_parameters"]
        self.output_scale = float(oq["scales"][0]) if len(oq["scales"]) else 1.0
        self.output_zero_point = int(oq["zero_points"][0]) if len(oq["zero_points"]) else 0

    def scores_from_features(self, features: np.ndarray) -> np.ndarray:
        """int8 scores for one clip's int8 features [49, 40]."""
        x = requantize_input(features, self.input_scale, self.input_zero_point)
        x = x.reshape(self.input_shape)
        self._interp.reset()
        self._interp.set_input(x, 0)
        self._interp.invoke()
        return np.asarray(self._interp.get_output(0), dtype=np.int8).reshape(-1).copy()

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        return (np.asarray(scores, np.float64) - self.output_zero_point) * self.output_scale


def clip_features(audio: np.ndarray) -> np.ndarray:
    """int8 [n, 49, 40] features of int16 [n, 16000] clips through the firmware's own C frontend."""
    try:
        from ..features import compute_features_batch
    except ImportError as exc:
        raise NanokwsError(f"the features extension is not built ({exc}); build the package first") from exc
    return np.asarray(compute_features_batch(np.asarray(audio, dtype=np.int16)), dtype=np.int8)
