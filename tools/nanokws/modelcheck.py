"""One model validation, in one place, before any command uses a .tflite.

`check_model(tflite, source)` runs, in this order, and raises NanokwsError (one line naming the
file and the problem, exit 2) at the first failure:

1. flatbuffer bounds: every table, vector and string the tools read lies inside the file, so no
   mutated or truncated file reaches the flatbuffers library (which does not check);
2. the graph reads (one subgraph, one input, one output, tensor indices in range, shapes and
   constant data consistent, known tensor types);
3. quantisation: int8 input and output; every quantised tensor's scales finite and positive, int8
   zero points in -128..127, per-channel scales matching their dimension;
4. supported operators: every operator the outputs depend on is one the compiler lowers (PAD only
   where it folds into the convolution that reads it), with the options and arity it needs;
5. with nanokws metadata (labels, frontend): metadata well formed, frontend parameters those of the
   C frontend, input shape = frontend frames x channels, output size = number of labels.

`modelmeta.read_model_bytes()` calls it, so compile, export, eval, verify, bench, ship and hil all
refuse a bad model up front, before any long work, instead of failing later in lowering, TFLite
Micro or a C `_Static_assert`.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import NanokwsError, describe

MAX_ELEMENTS = 1 << 24  # per tensor: far above any keyword-spotting model, far below a memory blowup
MAX_RANK = 6


class ModelError(NanokwsError):
    """A .tflite that cannot be used: malformed, inconsistent or unsupported (exit code 2)."""


@dataclass
class CheckedModel:
    source: str
    graph: Any  # compiler.tflite_reader.Graph
    meta: dict[str, Any] | None  # nanokws metadata, None when the model has none


# --- 1. flatbuffer bounds ----------------------------------------------------------------------


class _Bounds:
    """A minimal flatbuffer verifier for the parts of the TFLite schema the tools read."""

    def __init__(self, data: bytes) -> None:
        self.b = data
        self.n = len(data)

    def _need(self, pos: int, size: int, what: str) -> None:
        if pos < 0 or size < 0 or pos + size > self.n:
            raise ModelError(f"malformed flatbuffer: {what} at byte {pos} runs past the end ({self.n} bytes)")

    def u8(self, pos: int, what: str) -> int:
        self._need(pos, 1, what)
        return self.b[pos]

    def u16(self, pos: int, what: str) -> int:
        self._need(pos, 2, what)
        return int(struct.unpack_from("<H", self.b, pos)[0])

    def u32(self, pos: int, what: str) -> int:
        self._need(pos, 4, what)
        return int(struct.unpack_from("<I", self.b, pos)[0])

    def i32(self, pos: int, what: str) -> int:
        self._need(pos, 4, what)
        return int(struct.unpack_from("<i", self.b, pos)[0])

    def table(self, pos: int, what: str) -> tuple[int, int, int, int]:
        """(table pos, vtable pos, vtable length, object length), all checked."""
        vt = pos - self.i32(pos, what)
        vt_len = self.u16(vt, f"{what} vtable")
        obj_len = self.u16(vt + 2, f"{what} vtable")
        if vt_len < 4 or vt_len % 2:
            raise ModelError(f"malformed flatbuffer: {what} vtable of {vt_len} bytes")
        self._need(vt, vt_len, f"{what} vtable")
        self._need(pos, max(obj_len, 4), what)
        return pos, vt, vt_len, obj_len

    def field(self, t: tuple[int, int, int, int], index: int, size: int, what: str) -> int | None:
        pos, vt, vt_len, obj_len = t
        voff = 4 + 2 * index
        if voff + 2 > vt_len:
            return None
        off = self.u16(vt + voff, what)
        if off == 0:
            return None
        if off + size > obj_len:
            raise ModelError(f"malformed flatbuffer: {what} lies outside its table")
        self._need(pos + off, size, what)
        return pos + off

    def ref(self, t: tuple[int, int, int, int], index: int, what: str) -> int | None:
        p = self.field(t, index, 4, what)
        if p is None:
            return None
        target = p + self.u32(p, what)
        self._need(target, 4, what)
        return target

    def vector(
        self, t: tuple[int, int, int, int], index: int, elem: int, what: str
    ) -> tuple[int, int] | None:
        v = self.ref(t, index, what)
        if v is None:
            return None
        length = self.u32(v, what)
        self._need(v + 4, length * elem, f"{what} ({length} elements)")
        return v + 4, length

    def tables(self, t: tuple[int, int, int, int], index: int, what: str) -> list[tuple[int, int, int, int]]:
        vec = self.vector(t, index, 4, what)
        if vec is None:
            return []
        start, length = vec
        out = []
        for i in range(length):
            p = start + 4 * i
            out.append(self.table(p + self.u32(p, what), f"{what}[{i}]"))
        return out

    def sub(self, t: tuple[int, int, int, int], index: int, what: str) -> tuple[int, int, int, int] | None:
        p = self.ref(t, index, what)
        return None if p is None else self.table(p, what)


_last_verified: list[bytes] = []  # the last bytes object that passed (immutable, so safe to reuse)


def check_bounds(tflite: bytes) -> None:
    """Raise ModelError unless every part of `tflite` the reader unpacks lies inside the file."""
    if _last_verified and _last_verified[0] is tflite:
        return
    _check_bounds(tflite)
    if isinstance(tflite, bytes):
        _last_verified[:] = [tflite]


def _check_bounds(tflite: bytes) -> None:
    if len(tflite) < 8 or tflite[4:8] != b"TFL3":
        raise ModelError("not a TFLite flatbuffer (missing 'TFL3' identifier)")
    fb = _Bounds(tflite)
    model = fb.table(fb.u32(0, "root offset"), "model")
    for i in (8, 9):
        if fb.field(model, i, 4, "model field") is not None:
            raise ModelError("external buffer groups are not supported")
    for i, code in enumerate(fb.tables(model, 1, "operator_codes")):
        fb.vector(code, 1, 1, f"operator_codes[{i}].custom_code")
    subgraphs = fb.tables(model, 2, "subgraphs")
    fb.vector(model, 3, 1, "description")
    for i, buf in enumerate(fb.tables(model, 4, "buffers")):
        fb.vector(buf, 0, 1, f"buffers[{i}].data")
    fb.vector(model, 5, 4, "metadata_buffer")
    for i, meta in enumerate(fb.tables(model, 6, "metadata")):
        fb.vector(meta, 0, 1, f"metadata[{i}].name")
    for i, sig in enumerate(fb.tables(model, 7, "signature_defs")):
        for k in (0, 1):
            for j, tmap in enumerate(fb.tables(sig, k, f"signature_defs[{i}] tensors")):
                fb.vector(tmap, 0, 1, f"signature_defs[{i}] tensor {j} name")
        fb.vector(sig, 2, 1, f"signature_defs[{i}].signature_key")
        fb.vector(sig, 3, 1, f"signature_defs[{i}].deprecated_tag")
    for s, sg in enumerate(subgraphs):
        for i, tensor in enumerate(fb.tables(sg, 0, f"subgraph {s} tensors")):
            what = f"tensor {i}"
            for field, elem in ((0, 4), (3, 1), (7, 4)):
                fb.vector(tensor, field, elem, what)
            q = fb.sub(tensor, 4, f"{what} quantization")
            if q is not None:
                for field, elem in ((0, 4), (1, 4), (2, 4), (3, 8)):
                    fb.vector(q, field, elem, f"{what} quantization")
                if fb.field(q, 5, 4, f"{what} quantization details") is not None:
                    raise ModelError(f"{what}: custom quantization details are not supported")
            if fb.field(tensor, 6, 4, what) is not None:
                raise ModelError(f"{what}: sparse tensors are not supported")
            if fb.field(tensor, 9, 4, what) is not None:
                raise ModelError(f"{what}: variant tensors are not supported")
        fb.vector(sg, 1, 4, f"subgraph {s} inputs")
        fb.vector(sg, 2, 4, f"subgraph {s} outputs")
        for i, op in enumerate(fb.tables(sg, 3, f"subgraph {s} operators")):
            what = f"operator {i}"
            for field, elem in ((1, 4), (2, 4), (5, 1), (7, 1), (8, 4)):
                fb.vector(op, field, elem, what)
            options = fb.sub(op, 4, f"{what} options")
            if options is not None:
                _check_options_vectors(fb, options, what)
            if fb.field(op, 12, 4, what) is not None:
                raise ModelError(f"{what}: StableHLO options are not supported")
        fb.vector(sg, 4, 1, f"subgraph {s} name")


def _check_options_vectors(fb: _Bounds, options: tuple[int, int, int, int], what: str) -> None:
    """Options tables are unpacked by their type byte; here only their fields must lie inside the
    table (their few vectors are read through numpy, which checks bounds itself)."""
    pos, vt, vt_len, obj_len = options
    for index in range((vt_len - 4) // 2):
        off = fb.u16(vt + 4 + 2 * index, what)
        if off and off + 1 > obj_len:
            raise ModelError(f"malformed flatbuffer: {what} options field {index} lies outside its table")


# --- 2..5. graph, quantisation, operators, metadata ----------------------------------------------

# Operator -> (options class name or None when it may be absent, min inputs, max inputs).
_OPS: dict[str, tuple[str | None, int, int]] = {
    "CONV_2D": ("Conv2DOptionsT", 2, 3),
    "DEPTHWISE_CONV_2D": ("DepthwiseConv2DOptionsT", 2, 3),
    "FULLY_CONNECTED": ("FullyConnectedOptionsT", 2, 3),
    "AVERAGE_POOL_2D": ("Pool2DOptionsT", 1, 1),
    "MAX_POOL_2D": ("Pool2DOptionsT", 1, 1),
    "MEAN": ("ReducerOptionsT", 2, 2),
    "RESHAPE": (None, 1, 2),
    "SQUEEZE": (None, 1, 1),
    "SOFTMAX": ("SoftmaxOptionsT", 1, 1),
    "ADD": (None, 2, 2),
    "PAD": (None, 2, 2),
}
_CONST_INPUTS = {
    "CONV_2D": (1,), "DEPTHWISE_CONV_2D": (1,), "FULLY_CONNECTED": (1,), "MEAN": (1,), "PAD": (1,)
}


def _read_graph(tflite: bytes, source: str) -> Any:
    from .compiler.tflite_reader import read_graph

    try:
        return read_graph(tflite)
    except NanokwsError as exc:
        raise ModelError(f"{source}: {describe(exc)}") from exc
    except Exception as exc:  # anything the bounds check let through is still a malformed file
        raise ModelError(f"{source}: malformed model ({describe(exc)})") from exc


def _check_tensors(g: Any, source: str) -> None:
    n = len(g.tensors)
    for t in g.tensors:
        what = f"{source}: tensor {t.index} ({t.name or 'unnamed'})"
        if len(t.shape) > MAX_RANK:
            raise ModelError(f"{what}: rank {len(t.shape)} (at most {MAX_RANK})")
        if any(d < 0 for d in t.shape):
            raise ModelError(f"{what}: negative dimension in shape {list(t.shape)}")
        if math.prod(t.shape) > MAX_ELEMENTS:
            raise ModelError(f"{what}: {math.prod(t.shape)} elements in shape {list(t.shape)} is too large")
        if t.scales.size:
            if not np.all(np.isfinite(t.scales)) or not np.all(t.scales > 0):
                bad = next(float(s) for s in t.scales if not (math.isfinite(float(s)) and s > 0))
                raise ModelError(f"{what}: quantization scale {bad} (must be finite and positive)")
            if t.zero_points.size not in (0, t.scales.size):
                raise ModelError(f"{what}: {t.scales.size} scales but {t.zero_points.size} zero points")
            if t.scales.size > 1:
                qd = t.quantized_dimension
                if not 0 <= qd < len(t.shape) or t.shape[qd] != t.scales.size:
                    raise ModelError(
                        f"{what}: {t.scales.size} per-channel scales do not match dimension {qd} of "
                        f"shape {list(t.shape)}"
                    )
            if t.dtype == "INT8" and t.zero_points.size and (
                t.zero_points.min() < -128 or t.zero_points.max() > 127
            ):
                raise ModelError(f"{what}: int8 zero point outside -128..127")
    for role, idx in (("input", g.inputs), ("output", g.outputs)):
        for i in idx:
            if not 0 <= i < n:
                raise ModelError(f"{source}: model {role} tensor index {i} out of range (0..{n - 1})")
    for op in g.operators:
        for i in (*op.inputs, *op.outputs):
            if not -1 <= i < n:
                raise ModelError(f"{source}: op {op.index} {op.opcode}: tensor index {i} out of range")
        if any(i < 0 for i in op.outputs):
            raise ModelError(f"{source}: op {op.index} {op.opcode}: missing output tensor")


def _check_io(g: Any, source: str) -> None:
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise ModelError(
            f"{source}: model must have one input and one output ({len(g.inputs)} / {len(g.outputs)} found)"
        )
    for role, ti in (("input", g.inputs[0]), ("output", g.outputs[0])):
        t = g.tensors[ti]
        if t.dtype != "INT8":
            raise ModelError(
                f"{source}: model {role} is {t.dtype}, need a full-int8 model (int8 input and output; "
                "`nanokws train` converts so)"
            )
        if not t.scales.size:
            raise ModelError(f"{source}: model {role} is not quantised (no scale)")
        if t.data is not None:
            raise ModelError(f"{source}: model {role} is a constant tensor")


def _check_ops(g: Any, source: str) -> None:
    from .compiler import lower

    producers: dict[int, int] = {}
    for op in g.operators:
        for o in op.outputs:
            if o in producers:
                raise ModelError(f"{source}: tensor {o} is written by ops {producers[o]} and {op.index}")
            producers[o] = op.index
    if g.outputs[0] not in producers:
        raise ModelError(f"{source}: no operator computes the model output")
    live = lower.live_ops(g)
    try:
        lower.check_supported(g, live)
    except lower.UnsupportedModelError as exc:
        raise lower.UnsupportedModelError(f"{source}: {exc}") from exc
    for op in g.operators:
        if op.index not in live:
            continue
        options, lo, hi = _OPS.get(op.opcode, (None, 0, 99))
        what = f"{source}: op {op.index} {op.opcode}"
        if not lo <= len(op.inputs) <= hi or len(op.outputs) != 1:
            raise ModelError(f"{what}: {len(op.inputs)} inputs / {len(op.outputs)} outputs is malformed")
        if any(i < 0 for i in op.inputs[:lo]):
            raise ModelError(f"{what}: a required input is missing")
        if options is not None and type(op.options).__name__ != options:
            got = type(op.options).__name__ if op.options is not None else "none"
            raise ModelError(f"{what}: options are {got}, expected {options}")
        for k in _CONST_INPUTS.get(op.opcode, ()):
            if g.tensors[op.inputs[k]].data is None:
                raise ModelError(f"{what}: input {k} must be constant")
        for i in (*op.inputs, *op.outputs):
            t = g.tensors[i] if i >= 0 else None
            if t is not None and t.data is None and any(d < 1 for d in t.shape):
                raise ModelError(f"{what}: tensor {i} has an empty dimension in shape {list(t.shape)}")
        data_in = g.tensors[op.inputs[0]]
        out = g.tensors[op.outputs[0]]
        if op.opcode == "SOFTMAX" and not (math.isfinite(op.options.beta) and op.options.beta > 0):
            raise ModelError(f"{what}: beta {op.options.beta} (must be finite and positive)")
        if op.opcode == "FULLY_CONNECTED":
            w = g.tensors[op.inputs[1]]
            if len(w.shape) != 2 or min(w.shape) < 1 or w.dtype != "INT8" or not w.scales.size:
                raise ModelError(f"{what}: weights must be 2-D quantised int8, not {w.dtype} {list(w.shape)}")
        for t in (data_in, out):
            if t.dtype != "INT8" or not t.scales.size:
                raise ModelError(f"{what}: tensor {t.index} is {t.dtype}, not quantised int8")
        if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            _check_conv(g, op, what)
        if op.opcode in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            o = op.options
            if min(o.strideH, o.strideW, o.filterHeight, o.filterWidth) < 1 or o.padding not in (0, 1):
                raise ModelError(f"{what}: bad pool geometry")
    try:
        lower.foldable_pads(g, live)
    except NanokwsError as exc:
        raise lower.UnsupportedModelError(f"{source}: {describe(exc)}") from exc


def _check_conv(g: Any, op: Any, what: str) -> None:
    o = op.options
    w = g.tensors[op.inputs[1]]
    x = g.tensors[op.inputs[0]]
    if min(o.strideH, o.strideW, o.dilationHFactor, o.dilationWFactor) < 1 or o.padding not in (0, 1):
        raise ModelError(f"{what}: bad stride, dilation or padding")
    if len(w.shape) != 4 or len(x.shape) != 4 or len(g.tensors[op.outputs[0]].shape) != 4:
        raise ModelError(f"{what}: input, weights and output must be 4-D")
    if w.dtype != "INT8" or not w.scales.size:
        raise ModelError(f"{what}: weights are {w.dtype}, not quantised int8")
    if min(w.shape) < 1 or min(x.shape) < 1:
        raise ModelError(f"{what}: empty input or weights")
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        b = g.tensors[op.inputs[2]]
        if b.data is None or b.dtype != "INT32":
            raise ModelError(f"{what}: bias must be constant int32")


def _check_metadata(meta: Any, g: Any, source: str) -> dict[str, Any]:
    from .features import FRONTEND_CONFIG

    if not isinstance(meta, dict):
        raise ModelError(f"{source}: nanokws metadata is not a JSON object")
    labels = meta.get("labels")
    if (
        not isinstance(labels, list)
        or not labels
        or not all(isinstance(x, str) and x for x in labels)
        or len(set(labels)) != len(labels)
    ):
        raise ModelError(f"{source}: metadata labels must be a non-empty list of distinct names")
    frontend = meta.get("frontend")
    if frontend is not None:
        if not isinstance(frontend, dict):
            raise ModelError(f"{source}: metadata frontend is not a JSON object")
        diff = [k for k, v in FRONTEND_CONFIG.items() if frontend.get(k) != v]
        if diff:
            k = diff[0]
            raise ModelError(
                f"{source}: trained with different frontend parameters ({k}: model {frontend.get(k)!r} "
                f"vs frontend {FRONTEND_CONFIG[k]})"
            )
    frames, channels = FRONTEND_CONFIG["NK_FE_CLIP_FRAMES"], FRONTEND_CONFIG["NK_FE_NUM_CHANNELS"]
    shape = [d for d in g.tensors[g.inputs[0]].shape]
    rest = [d for d in shape if d != 1]
    # A window of at least one clip's frames (longer for a model VALID in time: window.py).
    if len(rest) != 2 or rest[1] != channels or rest[0] < frames:
        raise ModelError(
            f"{source}: input shape {shape} is not a window of the frontend's frames x {channels} channels "
            f"(at least {frames} frames)"
        )
    out = g.tensors[g.outputs[0]]
    if out.size != len(labels):
        raise ModelError(
            f"{source}: output has {out.size} values (shape {list(out.shape)}) but the metadata lists "
            f"{len(labels)} labels"
        )
    return meta


def check_model(tflite: bytes, source: str = "model") -> CheckedModel:
    """Validate `tflite` (see the module docstring); the parsed graph and metadata on success."""
    from .modelmeta import find_metadata

    try:
        check_bounds(tflite)
    except ModelError as exc:
        raise ModelError(f"{source}: {describe(exc)}") from exc
    g = _read_graph(tflite, source)
    _check_tensors(g, source)
    _check_io(g, source)
    _check_ops(g, source)
    meta = find_metadata(tflite, source)
    if meta is not None:
        meta = _check_metadata(meta, g, source)
    return CheckedModel(source, g, meta)
