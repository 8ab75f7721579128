"""The same firmware cross-compiled for the Cortex-M4F (TARGET=qemu) and run on QEMU's
mps2-an386: INFO, a clip and a stream must give the host reference's scores bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures.firmware_io import (
    FW_MODEL,
    StreamConfig,
    build_fw,
    exchange_qemu,
    expected_stream,
    fixture_model,
    read_model_config,
)
from nanokws.features import compute_features
from nanokws.harness import protocol as P

pytestmark = [
    pytest.mark.slow,
    pytest.mark.qemu,  # skips without qemu-system-arm / arm-none-eabi-gcc, fails under NANOKWS_REQUIRE=qemu
]


def test_qemu_firmware_matches_host_reference() -> None:
    cfg = read_model_config(FW_MODEL)
    rng = np.random.default_rng(21)
    clip = np.clip(rng.normal(0, 3000, 16000), -32768, 32767).astype(np.int16)
    stream = np.concatenate([np.zeros(4000, np.int16), clip, np.zeros(12000, np.int16)])
    wire = [P.req_info(1), *P.clip_load_frames(range(2, 40), clip), P.req_clip_run(40),
            P.req_set_config(41, P.ConfigKey.STREAM_SCORES, 1), P.build_frame(0x55, 42),
            *[P.req_audio(43, stream[i : i + 400]) for i in range(0, stream.size, 400)], P.req_stats(44)]
    msgs = exchange_qemu(build_fw("qemu", FW_MODEL), wire, until_seq=44, timeout=120.0)

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
