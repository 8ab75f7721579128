"""Host reference for the device: the same C frontend (nanokws.features) + TFLite Micro.

A device's int8 scores for a clip must equal these element by element; any difference is a
firmware bug (frontend, kernels, requantisation) and is recorded as a mismatch.
"""

from __future__ import annotations

import numpy as np

from ..errors import NanokwsError


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
        from ..compiler.tflm import Tflm

        self._model = Tflm(model_bytes)
        if self._model.input_dtype != np.int8 or self._model.output_dtype != np.int8:
            raise NanokwsError(
                "model is not full-int8 (int8 input and output); convert it with `nanokws train`"
            )
        self.input_shape = self._model.input_shape
        self.input_scale, self.input_zero_point = self._model.input_scale, self._model.input_zero_point
        self.output_scale, self.output_zero_point = self._model.output_scale, self._model.output_zero_point

    @property
    def window_frames(self) -> int:
        """Frames the model sees at once: one clip's, or more (window.py)."""
        from ..features import FRONTEND_CONFIG
        from ..window import window_frames_of

        return window_frames_of(self.input_shape, int(FRONTEND_CONFIG["NK_FE_NUM_CHANNELS"]))

    def scores_from_features(self, features: np.ndarray) -> np.ndarray:
        """int8 scores for one clip's int8 features [49, 40], centred in the model's window when that is
        longer (window.py; the firmware's clip mode pads the same way)."""
        from ..window import pad_to_input

        clip = np.asarray(features, np.int8)
        padded = pad_to_input(clip.reshape(-1, clip.shape[-1]), self.input_shape)
        return self._model.invoke(requantize_input(padded, self.input_scale, self.input_zero_point))

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        return (np.asarray(scores, np.float64) - self.output_zero_point) * self.output_scale


def clip_features(audio: np.ndarray) -> np.ndarray:
    """int8 [n, 49, 40] features of int16 [n, 16000] clips through the firmware's own C frontend."""
    try:
        from ..features import compute_features_batch
    except ImportError as exc:
        raise NanokwsError(f"the features extension is not built ({exc}); build the package first") from exc
    return np.asarray(compute_features_batch(np.asarray(audio, dtype=np.int16)), dtype=np.int8)
