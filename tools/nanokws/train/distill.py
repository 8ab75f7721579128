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

import numpy as np

from ..errors import NanokwsError

Teacher = Callable[[np.ndarray], np.ndarray]


def load_teacher(path: str | os.PathLike[str], labels: Sequence[str]) -> Teacher:
    """A function: features [b, 49, 40, 1] (the frontend's int8 values as float) -> teacher
    probabilities [b, classes] float32, in the order of `labels` (the teacher must have the same)."""
    from ..evaluate.runtime import _litert, run_litert
    from ..modelmeta import read_metadata, read_model_bytes

    tflite = read_model_bytes(path)
    teacher_labels = list(read_metadata(tflite, str(path)).get("labels") or [])
    if teacher_labels != list(labels):
        raise NanokwsError(
            f"--teacher {path}: its labels {teacher_labels} are not the training labels {list(labels)}"
        )
    out = _litert(tflite).get_output_details()[0]
    scale, zero_point = out["quantization"]
    if out["dtype"] != np.int8 or not scale > 0:
        raise NanokwsError(f"--teacher {path}: output is not an int8 softmax (dtype {out['dtype']})")

    def teacher(x: np.ndarray) -> np.ndarray:
        q = run_litert(tflite, np.clip(np.rint(x[..., 0]), -128, 127).astype(np.int8))
        p = (q.astype(np.float32) - zero_point) * scale
        return p / np.maximum(p.sum(axis=1, keepdims=True), 1e-6)

    return teacher


def soft_targets(onehot: np.ndarray, teacher_probs: np.ndarray, weight: float) -> np.ndarray:
    """(1 - weight) x one-hot + weight x teacher: rows still sum to 1."""
    return ((1.0 - weight) * onehot + weight * teacher_probs).astype(np.float32)
