"""Protocol mirror: CRC, COBS, frames, typed messages, streaming reader."""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from nanokws.harness import protocol as P


def _crc_bitwise(data: bytes) -> int:
    # Independent bit-by-bit definition of CRC-16/CCITT-FALSE, to check the table-driven one.
    crc = 0xFFFF
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def test_crc_check_value() -> None:
    assert P.crc16_ccitt_false(b"123456789") == 0x29B1
    assert P.crc16_ccitt_false(b"") == 0xFFFF


def test_crc_matches_bitwise_definition() -> None:
    rng = random.Random(1)
    for n in (1, 2, 7, 100, 1099):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert P.crc16_ccitt_false(data) == _crc_bitwise(data)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\x00\x00\x00",
        b"\x11\x00\x00\x22",
        b"\x00" * 300,
        bytes(range(1, 255)),  # 254 non-zero bytes: exactly one full block
        bytes(range(1, 256)),  # 255 non-zero bytes: one full block + 1
        bytes(range(1, 255)) + b"\x00",
        b"\x00" + bytes(range(1, 255)),
        bytes([1 + i % 255 for i in range(253)]),
        bytes([1 + i % 255 for i in range(1000)]),
    ],
)
def test_cobs_round_trip_edges(data: bytes) -> None:
    enc = P.cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= len(data) + len(data) // 254 + 1
    assert P.cobs_decode(enc) == data


def test_cobs_known_vectors() -> None:
    # Vectors from the COBS paper / common references.
    assert P.cobs_encode(b"\x00") == b"\x01\x01"
    assert P.cobs_encode(b"\x00\x00") == b"\x01\x01\x01"
    assert P.cobs_encode(b"\x11\x22\x00\x33") == b"\x03\x11\x22\x02\x33"
    assert P.cobs_encode(b"\x11\x00\x00\x00") == b"\x02\x11\x01\x01\x01"
    assert P.cobs_encode(bytes(range(1, 255))) == b"\xff" + bytes(range(1, 255))
    assert P.cobs_encode(bytes(range(1, 256))) == b"\xff" + bytes(range(1, 255)) + b"\x02\xff"
    # A decoder must also accept the other common form with an empty trailing block.
    assert P.cobs_decode(b"\xff" + bytes(range(1, 255)) + b"\x01") == bytes(range(1, 255))


def test_cobs_round_trip_random() -> None:
    rng = random.Random(7)
    for _ in range(200):
        n = rng.randrange(0, 1200)
        zero_rate = rng.random()
        data = bytes(0 if rng.random() < zero_rate else rng.randrange(1, 256) for _ in range(n))
        assert P.cobs_decode(P.cobs_encode(data)) == data


def test_cobs_decode_rejects_malformed() -> None:
    with pytest.raises(P.ProtocolError):
        P.cobs_decode(b"")
    with pytest.raises(P.ProtocolError):
        P.cobs_decode(b"\x05\x11\x22")  # block runs past the end
    with pytest.raises(P.ProtocolError):
        P.cobs_decode(b"\x03\x11\x00")  # zero inside


def test_frame_layout_and_parse() -> None:
    body = b"\x01\x02\x00\x03"
    wire = P.build_frame(P.MsgType.AUDIO, 42, body)
    assert wire.endswith(b"\x00") and wire.count(0) == 1
    payload = P.cobs_decode(wire[:-1])
    assert payload[:3] == bytes([1, 0x03, 42])
    assert payload[3:-2] == body
    assert struct.unpack("<H", payload[-2:])[0] == _crc_bitwise(payload[:-2])
    frame = P.parse_frame(wire[:-1])
    assert frame == P.Frame(1, 0x03, 42, body)


def test_malformed_frames_detected() -> None:
    good = P.build_payload(P.MsgType.INFO, 5)
    bad_crc = good[:-1] + bytes([good[-1] ^ 1])
    with pytest.raises(P.ProtocolError) as e:
        P.parse_frame(P.cobs_encode(bad_crc))
    assert e.value.code == P.ErrorCode.BAD_CRC
    with pytest.raises(P.ProtocolError) as e:
        P.parse_frame(P.cobs_encode(good[:4]))
    assert e.value.code == P.ErrorCode.BAD_FRAME
    v2 = P.build_payload(P.MsgType.INFO, 5, version=2)
    with pytest.raises(P.ProtocolError) as e:
        P.parse_frame(P.cobs_encode(v2))
    assert e.value.code == P.ErrorCode.BAD_VERSION
    with pytest.raises(P.ProtocolError) as e:
        P.parse_frame(P.cobs_encode(b"\x01" * (P.MAX_PAYLOAD + 1)))
    assert e.value.code == P.ErrorCode.TOO_LONG
    with pytest.raises(P.ProtocolError) as e:
        P.decode(P.build_frame(0x99, 1)[:-1])
    assert e.value.code == P.ErrorCode.UNKNOWN_TYPE
    with pytest.raises(P.ProtocolError) as e:
        P.decode(P.build_frame(P.MsgType.AUDIO_ACK, 1, b"\x00" * 11)[:-1])
    assert e.value.code == P.ErrorCode.BAD_LENGTH


def test_body_limit() -> None:
    P.build_frame(P.MsgType.AUDIO, 1, b"\x01" * P.MAX_BODY)
    with pytest.raises(ValueError):
        P.build_frame(P.MsgType.AUDIO, 1, b"\x01" * (P.MAX_BODY + 1))
    assert P.MAX_BODY == 1095


def test_request_builders() -> None:
    samples = np.array([0, 1, -1, 32767, -32768], dtype=np.int16)
    f = P.parse_frame(P.req_audio(3, samples)[:-1])
    assert (f.type, f.seq) == (P.MsgType.AUDIO, 3)
    assert np.array_equal(np.frombuffer(f.body, "<i2"), samples)
    f = P.parse_frame(P.req_clip_load(4, 15995, samples)[:-1])
    assert struct.unpack_from("<H", f.body)[0] == 15995
    assert np.array_equal(np.frombuffer(f.body[2:], "<i2"), samples)
    with pytest.raises(ValueError):
        P.req_clip_load(4, 15996, samples)
    with pytest.raises(ValueError):
        P.req_audio(1, np.zeros(513, np.int16))
    with pytest.raises(ValueError):
        P.req_audio(1, np.zeros(0, np.int16))
    assert P.parse_frame(P.req_set_config(1, P.ConfigKey.THRESHOLD, 3, 200)[:-1]).body == bytes([3, 3, 200])
    sup = P.parse_frame(P.req_set_config(1, P.ConfigKey.SUPPRESSION, 750)[:-1]).body
    assert sup == bytes([4, 0xEE, 0x02])
    assert P.parse_frame(P.req_set_config(1, P.ConfigKey.INFERENCE_STRIDE, 2)[:-1]).body == bytes([1, 2])
    assert P.parse_frame(P.req_set_config(1, P.ConfigKey.RELEASE, 64)[:-1]).body == bytes([6, 64])
    clip = np.arange(16000, dtype=np.int16)
    frames = P.clip_load_frames(range(1, 100), clip)
    assert len(frames) == 32
    rebuilt = np.zeros(16000, np.int16)
    for wire in frames:
        body = P.parse_frame(wire[:-1]).body
        off = struct.unpack_from("<H", body)[0]
        chunk = np.frombuffer(body[2:], "<i2")
        rebuilt[off : off + chunk.size] = chunk
    assert np.array_equal(rebuilt, clip)


def test_reply_parsing_by_hand_built_bodies() -> None:
    # Bodies packed here by hand from PROTOCOL.md, not through encode_message.
    ack = P.decode(P.build_frame(0x83, 9, struct.pack("<III", 16000, 49, 24))[:-1])
    assert ack == P.AudioAck(9, 16000, 49, 24)
    sc = P.decode(P.build_frame(0x84, 0, struct.pack("<III", 7, 100, 2000) + bytes([0x80, 0x7F, 0x00]))[:-1])
    assert isinstance(sc, P.Scores) and (sc.hop, sc.frontend_cycles, sc.inference_cycles) == (7, 100, 2000)
    assert np.array_equal(sc.scores, np.array([-128, 127, 0], np.int8))
    det = P.decode(P.build_frame(0x85, 0, struct.pack("<IBB", 1234, 2, 250))[:-1])
    assert det == P.Detection(0, 1234, 2, 250)
    res = P.decode(P.build_frame(0x86, 11, struct.pack("<BII", 1, 5, 6) + bytes([1, 2, 0xFF]))[:-1])
    assert isinstance(res, P.Result) and res.top == 1 and list(res.scores) == [1, 2, -1]
    st = P.decode(P.build_frame(0x87, 12, struct.pack("<9I", *range(9)))[:-1])
    assert st == P.StatsReply(12, *range(8), skipped_inferences=8)
    # Firmware from before skipped_inferences sends the first eight fields only.
    old = P.decode(P.build_frame(0x87, 12, struct.pack("<8I", *range(1, 9)))[:-1])
    assert old == P.StatsReply(12, *range(1, 9)) and old.skipped_inferences == 0
    with pytest.raises(P.ProtocolError):
        P.decode(P.build_frame(0x87, 12, struct.pack("<10I", *range(10)))[:-1])
    err = P.decode(P.build_frame(0xFF, 13, bytes([1, 3]) + b"bad crc")[:-1])
    assert err == P.Error(13, 1, 3, "bad crc")
    assert "BAD_CRC" in err.describe() and "AUDIO" in err.describe()
    info_body = json.dumps({"model_hash": "ab", "cycle_hz": 64000000}).encode()
    info = P.decode(P.build_frame(0x81, 14, info_body)[:-1])
    assert isinstance(info, P.Info) and info.model_hash == "ab" and info.cycle_hz == 64e6
    assert P.decode(P.build_frame(0x80, 15)[:-1]) == P.Ok(15)


def test_info_streaming_fields_and_their_defaults() -> None:
    """INFO's streaming fields (PROTOCOL.md); firmware from before them reads as not streaming."""
    body = b'{"streaming":true,"stream_ram_bytes":8900,"stride_align":2,"arena_bytes":21952}'
    info = P.decode(P.build_frame(P.MsgType.INFO_REPLY, 3, body)[:-1])
    assert isinstance(info, P.Info)
    assert (info.streaming, info.stream_ram_bytes, info.stride_align) == (True, 8900, 2)
    old = P.Info(4, {"arena_bytes": 100})
    assert (old.streaming, old.stream_ram_bytes, old.stride_align) == (False, 0, 1)


def test_info_window_fields_and_their_defaults() -> None:
    """INFO's window: a longer window's frames and clip padding; a one-clip window by default."""
    body = b'{"window_frames":74,"clip_pad_before":12,"frontend":{"clip_frames":49}}'
    info = P.decode(P.build_frame(P.MsgType.INFO_REPLY, 3, body)[:-1])
    assert isinstance(info, P.Info) and (info.window_frames, info.clip_pad_before) == (74, 12)
    old = P.Info(4, {"frontend": {"clip_frames": 49}})
    assert (old.window_frames, old.clip_pad_before) == (49, 0)


def test_encode_message_round_trip() -> None:
    msgs: list[P.Message] = [
        P.Ok(1),
        P.AudioAck(2, 1, 2, 3),
        P.Detection(0, 5, 6, 7),
        P.StatsReply(3, *range(10, 18)),
        P.StatsReply(3, *range(10, 19)),
        P.Error(4, 6, 3, "x"),
        P.Info(5, {"a": [1, 2]}),
    ]
    for m in msgs:
        assert P.decode(P.encode_message(m)[:-1]) == m
    r = P.decode(P.encode_message(P.Result(6, 2, 3, 4, np.array([5, -6], np.int8)))[:-1])
    assert isinstance(r, P.Result) and np.array_equal(r.scores, np.array([5, -6], np.int8))


def test_frame_reader_splits_and_resyncs() -> None:
    frames = [P.req_info(1), P.req_audio(2, np.zeros(512, np.int16)), P.req_stats(3)]
    stream = b"garbage\x01\x02" + b"\x00" + b"".join(frames)
    reader = P.FrameReader()
    out: list[bytes] = []
    for i in range(0, len(stream), 7):  # arbitrary chunking
        out += reader.feed(stream[i : i + 7])
    assert out[0] == b"garbage\x01\x02"
    with pytest.raises(P.ProtocolError):
        P.parse_frame(out[0])
    assert [P.parse_frame(f).seq for f in out[1:]] == [1, 2, 3]
    assert reader.pending == 0


def test_frame_reader_drops_overlong() -> None:
    reader = P.FrameReader()
    out = reader.feed(b"\x01" * (P.MAX_ENCODED + 10))
    assert out == [] and reader.overflows == 1
    out = reader.feed(b"\x01" * 50 + b"\x00" + P.req_info(8))
    assert [P.parse_frame(f).seq for f in out] == [8]
    assert reader.feed(b"\x00\x00") == []


def test_frame_reader_accepts_largest_frame() -> None:
    wire = P.build_frame(P.MsgType.AUDIO, 1, b"\x01" * P.MAX_BODY)
    assert len(wire) - 1 <= P.MAX_ENCODED
    out = P.FrameReader().feed(wire)
    assert len(out) == 1 and len(P.parse_frame(out[0]).body) == P.MAX_BODY


# --- constants: read from firmware/lib/protocol/nk_protocol.h, never retyped --------------------


def test_enums_are_exactly_the_headers_constants() -> None:
    from nanokws.cheader import read_int_defines

    defines = read_int_defines(P.PROTOCOL_HEADER, "protocol")
    for enum, prefix in ((P.MsgType, "NK_MSG_"), (P.ErrorCode, "NK_ERR_"), (P.ConfigKey, "NK_CFG_")):
        header = {n[len(prefix) :]: v for n, v in defines.items() if n.startswith(prefix)}
        assert {m.name: m.value for m in enum} == header, enum.__name__
    limits = {
        "NK_PROTO_VERSION": P.VERSION,
        "NK_PROTO_MAX_PAYLOAD": P.MAX_PAYLOAD,
        "NK_PROTO_HEADER_BYTES": P.HEADER_LEN,
        "NK_PROTO_CRC_BYTES": P.CRC_LEN,
        "NK_PROTO_MIN_PAYLOAD": P.MIN_PAYLOAD,
        "NK_PROTO_MAX_BODY": P.MAX_BODY,
        "NK_PROTO_MAX_ENCODED": P.MAX_ENCODED,
        "NK_PROTO_MAX_AUDIO_SAMPLES": P.MAX_AUDIO_SAMPLES,
        "NK_PROTO_STATS_FIELDS": P.STATS_FIELDS,
    }
    assert limits == {name: defines[name] for name in limits}
    # The receiver's bound is COBS's worst case for the largest payload.
    assert P.MAX_ENCODED == P.MAX_PAYLOAD + P.MAX_PAYLOAD // 254 + 1
    # STATS_REPLY: one u32 per StatsReply field after seq.
    assert len(dataclasses.fields(P.StatsReply)) - 1 == P.STATS_FIELDS


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc)")
def test_header_parser_agrees_with_the_c_compiler(tmp_path: Path) -> None:
    """Every integer constant the parser reads from nk_protocol.h, printed by a C program."""
    from nanokws.cheader import read_int_defines

    defines = read_int_defines(P.PROTOCOL_HEADER, "protocol")
    assert len(defines) >= 35
    prints = "".join(f'    printf("{n} %lld\\n", (long long)({n}));\n' for n in defines)
    src = tmp_path / "consts.c"
    head = '#include <stdio.h>\n#include "nk_protocol.h"\n\n'
    src.write_text(f"{head}int main(void) {{\n{prints}    return 0;\n}}\n")
    exe = tmp_path / "consts"
    flags = ["-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{P.PROTOCOL_HEADER.parent}"]
    subprocess.run(["cc", *flags, str(src), "-o", str(exe)], check=True, capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    assert {n: int(v) for n, v in (line.split() for line in out.splitlines())} == defines


def test_parse_int_defines_handles_c_literals_and_macros() -> None:
    from nanokws.cheader import parse_int_defines

    text = """
    #ifndef GUARD_H
    #define GUARD_H
    #define A 010            /* octal */
    #define B 0x1Fu << 2     // hex, suffix
    #define C (-7 / 2)
    #define D (-7 % 2)
    #define E "not a number"
    #define F(a, b) ((a) * (b))
    #define G F(A, 3u)
    #define H (G - UNKNOWN)
    #define I ~0x0Fu & 0xFF
    """
    assert parse_int_defines(text) == {"A": 8, "B": 124, "C": -3, "D": -1, "G": 24, "I": 0xF0}


def test_a_missing_header_or_constant_is_one_clear_error(tmp_path: Path) -> None:
    from nanokws.cheader import need, pick, read_int_defines
    from nanokws.errors import NanokwsError

    with pytest.raises(NanokwsError, match=r"nope\.h: cannot read the protocol header"):
        read_int_defines(tmp_path / "nope.h", "protocol")
    header = tmp_path / "h.h"
    with pytest.raises(NanokwsError, match=r"h\.h: NK_PROTO_VERSION is not defined"):
        need({}, "NK_PROTO_VERSION", header)
    with pytest.raises(NanokwsError, match=r"h\.h: no NK_MSG_\* constants"):
        pick({"NK_ERR_X": 1}, "NK_MSG_", header)
    with pytest.raises(NanokwsError, match=r"h\.h: NK_MSG_INFO is not defined"):
        pick({"NK_MSG_OK": 0x80}, "NK_MSG_", header)["INFO"]
