"""nanokws metadata carried inside a .tflite file, so a model file alone says how to feed it.

Stored as a JSON blob in the flatbuffer's `metadata` table under the name "nanokws"; TFLite and
TFLite Micro ignore it. Keys: `labels` (class names in output order), `frontend` (the feature
parameters of the C frontend the model was trained on), `model` (architecture name), plus anything
the trainer adds.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .errors import NanokwsError

METADATA_NAME = "nanokws"


def model_sha256(tflite: bytes) -> str:
    """The .tflite's sha256 in hex: the model's identity in cards, bench reports and build folders."""
    return hashlib.sha256(tflite).hexdigest()


def model_hash(tflite: bytes) -> str:
    """Its first 16 hex digits: what the firmware's NK_MODEL_HASH holds and INFO reports."""
    return model_sha256(tflite)[:16]


def tflite_schema() -> Any:
    try:
        from tensorflow.lite.python import schema_py_generated as schema
    except ImportError as exc:  # pragma: no cover - tensorflow is a hard dependency
        raise NanokwsError(f"tensorflow is needed to read .tflite metadata: {exc}") from exc
    return schema


def read_model_bytes(path: str | os.PathLike[str], check: bool = True) -> bytes:
    """The bytes of the .tflite at `path`, validated by modelcheck.check_model (unless `check` is
    False): every command reads its model through here, so none uses a malformed one."""
    p = Path(path)
    if p.is_dir():
        raise NanokwsError(f"{p}: is a folder, need a .tflite file")
    if not p.is_file():
        raise NanokwsError(f"{p}: model file not found")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise NanokwsError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise NanokwsError(f"{p}: not a TFLite flatbuffer (missing 'TFL3' identifier)")
    if check:
        from .modelcheck import check_model

        check_model(data, str(p))
    return data


def add_metadata(tflite: bytes, meta: dict[str, Any]) -> bytes:
    """Return a copy of `tflite` with `meta` stored (replacing any earlier nanokws entry).

    TensorFlow's tensor names ("functional_1/ds_cnn_1/conv2d_3_1/convolution;...") are shortened to
    their last two path parts on the way: TFLite Micro never reads them, and on a small model they
    are a sixth of the file.
    """
    schema = tflite_schema()
    model = unpack_model(tflite)
    for subgraph in model.subgraphs or []:
        for tensor in subgraph.tensors or []:
            tensor.name = short_tensor_name(_name(tensor.name))
    blob = json.dumps(meta, sort_keys=True).encode()
    earlier = [m for m in (model.metadata or []) if _name(m.name) == METADATA_NAME]
    if earlier:  # reuse its buffer rather than orphaning it
        index = earlier[0].buffer
    else:
        model.buffers.append(schema.BufferT())
        index = len(model.buffers) - 1
        entry = schema.MetadataT()
        entry.name = METADATA_NAME
        entry.buffer = index
        model.metadata = [*(model.metadata or []), entry]
    model.buffers[index].data = list(blob)
    return pack_model(model, len(tflite) + len(blob) + 1024)


def unpack_model(tflite: bytes) -> Any:
    """The .tflite as an editable object tree (schema ModelT), for rewrites such as add_metadata."""
    schema = tflite_schema()
    return schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(tflite), 0))


def pack_model(model: Any, size_hint: int) -> bytes:
    """Serialise an edited ModelT back to .tflite bytes (file identifier TFL3)."""
    import flatbuffers

    builder = flatbuffers.Builder(size_hint)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def short_tensor_name(name: str, parts: int = 2, limit: int = 40) -> str:
    """'functional_1/net_1/conv2d_3_1/convolution;other' -> 'conv2d_3_1/convolution'."""
    first = name.split(";")[0]
    return "/".join(first.split("/")[-parts:])[:limit]


def read_metadata(tflite: bytes, source: str = "model") -> dict[str, Any]:
    """The nanokws metadata of a .tflite; a clear error if the model was not made by nanokws."""
    meta = find_metadata(tflite, source)
    if meta is None:
        raise NanokwsError(
            f"{source}: no nanokws metadata (labels, frontend); was it made by `nanokws train`?"
        )
    return meta


def find_metadata(tflite: bytes, source: str = "model") -> dict[str, Any] | None:
    """The nanokws metadata as a JSON object, None when absent; NanokwsError when unreadable."""
    from .modelcheck import check_bounds

    check_bounds(tflite)
    schema = tflite_schema()
    try:
        model = schema.Model.GetRootAsModel(bytearray(tflite), 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if entry is None or _name(entry.Name()) != METADATA_NAME:
                continue
            index = entry.Buffer()
            if not 0 <= index < model.BuffersLength():
                raise NanokwsError(f"{source}: nanokws metadata points at missing buffer {index}")
            raw = bytes(model.Buffers(index).DataAsNumpy())
            break
        else:
            return None
    except NanokwsError:
        raise
    except Exception as exc:  # a flatbuffer the bounds check passed but that is still inconsistent
        raise NanokwsError(f"{source}: malformed metadata table ({type(exc).__name__})") from exc
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise NanokwsError(f"{source}: nanokws metadata is not valid UTF-8 JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise NanokwsError(f"{source}: nanokws metadata is not a JSON object")
    return meta


def _name(name: bytes | str | None) -> str:
    if isinstance(name, bytes):
        return name.decode("utf-8", errors="replace")
    return name or ""
