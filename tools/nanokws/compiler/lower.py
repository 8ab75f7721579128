"""Lower each TFLite operator to one kernel call (C declarations + a call), or reject it.

Every rejection is one line naming the op, its index and what is unsupported.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

from ..errors import NanokwsError
from . import quant
from .tflite_reader import Graph, Operator, Tensor

SUPPORTED = (
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "AVERAGE_POOL_2D",
    "MAX_POOL_2D",
    "MEAN",
    "RESHAPE",
    "SQUEEZE",
    "SOFTMAX",
    "ADD",
    "PAD",
)

# Operators whose padding may absorb a PAD that feeds them (see foldable_pads).
PAD_CONSUMERS = ("CONV_2D", "DEPTHWISE_CONV_2D")


class UnsupportedModelError(NanokwsError):
    """The model uses an operator or parameter the compiler has no kernel for (exit code 2)."""


@dataclass
class Layer:
    op_index: int
    opcode: str
    inputs: list[int]  # activation tensors read (indices into Graph.tensors)
    output: int
    alias: bool = False  # RESHAPE/SQUEEZE: output shares the input's bytes, no code
    decls: list[str] = field(default_factory=list)  # C definitions of constants for this layer
    call: str = ""  # C statement with {in0}, {in1}, {out} (and {scratch}) placeholders
    macs: int = 0
    weight_bytes: int = 0
    scratch: int = 0  # bytes of kernel scratch the planner reserves in the arena for this layer only
    prefix: str = ""  # C name prefix of this layer's constants (e.g. "l3": l3_params, l3_w); set by lower()
    params: dict[str, int] = field(default_factory=dict)  # geometry/quantisation (conv, pool, mean)


@dataclass(frozen=True)
class FoldedPad:
    """A PAD op absorbed by the convolution that reads it: the conv reads `source` (the PAD's input)
    with this much zero-point padding. Exact, because a conv's own padding taps read the input zero
    point, which is the value PAD writes (its input and output share scale and zero point)."""

    source: int  # tensor index of the PAD's input
    top: int
    bottom: int
    left: int
    right: int


def _fail(op: Operator, what: str) -> UnsupportedModelError:
    return UnsupportedModelError(f"unsupported model: op {op.index} {op.opcode}: {what}")


def _c_array(ctype: str, name: str, values: np.ndarray) -> str:
    flat = [int(v) for v in np.asarray(values).reshape(-1)]
    rows = [", ".join(str(v) for v in flat[i : i + 24]) for i in range(0, len(flat), 24)]
    body = ",\n    ".join(rows) if rows else "0"
    return f"static const {ctype} {name}[{max(1, len(flat))}] = {{\n    {body}\n}};"


def _act(op: Operator) -> int:
    act = int(getattr(op.options, "fusedActivationFunction", 0) or 0)
    if act not in quant.ACTIVATIONS:
        raise _fail(op, f"fused activation {act} (only NONE, RELU, RELU_N1_TO_1, RELU6)")
    return act


def _check_int8(op: Operator, t: Tensor, role: str) -> None:
    if t.dtype != "INT8":
        raise _fail(op, f"{role} tensor '{t.name}' is {t.dtype}, only int8 is supported")
    if t.scales.size == 0:
        raise _fail(op, f"{role} tensor '{t.name}' is not quantised")


def _nhwc(op: Operator, t: Tensor, role: str) -> tuple[int, int, int]:
    if len(t.shape) != 4 or t.shape[0] != 1:
        raise _fail(op, f"{role} shape {list(t.shape)} (need [1, H, W, C])")
    return t.shape[1], t.shape[2], t.shape[3]


def _conv_struct(name: str, v: dict[str, int]) -> str:
    body = ", ".join(f".{k} = {int(v.get(k, 0))}" for k in _conv_fields())
    return f"static const nk_conv_params_t {name} = {{{body}}};"


def _struct(ctype: str, name: str, v: dict[str, object]) -> str:
    def fmt(x: object) -> str:
        if isinstance(x, float | np.floating):
            return f"{float(np.float32(x)).hex()}f"
        return str(int(x))  # type: ignore[call-overload]

    return f"static const {ctype} {name} = {{{', '.join(f'.{k} = {fmt(x)}' for k, x in v.items())}}};"


def _geometry(
    op: Operator, inp: Tensor, out: Tensor, k_h: int, k_w: int, pad: FoldedPad | None = None
) -> dict[str, int]:
    """Kernel geometry; `pad` is a PAD folded into this VALID op (`inp` is then the PAD's input)."""
    o = op.options
    if int(getattr(o, "dilationHFactor", 1) or 1) != 1 or int(getattr(o, "dilationWFactor", 1) or 1) != 1:
        raise _fail(op, "dilation other than 1")
    same = int(o.padding) == 0
    sh, sw = int(o.strideH), int(o.strideW)
    ih, iw, ic = _nhwc(op, inp, "input")
    oh, ow, oc = _nhwc(op, out, "output")
    if pad is not None:
        if same:
            raise _fail(op, "reads a PAD but has SAME padding itself (only PAD + VALID is supported)")
        valid_h = quant.out_size(False, ih + pad.top + pad.bottom, k_h, sh)
        valid_w = quant.out_size(False, iw + pad.left + pad.right, k_w, sw)
        if (valid_h, valid_w) != (oh, ow):
            raise _fail(op, f"output shape {list(out.shape)} does not follow from the PAD and strides")
        pad_h, pad_w = pad.top, pad.left
    else:
        if (quant.out_size(same, ih, k_h, sh), quant.out_size(same, iw, k_w, sw)) != (oh, ow):
            raise _fail(op, f"output shape {list(out.shape)} does not follow from the padding/strides")
        pad_h, pad_w = quant.padding(ih, k_h, sh, oh), quant.padding(iw, k_w, sw, ow)
    return {
        "in_h": ih,
        "in_w": iw,
        "in_c": ic,
        "out_h": oh,
        "out_w": ow,
        "out_c": oc,
        "k_h": k_h,
        "k_w": k_w,
        "stride_h": sh,
        "stride_w": sw,
        "pad_h": pad_h,
        "pad_w": pad_w,
    }


def _per_channel(
    op: Operator, inp: Tensor, w: Tensor, out: Tensor, channels: int
) -> tuple[np.ndarray, np.ndarray]:
    scales = w.scales if w.scales.size > 1 else np.repeat(w.scales, channels)
    if scales.size != channels:
        raise _fail(op, f"{w.scales.size} weight scales for {channels} output channels")
    if np.any(w.zero_points != 0):
        raise _fail(op, "asymmetric (non-zero zero point) weights")
    pairs = [
        quant.quantize_multiplier(float(np.float32(inp.scale)) * float(s) / float(np.float32(out.scale)))
        for s in scales
    ]
    return np.array([m for m, _ in pairs], dtype=np.int64), np.array([s for _, s in pairs], dtype=np.int64)


def _bias(op: Operator, g: Graph, channels: int) -> Tensor | None:
    if len(op.inputs) < 3 or op.inputs[2] < 0:
        return None
    b = g.tensors[op.inputs[2]]
    if b.dtype != "INT32" or b.data is None or b.size != channels:
        raise _fail(op, f"bias '{b.name}' must be a constant int32 vector of {channels} values")
    return b


def _const_weights(op: Operator, w: Tensor) -> None:
    if w.dtype != "INT8" or w.data is None:
        raise _fail(op, f"weights '{w.name}' must be constant int8 ({w.dtype} given)")


# ---- The kernels' compile-time contracts, from their C (firmware/lib/kernels: nk_kernels.h,
# nk_kernels_pack.h) through the nanokws._frontend extension: weight layouts, folded biases,
# requantisation tables, the fast kernels' preconditions and scratch sizes. No Python copy. ----


def _kernels() -> ModuleType:
    """The extension with the kernels' functions, or one line saying how to build it."""
    try:
        from .. import _frontend
    except ImportError as exc:
        raise NanokwsError(
            "the C extension nanokws._frontend is not built: run `pip install .` (or `pip install -e .` "
            "in the repository)"
        ) from exc
    if not hasattr(_frontend, "conv2d_fast_pack"):
        raise NanokwsError(
            "the C extension nanokws._frontend predates the kernels' packing functions "
            "(compiler/_kernels_module.c): rebuild it with `pip install -e .` in the repository"
        )
    return _frontend


@functools.cache
def _conv_fields() -> tuple[str, ...]:
    """nk_conv_params_t's fields in declaration order."""
    return tuple(_kernels().conv_params_fields())


def _i32(values: object) -> np.ndarray:
    a = np.asarray(values)
    if a.size and (a.min() < -(1 << 31) or a.max() >= 1 << 31):
        raise ValueError("value outside int32")
    return np.ascontiguousarray(a.reshape(-1), np.int32)


def _i8(values: object) -> np.ndarray:
    a = np.asarray(values)
    if a.size and (a.min() < -128 or a.max() > 127):
        raise ValueError("weight outside int8")
    return np.ascontiguousarray(a.reshape(-1), np.int8)


def folded_bias(w_rows: np.ndarray, bias: np.ndarray | None, in_offset: int) -> np.ndarray:
    """bias + in_offset * (sum of each output channel's weights), nk_fast_fold_bias: the input offset's
    whole contribution, added once at compile time instead of once per MAC. `w_rows` is [out_c, taps]."""
    rows, k = np.shape(w_rows)
    b = None if bias is None else _i32(bias)
    out = _kernels().fast_fold_bias(_i8(w_rows), rows, k, k, 1, b, int(in_offset))
    return np.frombuffer(out, np.int64).copy()


def accumulators_bounded(w_rows: np.ndarray, bias_f: np.ndarray, shift: np.ndarray) -> bool:
    """nk_fast_check_bounded: True when nk_requantize_bounded is exact for every output (no accumulator
    of raw int8 inputs times the weights, plus the folded bias, reaches 2^30; every shift is a right
    shift). `w_rows` is [out_c, taps]."""
    rows, k = np.shape(w_rows)
    bf = np.ascontiguousarray(np.asarray(bias_f).reshape(-1), np.int64)
    return bool(_kernels().fast_check_bounded(_i8(w_rows), rows, k, k, 1, bf, _i32(shift)))


def fast_scratch_bytes(v: dict[str, int], dw: bool) -> int:
    """Bytes of scratch nk_dwconv2d_fast_s8 (`dw`) or nk_conv2d_fast_s8 needs for the geometry `v`
    (nk_conv_params_t fields): nk_dwconv2d_fast_scratch_bytes / nk_conv2d_fast_scratch_bytes."""
    k = _kernels()
    fields = {f: int(v.get(f, 0)) for f in _conv_fields()}
    return int(k.dwconv2d_fast_scratch_bytes(fields) if dw else k.conv2d_fast_scratch_bytes(fields))


def conv_rq_table(bias_f: np.ndarray, mult: np.ndarray, shift: np.ndarray, out_offset: int) -> np.ndarray:
    """nk_conv2d_fast_s8's per-channel constants, nk_conv_rq_fill: per channel the folded bias, the
    multiplier, the fast output stage's rounding constant (2 out_offset + 1) 2^(e-1) (0 when the right
    shift e = -shift exceeds 22) and e."""
    out = _kernels().conv_rq_fill(_i32(bias_f), _i32(mult), _i32(shift), int(out_offset))
    return np.frombuffer(out, np.int32).astype(np.int64)


def dw_fast_order(taps: int, channels: int) -> np.ndarray:
    """Source index (into the [taps, channels] weights) of each byte of nk_dwconv2d_fast_s8's layout
    (nk_dw_fast_order, the inverse of nk_dw_fast_index)."""
    return np.frombuffer(_kernels().dw_fast_order(int(taps), int(channels)), np.int32).astype(np.int64)


def gemm_order(out_c: int, k: int) -> np.ndarray:
    """Source index (into [out_c, k] weight rows) of each byte of nk_gemm_cols_s8's layout
    (nk_gemm_order, the inverse of nk_gemm_index): rows in pairs, 4 inputs of the even row then 4 of
    the odd row, the k % 4 leftovers of each row last; an odd last row as is."""
    return np.frombuffer(_kernels().gemm_order(int(out_c), int(k)), np.int32).astype(np.int64)


def pack_fast_conv(
    v: dict[str, int], w: np.ndarray, bias: np.ndarray | None, mult: np.ndarray, shift: np.ndarray, dw: bool
) -> tuple[np.ndarray, np.ndarray] | None:
    """The fast kernel's constant data for a CONV_2D (`w` as the .tflite's [out_c, k_h, k_w, in_c]) or
    a depth-multiplier-1 DEPTHWISE_CONV_2D ([1, k_h, k_w, out_c]) of geometry `v`: nk_conv2d_fast_pack
    -> (weights in the nk_gemm_index layout, the NK_RQ_WORDS-per-channel table), nk_dwconv2d_fast_pack
    -> (weights in the nk_dw_fast_index layout, the folded bias). None when the kernel's
    requantisation preconditions do not hold (then the reference kernel runs)."""
    k = _kernels()
    fields = {f: int(v.get(f, 0)) for f in _conv_fields()}
    b = None if bias is None else _i32(bias)
    if dw:
        packed = k.dwconv2d_fast_pack(fields, _i8(w), b, _i32(shift))
    else:
        packed = k.conv2d_fast_pack(fields, _i8(w), b, _i32(mult), _i32(shift))
    if packed is None:
        return None
    w_packed, consts = packed
    return np.frombuffer(w_packed, np.int8).copy(), np.frombuffer(consts, np.int32).copy()


def fold_dead_channels(
    v: dict[str, int], w: np.ndarray, bias: np.ndarray | None, mult: np.ndarray, shift: np.ndarray, dw: bool
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, list[int]]:
    """Output channels whose weights are all zero give one constant whatever the input: their
    accumulator is the bias. TFLite quantises such a channel's bias with a vanishing weight scale,
    so it sits at +-2^30 with a shift near -27, past the fast kernels' accumulator bound, and one
    dead channel would keep the whole layer on the reference kernel. Each is given the same
    constant as 4k with multiplier 2^30 and shift -1 (exactly k: 4k * 2^30 * 2 / 2^32 = 2k, then
    a rounding halving of an even number). -> (bias, mult, shift, the channels changed)."""
    channels = w[0].reshape(-1, w.shape[-1]) if dw else w.reshape(w.shape[0], -1).T
    dead = [c for c in range(channels.shape[1]) if not np.any(channels[:, c])]
    if not dead:
        return bias, mult, shift, []
    b = np.zeros(channels.shape[1], np.int64) if bias is None else np.asarray(bias, np.int64).copy()
    m, sh = np.asarray(mult, np.int64).copy(), np.asarray(shift, np.int64).copy()
    for c in dead:
        out = quant.requantize(int(b[c]), int(m[c]), int(sh[c])) + v["out_offset"]
        k = min(max(out, v["act_min"]), v["act_max"]) - v["out_offset"]
        b[c], m[c], sh[c] = 4 * k, 1 << 30, -1
    return b, m, sh, dead


def _lower_fast_conv(
    op: Operator,
    p: str,
    v: dict[str, int],
    source: int,
    w: np.ndarray,
    bias: Tensor | None,
    mult: np.ndarray,
    shift: np.ndarray,
    dw: bool,
    macs: int,
) -> Layer | None:
    """The fast kernel's call for a CONV_2D / depthwise (multiplier 1) layer, or None when its
    requantisation preconditions do not hold (then the reference kernel runs)."""
    b, mult, shift, _ = fold_dead_channels(v, w, None if bias is None else bias.data, mult, shift, dw)
    packed = pack_fast_conv(v, w, b, mult, shift, dw)
    if packed is None:
        return None
    w_out, consts = packed
    decls = [_conv_struct(f"{p}_params", v), _c_array("int8_t", f"{p}_w", w_out)]
    if dw:
        decls += [
            _c_array("int32_t", f"{p}_mult", mult),
            _c_array("int32_t", f"{p}_shift", shift),
            _c_array("int32_t", f"{p}_bias_f", consts),
        ]
        args = f"{p}_bias_f, {p}_mult, {p}_shift"
        call = f"nk_dwconv2d_fast_s8(&{p}_params, {{in0}}, {p}_w, {args}, {{out}}, {{scratch}});"
    else:
        decls.append(_c_array("int32_t", f"{p}_rq", consts))
        call = f"nk_conv2d_fast_s8(&{p}_params, {{in0}}, {p}_w, {p}_rq, {{out}}, {{scratch}});"
    return Layer(
        op.index,
        op.opcode,
        [source],
        op.outputs[0],
        decls=decls,
        call=call,
        macs=macs,
        # the packed weights and constants, plus the .tflite's int32 mult and shift the depthwise kernel takes
        weight_bytes=w_out.nbytes + consts.nbytes + (4 * (mult.size + shift.size) if dw else 0),
        scratch=fast_scratch_bytes(v, dw),
        params=dict(v),
    )


def lower(g: Graph, fast: bool = True) -> list[Layer]:
    """One `Layer` per operator, in execution order. `fast` picks the fast conv kernels (folded
    bias, re-laid-out weights) wherever their preconditions hold; False keeps the reference ones."""
    layers: list[Layer] = []
    live = live_ops(g)
    check_supported(g, live)
    pads = foldable_pads(g, live)
    for op in g.operators:
        if op.index not in live:
            continue  # e.g. SHAPE/STRIDED_SLICE/PACK computing a RESHAPE's (static) target shape
        if op.opcode == "PAD":
            continue  # folded into the convolution that reads it (foldable_pads)
        prefix = f"l{len(layers)}"
        layer = _lower_one(g, op, prefix, fast, pads)
        layer.prefix = prefix
        layers.append(layer)
    return layers


def check_supported(g: Graph, live: set[int]) -> None:
    """Refuse, naming the first, any live operator the compiler has no kernel for."""
    for op in g.operators:
        if op.index in live and op.opcode not in SUPPORTED:
            raise _fail(op, "operator not supported (supported: " + ", ".join(SUPPORTED) + ")")


def live_ops(g: Graph) -> set[int]:
    """Operators the outputs depend on. A RESHAPE/SQUEEZE needs only its data input: its output
    shape is static in the flatbuffer, so ops computing the shape tensor are dead code."""
    producer = {o: op for op in g.operators for o in op.outputs}
    live: set[int] = set()
    todo = list(g.outputs)
    while todo:
        op = producer.get(todo.pop())
        if op is None or op.index in live:
            continue
        live.add(op.index)
        ins = op.inputs[:1] if op.opcode in ("RESHAPE", "SQUEEZE") else op.inputs
        todo.extend(i for i in ins if i >= 0)
    return live


def foldable_pads(g: Graph, live: set[int]) -> dict[int, FoldedPad]:
    """Every live PAD op, checked and keyed by its output tensor. A PAD is supported only where a
    convolution can absorb it: int8, constant paddings on height/width only, in and out quantised
    alike, read by exactly one CONV_2D/DEPTHWISE_CONV_2D as its data input. This is how streamable
    models pad frequency but not time (TFLite has one padding mode for both axes)."""
    readers: dict[int, list[Operator]] = {}
    for op in g.operators:
        if op.index in live:
            for i in op.inputs:
                readers.setdefault(i, []).append(op)
    pads: dict[int, FoldedPad] = {}
    for op in g.operators:
        if op.index not in live or op.opcode != "PAD":
            continue
        t = g.tensors
        inp, out = t[op.inputs[0]], t[op.outputs[0]]
        _check_int8(op, inp, "input")
        _check_int8(op, out, "output")
        _nhwc(op, inp, "input")
        paddings = t[op.inputs[1]].data if len(op.inputs) > 1 and op.inputs[1] >= 0 else None
        if paddings is None or np.asarray(paddings).shape != (4, 2):
            raise _fail(op, "paddings must be a constant [4, 2] tensor")
        (b0, b1), (top, bottom), (left, right), (c0, c1) = (tuple(int(v) for v in r) for r in paddings)
        if b0 or b1 or c0 or c1:
            raise _fail(op, "padding the batch or channel axis is not supported (height/width only)")
        if min(top, bottom, left, right) < 0:
            raise _fail(op, "negative padding")
        if (float(inp.scale), inp.zero_point) != (float(out.scale), out.zero_point):
            raise _fail(op, "input and output are quantised differently (the pad value would change)")
        users = readers.get(out.index, [])
        if out.index in g.outputs or len(users) != 1 or users[0].opcode not in PAD_CONSUMERS:
            raise _fail(op, "supported only when its output feeds exactly one CONV_2D/DEPTHWISE_CONV_2D")
        if users[0].inputs[0] != out.index:
            raise _fail(op, "its output is not the data input of the convolution that reads it")
        pads[out.index] = FoldedPad(inp.index, top, bottom, left, right)
    return pads


def _lower_one(
    g: Graph, op: Operator, p: str, fast: bool = True, pads: dict[int, FoldedPad] | None = None
) -> Layer:
    t = g.tensors
    out = t[op.outputs[0]]
    pad = (pads or {}).get(op.inputs[0])
    inp = t[pad.source if pad is not None else op.inputs[0]]
    _check_int8(op, inp, "input")
    _check_int8(op, out, "output")
    code = op.opcode
    if code in ("RESHAPE", "SQUEEZE"):
        if inp.size != out.size:
            raise _fail(op, "element count changes")
        return Layer(op.index, code, [inp.index], out.index, alias=True)
    if code in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        w = t[op.inputs[1]]
        _const_weights(op, w)
        dw = code == "DEPTHWISE_CONV_2D"
        k_h, k_w = (w.shape[1], w.shape[2])
        v = _geometry(op, inp, out, k_h, k_w, pad)
        v.update(in_offset=-inp.zero_point, out_offset=out.zero_point)
        v["act_min"], v["act_max"] = quant.activation_range(_act(op), out.scale, out.zero_point)
        if dw:
            if w.shape[0] != 1 or w.shape[3] != v["out_c"] or v["out_c"] % v["in_c"]:
                raise _fail(op, f"weights shape {list(w.shape)} for {v['in_c']} -> {v['out_c']} channels")
            v["depth_mult"] = v["out_c"] // v["in_c"]
            macs = v["out_h"] * v["out_w"] * v["out_c"] * k_h * k_w
        else:
            if w.shape[0] != v["out_c"] or w.shape[3] != v["in_c"]:
                raise _fail(
                    op,
                    f"weights shape {list(w.shape)} for {v['in_c']} -> {v['out_c']} channels "
                    "(grouped convolution)",
                )
            macs = v["out_h"] * v["out_w"] * v["out_c"] * k_h * k_w * v["in_c"]
        mult, shift = _per_channel(op, inp, w, out, v["out_c"])
        bias = _bias(op, g, v["out_c"])
        if fast and (not dw or v["depth_mult"] == 1):
            fast_layer = _lower_fast_conv(op, p, v, inp.index, w.data, bias, mult, shift, dw, macs)
            if fast_layer is not None:
                return fast_layer
        decls = [
            _conv_struct(f"{p}_params", v),
            _c_array("int8_t", f"{p}_w", w.data),
            _c_array("int32_t", f"{p}_mult", mult),
            _c_array("int32_t", f"{p}_shift", shift),
        ]
        if bias is not None:
            decls.append(_c_array("int32_t", f"{p}_bias", bias.data))
        fn = "nk_dwconv2d_s8" if dw else "nk_conv2d_s8"
        b = f"{p}_bias" if bias is not None else "NULL"
        call = f"{fn}(&{p}_params, {{in0}}, {p}_w, {b}, {p}_mult, {p}_shift, {{out}});"
        wbytes = w.size + 8 * v["out_c"] + (4 * v["out_c"] if bias is not None else 0)
        return Layer(
            op.index,
            code,
            [inp.index],
            out.index,
            decls=decls,
            call=call,
            macs=macs,
            weight_bytes=wbytes,
            params=dict(v),
        )
    if code == "FULLY_CONNECTED":
        w = t[op.inputs[1]]
        _const_weights(op, w)
        if int(getattr(op.options, "weightsFormat", 0) or 0) != 0:
            raise _fail(op, "shuffled weights format")
        if len(w.shape) != 2:
            raise _fail(op, f"weights shape {list(w.shape)} (need [out, in])")
        out_len, in_len = w.shape
        if inp.size % in_len or out.size != (inp.size // in_len) * out_len:
            raise _fail(op, f"input of {inp.size} values does not match weights {list(w.shape)}")
        per_channel = w.scales.size > 1
        mult, shift = _per_channel(op, inp, w, out, out_len)
        if not per_channel:
            mult, shift = mult[:1], shift[:1]
        bias = _bias(op, g, out_len)
        lo, hi = quant.activation_range(_act(op), out.scale, out.zero_point)
        v = {
            "batches": inp.size // in_len,
            "in_len": in_len,
            "out_len": out_len,
            "in_offset": -inp.zero_point,
            "out_offset": out.zero_point,
            "act_min": lo,
            "act_max": hi,
            "per_channel": int(per_channel),
        }
        decls = [
            _struct("nk_fc_params_t", f"{p}_params", v),
            _c_array("int8_t", f"{p}_w", w.data),
            _c_array("int32_t", f"{p}_mult", mult),
            _c_array("int32_t", f"{p}_shift", shift),
        ]
        if bias is not None:
            decls.append(_c_array("int32_t", f"{p}_bias", bias.data))
        b = f"{p}_bias" if bias is not None else "NULL"
        call = f"nk_fully_connected_s8(&{p}_params, {{in0}}, {p}_w, {b}, {p}_mult, {p}_shift, {{out}});"
        wbytes = w.size + 8 * mult.size + (4 * out_len if bias is not None else 0)
        return Layer(
            op.index,
            code,
            [inp.index],
            out.index,
            decls=decls,
            call=call,
            macs=v["batches"] * in_len * out_len,
            weight_bytes=wbytes,
        )
    if code in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        o = op.options
        if inp.zero_point != out.zero_point or not np.float32(inp.scale) == np.float32(out.scale):
            raise _fail(op, "input and output quantisation differ")
        v = _geometry(op, inp, out, int(o.filterHeight), int(o.filterWidth))
        v["act_min"], v["act_max"] = quant.activation_range(_act(op), out.scale, out.zero_point)
        fn = "nk_avgpool_s8" if code == "AVERAGE_POOL_2D" else "nk_maxpool_s8"
        return Layer(
            op.index,
            code,
            [inp.index],
            out.index,
            decls=[_conv_struct(f"{p}_params", v)],
            call=f"{fn}(&{p}_params, {{in0}}, {{out}});",
            params=dict(v),
        )
    if code == "MEAN":
        axis_t = t[op.inputs[1]]
        if axis_t.data is None:
            raise _fail(op, "axis must be a constant")
        rank = len(inp.shape)
        axes = sorted({int(a) % rank for a in np.asarray(axis_t.data).reshape(-1)})
        if not axes or axes != list(range(axes[0], axes[-1] + 1)):
            raise _fail(op, f"reduction axes {axes} are not one contiguous block")
        outer = int(np.prod(inp.shape[: axes[0]]))
        reduce = int(np.prod(inp.shape[axes[0] : axes[-1] + 1]))
        inner = int(np.prod(inp.shape[axes[-1] + 1 :]))
        if reduce == 0 or out.size != outer * inner:
            raise _fail(op, f"output shape {list(out.shape)} does not match the reduction")
        same = inp.zero_point == out.zero_point and np.float32(inp.scale) == np.float32(out.scale)
        mult, shift = quant.mean_multiplier(inp.scale, out.scale, reduce)
        v = {
            "outer": outer,
            "reduce": reduce,
            "inner": inner,
            "same_quant": int(same),
            "in_zp": inp.zero_point,
            "out_zp": out.zero_point,
            "mult": mult,
            "shift": shift,
        }
        return Layer(
            op.index,
            code,
            [inp.index],
            out.index,
            decls=[_struct("nk_mean_params_t", f"{p}_params", v)],
            call=f"nk_mean_s8(&{p}_params, {{in0}}, {{out}});",
            params={k: int(x) for k, x in v.items()},
        )
    if code == "SOFTMAX":
        if out.zero_point != -128 or abs(out.scale - 1.0 / 256) > 1e-6:
            raise _fail(op, "int8 output must have scale 1/256 and zero point -128")
        beta = float(getattr(op.options, "beta", 1.0))
        mult, shift, diff_min = quant.softmax_params(beta, inp.scale)
        if shift < 0:
            raise _fail(op, f"input scale {inp.scale} too small for the integer softmax")
        depth = inp.shape[-1] if inp.shape else 1
        v = {
            "rows": inp.size // depth,
            "depth": depth,
            "input_multiplier": mult,
            "input_left_shift": shift,
            "diff_min": diff_min,
        }
        return Layer(
            op.index,
            code,
            [inp.index],
            out.index,
            decls=[_struct("nk_softmax_params_t", f"{p}_params", v)],
            call=f"nk_softmax_s8(&{p}_params, {{in0}}, {{out}});",
        )
    if code == "ADD":
        in2 = t[op.inputs[1]]
        _check_int8(op, in2, "second input")
        if in2.data is not None or inp.data is not None:
            raise _fail(op, "constant operands are not supported")
        if tuple(inp.shape) != tuple(in2.shape) or inp.size != out.size:
            raise _fail(op, f"broadcasting {list(inp.shape)} + {list(in2.shape)} is not supported")
        lo, hi = quant.activation_range(_act(op), out.scale, out.zero_point)
        v = {
            "size": out.size,
            "in1_offset": -inp.zero_point,
            "in2_offset": -in2.zero_point,
            "out_offset": out.zero_point,
            **quant.add_params(inp.scale, in2.scale, out.scale),
            "act_min": lo,
            "act_max": hi,
        }
        return Layer(
            op.index,
            code,
            [inp.index, in2.index],
            out.index,
            decls=[_struct("nk_add_params_t", f"{p}_params", v)],
            call=f"nk_add_s8(&{p}_params, {{in0}}, {{in1}}, {{out}});",
        )
    raise _fail(op, "operator not supported")  # pragma: no cover - SUPPORTED is checked first
