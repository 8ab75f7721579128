"""Malformed input to the firmware (ASan/UBSan build): every bad frame gets the right ERROR, the
device resynchronises at the next zero byte, and its state is unchanged afterwards."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import numpy as np
import pytest
from fixtures.firmware_io import FW_MODEL, build_fw, one_reply, talk
from nanokws.harness import protocol as P

E = P.ErrorCode
T = P.MsgType


@pytest.fixture(scope="module")
def fw() -> Path:
    return build_fw("asan", FW_MODEL)


def _raw(payload: bytes) -> bytes:
    return P.cobs_encode(payload) + b"\x00"


def _with_crc(head: bytes) -> bytes:
    return head + struct.pack("<H", P.crc16_ccitt_false(head))


def _bad_crc(frame_type: int, seq: int, body: bytes = b"") -> bytes:
    payload = bytearray(P.build_payload(frame_type, seq, body))
    payload[-1] ^= 0x40
    return _raw(bytes(payload))


# (wire bytes, expected error code, expected seq, expected request type)
CASES = {
    "bad_crc": (_bad_crc(T.INFO, 7), E.BAD_CRC, 7, T.INFO),
    "bad_crc_in_body": (_raw(bytearray(P.build_payload(T.AUDIO, 8, b"\x01\x00"))[:-3] + b"\x02\x00\x00"),
                        E.BAD_CRC, 8, T.AUDIO),
    "wrong_version": (P.build_frame(T.INFO, 9, version=2), E.BAD_VERSION, 9, T.INFO),
    "version_zero": (P.build_frame(T.STATS, 10, version=0), E.BAD_VERSION, 10, T.STATS),
    "unknown_type": (P.build_frame(0x42, 11), E.UNKNOWN_TYPE, 11, 0x42),
    "reply_type_sent_to_device": (P.build_frame(T.OK, 12), E.UNKNOWN_TYPE, 12, T.OK),
    "info_with_body": (P.build_frame(T.INFO, 13, b"x"), E.BAD_LENGTH, 13, T.INFO),
    "reset_with_body": (P.build_frame(T.RESET, 14, b"\x00"), E.BAD_LENGTH, 14, T.RESET),
    "clip_run_with_body": (P.build_frame(T.CLIP_RUN, 15, b"\x00\x00"), E.BAD_LENGTH, 15, T.CLIP_RUN),
    "stats_with_body": (P.build_frame(T.STATS, 16, b"\x01"), E.BAD_LENGTH, 16, T.STATS),
    "audio_empty": (P.build_frame(T.AUDIO, 17), E.BAD_LENGTH, 17, T.AUDIO),
    "audio_odd_bytes": (P.build_frame(T.AUDIO, 18, b"\x01\x02\x03"), E.BAD_LENGTH, 18, T.AUDIO),
    "audio_513_samples": (P.build_frame(T.AUDIO, 19, b"\x01\x00" * 513), E.BAD_LENGTH, 19, T.AUDIO),
    "clip_load_no_samples": (P.build_frame(T.CLIP_LOAD, 20, b"\x00\x00"), E.BAD_LENGTH, 20, T.CLIP_LOAD),
    "clip_load_odd": (P.build_frame(T.CLIP_LOAD, 21, b"\x00\x00\x01"), E.BAD_LENGTH, 21, T.CLIP_LOAD),
    "clip_load_past_end": (P.build_frame(T.CLIP_LOAD, 22, struct.pack("<H", 15999) + b"\x01\x00" * 2),
                           E.BAD_ARGUMENT, 22, T.CLIP_LOAD),
    "clip_load_offset_16000": (P.build_frame(T.CLIP_LOAD, 23, struct.pack("<H", 16000) + b"\x01\x00"),
                               E.BAD_ARGUMENT, 23, T.CLIP_LOAD),
    "clip_load_offset_max": (P.build_frame(T.CLIP_LOAD, 24, struct.pack("<H", 65535) + b"\x01\x00"),
                             E.BAD_ARGUMENT, 24, T.CLIP_LOAD),
    "too_short_4_bytes": (_raw(b"\x01\x01\x05\x00"), E.BAD_FRAME, 5, 1),
    "too_short_1_byte": (_raw(b"\x01"), E.BAD_FRAME, 0, 0),
    "zero_length_payload": (b"\x01\x00", E.BAD_FRAME, 0, 0),
    "truncated_cobs_block": (P.build_frame(T.INFO, 25)[:-2] + b"\x00", E.BAD_FRAME, 0, 0),
    "cobs_code_past_end": (b"\x09\x01\x01\x19\x00", E.BAD_FRAME, 0, 0),
    "payload_1101_bytes": (
        _raw(_with_crc(bytes([1, T.AUDIO, 26]) + b"\x01" * 1096)), E.TOO_LONG, 26, T.AUDIO
    ),
    "garbage_5000_bytes": (bytes(range(1, 251)) * 20 + b"\x00", E.TOO_LONG, None, None),
}


def _state(fw: Path, *middle: bytes) -> list[P.Message]:
    """INFO + STATS, the bytes under test, INFO + STATS again."""
    return talk(fw, P.req_info(101), P.req_stats(102), *middle, P.req_info(103), P.req_stats(104))


def _assert_unchanged(msgs: list[P.Message], errors: int) -> None:
    info0, stats0, info1, stats1 = (one_reply(msgs, s) for s in (101, 102, 103, 104))
    assert isinstance(info0, P.Info) and isinstance(info1, P.Info) and info0.data == info1.data
    assert isinstance(stats0, P.StatsReply) and isinstance(stats1, P.StatsReply)
    counters = ("samples", "frames", "inferences", "detections")
    assert [getattr(stats0, c) for c in counters] == [getattr(stats1, c) for c in counters]
    assert stats1.rx_errors - stats0.rx_errors == errors


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_frame_gets_the_right_error_and_changes_nothing(fw: Path, name: str) -> None:
    wire, code, seq, req_type = CASES[name]
    # A stream primed with audio, so "unchanged" covers stream state, then the bad frame.
    primer = P.req_audio(100, np.arange(-250, 250, dtype=np.int16))
    msgs = talk(fw, primer, P.req_info(101), P.req_stats(102), wire, P.req_info(103), P.req_stats(104))
    errors = [m for m in msgs if isinstance(m, P.Error)]
    assert len(errors) == 1, errors
    (err,) = errors
    assert err.code == code, err.describe()
    if seq is not None:
        assert (err.seq, err.request_type) == (seq, req_type)
    assert err.message
    _assert_unchanged(msgs, errors=1)


def test_empty_frames_are_ignored_as_flushes(fw: Path) -> None:
    msgs = _state(fw, b"\x00\x00\x00")
    assert not [m for m in msgs if isinstance(m, P.Error)]
    _assert_unchanged(msgs, errors=0)


def test_largest_valid_frame_is_accepted(fw: Path) -> None:
    # 512 samples: the largest AUDIO body (1024 bytes); and a 1095-byte body of an unknown type
    # is long but legal framing, so it is rejected for its type, not its length.
    msgs = talk(fw, P.req_audio(1, np.full(512, 1000, np.int16)), P.build_frame(0x10, 2, b"\x07" * 1095))
    ack = one_reply(msgs, 1)
    assert isinstance(ack, P.AudioAck) and ack.samples_total == 512
    err = one_reply(msgs, 2)
    assert isinstance(err, P.Error) and err.code == E.UNKNOWN_TYPE


def test_random_garbage_interleaved_with_valid_requests(fw: Path) -> None:
    rng = random.Random(1234)
    wire: list[bytes] = []
    expected_ok = []
    for i in range(150):
        kind = rng.randrange(4)
        if kind == 0:  # random bytes, then a delimiter so the next request is framed cleanly
            wire.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 1500))) + b"\x00")
        elif kind == 1:  # a valid frame with one byte flipped
            frame = bytearray(P.req_audio(0, [rng.randrange(-999, 999) for _ in range(rng.randrange(1, 40))]))
            pos = rng.randrange(len(frame) - 1)
            frame[pos] = (frame[pos] ^ (1 << rng.randrange(8))) or 0x01
            wire.append(bytes(frame))
        elif kind == 2:  # a valid frame cut short, then a delimiter
            frame = P.req_info(0)
            wire.append(frame[: rng.randrange(1, len(frame) - 1)] + b"\x00")
        else:
            seq = 1 + i % 99  # clear of _state()'s seqs 101..104
            wire.append(P.req_stats(seq))
            expected_ok.append(seq)
    msgs = _state(fw, *wire)
    stats_replies = [m for m in msgs if isinstance(m, P.StatsReply)]
    # Every valid STATS got its reply, in order; everything else got ERRORs or was (rarely) valid.
    got = [m.seq for m in stats_replies][1:-1]
    assert [s for s in got if s in expected_ok] == expected_ok
    assert all(isinstance(m, (P.Error, P.StatsReply, P.Info, P.AudioAck)) for m in msgs)
    info0, info1 = one_reply(msgs, 101), one_reply(msgs, 103)
    assert isinstance(info0, P.Info) and isinstance(info1, P.Info) and info0.data == info1.data


def test_stream_ending_mid_frame_exits_cleanly(fw: Path) -> None:
    msgs = talk(fw, P.req_info(1), P.req_stats(2)[:-3])
    assert len(msgs) == 1 and isinstance(msgs[0], P.Info)


# --- libFuzzer (firmware/fuzz, `make fuzz` for long runs): a short smoke run of each target -------

# Executions per target in the smoke run: a few seconds each (the app runs the model per AUDIO).
SMOKE_RUNS = {"fuzz_protocol": 30000, "fuzz_app": 150, "fuzz_frontend": 3000}


@pytest.fixture(scope="module")
def fuzzers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil
    import subprocess

    from nanokws.paths import FIRMWARE_DIR

    if shutil.which("clang") is None:
        pytest.skip("clang not installed (make setup installs it)")
    out = tmp_path_factory.mktemp("fuzz")
    proc = subprocess.run(
        ["make", "-s", "-C", str(FIRMWARE_DIR / "fuzz"), f"OUT={out}"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.mark.parametrize("target", sorted(SMOKE_RUNS))
def test_libfuzzer_smoke_run(fuzzers: Path, tmp_path: Path, target: str) -> None:
    """Each target, from the seeds, for a fixed number of executions (seconds): no crash, no leak,
    no sanitizer report; the run really executed its inputs."""
    import re
    import subprocess
    import sys

    from nanokws.paths import FIRMWARE_DIR

    runs = SMOKE_RUNS[target]
    corpus = tmp_path / "corpus"
    seeds = subprocess.run(
        [sys.executable, str(FIRMWARE_DIR / "fuzz" / "seeds.py"), str(corpus), target], capture_output=True
    )
    assert seeds.returncode == 0 and len(list(corpus.iterdir())) >= 2
    proc = subprocess.run(
        [str(fuzzers / target), f"-runs={runs}", "-seed=12", "-max_total_time=60", "-print_final_stats=1",
         f"-artifact_prefix={tmp_path}/", str(corpus)],
        capture_output=True, text=True, timeout=180,
    )
    log = proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "ERROR: AddressSanitizer" not in log and "runtime error" not in log
    done = re.search(r"stat::number_of_executed_units: (\d+)", log)
    assert done and int(done.group(1)) >= runs, log[-2000:]
    assert not list(tmp_path.glob("crash-*"))
