"""Talk to a nanokws device: a pyserial URL (USB port, QEMU's TCP UART, loop://) or a subprocess.

`Device` sends typed requests, matches replies by `seq`, collects unsolicited events (SCORES,
DETECTION, seq 0), resynchronises past garbage, and turns every way a device can fail into a
`HarnessError` subclass with one clear line, so the CLI can stop cleanly and keep its report.
"""

from __future__ import annotations

import os
import queue
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from ..errors import NanokwsError
from . import protocol as P


class HarnessError(NanokwsError):
    """A device-side failure during a run; the CLI records it in the report and exits non-zero."""

    exit_code = 3


class DeviceTimeout(HarnessError):
    pass


class DeviceGone(HarnessError):
    """The port vanished, the socket closed or the device process exited."""


class DeviceReset(HarnessError):
    """The device's counters went back: it restarted during the run."""


class DeviceErrorReply(HarnessError):
    def __init__(self, reply: P.Error) -> None:
        super().__init__(reply.describe())
        self.reply = reply


class DeviceMalformed(HarnessError):
    """A reply that decodes but makes no sense: an INFO field of the wrong type, a RESULT or SCORES
    with another number of scores than the device's labels, a label index out of range."""


# ERROR codes that mean "your request was damaged on the way": it was rejected and changed
# nothing (PROTOCOL.md), so sending it again is safe.
_DAMAGED_REQUEST = (P.ErrorCode.BAD_CRC, P.ErrorCode.BAD_FRAME, P.ErrorCode.TOO_LONG, P.ErrorCode.BAD_VERSION)
DEFAULT_RETRIES = 2


class _Lost(Exception):
    """Internal: the reply to a request was lost or damaged; the request may be sent again."""


# INFO fields the harness reads: name -> (accepted types, description). bool is not a number here.
_INFO_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "labels": ((list,), "a list of label names"),
    "model_hash": ((str,), "a string"),
    "cycle_unit": ((str,), "a string"),
    "cycle_hz": ((int, float), "a number >= 0"),
    "streaming": ((bool,), "true or false"),
    "stream_ram_bytes": ((int,), "a whole number >= 0"),
    "stride_align": ((int,), "a whole number >= 1"),
    "window_frames": ((int,), "a whole number >= 1"),
    "clip_pad_before": ((int,), "a whole number >= 0"),
    "config": ((dict,), "an object"),
    "frontend": ((dict,), "an object"),
}


def check_info(info: P.Info, source: str = "device") -> P.Info:
    """DeviceMalformed unless every INFO field the harness reads has the documented type."""
    for key, (types, want) in _INFO_FIELDS.items():
        if key not in info.data:
            continue
        value = info.data[key]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if ok and key == "labels":
            ok = all(isinstance(x, str) for x in value)
        if ok and key in ("cycle_hz", "stream_ram_bytes"):
            ok = value >= 0 and value == value  # not negative, not NaN
        if ok and key in ("stride_align", "window_frames"):
            ok = value >= 1
        if ok and key == "clip_pad_before":
            ok = value >= 0
        if not ok:
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            raise DeviceMalformed(
                f"{source}: INFO field '{key}' is {shown} ({type(value).__name__}), expected {want}"
            )
    return info


# --- transports ---------------------------------------------------------------------------------


class Transport(Protocol):
    name: str

    def write(self, data: bytes) -> None: ...

    def read(self, timeout: float) -> bytes:
        """Bytes that arrive within `timeout` seconds (b"" if none); DeviceGone if closed."""
        ...

    def close(self) -> None: ...


class SerialTransport:
    """Any pyserial URL: /dev/ttyACM0, socket://127.0.0.1:PORT, loop://, rfc2217://..."""

    def __init__(self, url: str, baudrate: int = 115200, open_timeout: float = 0.0) -> None:
        import serial

        self.name = url
        self._serial_mod = serial
        deadline = time.monotonic() + open_timeout
        while True:  # QEMU opens its TCP port a moment after it starts: retry until open_timeout
            try:
                self._ser = serial.serial_for_url(url, baudrate=baudrate, timeout=0.05, write_timeout=10)
                break
            except (serial.SerialException, OSError, ValueError) as exc:
                if time.monotonic() >= deadline:
                    raise DeviceGone(f"cannot open {url}: {_one_line(exc)}") from exc
                time.sleep(0.1)

    def write(self, data: bytes) -> None:
        try:
            self._ser.write(data)
            self._ser.flush()
        except (self._serial_mod.SerialException, OSError) as exc:
            raise DeviceGone(f"{self.name}: write failed, device gone: {_one_line(exc)}") from exc

    def read(self, timeout: float) -> bytes:
        try:
            self._ser.timeout = max(timeout, 0.001)
            data = self._ser.read(1)
            if data:
                waiting = self._ser.in_waiting
                if waiting:
                    data += self._ser.read(waiting)
            return bytes(data)
        except (self._serial_mod.SerialException, OSError) as exc:
            raise DeviceGone(f"{self.name}: device gone: {_one_line(exc)}") from exc

    def close(self) -> None:
        try:
            self._ser.close()
        except Exception:  # closing a vanished port may fail; nothing left to do
            pass


class ProcessTransport:
    """A host build of the firmware talking the protocol over its stdin/stdout pipes."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.name = Path(argv[0]).name
        # stderr goes to a file so a crash report (e.g. ASan) can be quoted in the error line.
        self._stderr = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                bufsize=0,
                env=env,
            )
        except OSError as exc:
            raise DeviceGone(f"cannot start {argv[0]}: {exc}") from exc
        self._q: queue.Queue[bytes] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            self._q.put(chunk)
            if not chunk:
                return

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise DeviceGone(self._gone_message()) from exc

    def read(self, timeout: float) -> bytes:
        try:
            chunk = self._q.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return b""
        if not chunk:
            self._q.put(b"")  # keep reporting EOF to later reads
            raise DeviceGone(self._gone_message())
        parts = [chunk]
        while True:  # take whatever else is already queued
            try:
                more = self._q.get_nowait()
            except queue.Empty:
                break
            if not more:
                self._q.put(b"")
                break
            parts.append(more)
        return b"".join(parts)

    def _gone_message(self) -> str:
        try:
            code = self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            code = None
        self._stderr.seek(0)
        tail = self._stderr.read()[-2000:].decode(errors="replace").strip().splitlines()
        last = f"; stderr: {tail[-1]}" if tail else ""
        how = f"exited with code {code}" if code is not None else "closed its output"
        return f"device process {self.name} {how}{last}"

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                if self.proc.stdin:
                    self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5.0)
        self._stderr.close()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# --- the device ---------------------------------------------------------------------------------

M = TypeVar("M")


class Device:
    """Request/reply over a transport, plus the unsolicited events collected on the way."""

    def __init__(self, transport: Transport, timeout: float = 5.0) -> None:
        self.transport = transport
        self.timeout = timeout
        self._reader = P.FrameReader()
        self._pending: list[P.Message] = []
        self._seq = 0
        self.events: list[P.Scores | P.Detection] = []
        self.on_event: Callable[[P.Scores | P.Detection], None] | None = None
        self.bad_frames = 0  # frames from the device we could not decode (garbage, boot noise)
        self.stale_replies = 0  # replies whose seq matched no waiting request
        self.info: P.Info | None = None
        self._samples_sent = 0
        # Bounded retry (PROTOCOL.md, "Lost and damaged frames"): each request may be sent again
        # this many times when its reply is lost or damaged, or the device says the request was.
        self.retries = DEFAULT_RETRIES
        self.retried = 0  # requests sent again, over the whole run
        self.garbled = 0  # device ERRORs with seq 0: a request of ours arrived unreadable
        self._frames: dict[int, tuple[bytes, bool]] = {}  # seq -> (wire bytes, may be resent)
        self._damage = 0  # bad frames + seq-0 ERRORs seen: a reply (or request) was damaged

    # connection ----------------------------------------------------------------------------
    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def resync(self, settle: float = 0.05) -> None:
        """Terminate any half-sent frame on the device (a zero byte) and drop stale input."""
        self.transport.write(b"\x00")
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            self.transport.read(max(0.0, deadline - time.monotonic()))
        self._reader.clear()
        self._pending.clear()

    def connect(self, attempts: int = 3) -> P.Info:
        """Resync, then ask INFO (retrying: a board may still be booting); RESET the state."""
        last: HarnessError | None = None
        for _ in range(attempts):
            self.resync()
            try:
                info = self.request(
                    P.req_info, P.Info, timeout=max(self.timeout / attempts, 1.0), retries=0
                )
                break
            except DeviceTimeout as exc:
                last = exc
        else:
            raise DeviceTimeout(
                f"{self.transport.name}: no INFO reply after {attempts} tries; is it nanokws firmware?"
            ) from last
        self.info = check_info(info, self.transport.name)
        self.reset()
        return info

    def link_stats(self) -> dict[str, int]:
        """How clean the link was: for the report."""
        return {
            "retried_requests": self.retried,
            "retry_limit": self.retries,
            "bad_frames": self.bad_frames,
            "garbled_requests": self.garbled,
            "stale_replies": self.stale_replies,
        }

    @property
    def num_labels(self) -> int | None:
        return len(self.info.labels) if self.info is not None and "labels" in self.info.data else None

    # request/reply ---------------------------------------------------------------------------
    def next_seq(self) -> int:
        self._seq = self._seq % 255 + 1  # 1..255; 0 is for unsolicited events
        return self._seq

    def send(self, build: Callable[[int], bytes], resend: bool = True) -> int:
        """Send a request; `resend`: it is idempotent, so wait_reply may send it again."""
        seq = self.next_seq()
        frame = build(seq)
        # Replies still held for an earlier request with this seq (255 requests ago) are stale.
        stale = [m for m in self._pending if m.seq == seq]
        if stale:
            self._pending = [m for m in self._pending if m.seq != seq]
            self.stale_replies += len(stale)
        self._frames[seq] = (frame, resend)
        self.transport.write(frame)
        return seq

    def request(
        self,
        build: Callable[[int], bytes],
        expect: type[M],
        timeout: float | None = None,
        retries: int | None = None,
        resend: bool = True,
    ) -> M:
        seq = self.send(build, resend)
        return self.wait_reply(seq, expect, timeout, retries)

    def wait_reply(
        self, seq: int, expect: type[M], timeout: float | None = None, retries: int | None = None
    ) -> M:
        """The reply to request `seq`. A lost or damaged reply (or a request the device says arrived
        damaged) sends an idempotent request again, with the same seq, at most `retries` times."""
        limit = self.timeout if timeout is None else timeout
        frame, resend = self._frames.get(seq, (b"", False))
        tries = 1 + ((self.retries if retries is None else retries) if resend and frame else 0)
        last: Exception | None = None
        for attempt in range(tries):
            if attempt:
                self.retried += 1
                self.transport.write(b"\x00" + frame)  # 0x00 first: end any half-received frame
            try:
                # Give up early on damage + silence unless this is an idempotent request's last
                # try; AUDIO (not resent here) then asks STATS at once (audio()).
                early = attempt + 1 < tries or not resend
                msg = self._wait_once(seq, limit, early)
            except _Lost as exc:
                last = exc
                continue
            self._frames.pop(seq, None)
            return self._check(msg, expect)
        self._frames.pop(seq, None)
        raise DeviceTimeout(
            f"{self.transport.name}: no usable reply to request seq {seq} after {tries} tries "
            f"({last}; {limit:.1f} s each)"
        )

    def _wait_once(self, seq: int, limit: float, early: bool) -> P.Message:
        """One attempt's wait. _Lost when the reply is overdue or (`early`) when something was
        damaged since and nothing has arrived for a moment."""
        start = time.monotonic()
        deadline = start + limit
        damage_at_start = self._damage
        quiet_since = start
        grace = min(0.5, limit / 4)
        while True:
            for i, msg in enumerate(self._pending):
                if msg.seq == seq:
                    del self._pending[i]
                    if (
                        early
                        and isinstance(msg, P.Error)
                        and msg.code in _DAMAGED_REQUEST
                        and self._frames.get(seq, (b"", False))[1]
                    ):
                        raise _Lost(f"the device got it damaged: {msg.describe()}")
                    return msg
            now = time.monotonic()
            if now >= deadline:
                raise _Lost(f"no reply within {limit:.1f} s")
            if early and self._damage != damage_at_start and now - quiet_since >= grace:
                raise _Lost("a damaged frame and then silence")
            if self._pump(min(deadline - now, grace)):
                quiet_since = time.monotonic()

    def _check(self, msg: P.Message, expect: type[M]) -> M:
        if isinstance(msg, P.Error):
            raise DeviceErrorReply(msg)
        if not isinstance(msg, expect):
            raise DeviceMalformed(
                f"{self.transport.name}: expected {expect.__name__} reply, got {type(msg).__name__}"
            )
        n = self.num_labels
        if isinstance(msg, P.Result) and n is not None and (msg.scores.size != n or not 0 <= msg.top < n):
            raise DeviceMalformed(
                f"{self.transport.name}: RESULT with {msg.scores.size} scores and top {msg.top}; the "
                f"device's model has {n} labels"
            )
        return msg

    def _pump(self, timeout: float) -> bool:
        """Read for up to `timeout` s; True when at least one frame (good or bad) arrived."""
        data = self.transport.read(min(timeout, 0.2))
        frames = self._reader.feed(data)
        for raw in frames:
            try:
                frame = P.parse_frame(raw)
            except P.ProtocolError:  # COBS, CRC, length: damaged on the way (or boot noise)
                self.bad_frames += 1
                self._damage += 1
                continue
            try:
                msg = P.parse_message(frame)
            except P.ProtocolError as exc:
                self.bad_frames += 1
                if exc.code == P.ErrorCode.UNKNOWN_TYPE:
                    continue  # not a reply type (e.g. our own request echoed by a loopback)
                # An intact frame (its CRC holds) that the device really sent, malformed.
                raise DeviceMalformed(
                    f"{self.transport.name}: malformed reply type 0x{frame.type:02x} seq {frame.seq}: {exc}"
                ) from exc
            if isinstance(msg, (P.Scores, P.Detection)) and msg.seq == 0:
                self._check_event(msg)
                self.events.append(msg)
                if self.on_event:
                    self.on_event(msg)
            elif msg.seq == 0 and isinstance(msg, P.Error):
                # An ERROR for a frame whose seq it could not read: one of ours was garbled on the
                # way. The request waiting for its reply is sent again (wait_reply) when allowed.
                self.garbled += 1
                self._damage += 1
                if not self._frames:
                    raise DeviceErrorReply(msg)
            else:
                self._pending.append(msg)
                if len(self._pending) > 64:  # replies nobody waits for: forget the oldest
                    self._pending.pop(0)
                    self.stale_replies += 1

    def _check_event(self, msg: P.Scores | P.Detection) -> None:
        n = self.num_labels
        if n is None:
            return
        if isinstance(msg, P.Scores) and msg.scores.size != n:
            raise DeviceMalformed(
                f"{self.transport.name}: SCORES event with {msg.scores.size} scores; the device's model "
                f"has {n} labels"
            )
        if isinstance(msg, P.Detection) and not 0 <= msg.label < n:
            raise DeviceMalformed(
                f"{self.transport.name}: DETECTION of label {msg.label}; the device's model has {n} labels"
            )

    def take_events(self) -> list[P.Scores | P.Detection]:
        out, self.events = self.events, []
        return out

    # typed operations ------------------------------------------------------------------------
    def reset(self) -> None:
        self.request(P.req_reset, P.Ok)
        self._samples_sent = 0

    def set_config(self, key: P.ConfigKey | int, *values: int) -> None:
        self.request(lambda s: P.req_set_config(s, key, *values), P.Ok)

    def stats(self) -> P.StatsReply:
        return self.request(P.req_stats, P.StatsReply)

    def audio(self, samples: np.ndarray) -> P.AudioAck:
        """Send up to 512 samples; the AUDIO_ACK (events arrive in `events`/`on_event`).

        AUDIO is not idempotent (it advances the stream), so it is never sent again blindly: when
        its reply is lost, STATS says whether the device counted the samples; if it did not, the
        request is sent again, else its ACK is rebuilt from STATS (PROTOCOL.md)."""
        n = int(np.asarray(samples).size)
        seq = self.send(lambda s: P.req_audio(s, samples), resend=False)
        for attempt in range(1 + self.retries):
            try:
                ack = self.wait_reply(seq, P.AudioAck)
                break
            except DeviceTimeout as exc:
                stats = self.stats()
                if stats.samples == self._samples_sent + n:  # handled; only its reply was lost
                    ack = P.AudioAck(seq, stats.samples, stats.frames, stats.inferences)
                    self.retried += 1
                    break
                if stats.samples != self._samples_sent or attempt == self.retries:
                    raise DeviceTimeout(f"{exc} (device counted {stats.samples} samples)") from exc
                self.retried += 1
                seq = self.send(lambda s: P.req_audio(s, samples), resend=False)
            except DeviceErrorReply as exc:
                if exc.reply.code not in _DAMAGED_REQUEST or attempt == self.retries:
                    raise
                self.retried += 1  # rejected as damaged: it changed nothing, so send it again
                seq = self.send(lambda s: P.req_audio(s, samples), resend=False)
        self._samples_sent += n
        if ack.samples_total != self._samples_sent:
            raise DeviceReset(
                f"{self.transport.name}: device counted {ack.samples_total} samples, we sent "
                f"{self._samples_sent}: it restarted mid-run"
            )
        return ack

    def load_clip(self, clip: np.ndarray, window: int = 4) -> None:
        """CLIP_LOAD the clip in 512-sample pieces, keeping up to `window` requests in flight."""
        clip = np.asarray(clip, dtype=np.int16)
        offsets = list(range(0, clip.size, P.MAX_AUDIO_SAMPLES))
        in_flight: list[int] = []
        for off in offsets:
            piece = clip[off : off + P.MAX_AUDIO_SAMPLES]
            in_flight.append(self.send(lambda s, o=off, c=piece: P.req_clip_load(s, o, c)))
            if len(in_flight) >= window:
                self.wait_reply(in_flight.pop(0), P.Ok)
        for seq in in_flight:
            self.wait_reply(seq, P.Ok)

    def run_clip(self, timeout: float | None = None) -> P.Result:
        return self.request(P.req_clip_run, P.Result, timeout=timeout)

    def classify(self, clip: np.ndarray) -> P.Result:
        self.load_clip(clip)
        return self.run_clip()


def open_serial(url: str, baudrate: int = 115200, timeout: float = 5.0, open_timeout: float = 0.0) -> Device:
    return Device(SerialTransport(url, baudrate, open_timeout), timeout=timeout)


def open_process(argv: Sequence[str], timeout: float = 5.0) -> Device:
    return Device(ProcessTransport(argv), timeout=timeout)
