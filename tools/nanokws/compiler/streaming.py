"""Exact streaming inference: which models can run incrementally, and the static plan to do so.

Tensors are NHWC with H = time. A chain of layers whose time axis is computed without padding
(VALID in time: no output row reads across a window edge) can run one input row at a time: each new
frame is appended to the first layer's history of its last k_t input rows; whenever a layer has
received k_t rows (then every stride_h rows) its kernel runs on exactly those k_t contiguous rows
with out_h = 1, giving one new output row, which is appended to the next layer's history. The rows
a layer computes eagerly are exactly the rows of the current window (the model's input frames: a
clip's 49, or more, window.py), provided the product of the time strides up to every layer divides
the inference stride (so consecutive windows share rows). The chain ends at the first layer that is
not row-wise ("collapse" layer):

* "rowsum": a global average pool / MEAN over time (and the axes after it). Each new row of its
  input is reduced to one partial sum per output value (int16 when the row's values it adds are at
  most 256, which bounds it to -32768..32512; else int32) and kept in a ring of the window's H
  rows; at inference the H partial sums are added (integer addition is associative, so the total is
  the full-window sum bit for bit) and divided with the same rounding as nk_avgpool_s8 / nk_mean_s8
  (TFLite Micro's reference kernels). When the ring is exactly the window (no phases, no delay) the
  sum is kept as a running total instead: each new row adds its partial sums and subtracts those of
  the row it replaces, so an inference reads the total (the same integers, without H additions).
* "window": anything else (flatten + dense, max pool over time...): the last H rows of its input
  are kept in a ring and copied, oldest first, into the work area at inference, and the layers
  from the collapse layer on run exactly as in the clip model.

Time strides beyond the inference stride ("phases"). Window starts are multiples of the alignment
A = gcd(inference stride, product of all time strides). A layer whose time strides up to it multiply
to S <= A computes a row every S frames, as above. Once S exceeds A (it must then be a multiple of
A), consecutive windows no longer share that layer's rows: a window starting A frames later needs
rows on a grid shifted by A frames. So from there on every layer computes a row every A frames (the
dense form: a strided layer followed by a layer of kernel k equals the unstrided layer followed by
a layer of kernel k dilated by the stride, sampled), and a layer whose input rows are d = S_in / A
apart in the window keeps d interleaved histories ("phases") of k rows: each new input row goes to
the next phase in turn, and that phase's k rows are exactly the rows its kernel reads. Per
inference this is still one new row per layer; the state grows by the extra phases. The collapse
then gathers the window's H rows, d apart, from a ring of (H - 1) d + 1 + delay rows, where the
delay counts rows computed after the window's last one (frames left over at the window's end).

The layers after the collapse point ("tail") run once per inference on a small arena of their own,
planned like the clip arena. Every buffer is static: the histories, rings and counters are the
persistent state, the row temporaries, kernel scratch and tail arena share one work area.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import NanokwsError
from . import planner
from .lower import Layer, fast_scratch_bytes
from .tflite_reader import Graph

ROW_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D")
ALIGN = planner.ALIGN


class NotStreamableError(NanokwsError):
    """`--streaming` asked for a model that cannot run incrementally (one line saying which layer)."""

    exit_code = 2


@dataclass
class RowStage:
    """One row-wise layer of the streamed chain."""

    layer: int  # index into the lowered layers
    opcode: str
    k: int  # rows of input per output row (kernel height)
    stride: int  # the layer's own time stride
    step: int  # input rows between its output rows (the stride, or 1 in the dense form)
    dil: int  # input rows between its kernel's rows: 1, or the number of interleaved histories
    in_row: int  # bytes of one input row
    out_row: int  # bytes of one output row
    rows_per_inference: int  # output rows computed per inference at the default stride
    sub_params: dict[str, int]  # the layer's geometry for k input rows -> 1 output row
    scratch: int  # fast-kernel scratch for that sub-geometry
    macs_per_row: int
    hist_offset: int = -1  # offset of this layer's dil x k-row input history in the state (k > 1)

    @property
    def hist_bytes(self) -> int:
        return self.dil * self.k * self.in_row if self.k > 1 else 0


@dataclass
class StreamPlan:
    stride: int  # default frames between inferences
    align: int  # product of all time strides of the chain: allowed strides are its multiples
    window_frames: int  # H of the model input
    frame_len: int  # bytes of one input row (frame)
    output_len: int
    stages: list[RowStage]
    collapse: int  # index of the first layer that is not row-wise (len(layers): none)
    mode: str  # "rowsum" or "window"
    collapse_rows: int  # H of the collapse layer's input
    collapse_row_bytes: int  # bytes of one row of the collapse layer's input
    collapse_dil: int = 1  # ring rows between two consecutive rows of the window
    collapse_delay: int = 0  # ring rows computed after the window's last row, at inference
    sum_inner: int = 0  # rowsum: partial sums per row
    sum_r2: int = 0  # rowsum: values reduced within one row per partial sum
    hist_bytes: int = 0  # all histories (int8)
    ring_bytes: int = 0  # window mode: H rows of the collapse input (int8)
    sums_bytes: int = 0  # rowsum mode: ring rows x sum_inner x sum_bytes
    counter_bytes: int = 0  # countdowns, phases, ring position, stride (uint32 each)
    temp_bytes: int = 0  # one row temporary (two are used, ping-pong)
    scratch_bytes: int = 0  # largest kernel scratch of any row stage
    tail_layers: list[int] = field(default_factory=list)  # layer indices run per inference
    tail_input: int = -1  # tensor the tail starts from
    tail_plan: planner.Plan | None = None  # offsets of the tail's tensors in the work area
    work_bytes: int = 0

    @property
    def state_bytes(self) -> int:
        """Persistent RAM of the stream (histories, ring or partial sums, counters)."""
        return self.hist_bytes + self.ring_bytes + self.sums_bytes + self.total_bytes + self.counter_bytes

    @property
    def running_total(self) -> bool:
        """Rowsum mode whose window is the whole ring: the head reads a running total (updated as
        each row's partial sums enter and the oldest leave) instead of adding the H rows again."""
        return self.mode == "rowsum" and self.ring_rows == self.collapse_rows

    @property
    def total_bytes(self) -> int:
        """The running total's RAM: one int32 per partial sum of a row (0 without one)."""
        return 4 * self.sum_inner if self.running_total else 0

    @property
    def ring_rows(self) -> int:
        """Rows of the collapse input kept (window ring or partial sums)."""
        return (self.collapse_rows - 1) * self.collapse_dil + 1 + self.collapse_delay

    @property
    def sum_bytes(self) -> int:
        """Bytes of one partial sum: a row's sum of sum_r2 int8 values fits int16 up to 256 of them
        (|sum| <= 256 x 128 = 32768, and -32768 is the only value that reaches it), else int32."""
        return 2 if self.sum_r2 <= 256 else 4

    @property
    def phased(self) -> bool:
        return any(st.dil > 1 for st in self.stages)

    @property
    def row_work_bytes(self) -> int:
        return 2 * _align(self.temp_bytes) + _align(self.scratch_bytes)


@dataclass
class Streamability:
    streamable: bool
    reason: str  # why not (empty when streamable)
    plan: StreamPlan | None


def _align(x: int) -> int:
    return (x + ALIGN - 1) // ALIGN * ALIGN


def _rows(shape: tuple[int, ...] | list[int]) -> int | None:
    """H of a [1, H, ...] tensor (None when it has no time axis)."""
    if len(shape) < 2 or shape[0] != 1 or shape[1] < 1:
        return None
    return int(shape[1])


def _chain_stride(g: Graph, layers: list[Layer]) -> int:
    """Product of the time strides of the row-wise chain `_plan` walks (same stopping rules; `_plan`
    still checks each layer)."""
    total, cur = 1, g.inputs[0]
    for layer in layers:
        if layer.alias:
            if layer.inputs[0] != cur or _rows(g.tensors[layer.output].shape) != _rows(g.tensors[cur].shape):
                break
            cur = layer.output
            continue
        if layer.opcode not in ROW_OPS or layer.inputs[0] != cur:
            break
        v = layer.params
        if layer.opcode in ("AVERAGE_POOL_2D", "MAX_POOL_2D") and v["k_h"] == v["in_h"] and v["out_h"] == 1 \
                and v["in_h"] > 1:
            break
        total *= v["stride_h"]
        cur = layer.output
    return total


def _uses_fast(layer: Layer) -> tuple[bool, bool]:
    """(uses a fast kernel, is depthwise)."""
    return ("_fast_s8" in layer.call, layer.opcode == "DEPTHWISE_CONV_2D")


def _rowsum_shape(layer: Layer, rows: int, row_bytes: int) -> tuple[int, int] | None:
    """(inner, r2) when `layer` reduces over the whole time axis in a way partial sums per row can
    reproduce exactly: a global AVERAGE_POOL_2D (whole H x W) or a MEAN whose reduced block starts at
    the time axis. None otherwise."""
    v = layer.params
    if layer.opcode == "AVERAGE_POOL_2D":
        if (
            v["k_h"] == v["in_h"] == rows
            and v["out_h"] == 1
            and v["k_w"] == v["in_w"]
            and v["out_w"] == 1
            and v["pad_h"] == 0
            and v["pad_w"] == 0
        ):
            return v["in_c"], v["in_w"]
        return None
    if layer.opcode == "MEAN":
        if v["outer"] == 1 and v["reduce"] % rows == 0:
            r2 = v["reduce"] // rows
            if r2 * v["inner"] == row_bytes:
                return v["inner"], r2
    return None


def analyse(g: Graph, layers: list[Layer], stride: int = 2) -> Streamability:
    """Can the model run incrementally with an inference every `stride` frames? Returns the plan,
    or the reason (one line naming the layer) why not."""
    try:
        return Streamability(True, "", _plan(g, layers, stride))
    except NotStreamableError as exc:
        return Streamability(False, str(exc), None)


def _plan(g: Graph, layers: list[Layer], stride: int) -> StreamPlan:
    if stride < 1:
        raise NotStreamableError(f"inference stride {stride} must be at least 1 frame")
    inp = g.tensors[g.inputs[0]]
    h0 = _rows(inp.shape)
    if h0 is None or inp.size % h0:
        raise NotStreamableError(f"model input shape {list(inp.shape)} has no time axis [1, frames, ...]")
    align = math.gcd(stride, _chain_stride(g, layers))
    cur, cur_h, cur_row = inp.index, h0, inp.size // h0
    s_total, rate, field_ = 1, 1, 1  # strides so far, frames between computed rows, receptive field
    stages: list[RowStage] = []
    collapse = len(layers)
    for n, layer in enumerate(layers):
        what = f"layer {n} {layer.opcode}"
        if layer.alias:
            out = g.tensors[layer.output]
            if layer.inputs[0] == cur and _rows(out.shape) == cur_h:
                cur = layer.output  # same bytes, same rows: transparent
                continue
            collapse = n
            break
        if layer.opcode not in ROW_OPS:
            collapse = n
            break
        if layer.inputs[0] != cur:
            raise NotStreamableError(f"{what} does not read the previous layer's output (branching graph)")
        v = layer.params
        pool = layer.opcode in ("AVERAGE_POOL_2D", "MAX_POOL_2D")
        if pool and v["k_h"] == v["in_h"] and v["out_h"] == 1 and v["in_h"] > 1:
            collapse = n  # pooling over the whole window: the reduction is the collapse point
            break
        if v["pad_h"] != 0 or v["out_h"] != (v["in_h"] - v["k_h"]) // v["stride_h"] + 1:
            raise NotStreamableError(
                f"{what} pads the time axis (SAME, kernel {v['k_h']} rows); streaming needs VALID in time"
            )
        s_in = s_total
        s_total *= v["stride_h"]
        if align % s_total and s_total % align:
            raise NotStreamableError(
                f"{what}: the time strides up to here multiply to {s_total}, which neither divides nor is "
                f"a multiple of {align} frames, the alignment of windows at an inference stride of "
                f"{stride} frames (consecutive windows would share no rows)"
            )
        new_rate = math.gcd(s_total, align)
        dil, step = s_in // rate, new_rate // rate
        field_ += (v["k_h"] - 1) * s_in
        rate = new_rate
        sub = dict(v, in_h=v["k_h"], out_h=1, pad_h=0)
        fast, dw = _uses_fast(layer)
        out = g.tensors[layer.output]
        stages.append(
            RowStage(
                layer=n,
                opcode=layer.opcode,
                k=v["k_h"],
                stride=v["stride_h"],
                step=step,
                dil=dil,
                in_row=v["in_w"] * v["in_c"],
                out_row=v["out_w"] * v["out_c"],
                rows_per_inference=stride // rate,
                sub_params=sub,
                scratch=fast_scratch_bytes(sub, dw) if fast else 0,
                macs_per_row=layer.macs // v["out_h"] if v["out_h"] else 0,
            )
        )
        if v["in_w"] * v["in_c"] != cur_row or out.size != v["out_h"] * v["out_w"] * v["out_c"]:
            raise NotStreamableError(f"{what}: tensor layout is not [1, time, freq, channels]")
        cur, cur_h, cur_row = layer.output, v["out_h"], v["out_w"] * v["out_c"]
    x = g.tensors[cur]
    if _rows(x.shape) != cur_h:
        raise NotStreamableError(f"tensor '{x.name}' {list(x.shape)} has no time axis of {cur_h} rows")
    mode, tail_from, tail_input, inner, r2 = "window", collapse, cur, 0, 0
    if collapse < len(layers):
        rs = _rowsum_shape(layers[collapse], cur_h, cur_row)
        if rs is not None:
            mode, tail_from, tail_input = "rowsum", collapse + 1, layers[collapse].output
            inner, r2 = rs
    tail = list(range(tail_from, len(layers)))
    known = {tail_input}
    for n in tail:
        layer = layers[n]
        for t in layer.inputs:
            if t not in known:
                raise NotStreamableError(
                    f"layer {n} {layer.opcode} reads tensor '{g.tensors[t].name}' from the time-streamed "
                    "part (a skip connection or branch across the collapse point)"
                )
        known.add(layer.output)
    if g.outputs[0] not in known:
        raise NotStreamableError("the model output is not computed from the streamed chain")
    # The window's last collapse row ends `slack` frames before the window does; rows computed since.
    slack = h0 - field_ - s_total * (cur_h - 1)
    plan = StreamPlan(
        stride=stride,
        align=align,
        window_frames=h0,
        frame_len=inp.size // h0,
        output_len=g.tensors[g.outputs[0]].size,
        stages=stages,
        collapse=collapse,
        mode=mode,
        collapse_rows=cur_h,
        collapse_row_bytes=cur_row,
        collapse_dil=s_total // rate,
        collapse_delay=slack // rate,
        sum_inner=inner,
        sum_r2=r2,
        tail_layers=tail,
        tail_input=tail_input,
    )
    _allocate(g, layers, plan)
    return plan


def _allocate(g: Graph, layers: list[Layer], plan: StreamPlan) -> None:
    """State offsets of the histories, sizes of the rings, temporaries and the tail's arena."""
    off = 0
    for st in plan.stages:
        if st.k > 1:
            st.hist_offset = off
            off += _align(st.hist_bytes)
    plan.hist_bytes = off
    if plan.mode == "window":
        plan.ring_bytes = _align(plan.ring_rows * plan.collapse_row_bytes)
    else:
        plan.sums_bytes = plan.ring_rows * plan.sum_inner * plan.sum_bytes
    stage_counters = max(len(plan.stages), 1) * (2 if plan.phased else 1)  # need[] (and phase[])
    plan.counter_bytes = 4 * (stage_counters + 4)  # + pos, to_ready, since, stride
    temps = [st.out_row for st in plan.stages]
    plan.temp_bytes = max(temps, default=0)
    plan.scratch_bytes = max((st.scratch for st in plan.stages), default=0)
    sub = dataclasses.replace(g, inputs=[plan.tail_input])
    plan.tail_plan = planner.plan_arena(sub, [layers[n] for n in plan.tail_layers])
    plan.work_bytes = max(plan.row_work_bytes, plan.tail_plan.arena_bytes, ALIGN)


def macs_per_inference(plan: StreamPlan, layers: list[Layer]) -> int:
    """MACs of one inference step at the default stride: the new rows of every row layer plus the tail."""
    rows = sum(st.macs_per_row * st.rows_per_inference for st in plan.stages)
    return rows + sum(layers[n].macs for n in plan.tail_layers)


def report(plan: StreamPlan, layers: list[Layer]) -> dict[str, Any]:
    """The streaming part of compile_report.json."""
    return {
        "stride_frames": plan.stride,
        "stride_align_frames": plan.align,
        "window_frames": plan.window_frames,
        "frame_len": plan.frame_len,
        "mode": plan.mode,
        "collapse_layer": plan.collapse,
        "ring_rows": plan.ring_rows,
        "collapse_row_spacing": plan.collapse_dil,
        "collapse_delay_rows": plan.collapse_delay,
        "state_bytes": plan.state_bytes,
        "history_bytes": plan.hist_bytes,
        "ring_bytes": plan.ring_bytes,
        "partial_sums_bytes": plan.sums_bytes,
        "running_total_bytes": plan.total_bytes,
        "counter_bytes": plan.counter_bytes,
        "work_bytes": plan.work_bytes,
        "row_temp_bytes": 2 * _align(plan.temp_bytes),
        "scratch_bytes": plan.scratch_bytes,
        "tail_arena_bytes": plan.tail_plan.arena_bytes if plan.tail_plan else 0,
        "total_ram_bytes": plan.state_bytes + plan.work_bytes,
        "macs_per_inference": macs_per_inference(plan, layers),
        "full_window_macs": sum(layer.macs for layer in layers),
        "stages": [
            {
                "layer": st.layer,
                "op": st.opcode,
                "k_t": st.k,
                "stride_t": st.stride,
                "phases": st.dil,
                "history_bytes": st.hist_bytes,
                "history_offset": st.hist_offset if st.k > 1 else None,
                "rows_per_inference": st.rows_per_inference,
                "macs_per_row": st.macs_per_row,
                "scratch_bytes": st.scratch,
            }
            for st in plan.stages
        ],
        "tail_layers": plan.tail_layers,
    }
