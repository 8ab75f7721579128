"""The harness against a misbehaving device (#12): malformed replies are device faults with one clear
line (exit 3), lost or damaged frames are retried a bounded number of times (PROTOCOL.md, "Lost
and damaged frames") with results identical to a clean run, and AUDIO is never applied twice."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fixtures.firmware_io import FW_MODEL, build_fw
from nanokws.harness import protocol as P
from nanokws.harness.device import (
    Device,
    DeviceErrorReply,
    DeviceMalformed,
    DeviceTimeout,
    ProcessTransport,
    check_info,
)

GOOD_INFO = {"labels": ["_silence_", "_unknown_", "yes"], "model_hash": "ab", "cycle_unit": "host_ns",
             "cycle_hz": 1e9, "streaming": False, "stream_ram_bytes": 0, "stride_align": 1,
             "window_frames": 49, "clip_pad_before": 0}


@pytest.mark.parametrize(
    ("field", "value"),
    [("labels", 5), ("labels", ["a", 3]), ("cycle_hz", "abc"), ("cycle_hz", True), ("cycle_hz", -1),
     ("cycle_unit", 7), ("model_hash", None), ("streaming", "yes"), ("stride_align", 0),
     ("window_frames", 0), ("window_frames", "74"), ("clip_pad_before", -1),
     ("stream_ram_bytes", 1.5), ("config", []), ("frontend", "x")],
)
def test_info_with_a_bad_field_type_is_a_device_fault(field: str, value: Any) -> None:
    with pytest.raises(DeviceMalformed) as info:
        check_info(P.Info(1, {**GOOD_INFO, field: value}), "dev")
    line = str(info.value)
    assert line.startswith(f"dev: INFO field '{field}' is ") and "expected" in line and "\n" not in line
    assert info.value.exit_code == 3


def test_good_info_passes() -> None:
    assert check_info(P.Info(1, dict(GOOD_INFO))).labels == GOOD_INFO["labels"]


class _Scripted:
    """A transport whose device answers each request with what `reply(frame) -> bytes` says."""

    name = "scripted"

    def __init__(self, reply: Any) -> None:
        self.reply = reply
        self.buf = b""
        self.reader = P.FrameReader()
        self.requests: list[P.Frame] = []

    def write(self, data: bytes) -> None:
        for raw in self.reader.feed(data):
            frame = P.parse_frame(raw)
            self.requests.append(frame)
            self.buf += self.reply(frame)

    def read(self, timeout: float) -> bytes:
        out, self.buf = self.buf, b""
        return out

    def close(self) -> None:
        pass


def _info_reply(frame: P.Frame, **changes: Any) -> bytes:
    body = json.dumps({**GOOD_INFO, **changes}).encode()
    return P.build_frame(P.MsgType.INFO_REPLY, frame.seq, body)


def _answer(frame: P.Frame, scores: int = 3, top: int = 0, info: dict[str, Any] | None = None) -> bytes:
    if frame.type == P.MsgType.INFO:
        return _info_reply(frame, **(info or {}))
    if frame.type in (P.MsgType.RESET, P.MsgType.CLIP_LOAD, P.MsgType.SET_CONFIG):
        return P.build_frame(P.MsgType.OK, frame.seq)
    if frame.type == P.MsgType.CLIP_RUN:
        return P.encode_message(P.Result(frame.seq, top, 1, 2, np.zeros(scores, np.int8)))
    raise AssertionError(frame)


@pytest.mark.parametrize(
    ("scores", "top", "message"),
    [
        (2, 0, "RESULT with 2 scores and top 0; the device's model has 3 labels"),
        (4, 0, "RESULT with 4 scores and top 0; the device's model has 3 labels"),
        (3, 3, "RESULT with 3 scores and top 3; the device's model has 3 labels"),
        (0, 0, "malformed reply type 0x86 seq"),
    ],
)
def test_result_with_the_wrong_number_of_scores_is_a_device_fault(
    scores: int, top: int, message: str
) -> None:
    dev = Device(_Scripted(lambda f: _answer(f, scores=scores, top=top)), timeout=0.5)  # type: ignore[arg-type]
    dev.connect()
    with pytest.raises(DeviceMalformed, match="^scripted: " + message):
        dev.classify(np.zeros(16000, np.int16))


def test_info_with_bad_types_stops_connect() -> None:
    dev = Device(_Scripted(lambda f: _answer(f, info={"labels": 5})), timeout=0.5)  # type: ignore[arg-type]
    with pytest.raises(DeviceMalformed, match="INFO field 'labels' is 5"):
        dev.connect()


def test_scores_event_of_the_wrong_size_is_a_device_fault() -> None:
    def reply(frame: P.Frame) -> bytes:
        if frame.type == P.MsgType.AUDIO:
            event = P.encode_message(P.Scores(0, 49, 1, 2, np.zeros(5, np.int8)))
            return event + P.encode_message(P.AudioAck(frame.seq, 512, 1, 1))
        return _answer(frame)

    dev = Device(_Scripted(reply), timeout=0.5)  # type: ignore[arg-type]
    dev.connect()
    with pytest.raises(DeviceMalformed, match="SCORES event with 5 scores"):
        dev.audio(np.zeros(512, np.int16))


def test_damaged_reply_is_retried_and_the_retry_is_bounded() -> None:
    sent: list[int] = []

    def reply(frame: P.Frame, damaged_tries: int) -> bytes:
        if frame.type != P.MsgType.STATS:
            return _answer(frame)
        sent.append(frame.seq)
        good = P.encode_message(P.StatsReply(frame.seq, *range(9)))
        if len(sent) <= damaged_tries:
            bad = bytearray(good)
            bad[3] ^= 0x10  # a flipped bit on the wire: the CRC fails
            return bytes(bad)
        return good

    dev = Device(_Scripted(lambda f: reply(f, 2)), timeout=0.4)  # type: ignore[arg-type]
    dev.connect()
    assert dev.stats().inferences == 2
    assert len(sent) == 3 and len(set(sent)) == 1  # sent again with the same seq
    assert dev.retried == 2 and dev.bad_frames == 2
    sent.clear()
    dev = Device(_Scripted(lambda f: reply(f, 3)), timeout=0.4)  # type: ignore[arg-type]
    dev.connect()
    with pytest.raises(DeviceTimeout, match=r"no usable reply to request seq \d+ after 3 tries"):
        dev.stats()
    assert len(sent) == 3


def test_request_the_device_got_damaged_is_sent_again() -> None:
    tries: list[int] = []

    def reply(frame: P.Frame) -> bytes:
        if frame.type != P.MsgType.SET_CONFIG:
            return _answer(frame)
        tries.append(frame.seq)
        if len(tries) == 1:
            return P.encode_message(P.Error(frame.seq, P.ErrorCode.BAD_CRC, frame.type, "bad crc"))
        if len(tries) == 2:
            return P.encode_message(P.Error(0, P.ErrorCode.BAD_FRAME, 0, "cobs"))  # unreadable
        return P.build_frame(P.MsgType.OK, frame.seq)

    dev = Device(_Scripted(reply), timeout=0.4)  # type: ignore[arg-type]
    dev.connect()
    dev.set_config(P.ConfigKey.SMOOTHING, 3)
    assert len(tries) == 3 and dev.retried == 2 and dev.garbled == 1
    # A real refusal is not retried.
    dev2 = Device(_Scripted(lambda f: P.encode_message(P.Error(f.seq, P.ErrorCode.BAD_ARGUMENT, f.type, "no"))
                            if f.type == P.MsgType.SET_CONFIG else _answer(f)), timeout=0.4)  # type: ignore[arg-type]
    dev2.connect()
    with pytest.raises(DeviceErrorReply, match="BAD_ARGUMENT"):
        dev2.set_config(P.ConfigKey.SMOOTHING, 99)
    assert dev2.retried == 0


# --- against the real firmware (host build): damaged bytes in both directions --------------------


class _Flaky:
    """Wraps a transport: flips one bit in the device's output at the chosen byte counts, and in
    our requests at the chosen request numbers."""

    def __init__(self, inner: ProcessTransport, rx_flips: set[int], tx_flips: set[int]) -> None:
        self.inner, self.name = inner, inner.name
        self.rx_flips, self.tx_flips = rx_flips, tx_flips
        self.rx_count = 0
        self.tx_count = 0

    def write(self, data: bytes) -> None:
        self.tx_count += 1
        if self.tx_count in self.tx_flips and len(data) > 4:
            b = bytearray(data)
            b[len(b) // 2] = (b[len(b) // 2] ^ 0x04) or 0x01
            data = bytes(b)
        self.inner.write(data)

    def read(self, timeout: float) -> bytes:
        data = bytearray(self.inner.read(timeout))
        for i in range(len(data)):
            if self.rx_count + i in self.rx_flips and data[i] not in (0,):
                data[i] = (data[i] ^ 0x08) or 0x01
        self.rx_count += len(data)
        return bytes(data)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture(scope="module")
def host_fw() -> Path:
    return build_fw("host", FW_MODEL)


def _session(dev: Device, clips: np.ndarray, audio: np.ndarray) -> tuple[list[Any], list[int], Any]:
    dev.connect()
    results = [dev.classify(c) for c in clips]
    dev.reset()
    dev.set_config(P.ConfigKey.STREAM_SCORES, 1)
    acks = [dev.audio(audio[i : i + 512]).samples_total for i in range(0, audio.size, 512)]
    return [(r.top, r.scores.tolist()) for r in results], acks, dev.stats()


@pytest.mark.parametrize("flip_seed", [12, 31])
def test_retry_over_damaged_links_gives_the_clean_run(host_fw: Path, flip_seed: int) -> None:
    rng = np.random.default_rng(7)
    clips = rng.integers(-8000, 8000, (3, 16000)).astype(np.int16)
    audio = rng.integers(-8000, 8000, 16000 * 2).astype(np.int16)
    with Device(ProcessTransport([str(host_fw)]), timeout=5.0) as clean:
        want = _session(clean, clips, audio)
        assert clean.retried == 0
    pick = random.Random(flip_seed)
    rx = {pick.randrange(200, 20000) for _ in range(6)}
    tx = {pick.randrange(4, 120) for _ in range(6)}
    flaky_transport = _Flaky(ProcessTransport([str(host_fw)]), rx, tx)
    with Device(flaky_transport, timeout=5.0) as flaky:  # type: ignore[arg-type]
        got = _session(flaky, clips, audio)
        assert flaky.retried >= 3, flaky.link_stats()
        stats = got[2]
    assert got[0] == want[0]  # every RESULT identical
    assert got[1] == want[1]  # every AUDIO counted exactly once
    counters = ("samples", "frames", "inferences")
    assert [getattr(stats, c) for c in counters] == [getattr(want[2], c) for c in counters]


def test_hil_report_records_link_and_end_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hil run that dies on a malformed device reply: exit 3, one line, report `fault` of kind
    device with the phase it died in."""
    import nanokws.harness.cli as hil_cli
    from nanokws.cli import main

    def fake_run(args: Any, report: dict[str, Any]) -> int:
        report["status"] = "running"
        raise DeviceMalformed("scripted: RESULT with 11 scores and top 0; the device's model has 12 labels")

    monkeypatch.setattr(hil_cli, "_run", fake_run)
    report = tmp_path / "r.json"
    assert main(["hil", "--host", "--data", str(tmp_path), "--report", str(report)]) == 3
    rep = json.loads(report.read_text())
    assert rep["status"] == "fault" and rep["fault_kind"] == "device" and rep["fault_phase"] == "running"
    assert "RESULT with 11 scores" in rep["fault"]


def test_mutated_device_replies_give_only_harness_errors() -> None:
    """Seeded mutations of the replies the harness reads (INFO, STATS, RESULT, AUDIO_ACK and its
    events), re-framed with a valid CRC so they reach the message parser (and sometimes not):
    only NanokwsError subclasses escape (device faults exit 3), never a traceback."""
    from nanokws.errors import NanokwsError
    from test_fuzz_inputs import mutate

    targets = [P.MsgType.INFO, P.MsgType.STATS, P.MsgType.CLIP_RUN, P.MsgType.AUDIO]
    faults: dict[str, int] = {}
    for index in range(200):
        rng = random.Random(4000 + index)
        target = rng.choice(targets)

        def reply(frame: P.Frame, rng: random.Random = rng, target: int = target) -> bytes:
            if frame.type == P.MsgType.STATS:
                good = [P.encode_message(P.StatsReply(frame.seq, *range(9)))]
            elif frame.type == P.MsgType.AUDIO:
                good = [P.encode_message(P.Scores(0, 49, 1, 2, np.zeros(3, np.int8))),
                        P.encode_message(P.Detection(0, 49, 2, 200)),
                        P.encode_message(P.AudioAck(frame.seq, 512, 1, 1))]
            else:
                good = [_answer(frame)]
            if frame.type != target:
                return b"".join(good)
            k = rng.randrange(len(good))
            parsed = P.parse_frame(good[k][:-1])
            if rng.random() < 0.85:  # a well-framed reply with a mutated body (or type, or seq)
                body = mutate(rng, parsed.body) if rng.random() < 0.8 else parsed.body
                ftype = parsed.type if rng.random() < 0.9 else rng.randrange(256)
                seq = parsed.seq if rng.random() < 0.9 else rng.randrange(256)
                good[k] = P.build_frame(ftype, seq, body[: P.MAX_BODY])
            else:  # damaged on the wire
                good[k] = mutate(rng, good[k][:-1]).replace(b"\x00", b"\x01") + b"\x00"
            return b"".join(good)

        dev = Device(_Scripted(reply), timeout=0.05)  # type: ignore[arg-type]
        dev.retries = 1
        try:
            if target == P.MsgType.INFO:
                dev.connect(attempts=1)
            else:
                dev.info = check_info(P.Info(1, dict(GOOD_INFO)))
            dev.stats()
            dev.classify(np.zeros(1024, np.int16))
            dev.audio(np.zeros(512, np.int16))
            faults["none"] = faults.get("none", 0) + 1
        except NanokwsError as exc:
            assert "\n" not in str(exc)
            faults[type(exc).__name__] = faults.get(type(exc).__name__, 0) + 1
        except Exception as exc:  # noqa: BLE001 - the point of the test
            pytest.fail(f"case {index}: {type(exc).__name__} escaped: {exc}")
    # The mutations reached both kinds of fault, and some runs survived them (retry, tolerated noise).
    assert faults.get("DeviceMalformed", 0) > 20 and faults.get("DeviceTimeout", 0) > 3, faults
    assert faults.get("none", 0) > 5, faults
