"""Read a .tflite flatbuffer into plain Python objects (tensors, operators, options)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import NanokwsError

_DTYPES = {
    "INT8": np.int8,
    "INT32": np.int32,
    "UINT8": np.uint8,
    "INT16": np.int16,
    "FLOAT32": np.float32,
    "INT64": np.int64,
}


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # schema TensorType name, e.g. "INT8"
    scales: np.ndarray  # float32, empty when not quantised
    zero_points: np.ndarray  # int64
    quantized_dimension: int
    data: np.ndarray | None  # constant data (weights, bias, axis) or None for activations

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def scale(self) -> float:
        return float(self.scales[0]) if self.scales.size else 0.0

    @property
    def zero_point(self) -> int:
        return int(self.zero_points[0]) if self.zero_points.size else 0


@dataclass
class Operator:
    index: int
    opcode: str  # schema BuiltinOperator name, e.g. "CONV_2D"
    inputs: list[int]
    outputs: list[int]
    options: Any  # schema *OptionsT object or None


@dataclass
class Graph:
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]
    raw: bytes = field(repr=False, default=b"")


def _enum_names(cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


def read_graph(tflite: bytes) -> Graph:
    """Parse `tflite` (subgraph 0) into a `Graph`."""
    from tensorflow.lite.python import schema_py_generated as schema

    if len(tflite) < 8 or tflite[4:8] != b"TFL3":
        raise NanokwsError("not a TFLite flatbuffer (missing 'TFL3' identifier)")
    from ..modelcheck import check_bounds

    check_bounds(tflite)  # the flatbuffers library does not check offsets; a bad file fails here
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(tflite), 0))
    if not model.subgraphs or len(model.subgraphs) != 1:
        raise NanokwsError(f"expected exactly one subgraph, found {len(model.subgraphs or [])}")
    op_names = _enum_names(schema.BuiltinOperator)
    type_names = _enum_names(schema.TensorType)
    sub = model.subgraphs[0]
    buffers = model.buffers or []
    tensors: list[Tensor] = []
    for i, t in enumerate(sub.tensors or []):
        dtype = type_names.get(t.type, f"TYPE_{t.type}")
        q = t.quantization
        scales = np.asarray(q.scale if q is not None and q.scale is not None else [], dtype=np.float32)
        zps = np.asarray(q.zeroPoint if q is not None and q.zeroPoint is not None else [], dtype=np.int64)
        qdim = int(q.quantizedDimension) if q is not None else 0
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
        buf = buffers[t.buffer] if 0 <= t.buffer < len(buffers) else None
        data = None
        if buf is not None and buf.data is not None and len(buf.data) > 0:
            data = _constant(i, np.asarray(buf.data, dtype=np.uint8).tobytes(), dtype, shape)
        elif buf is not None and getattr(buf, "size", 0):
            raise NanokwsError(f"tensor {i}: weights stored outside the flatbuffer are not supported")
        name = t.name.decode("utf-8", errors="replace") if isinstance(t.name, bytes) else str(t.name or "")
        tensors.append(Tensor(i, name, shape, dtype, scales, zps, qdim, data))
    codes = model.operatorCodes or []
    ops: list[Operator] = []
    for i, op in enumerate(sub.operators or []):
        if not 0 <= op.opcodeIndex < len(codes):
            raise NanokwsError(f"operator {i}: opcode index {op.opcodeIndex} out of range")
        code = codes[op.opcodeIndex]
        num = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        name = op_names.get(num, f"BUILTIN_{num}")
        if name == "CUSTOM":
            raw_name = code.customCode
            cname = raw_name.decode("utf-8", errors="replace") if isinstance(raw_name, bytes) else raw_name
            name = f"CUSTOM({cname})"
        ops.append(
            Operator(i, name, _indices(op.inputs), _indices(op.outputs), op.builtinOptions)
        )
    return Graph(tensors, ops, _indices(sub.inputs), _indices(sub.outputs), tflite)


def _indices(values: Any) -> list[int]:
    return [] if values is None else [int(x) for x in values]


def _constant(index: int, raw: bytes, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """A constant tensor's data, checked against its type and shape."""
    if dtype not in _DTYPES:
        raise NanokwsError(f"tensor {index}: constant data of unsupported type {dtype}")
    if any(d < 0 for d in shape):
        raise NanokwsError(f"tensor {index}: negative dimension in shape {list(shape)}")
    np_type = np.dtype(_DTYPES[dtype])
    count = int(np.prod(shape)) if shape else 1
    if len(raw) != count * np_type.itemsize:
        raise NanokwsError(
            f"tensor {index}: {len(raw)} bytes of constant data for shape {list(shape)} of {dtype} "
            f"({count * np_type.itemsize} expected)"
        )
    return np.frombuffer(raw, dtype=np_type).reshape(shape)
