"""Run an int8 .tflite on int8 features in LiteRT and in the official TFLite Micro interpreter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import NanokwsError

ProgressFn = Callable[[int], None]


def _to_model_input(features: np.ndarray, dtype: Any, scale: float, zero_point: int) -> np.ndarray:
    """Frontend int8 frames -> the model's input tensor (identity when scale 1 / zero point 0): for
    int8 the firmware's own rule (harness.reference.requantize_input, half away from zero)."""
    if dtype == np.int8:
        from ..harness.reference import requantize_input

        return requantize_input(features, scale, zero_point)
    if dtype == np.uint8:
        raise NanokwsError("uint8 model inputs are not supported (the frontend writes int8 frames)")
    return features.astype(np.float64).astype(dtype)


def _fit_window(features: np.ndarray, input_shape: Any) -> np.ndarray:
    """Clips [n, frames, channels] centred in the model's window (unchanged when it is one clip)."""
    from ..window import pad_to_input

    if not len(features) or np.ndim(features) != 3:  # flat inputs [n, input_len] go in as they are
        return features
    return pad_to_input(features, list(input_shape))


def litert_interpreter(tflite: bytes, *, reference: bool = True, num_threads: int | None = None) -> Any:
    """A LiteRT (ai-edge-litert, pinned in constraints.txt) interpreter for `tflite`. `reference`:
    its reference kernels, which TFLite Micro is built from (the optimised ones differ by one LSB
    now and then, seen in int8 SOFTMAX); otherwise the optimised kernels, for speed. No silent
    fall-back to TensorFlow's bundled copy: a different runtime would change the numbers."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError as exc:
        raise NanokwsError(f"LiteRT is not installed ({exc}); run `make setup` or "
                           "`pip install -c constraints.txt ai-edge-litert`") from None
    kwargs: dict[str, Any] = {"model_content": tflite}
    if reference:
        kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_REF
    if num_threads is not None:
        kwargs["num_threads"] = num_threads
    return Interpreter(**kwargs)


def _litert(tflite: bytes) -> Any:
    return litert_interpreter(tflite, reference=True)


def run_litert(tflite: bytes, features: np.ndarray, progress: ProgressFn | None = None) -> np.ndarray:
    """Raw outputs (the output tensor's dtype, int8 for our models) for features [n, 49, 40], centred
    in the model's window when it is longer than a clip (window.pad_to_window)."""
    interp = _litert(tflite)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    features = _fit_window(features, inp["shape"])
    scale, zp = inp["quantization"]
    results = np.empty((len(features), int(np.prod(out["shape"]))), dtype=out["dtype"])
    for i, f in enumerate(features):
        interp.set_tensor(inp["index"], _to_model_input(f, inp["dtype"], scale, zp).reshape(inp["shape"]))
        interp.invoke()
        results[i] = interp.get_tensor(out["index"]).reshape(-1)
        if progress:
            progress(1)
    return results


def run_tflm(tflite: bytes, features: np.ndarray, progress: ProgressFn | None = None) -> np.ndarray:
    """Raw outputs of the official TFLite Micro Python interpreter, one invoke per clip."""
    from ..compiler.tflm import Tflm

    model = Tflm(tflite)
    results = np.empty((len(features), model.output_size), dtype=model.output_dtype)
    features = _fit_window(features, model.input_shape)
    for i, f in enumerate(features):
        x = _to_model_input(f, model.input_dtype, model.input_scale, model.input_zero_point)
        results[i] = model.invoke(x)
        if progress:
            progress(1)
    return results
