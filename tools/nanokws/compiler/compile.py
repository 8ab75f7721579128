"""compile_model: .tflite bytes -> a folder of generated C + compile_report.json."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import atomic
from ..errors import NanokwsError
from ..modelmeta import model_sha256
from ..versions import tool_versions
from . import codegen, codegen_stream, lower, planner, streaming
from .tflite_reader import read_graph

if TYPE_CHECKING:
    from ..streams.replay import RecognizerFile


@dataclass
class CompileResult:
    out_dir: Path
    report: dict[str, Any]
    layers: list[lower.Layer]
    plan: planner.Plan  # arena offsets of the tensors and of each layer's scratch


def _model_config(tflite: bytes, recognizer: RecognizerFile | None = None) -> tuple[str | None, str]:
    """model_config.h from the export helper, or None with the reason (no metadata, not installed)."""
    try:
        from ..export.model_config import render_model_config
    except ImportError as exc:
        return None, f"nanokws.export.model_config unavailable ({exc})"
    try:
        return render_model_config(tflite, recognizer), ""
    except NanokwsError as exc:
        if recognizer is not None:  # asked for settings this model cannot take: say so
            raise
        return None, str(exc)


def compile_model(
    tflite: bytes,
    out_dir: str | os.PathLike[str],
    source: str = "model.tflite",
    measure_tflm: bool = True,
    fast: bool = True,
    stream: bool | None = None,
    stream_stride: int = 2,
    recognizer: RecognizerFile | None = None,
) -> CompileResult:
    """Compile `tflite` into `out_dir` (nk_model.h, nk_model.c, model_config.h, compile_report.json).
    `fast=False` uses only the reference kernels (for comparisons; same outputs). Whether the model
    can run incrementally (an inference every `stream_stride` frames) is always reported. The
    streaming form (nk_model_stream.h, its code in nk_model.c) is generated when the model can
    stream and `stream` is None (the default: detect), always with `stream=True` (which raises
    NotStreamableError, one line naming the layer, when the model cannot stream), never with
    `stream=False`. `recognizer` (a streams.replay.RecognizerFile): the recognizer's start-up
    settings for model_config.h (default: the library's)."""
    g = read_graph(tflite)
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise NanokwsError(
            f"model must have one input and one output ({len(g.inputs)} / {len(g.outputs)} found)"
        )
    for role, ti in (("input", g.inputs[0]), ("output", g.outputs[0])):
        if g.tensors[ti].dtype != "INT8":
            raise lower.UnsupportedModelError(
                f"unsupported model: model {role} is {g.tensors[ti].dtype}; "
                "convert with int8 input and output"
            )
    layers = lower.lower(g, fast=fast)
    plan = planner.plan_arena(g, layers)
    sha = model_sha256(tflite)
    header, body = codegen.render(g, layers, plan, source, sha[:16])
    sa = streaming.analyse(g, layers, stream_stride)
    if stream and sa.plan is None:
        raise streaming.NotStreamableError(f"cannot stream this model: {sa.reason}")
    stream_header = None
    if stream is not False and sa.plan is not None:
        stream_header = codegen_stream.render_header(sa.plan, layers, source, sha[:16])
        body += codegen_stream.render_body(g, layers, sa.plan)
    config, config_note = _model_config(tflite, recognizer)
    report: dict[str, Any] = {
        "source": source,
        "sha256": sha,
        "input_len": g.tensors[g.inputs[0]].size,
        "output_len": g.tensors[g.outputs[0]].size,
        "weights_flash_bytes": sum(layer.weight_bytes for layer in layers),
        "arena_bytes": plan.arena_bytes,  # everything the model needs in RAM but the stack
        "scratch_bytes": plan.scratch_bytes,  # largest kernel scratch of any layer (inside arena_bytes)
        "total_macs": sum(layer.macs for layer in layers),
        "layers": [
            {
                "layer": n,
                "op_index": layer.op_index,
                "op": layer.opcode,
                "output_shape": list(g.tensors[layer.output].shape),
                "macs": layer.macs,
                "weight_bytes": layer.weight_bytes,
                "arena_offset": plan.offsets[layer.output],
                "scratch_bytes": plan.scratch.get(n, (0, 0))[1],
                "scratch_offset": plan.scratch[n][0] if n in plan.scratch else None,
            }
            for n, layer in enumerate(layers)
        ],
        "model_config_h": bool(config),
        "versions": tool_versions(),  # what was installed (constraints.txt pins it); not in the C
        "streaming": {
            "streamable": sa.streamable,
            "reason": sa.reason,
            "generated": stream_header is not None,
            "requested": {None: "detect", True: "required", False: "off"}[stream],
            **(streaming.report(sa.plan, layers) if sa.plan is not None else {}),
        },
    }
    if not config:
        report["model_config_note"] = config_note
    if measure_tflm:
        from . import tflm

        usage = tflm.arena_usage(tflite)
        report["tflm_arena_total_bytes"] = usage["total"]
        report["tflm_arena_head_bytes"] = usage.get("head", 0)
        report["tflm_arena_method"] = (
            "tflite_micro runtime Interpreter.print_allocations() "
            "(RecordingMicroAllocator, 64-bit host build)"
        )
    out = Path(out_dir)
    with atomic.atomic_dir(out) as stage:
        (stage / "nk_model.h").write_text(header)
        (stage / "nk_model.c").write_text(body)
        if config:
            (stage / "model_config.h").write_text(config)
        if stream_header is not None:
            (stage / "nk_model_stream.h").write_text(stream_header)
        atomic.write_json(stage / "compile_report.json", report)
    stale = out / "model_config.h"
    if not config and stale.is_file():  # an earlier model's config would contradict this model
        stale.unlink()
    stale = out / "nk_model_stream.h"
    if stream_header is None and stale.is_file():  # nk_model.c no longer implements it
        stale.unlink()
    return CompileResult(out, report, layers, plan)


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{'layer':>5} {'op':<18} {'output shape':<18} {'MACs':>10} {'weights B':>10}"]
    for row in report["layers"]:
        lines.append(
            f"{row['layer']:>5} {row['op']:<18} {str(row['output_shape']):<18} {row['macs']:>10} "
            f"{row['weight_bytes']:>10}"
        )
    lines.append(
        f"total MACs {report['total_macs']}, weights (flash) {report['weights_flash_bytes']} B, "
        f"arena {report['arena_bytes']} B (incl. {report['scratch_bytes']} B largest kernel scratch)"
    )
    st = report.get("streaming", {})
    if st.get("streamable"):
        lines.append(
            f"streamable (stride {st['stride_frames']} frames, {st['mode']} head): "
            f"{st['macs_per_inference']} MACs per inference instead of {st['full_window_macs']}; "
            f"state {st['state_bytes']} B + work {st['work_bytes']} B"
            + (
                "; streaming form generated (nk_model_stream.h: the firmware runs it incrementally)"
                if st["generated"]
                else "; streaming form not generated (--no-streaming)"
            )
        )
    elif st:
        lines.append(f"not streamable (the firmware runs the full window per inference): {st['reason']}")
    if "tflm_arena_total_bytes" in report:
        lines.append(
            f"TFLite Micro arena for the same model: {report['tflm_arena_total_bytes']} B total "
            f"({report['tflm_arena_head_bytes']} B tensors/scratch), measured on this host"
        )
    return "\n".join(lines)
