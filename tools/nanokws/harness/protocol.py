"""Python mirror of the firmware's serial protocol (firmware/lib/protocol/PROTOCOL.md).

Its constants (version, limits, message types, error codes, SET_CONFIG keys) are read from
firmware/lib/protocol/nk_protocol.h when this module is imported.

Wire format: `COBS(payload) 0x00`, payload = `version type seq body crc16le`, CRC-16/CCITT-FALSE
over everything before the CRC. This module is pure (no I/O) so tests and the C side's tests can
use it to build and check frames byte by byte.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np

from ..cheader import need, pick, read_int_defines
from ..errors import NanokwsError
from ..features.config_header import CONFIG_HEADER, read_config
from ..paths import FIRMWARE_LIB_DIR

# Every constant below comes from the C header, parsed at import: nothing here is retyped.
PROTOCOL_HEADER = FIRMWARE_LIB_DIR / "protocol" / "nk_protocol.h"
_H = read_int_defines(PROTOCOL_HEADER, "serial protocol")

VERSION = need(_H, "NK_PROTO_VERSION", PROTOCOL_HEADER)
MAX_PAYLOAD = need(_H, "NK_PROTO_MAX_PAYLOAD", PROTOCOL_HEADER)  # decoded: version type seq body crc
HEADER_LEN = need(_H, "NK_PROTO_HEADER_BYTES", PROTOCOL_HEADER)
CRC_LEN = need(_H, "NK_PROTO_CRC_BYTES", PROTOCOL_HEADER)
MIN_PAYLOAD = need(_H, "NK_PROTO_MIN_PAYLOAD", PROTOCOL_HEADER)
MAX_BODY = need(_H, "NK_PROTO_MAX_BODY", PROTOCOL_HEADER)
MAX_AUDIO_SAMPLES = need(_H, "NK_PROTO_MAX_AUDIO_SAMPLES", PROTOCOL_HEADER)
STATS_FIELDS = need(_H, "NK_PROTO_STATS_FIELDS", PROTOCOL_HEADER)
# COBS adds one byte per 254 data bytes (plus one); the receiver's bound on an encoded frame.
MAX_ENCODED = need(_H, "NK_PROTO_MAX_ENCODED", PROTOCOL_HEADER)
CLIP_SAMPLES = need(read_config(), "NK_FE_CLIP_SAMPLES", CONFIG_HEADER)  # the clip CLIP_LOAD fills


def _values(prefix: str) -> dict[str, int]:
    return pick(_H, prefix, PROTOCOL_HEADER)


# The enums name the header's NK_MSG_* / NK_ERR_* / NK_CFG_* values (tests/test_protocol.py checks
# that every one of them has a member here, and nothing else).
_MSG, _ERR, _CFG = _values("NK_MSG_"), _values("NK_ERR_"), _values("NK_CFG_")


class MsgType(IntEnum):
    INFO = _MSG["INFO"]
    RESET = _MSG["RESET"]
    AUDIO = _MSG["AUDIO"]
    CLIP_LOAD = _MSG["CLIP_LOAD"]
    CLIP_RUN = _MSG["CLIP_RUN"]
    SET_CONFIG = _MSG["SET_CONFIG"]
    STATS = _MSG["STATS"]
    OK = _MSG["OK"]
    INFO_REPLY = _MSG["INFO_REPLY"]
    AUDIO_ACK = _MSG["AUDIO_ACK"]
    SCORES = _MSG["SCORES"]
    DETECTION = _MSG["DETECTION"]
    RESULT = _MSG["RESULT"]
    STATS_REPLY = _MSG["STATS_REPLY"]
    ERROR = _MSG["ERROR"]


class ErrorCode(IntEnum):
    BAD_CRC = _ERR["BAD_CRC"]
    BAD_FRAME = _ERR["BAD_FRAME"]
    TOO_LONG = _ERR["TOO_LONG"]
    BAD_VERSION = _ERR["BAD_VERSION"]
    UNKNOWN_TYPE = _ERR["UNKNOWN_TYPE"]
    BAD_LENGTH = _ERR["BAD_LENGTH"]
    BAD_ARGUMENT = _ERR["BAD_ARGUMENT"]
    INTERNAL = _ERR["INTERNAL"]


class ConfigKey(IntEnum):
    INFERENCE_STRIDE = _CFG["INFERENCE_STRIDE"]
    SMOOTHING = _CFG["SMOOTHING"]
    THRESHOLD = _CFG["THRESHOLD"]
    SUPPRESSION = _CFG["SUPPRESSION"]
    STREAM_SCORES = _CFG["STREAM_SCORES"]
    RELEASE = _CFG["RELEASE"]


class ProtocolError(NanokwsError):
    """A frame that cannot be decoded; `code` says why, in the firmware's ERROR-code terms."""

    def __init__(self, message: str, code: ErrorCode = ErrorCode.BAD_FRAME) -> None:
        super().__init__(message)
        self.code = code


# --- CRC and COBS -------------------------------------------------------------------------------


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16_ccitt_false(data: bytes | bytearray | memoryview, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor."""
    for b in bytes(data):
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[((crc >> 8) ^ b) & 0xFF]
    return crc


def cobs_encode(data: bytes | bytearray) -> bytes:
    """COBS-encode `data` (result contains no zero byte; the caller appends the 0x00 delimiter)."""
    src = bytes(data)
    out = bytearray()
    block = bytearray()
    for i, b in enumerate(src):
        if b == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
        else:
            block.append(b)
            if len(block) == 254:  # a full block: code 0xFF means "254 bytes, no zero follows"
                out.append(0xFF)
                out += block
                block.clear()
                if i + 1 == len(src):  # like the C encoder: no empty block after a final full one
                    return bytes(out)
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def cobs_decode(data: bytes | bytearray) -> bytes:
    """Invert `cobs_encode` (input without the 0x00 delimiter); ProtocolError if malformed."""
    src = bytes(data)
    out = bytearray()
    i = 0
    n = len(src)
    if n == 0:
        raise ProtocolError("empty COBS frame", ErrorCode.BAD_FRAME)
    while i < n:
        code = src[i]
        if code == 0:
            raise ProtocolError("zero byte inside a COBS frame", ErrorCode.BAD_FRAME)
        end = i + code
        if end > n:
            raise ProtocolError("COBS block runs past the end of the frame", ErrorCode.BAD_FRAME)
        block = src[i + 1 : end]
        if 0 in block:
            raise ProtocolError("zero byte inside a COBS frame", ErrorCode.BAD_FRAME)
        out += block
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


# --- frames -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    version: int
    type: int
    seq: int
    body: bytes


def build_payload(msg_type: int, seq: int, body: bytes = b"", version: int = VERSION) -> bytes:
    if not 0 <= seq <= 255:
        raise ValueError(f"seq must be 0..255, got {seq}")
    if len(body) > MAX_BODY:
        raise ValueError(f"body of {len(body)} bytes exceeds the protocol maximum {MAX_BODY}")
    head = bytes([version & 0xFF, int(msg_type) & 0xFF, seq]) + bytes(body)
    return head + struct.pack("<H", crc16_ccitt_false(head))


def build_frame(msg_type: int, seq: int, body: bytes = b"", version: int = VERSION) -> bytes:
    """The bytes to put on the wire: COBS(payload) + 0x00."""
    return cobs_encode(build_payload(msg_type, seq, body, version)) + b"\x00"


def parse_payload(payload: bytes) -> Frame:
    """Check length, CRC and version of a decoded payload."""
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}", ErrorCode.TOO_LONG)
    if len(payload) < MIN_PAYLOAD:
        raise ProtocolError(f"payload of {len(payload)} bytes is under {MIN_PAYLOAD}", ErrorCode.BAD_FRAME)
    (crc,) = struct.unpack_from("<H", payload, len(payload) - CRC_LEN)
    if crc16_ccitt_false(payload[:-CRC_LEN]) != crc:
        raise ProtocolError("CRC mismatch", ErrorCode.BAD_CRC)
    if payload[0] != VERSION:
        raise ProtocolError(f"protocol version {payload[0]}, expected {VERSION}", ErrorCode.BAD_VERSION)
    return Frame(payload[0], payload[1], payload[2], bytes(payload[HEADER_LEN:-CRC_LEN]))


def parse_frame(encoded: bytes) -> Frame:
    """Decode one frame as split by FrameReader (COBS bytes, no 0x00 delimiter)."""
    if len(encoded) > MAX_ENCODED:
        raise ProtocolError(f"frame of {len(encoded)} encoded bytes is too long", ErrorCode.TOO_LONG)
    return parse_payload(cobs_decode(encoded))


class FrameReader:
    """Streaming splitter: feed raw bytes, get complete encoded frames back (split on 0x00).

    A run of bytes longer than any valid frame is dropped up to the next zero (counted in
    `overflows`), so garbage or a lost delimiter cannot grow the buffer without bound.
    """

    def __init__(self, max_encoded: int = MAX_ENCODED) -> None:
        self.max_encoded = max_encoded
        self._buf = bytearray()
        self._skipping = False
        self.overflows = 0

    def feed(self, data: bytes) -> list[bytes]:
        frames: list[bytes] = []
        for chunk_i, chunk in enumerate(bytes(data).split(b"\x00")):
            if chunk_i > 0:  # a delimiter came before this chunk: close the pending frame
                if self._buf and not self._skipping:
                    frames.append(bytes(self._buf))
                self._buf.clear()
                self._skipping = False
            if self._skipping:
                continue
            self._buf += chunk
            if len(self._buf) > self.max_encoded:
                self._buf.clear()
                self._skipping = True
                self.overflows += 1
        return frames

    @property
    def pending(self) -> int:
        return len(self._buf)

    def clear(self) -> None:
        self._buf.clear()
        self._skipping = False


# --- requests -----------------------------------------------------------------------------------


def _samples_bytes(samples: Sequence[int] | np.ndarray) -> bytes:
    arr = np.asarray(samples)
    if arr.ndim != 1 or not 1 <= arr.size <= MAX_AUDIO_SAMPLES:
        raise ValueError(f"need 1..{MAX_AUDIO_SAMPLES} samples per frame, got shape {arr.shape}")
    if arr.dtype != np.int16:
        if arr.size and (arr.min() < -32768 or arr.max() > 32767):
            raise ValueError("samples out of int16 range")
        arr = arr.astype(np.int16)
    return arr.astype("<i2").tobytes()


def req_info(seq: int) -> bytes:
    return build_frame(MsgType.INFO, seq)


def req_reset(seq: int) -> bytes:
    return build_frame(MsgType.RESET, seq)


def req_audio(seq: int, samples: Sequence[int] | np.ndarray) -> bytes:
    return build_frame(MsgType.AUDIO, seq, _samples_bytes(samples))


def req_clip_load(seq: int, offset: int, samples: Sequence[int] | np.ndarray) -> bytes:
    body = _samples_bytes(samples)
    if not 0 <= offset or offset + len(body) // 2 > CLIP_SAMPLES:
        raise ValueError(f"clip load offset {offset} + {len(body) // 2} samples exceeds {CLIP_SAMPLES}")
    return build_frame(MsgType.CLIP_LOAD, seq, struct.pack("<H", offset) + body)


def req_clip_run(seq: int) -> bytes:
    return build_frame(MsgType.CLIP_RUN, seq)


def req_stats(seq: int) -> bytes:
    return build_frame(MsgType.STATS, seq)


def config_body(key: ConfigKey | int, *values: int) -> bytes:
    """Body of SET_CONFIG; THRESHOLD takes (label, threshold), SUPPRESSION a u16, the rest (RELEASE
    included) a u8."""
    key = ConfigKey(key)
    if key == ConfigKey.THRESHOLD:
        label, threshold = values
        return struct.pack("<BBB", key, label, threshold)
    (value,) = values
    if key == ConfigKey.SUPPRESSION:
        return struct.pack("<BH", key, value)
    return struct.pack("<BB", key, value)


def req_set_config(seq: int, key: ConfigKey | int, *values: int) -> bytes:
    return build_frame(MsgType.SET_CONFIG, seq, config_body(key, *values))


def clip_load_frames(
    seq_iter: Iterable[int], clip: np.ndarray, chunk: int = MAX_AUDIO_SAMPLES
) -> list[bytes]:
    """CLIP_LOAD frames covering `clip` (int16, up to 16000 samples) in `chunk`-sample pieces."""
    clip = np.asarray(clip, dtype=np.int16)
    seqs = iter(seq_iter)
    return [req_clip_load(next(seqs), off, clip[off : off + chunk]) for off in range(0, clip.size, chunk)]


# --- replies and events -------------------------------------------------------------------------


@dataclass(frozen=True)
class Ok:
    seq: int


@dataclass(frozen=True)
class Info:
    seq: int
    data: dict[str, Any]

    @property
    def model_hash(self) -> str:
        return str(self.data.get("model_hash", ""))

    @property
    def labels(self) -> list[str]:
        return list(self.data.get("labels", []))

    @property
    def cycle_hz(self) -> float:
        return float(self.data.get("cycle_hz", 0) or 0)

    @property
    def cycle_unit(self) -> str:
        return str(self.data.get("cycle_unit", "cycles"))

    @property
    def streaming(self) -> bool:
        """The model runs incrementally (nk_model_stream.h); False for firmware from before the field."""
        return bool(self.data.get("streaming", False))

    @property
    def stream_ram_bytes(self) -> int:
        """The streaming model's RAM (state + work), 0 when the model runs the full window."""
        return int(self.data.get("stream_ram_bytes", 0) or 0)

    @property
    def config_source(self) -> str:
        """Where the recognizer's start-up settings came from ("library defaults", or the calibration
        named in the model's recognizer.json); "" for firmware from before the field."""
        return str(self.data.get("config_source", ""))

    @property
    def stride_align(self) -> int:
        """INFERENCE_STRIDE must be a multiple of this (1 unless a streaming model strides in time)."""
        return int(self.data.get("stride_align", 1) or 1)

    @property
    def window_frames(self) -> int:
        """Frames the model sees per inference: one clip's (the frontend's clip_frames) unless the
        model's window is longer; firmware from before the field has a one-clip window."""
        clip = self.data.get("frontend", {}).get("clip_frames", 49)
        return int(self.data.get("window_frames", clip) or clip)

    @property
    def clip_pad_before(self) -> int:
        """Frames of fill before a clip in clip mode (the clip centred in a longer window), else 0."""
        return int(self.data.get("clip_pad_before", 0) or 0)


@dataclass(frozen=True)
class AudioAck:
    seq: int
    samples_total: int
    frames_total: int
    inferences_total: int


@dataclass(frozen=True)
class Scores:
    seq: int
    hop: int
    frontend_cycles: int
    inference_cycles: int
    scores: np.ndarray = field(compare=False)


@dataclass(frozen=True)
class Detection:
    seq: int
    hop: int
    label: int
    score: int


@dataclass(frozen=True)
class Result:
    seq: int
    top: int
    frontend_cycles: int
    inference_cycles: int
    scores: np.ndarray = field(compare=False)


@dataclass(frozen=True)
class StatsReply:
    seq: int
    samples: int
    frames: int
    inferences: int
    detections: int
    rx_errors: int
    frontend_cycles_max: int
    inference_cycles_max: int
    inference_cycles_last: int
    # Live mode behind real time: inferences skipped to keep the audio (0 from older firmware,
    # whose STATS_REPLY ends before this field).
    skipped_inferences: int = 0


@dataclass(frozen=True)
class Error:
    seq: int
    code: int
    request_type: int
    message: str

    def describe(self) -> str:
        try:
            name = ErrorCode(self.code).name
        except ValueError:
            name = f"code {self.code}"
        try:
            req = MsgType(self.request_type).name
        except ValueError:
            req = f"type 0x{self.request_type:02x}"
        return f"device ERROR {name} for {req}: {self.message}"


Message = Ok | Info | AudioAck | Scores | Detection | Result | StatsReply | Error

_STATS = struct.Struct(f"<{STATS_FIELDS}I")
_STATS_V1_OLD = struct.Struct("<8I")  # STATS_REPLY before skipped_inferences was added (a past format)
_ACK = struct.Struct("<3I")
_SCORES_HEAD = struct.Struct("<3I")
_DETECTION = struct.Struct("<IBB")
_RESULT_HEAD = struct.Struct("<B2I")


def _need(frame: Frame, name: str, ok: bool) -> None:
    if not ok:
        raise ProtocolError(f"{name} body of {len(frame.body)} bytes: wrong length", ErrorCode.BAD_LENGTH)


def parse_message(frame: Frame) -> Message:
    """Turn a device->host frame into its typed message."""
    t, seq, body = frame.type, frame.seq, frame.body
    if t == MsgType.OK:
        _need(frame, "OK", len(body) == 0)
        return Ok(seq)
    if t == MsgType.INFO_REPLY:
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProtocolError(f"INFO_REPLY is not valid JSON: {exc}", ErrorCode.BAD_LENGTH) from exc
        if not isinstance(data, dict):
            raise ProtocolError("INFO_REPLY JSON is not an object", ErrorCode.BAD_LENGTH)
        return Info(seq, data)
    if t == MsgType.AUDIO_ACK:
        _need(frame, "AUDIO_ACK", len(body) == _ACK.size)
        return AudioAck(seq, *_ACK.unpack(body))
    if t == MsgType.SCORES:
        _need(frame, "SCORES", len(body) > _SCORES_HEAD.size)
        hop, fe, inf = _SCORES_HEAD.unpack_from(body)
        return Scores(seq, hop, fe, inf, np.frombuffer(body[_SCORES_HEAD.size :], dtype=np.int8).copy())
    if t == MsgType.DETECTION:
        _need(frame, "DETECTION", len(body) == _DETECTION.size)
        return Detection(seq, *_DETECTION.unpack(body))
    if t == MsgType.RESULT:
        _need(frame, "RESULT", len(body) > _RESULT_HEAD.size)
        top, fe, inf = _RESULT_HEAD.unpack_from(body)
        return Result(seq, top, fe, inf, np.frombuffer(body[_RESULT_HEAD.size :], dtype=np.int8).copy())
    if t == MsgType.STATS_REPLY:
        _need(frame, "STATS_REPLY", len(body) in (_STATS.size, _STATS_V1_OLD.size))
        fields = _STATS if len(body) == _STATS.size else _STATS_V1_OLD
        return StatsReply(seq, *fields.unpack(body))
    if t == MsgType.ERROR:
        _need(frame, "ERROR", len(body) >= 2)
        return Error(seq, body[0], body[1], body[2:].decode("utf-8", errors="replace"))
    raise ProtocolError(f"unknown message type 0x{t:02x}", ErrorCode.UNKNOWN_TYPE)


def decode(encoded: bytes) -> Message:
    """parse_frame + parse_message."""
    return parse_message(parse_frame(encoded))


# --- device-side encoders (for tests and fake devices) ------------------------------------------


def encode_message(msg: Message) -> bytes:
    """The wire bytes a device would send for `msg` (used by tests and the loopback fake)."""
    if isinstance(msg, Ok):
        return build_frame(MsgType.OK, msg.seq)
    if isinstance(msg, Info):
        return build_frame(MsgType.INFO_REPLY, msg.seq, json.dumps(msg.data).encode())
    if isinstance(msg, AudioAck):
        return build_frame(
            MsgType.AUDIO_ACK, msg.seq, _ACK.pack(msg.samples_total, msg.frames_total, msg.inferences_total)
        )
    if isinstance(msg, Scores):
        head = _SCORES_HEAD.pack(msg.hop, msg.frontend_cycles, msg.inference_cycles)
        return build_frame(MsgType.SCORES, msg.seq, head + np.asarray(msg.scores, np.int8).tobytes())
    if isinstance(msg, Detection):
        return build_frame(MsgType.DETECTION, msg.seq, _DETECTION.pack(msg.hop, msg.label, msg.score))
    if isinstance(msg, Result):
        head = _RESULT_HEAD.pack(msg.top, msg.frontend_cycles, msg.inference_cycles)
        return build_frame(MsgType.RESULT, msg.seq, head + np.asarray(msg.scores, np.int8).tobytes())
    if isinstance(msg, StatsReply):
        vals = (
            msg.samples,
            msg.frames,
            msg.inferences,
            msg.detections,
            msg.rx_errors,
            msg.frontend_cycles_max,
            msg.inference_cycles_max,
            msg.inference_cycles_last,
            msg.skipped_inferences,
        )
        return build_frame(MsgType.STATS_REPLY, msg.seq, _STATS.pack(*vals))
    if isinstance(msg, Error):
        body = bytes([msg.code, msg.request_type]) + msg.message.encode()
        return build_frame(MsgType.ERROR, msg.seq, body)
    raise TypeError(f"not a protocol message: {msg!r}")
