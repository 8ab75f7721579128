"""Knowledge distillation from a trained int8 teacher: soft targets for every augmented batch.

The teacher is any full-int8 .tflite of ours (e.g. a larger model that does not fit the board's
budget). For each training batch it scores the same augmented input in LiteRT, and the target
becomes (1 - w) x one-hot + w x the teacher's probabilities (Hinton et al. 2015 at temperature 1:
the int8 teacher's softmax is what it has). The student learns which wrong classes the teacher finds
close, which a one-hot label never says.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import NanokwsError

Teacher = Callable[[np.ndarray], np.ndarray]


def load_teacher(path: str | os.PathLike[str], labels: Sequence[str], frames: int | None = None) -> Teacher:
    """A function: features [b, frames, 40, 1] (the frontend's int8 values as float) -> teacher
    probabilities [b, classes] float32, in the order of `labels` (the teacher must have the same).
    `frames`: the student's window; the teacher must see the same one (None: not checked)."""
    from ..evaluate.runtime import _to_model_input
    from ..modelmeta import read_metadata, read_model_bytes

    tflite = read_model_bytes(path)
    teacher_labels = list(read_metadata(tflite, str(path)).get("labels") or [])
    if teacher_labels != list(labels):
        raise NanokwsError(
            f"--teacher {path}: its labels {teacher_labels} are not the training labels {list(labels)}"
        )
    interp = _fast_interpreter(tflite)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    in_scale, in_zero_point = inp["quantization"]
    scale, zero_point = out["quantization"]
    if out["dtype"] != np.int8 or not scale > 0:
        raise NanokwsError(f"--teacher {path}: output is not an int8 softmax (dtype {out['dtype']})")
    shape = [int(d) for d in inp["shape"][1:]]
    if frames is not None and shape[0] != frames:
        raise NanokwsError(f"--teacher {path}: its window is {shape[0]} frames, the student's {frames} "
                           "(train the teacher with the same --window-frames)")
    batch = [1]  # the batch size the interpreter is allocated for; 0: it cannot be resized

    def scores(q_in: np.ndarray) -> np.ndarray:
        """One invoke per batch when the model takes any batch size, else one per example (a model
        whose RESHAPE fixes the batch at 1)."""
        if batch[0] and batch[0] != len(q_in):
            try:
                interp.resize_tensor_input(inp["index"], [len(q_in), *shape])
                interp.allocate_tensors()
                batch[0] = len(q_in)
            except (RuntimeError, ValueError):
                interp.resize_tensor_input(inp["index"], [1, *shape])
                interp.allocate_tensors()
                batch[0] = 0
        if batch[0]:
            interp.set_tensor(inp["index"], q_in.reshape(len(q_in), *shape))
            interp.invoke()
            return interp.get_tensor(out["index"]).reshape(len(q_in), -1)
        rows = []
        for one in q_in:
            interp.set_tensor(inp["index"], one.reshape(1, *shape))
            interp.invoke()
            rows.append(interp.get_tensor(out["index"]).reshape(-1).copy())
        return np.stack(rows)

    def teacher(x: np.ndarray) -> np.ndarray:
        q_in = _to_model_input(np.clip(np.rint(x[..., 0]), -128, 127).astype(np.int8), inp["dtype"],
                               in_scale, in_zero_point)
        p = (scores(q_in).astype(np.float32) - zero_point) * scale
        return p / np.maximum(p.sum(axis=1, keepdims=True), 1e-6)

    return teacher


def _fast_interpreter(tflite: bytes) -> Any:
    """LiteRT with its optimised kernels: a teacher needs speed, not TFLite Micro's exact rounding
    (the reference kernels would make every epoch several times slower)."""
    from ..evaluate.runtime import litert_interpreter

    return litert_interpreter(tflite, reference=False, num_threads=1)


def soft_targets(onehot: np.ndarray, teacher_probs: np.ndarray, weight: float) -> np.ndarray:
    """(1 - weight) x one-hot + weight x teacher: rows still sum to 1."""
    return ((1.0 - weight) * onehot + weight * teacher_probs).astype(np.float32)
