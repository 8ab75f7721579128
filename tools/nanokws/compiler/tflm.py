"""The TFLite Micro reference: run a model, and measure the arena it needs."""

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


def interpreter(tflite: bytes, arena_size: int | None = None) -> Any:
    rt = _runtime()
    size = arena_size or max(64 * 1024, 16 * len(tflite))
    return rt.Interpreter.from_bytes(tflite, arena_size=size)


def run(tflite: bytes, inputs: np.ndarray) -> np.ndarray:
    """Outputs of TFLite Micro for a batch of int8 inputs (one invoke per input)."""
    it = interpreter(tflite)
    shape = tuple(int(d) for d in it.get_input_details(0)["shape"])
    outs = []
    for x in inputs:
        it.set_input(np.asarray(x, dtype=np.int8).reshape(shape), 0)
        it.invoke()
        outs.append(np.array(it.get_output(0), dtype=np.int8).reshape(-1))
    return np.stack(outs)


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


def run_with_tensors(tflite: bytes, x: np.ndarray, tensor_indices: list[int]) -> dict[int, np.ndarray]:
    """Run one input with every tensor preserved; return the int8 data of `tensor_indices`."""
    rt = _runtime()
    it = rt.Interpreter.from_bytes(
        tflite,
        arena_size=max(256 * 1024, 32 * len(tflite)),
        intrepreter_config=rt.InterpreterConfig.kPreserveAllTensors,
    )
    shape = tuple(int(d) for d in it.get_input_details(0)["shape"])
    it.set_input(np.asarray(x, dtype=np.int8).reshape(shape), 0)
    it.invoke()
    out = {}
    for ti in tensor_indices:
        t = it.GetTensor(ti, 0)
        data = t["tensor_data"] if isinstance(t, dict) and "tensor_data" in t else t
        out[ti] = np.asarray(data).astype(np.int8).reshape(-1)
    return out
