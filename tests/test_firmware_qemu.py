"""The same firmware cross-compiled for the Cortex-M4F (TARGET=qemu) and run on QEMU's
mps2-an386: INFO, a clip and a stream must give the host reference's scores bit for bit."""

from __future__ import annotations

import os
import select
import shutil
import time

import numpy as np
import pytest
from fixtures.firmware_io import (
    FW_MODEL,
    StreamConfig,
    build_fw,
    expected_stream,
    fixture_model,
    read_model_config,
)
from nanokws.features import compute_features
from nanokws.harness import protocol as P

pytestmark = [
    pytest.mark.slow,
    pytest.mark.qemu,
    pytest.mark.skipif(
        not (shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc")),
        reason="needs qemu-system-arm and arm-none-eabi-gcc (make setup installs them)",
    ),
]


def _exchange(wire: list[bytes], until_seq: int, timeout: float = 120.0) -> list[P.Message]:
    """Boot the firmware, send `wire`, collect messages until the reply with `until_seq`."""
    from nanokws.qemu import Qemu

    elf = build_fw("qemu", FW_MODEL)
    messages: list[P.Message] = []
    reader = P.FrameReader()
    with Qemu(elf, serial="stdio") as q:
        assert q.proc.stdin is not None and q.proc.stdout is not None
        q.proc.stdin.write(b"".join(wire))
        q.proc.stdin.flush()
        fd = q.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while not any(m.seq == until_seq for m in messages):
            left = deadline - time.monotonic()
            assert left > 0, f"no reply with seq {until_seq} from QEMU; got {messages[-3:]}"
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                assert chunk, f"QEMU exited: {q.stderr_text()}"
                messages += [P.decode(f) for f in reader.feed(chunk)]
    return messages


def test_qemu_firmware_matches_host_reference() -> None:
    cfg = read_model_config(FW_MODEL)
    rng = np.random.default_rng(21)
    clip = np.clip(rng.normal(0, 3000, 16000), -32768, 32767).astype(np.int16)
    stream = np.concatenate([np.zeros(4000, np.int16), clip, np.zeros(12000, np.int16)])
    wire = [P.req_info(1), *P.clip_load_frames(range(2, 40), clip), P.req_clip_run(40),
            P.req_set_config(41, P.ConfigKey.STREAM_SCORES, 1), P.build_frame(0x55, 42),
            *[P.req_audio(43, stream[i : i + 400]) for i in range(0, stream.size, 400)], P.req_stats(44)]
    msgs = _exchange(wire, until_seq=44)

    info = next(m for m in msgs if m.seq == 1)
    assert isinstance(info, P.Info)
    assert info.data["target"] == "qemu" and info.data["labels"] == cfg.labels
    result = next(m for m in msgs if m.seq == 40)
    assert isinstance(result, P.Result)
    assert np.array_equal(result.scores, fixture_model(compute_features(clip)))
    err = next(m for m in msgs if m.seq == 42)
    assert isinstance(err, P.Error) and err.code == P.ErrorCode.UNKNOWN_TYPE

    want_scores, want_dets = expected_stream(compute_features(stream), cfg, StreamConfig())
    got = [m for m in msgs if isinstance(m, P.Scores)]
    assert [m.hop for m in got] == [h for h, _ in want_scores]
    assert all(np.array_equal(g.scores, w) for g, (_, w) in zip(got, want_scores, strict=True))
    assert [(m.hop, m.label, m.score) for m in msgs if isinstance(m, P.Detection)] == want_dets
    stats = next(m for m in msgs if m.seq == 44)
    assert isinstance(stats, P.StatsReply) and stats.inferences == len(want_scores)
    assert stats.inference_cycles_last > 0
