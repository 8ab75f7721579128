"""The TFLite Micro reference: run a model, and measure the arena it needs.

The one wrapper around the official tflite_micro Python interpreter: `eval`/`ship`
(evaluate.runtime.run_tflm), the harness's host reference (harness.reference.Reference),
`verify` and the compiler's arena report all go through `interpreter` / `Tflm` here.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import NanokwsError


def _runtime() -> Any:
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as exc:
        raise NanokwsError(f"TFLite Micro Python package missing ({exc}); pip install tflite-micro") from exc
    return runtime


def interpreter(tflite: bytes, arena_size: int | None = None, preserve_all_tensors: bool = False) -> Any:
    """The official TFLite Micro Python interpreter for `tflite` (the only place one is made)."""
    rt = _runtime()
    if preserve_all_tensors:
        return rt.Interpreter.from_bytes(
            tflite,
            arena_size=arena_size or max(256 * 1024, 32 * len(tflite)),
            intrepreter_config=rt.InterpreterConfig.kPreserveAllTensors,
        )
    return rt.Interpreter.from_bytes(tflite, arena_size=arena_size or max(64 * 1024, 16 * len(tflite)))


def _quant(details: dict[str, Any]) -> tuple[float, int]:
    """(scale, zero point) of a tensor's details; (1.0, 0) when it is not quantised."""
    q = details["quantization_parameters"]
    scale = float(q["scales"][0]) if len(q["scales"]) else 1.0
    zero_point = int(q["zero_points"][0]) if len(q["zero_points"]) else 0
    return scale, zero_point


class Tflm:
    """One model in the TFLite Micro interpreter: its input/output types and quantisation, and
    `invoke` for one input at a time. What the compiler, `verify`, `eval`, `ship` and the harness's
    host reference all run."""

    def __init__(self, tflite: bytes, arena_size: int | None = None) -> None:
        self._it = interpreter(tflite, arena_size)
        inp: dict[str, Any] = self._it.get_input_details(0)
        out: dict[str, Any] = self._it.get_output_details(0)
        self.input_shape = tuple(int(d) for d in inp["shape"])
        self.output_size = int(np.prod(out["shape"]))
        self.input_dtype: Any = inp["dtype"]
        self.output_dtype: Any = out["dtype"]
        self.input_scale, self.input_zero_point = _quant(inp)
        self.output_scale, self.output_zero_point = _quant(out)

    def invoke(self, x: np.ndarray) -> np.ndarray:
        """The flat output for one input (already in the model's input type and quantisation),
        computed from a reset interpreter."""
        self._it.reset()
        self._it.set_input(np.asarray(x, dtype=self.input_dtype).reshape(self.input_shape), 0)
        self._it.invoke()
        return np.array(self._it.get_output(0), dtype=self.output_dtype).reshape(-1)


def run(tflite: bytes, inputs: np.ndarray) -> np.ndarray:
    """Outputs of TFLite Micro for a batch of int8 inputs (one invoke per input)."""
    model = Tflm(tflite)
    return np.stack([model.invoke(np.asarray(x, dtype=np.int8)).astype(np.int8) for x in inputs])


def _capture_fds(fn: Callable[[], None]) -> str:
    """Run fn and return what C++ code printed on file descriptors 1 and 2 (MicroPrintf)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        for fd in saved:
            os.dup2(tmp.fileno(), fd)
        try:
            fn()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
        tmp.seek(0)
        return tmp.read().decode(errors="replace")


def arena_usage(tflite: bytes) -> dict[str, int]:
    """TFLite Micro's arena for this model, from its RecordingMicroAllocator report.

    `total` is what the interpreter allocated in the arena (tensors + its own structures, as
    built for this 64-bit host: pointers make the structures larger than on a 32-bit MCU),
    `head` is the non-persistent part (the activation tensor plan plus scratch buffers), the part
    comparable with our static arena.
    """
    it = interpreter(tflite)
    text = _capture_fds(it.print_allocations)
    found = {k: int(v) for k, v in re.findall(r"Arena allocation (total|head|tail) (\d+) bytes", text)}
    if "total" not in found:
        raise NanokwsError("could not read TFLite Micro's arena usage (print_allocations output changed?)")
    return found


class AllTensors:
    """TFLite Micro with every tensor preserved (verify's reference): one interpreter, reset before
    each input as Tflm.invoke does, so each input costs one invoke."""

    def __init__(self, tflite: bytes, tensors: list[int]) -> None:
        self._it = interpreter(tflite, preserve_all_tensors=True)
        self._shape = tuple(int(d) for d in self._it.get_input_details(0)["shape"])
        self._tensors = tensors

    def run(self, x: np.ndarray) -> tuple[dict[int, np.ndarray], np.ndarray]:
        """(tensor index -> flat values of `tensors`, flat model output) for one int8 input."""
        self._it.reset()
        self._it.set_input(np.asarray(x, dtype=np.int8).reshape(self._shape), 0)
        self._it.invoke()
        tensors = {ti: np.array(self._it.GetTensor(ti, 0)["tensor_data"]).reshape(-1) for ti in self._tensors}
        return tensors, np.array(self._it.get_output(0)).reshape(-1)
