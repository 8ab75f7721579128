"""Render `model_config.h`: what the firmware must know about a model beyond its weights.

Shared by `nanokws export` and `nanokws compile`, so both write the same header. Labels and the
frontend parameters come from the model's nanokws metadata; quantisation parameters of input 0 and
output 0 come from the flatbuffer itself, so the header cannot disagree with the model. The
recognizer's start-up settings (NK_MODEL_REC_*) come from a recognizer.json (`--recognizer`, e.g.
written by a calibration) or are the library's defaults, read from nk_recognizer.h.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from ..errors import NanokwsError
from ..modelmeta import model_hash, read_metadata
from ..streams.replay import CLIP_FRAMES, RecognizerConfig, RecognizerFile

LIBRARY_DEFAULTS = "library defaults"  # NK_MODEL_REC_SOURCE without a recognizer.json
MAX_SOURCE_CHARS = 96  # NK_MODEL_REC_SOURCE goes into INFO, which must fit one frame


def tensor_quantization(tflite: bytes, which: str) -> tuple[float, int]:
    """(scale, zero_point) of subgraph 0's input 0 (`which="input"`) or output 0 (`"output"`)."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(bytearray(tflite), 0)
    if model.SubgraphsLength() < 1:
        raise NanokwsError("model has no subgraph")
    graph = model.Subgraphs(0)
    index = graph.Inputs(0) if which == "input" else graph.Outputs(0)
    tensor = graph.Tensors(index)
    quant = tensor.Quantization()
    if quant is None or quant.ScaleLength() != 1 or quant.ZeroPointLength() != 1:
        raise NanokwsError(f"model {which} 0 is not per-tensor quantised int8; train it with `nanokws train`")
    return float(quant.Scale(0)), int(quant.ZeroPoint(0))


def c_float(value: float) -> str:
    """A C float literal that round-trips a float32 (`%.9g`, always with a '.' or exponent)."""
    if not math.isfinite(value):
        raise NanokwsError(f"non-finite quantisation scale {value}")
    text = f"{value:.9g}"
    if not any(c in text for c in ".en"):
        text += ".0"
    return text + "f"


def c_string(text: str) -> str:
    """A C string literal; json escaping is valid C for printable text, non-ASCII as \\x would not be."""
    if not text.isprintable() or not text.isascii():
        raise NanokwsError(f"label {text!r} must be printable ASCII to go into C")
    return json.dumps(text)


def c_text(text: str, limit: int = MAX_SOURCE_CHARS) -> str:
    """A C string literal of free text: printable ASCII kept (others become '_'), at most `limit`
    characters; a '?' after a '?' is written as the octal escape \\077, so no trigraph can form."""
    kept = "".join(c if c.isascii() and c.isprintable() else "_" for c in text)
    if len(kept) > limit:
        kept = kept[: limit - 3] + "..."
    return json.dumps(kept).replace("??", "?\\077")  # non-overlapping: no "??" is left


def render_recognizer_defines(
    labels: Sequence[str], recognizer: RecognizerFile | None = None, window_frames: int = CLIP_FRAMES
) -> list[str]:
    """model_config.h's NK_MODEL_REC_* lines: `recognizer`'s settings (checked against `labels`),
    or the library's defaults for a model over `window_frames` frames."""
    if recognizer is None:
        cfg, source = RecognizerConfig.defaults(len(labels), window_frames), LIBRARY_DEFAULTS
    else:
        cfg, source = recognizer.config, recognizer.source
        if recognizer.labels is not None and list(recognizer.labels) != [str(x) for x in labels]:
            raise NanokwsError(
                f"recognizer settings are for labels {list(recognizer.labels)}, the model has {list(labels)}"
            )
        if len(cfg.thresholds) != len(labels):
            raise NanokwsError(
                f"recognizer settings have {len(cfg.thresholds)} thresholds, the model {len(labels)} labels"
            )
    return [
        "/* The recognizer's start-up settings (nk_kws_begin; SET_CONFIG and nk_kws_set_* change them",
        " * later): thresholds per label in label order, smoothing window, suppression, release. */",
        f"#define NK_MODEL_REC_SOURCE {c_text(source)}",
        "#define NK_MODEL_REC_THRESHOLDS { " + ", ".join(str(t) for t in cfg.thresholds) + " }",
        f"#define NK_MODEL_REC_WINDOW {cfg.window}",
        f"#define NK_MODEL_REC_SUPPRESSION_MS {cfg.suppression_ms}",
        f"#define NK_MODEL_REC_RELEASE {cfg.release}",
    ]


def input_frames(tflite: bytes, channels: int) -> int:
    """Frames of the model's window: the rows of subgraph 0's input 0 ([1, frames, channels, 1])."""
    from tensorflow.lite.python import schema_py_generated as schema

    from ..window import window_frames_of

    graph = schema.Model.GetRootAsModel(bytearray(tflite), 0).Subgraphs(0)
    return window_frames_of(list(graph.Tensors(graph.Inputs(0)).ShapeAsNumpy()), channels)


def read_recognizer_defines(text: str) -> RecognizerConfig:
    """The inverse of render_recognizer_defines: the start-up settings a model_config.h names."""
    import re

    from ..cheader import parse_int_defines

    found = re.search(r"#define\s+NK_MODEL_REC_THRESHOLDS\s*\{([^}]*)\}", text)
    ints = parse_int_defines(text)
    names = ("NK_MODEL_REC_WINDOW", "NK_MODEL_REC_SUPPRESSION_MS", "NK_MODEL_REC_RELEASE")
    if found is None or any(n not in ints for n in names):
        raise NanokwsError("model_config.h names no recognizer settings (NK_MODEL_REC_*): compile it again")
    thresholds = tuple(int(t) for t in found.group(1).replace(",", " ").split())
    window, suppression, release = (ints[n] for n in names)
    return RecognizerConfig(thresholds, window=window, suppression_ms=suppression, release=release)


def _model_window(tflite: bytes, frontend: dict[str, Any]) -> int:
    """Frames of the model's window; one clip's when its input is not whole frames of `frontend`
    (the header's static asserts then say so)."""
    try:
        return input_frames(tflite, int(frontend.get("NK_FE_NUM_CHANNELS", 1)))
    except NanokwsError:
        return int(frontend.get("NK_FE_CLIP_FRAMES", 49))


def _window_defines(tflite: bytes, frontend: dict[str, Any]) -> list[str]:
    """NK_MODEL_WINDOW_FRAMES and NK_MODEL_CLIP_PAD_BEFORE for a window longer than one clip (none
    for one clip: nk_kws.h's defaults, and the header stays as before windows)."""
    from ..window import clip_offset

    clip = int(frontend.get("NK_FE_CLIP_FRAMES", 0))
    try:
        frames = input_frames(tflite, int(frontend.get("NK_FE_NUM_CHANNELS", 1)))
    except NanokwsError:  # not whole frames of that frontend: its own static asserts say so
        return []
    if clip <= 0 or frames <= clip:
        return []
    return [
        "/* The model's window: longer than one clip (a model VALID in time, tools/nanokws/window.py).",
        " * A clip sits NK_MODEL_CLIP_PAD_BEFORE frames into it, padded with its own least value. */",
        f"#define NK_MODEL_WINDOW_FRAMES {frames}",
        f"#define NK_MODEL_CLIP_PAD_BEFORE {clip_offset(frames, clip)}",
        "",
    ]


def _fe_name(key: str) -> str:
    name = key.upper()
    return name[len("NK_FE_"):] if name.startswith("NK_FE_") else name


def render_model_config(tflite: bytes, recognizer: RecognizerFile | None = None) -> str:
    """The full text of `model_config.h` for this model (valid C11 and C++); the recognizer's
    start-up settings from `recognizer` (a loaded recognizer.json), else the library's defaults."""
    meta: dict[str, Any] = read_metadata(tflite)
    labels = meta.get("labels")
    frontend = meta.get("frontend")
    if not isinstance(labels, list) or not labels or not isinstance(frontend, dict) or not frontend:
        raise NanokwsError("model metadata lacks 'labels' or 'frontend'; was it made by `nanokws train`?")
    in_scale, in_zp = tensor_quantization(tflite, "input")
    out_scale, out_zp = tensor_quantization(tflite, "output")
    digest = model_hash(tflite)
    name = str(meta.get("model", "unknown"))

    lines = [
        "/* Generated by nanokws from a .tflite model; do not edit. */",
        f"/* model: {name}, sha256[:16]: {digest} */",
        "#ifndef NK_MODEL_CONFIG_H",
        "#define NK_MODEL_CONFIG_H",
        "",
        '#include "nk_frontend_config.h"',
        "",
        f'#define NK_MODEL_HASH "{digest}"',
        f"#define NK_MODEL_NAME {c_string(name)}",
        "",
        "/* Output classes, in the order of the model's output vector. */",
        f"#define NK_MODEL_NUM_LABELS {len(labels)}",
        "#define NK_MODEL_LABELS { " + ", ".join(c_string(str(x)) for x in labels) + " }",
        "",
        "/* real = scale * (q - zero_point). Input scale 1 / zero point 0 means the frontend's",
        " * int8 frames are the model input verbatim. */",
        f"#define NK_MODEL_INPUT_SCALE {c_float(in_scale)}",
        f"#define NK_MODEL_INPUT_ZERO_POINT {in_zp}",
        f"#define NK_MODEL_OUTPUT_SCALE {c_float(out_scale)}",
        f"#define NK_MODEL_OUTPUT_ZERO_POINT {out_zp}",
        "",
        *render_recognizer_defines([str(x) for x in labels], recognizer, _model_window(tflite, frontend)),
        "",
        *_window_defines(tflite, frontend),
        "/* Feature parameters the model was trained with; must match this firmware's frontend. */",
    ]
    fe_names = []
    for key in sorted(frontend):
        value = frontend[key]
        if not isinstance(value, int) or isinstance(value, bool):
            raise NanokwsError(f"frontend parameter {key!r} is not an integer: {value!r}")
        fe = _fe_name(key)
        fe_names.append(fe)
        lines.append(f"#define NK_MODEL_FE_{fe} {value if value >= 0 else f'({value})'}")
    lines += [
        "",
        "#ifdef __cplusplus",
        "#define NK_MODEL_STATIC_ASSERT static_assert",
        "#else",
        "#define NK_MODEL_STATIC_ASSERT _Static_assert",
        "#endif",
    ]
    for fe in fe_names:
        lines.append(
            f"NK_MODEL_STATIC_ASSERT(NK_MODEL_FE_{fe} == NK_FE_{fe}, "
            f'"model trained with a different {fe.lower()} than this frontend");'
        )
    lines += ["", "#endif /* NK_MODEL_CONFIG_H */", ""]
    return "\n".join(lines)
