"""The firmware core (protocol, app, recognizer) built for the host under ASan/UBSan and driven
over a pipe with the Python protocol module: every answer is checked against the host reference
(the C frontend via nanokws.features + the fixture model's definition + the protocol spec)."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fixtures.firmware_io import (
    FW_MODEL,
    FW_MODEL_REQUANT,
    HOP,
    StreamConfig,
    build_fw,
    expected_stream,
    fixture_model,
    one_reply,
    read_model_config,
    replies_to,
    requantise,
    talk,
)
from nanokws.features import FRONTEND_CONFIG, compute_features
from nanokws.harness import protocol as P

CFG = read_model_config(FW_MODEL)


@pytest.fixture(scope="module")
def fw() -> Path:
    return build_fw("asan", FW_MODEL)


def _noise(rng: np.random.Generator, seconds: float, level: float) -> np.ndarray:
    return np.clip(rng.normal(0, level, int(seconds * 16000)), -32768, 32767).astype(np.int16)


def _clip_frames(clip: np.ndarray, rng: np.random.Generator, first_seq: int) -> list[bytes]:
    """CLIP_LOAD frames of random sizes, sent in a shuffled order (offsets make order irrelevant)."""
    pieces = []
    off = 0
    while off < clip.size:
        n = int(min(rng.integers(1, 513), clip.size - off))
        pieces.append((off, clip[off : off + n]))
        off += n
    order = rng.permutation(len(pieces))
    return [P.req_clip_load(first_seq + i, *pieces[k]) for i, k in enumerate(order)]


def _audio_frames(audio: np.ndarray, rng: np.random.Generator, first_seq: int) -> list[bytes]:
    frames = []
    off = 0
    while off < audio.size:
        n = int(min(rng.integers(1, 513), audio.size - off))
        frames.append(P.req_audio((first_seq + len(frames)) % 200 + 1, audio[off : off + n]))
        off += n
    return frames


def test_info_describes_model_frontend_and_config(fw: Path) -> None:
    (info,) = talk(fw, P.req_info(9))
    assert isinstance(info, P.Info) and info.seq == 9
    d = info.data
    assert d["protocol"] == P.VERSION and d["target"] == "host"
    assert d["model_hash"] == CFG.model_hash and d["labels"] == CFG.labels
    assert d["arena_bytes"] == CFG.arena_bytes
    # The fixture model has no streaming form: the full window per inference, any stride 1..50.
    assert (d["streaming"], d["stream_ram_bytes"], d["stride_align"]) == (False, 0, 1)
    assert (info.streaming, info.stream_ram_bytes, info.stride_align) == (False, 0, 1)
    # A one-clip window: the first inference after RESET at hop clip_frames, no clip padding.
    assert (d["window_frames"], d["clip_pad_before"]) == (FRONTEND_CONFIG["NK_FE_CLIP_FRAMES"], 0)
    fe = FRONTEND_CONFIG
    assert d["frontend"] == {
        "sample_rate": fe["NK_FE_SAMPLE_RATE"],
        "window_samples": fe["NK_FE_WINDOW_SAMPLES"],
        "hop_samples": fe["NK_FE_HOP_SAMPLES"],
        "num_channels": fe["NK_FE_NUM_CHANNELS"],
        "clip_frames": fe["NK_FE_CLIP_FRAMES"],
    }
    assert d["cycle_unit"] == "host_ns" and d["cycle_hz"] == 1_000_000_000
    assert d["config"] == {
        "inference_stride": 2, "smoothing": 4, "thresholds": [180] * 4,
        "suppression_ms": 1000, "release": 64, "stream_scores": 0,
    }
    # The fixture's model_config.h predates NK_MODEL_REC_*: the library's defaults.
    assert info.config_source == "library defaults"


@pytest.mark.parametrize("model_dir", [FW_MODEL, FW_MODEL_REQUANT], ids=["identity", "requantised"])
def test_clip_run_matches_host_reference(model_dir: Path) -> None:
    exe = build_fw("asan", model_dir)
    cfg = read_model_config(model_dir)
    rng = np.random.default_rng(3)
    clips = [_noise(rng, 1, 2500), (np.sin(np.arange(16000) * 0.3) * 12000).astype(np.int16)]
    frames: list[bytes] = []
    for n, clip in enumerate(clips):
        frames += _clip_frames(clip, rng, 10 + 60 * n) + [P.req_clip_run(200 + n)]
    # Unloaded samples are zero: after RESET, half a clip.
    frames += [P.req_reset(5), P.req_clip_load(6, 8000, clips[0][:512]), P.req_clip_run(202)]
    partial = np.zeros(16000, np.int16)
    partial[8000:8512] = clips[0][:512]
    clips.append(partial)
    msgs = talk(exe, *frames)
    assert not [m for m in msgs if isinstance(m, P.Error)]
    for n, clip in enumerate(clips):
        result = one_reply(msgs, 200 + n)
        assert isinstance(result, P.Result)
        want = fixture_model(requantise(compute_features(clip), cfg))
        assert np.array_equal(result.scores, want), (n, result.scores, want)
        assert result.top == int(np.argmax(want))
        assert result.frontend_cycles > 0 and result.inference_cycles > 0


def test_clip_run_on_real_speech(fw: Path, shared_speech_commands: Path) -> None:
    from nanokws.data import read_wav

    wavs = sorted((shared_speech_commands / "yes").glob("*.wav"))[:2]
    assert wavs, "no yes/*.wav in the shared data"
    for wav in wavs:
        clip = np.zeros(16000, np.int16)
        audio = read_wav(wav)[:16000]
        clip[: audio.size] = audio
        msgs = talk(fw, *P.clip_load_frames(range(1, 100), clip), P.req_clip_run(150))
        result = one_reply(msgs, 150)
        assert isinstance(result, P.Result)
        assert np.array_equal(result.scores, fixture_model(compute_features(clip)))


@pytest.mark.parametrize(
    "sc",
    [StreamConfig(), StreamConfig(stride=3, smoothing=2, thresholds=[0, 0, 170, 150], suppression_ms=300)],
    ids=["defaults", "configured"],
)
def test_streaming_scores_and_detections_match_reference(fw: Path, sc: StreamConfig) -> None:
    rng = np.random.default_rng(11)
    quiet = np.zeros(8000, np.int16)
    burst1, burst2 = _noise(rng, 1.2, 6000), _noise(rng, 0.8, 9000)
    audio = np.concatenate([quiet, burst1, quiet, quiet, quiet, burst2, quiet])
    setup = [P.req_set_config(1, P.ConfigKey.STREAM_SCORES, 1)]
    if sc != StreamConfig():
        setup += [
            P.req_set_config(2, P.ConfigKey.INFERENCE_STRIDE, sc.stride),
            P.req_set_config(3, P.ConfigKey.SMOOTHING, sc.smoothing),
            P.req_set_config(4, P.ConfigKey.SUPPRESSION, sc.suppression_ms),
        ] + [P.req_set_config(5, P.ConfigKey.THRESHOLD, k, t) for k, t in enumerate(sc.thresholds)]
    msgs = talk(fw, *setup, *_audio_frames(audio, rng, 10), P.req_stats(250))
    assert not [m for m in msgs if isinstance(m, P.Error)]

    hops = audio.size // HOP
    features = compute_features(audio[: hops * HOP])
    want_scores, want_dets = expected_stream(features, CFG, sc)
    assert want_dets, "test audio should trigger at least one detection"
    got_scores = [m for m in msgs if isinstance(m, P.Scores)]
    got_dets = [(m.hop, m.label, m.score) for m in msgs if isinstance(m, P.Detection)]
    assert [s.hop for s in got_scores] == [h for h, _ in want_scores]
    for got, (_, want) in zip(got_scores, want_scores, strict=True):
        assert np.array_equal(got.scores, want), (got.hop, got.scores, want)
    assert got_dets == want_dets
    assert all(m.seq == 0 for m in msgs if isinstance(m, (P.Scores, P.Detection)))

    acks = [m for m in msgs if isinstance(m, P.AudioAck)]
    assert acks[-1].samples_total == audio.size
    assert acks[-1].frames_total == len(features)
    assert acks[-1].inferences_total == len(want_scores)
    stats = one_reply(msgs, 250)
    assert isinstance(stats, P.StatsReply)
    assert (stats.samples, stats.frames, stats.inferences, stats.detections, stats.rx_errors) == (
        audio.size, len(features), len(want_scores), len(want_dets), 0,
    )
    assert stats.frontend_cycles_max > 0 and stats.inference_cycles_last > 0
    assert stats.inference_cycles_max >= stats.inference_cycles_last


def test_one_streamed_clip_equals_clip_run(fw: Path) -> None:
    clip = _noise(np.random.default_rng(5), 1, 4000)
    msgs = talk(
        fw, P.req_set_config(1, P.ConfigKey.STREAM_SCORES, 1), *P.clip_load_frames(range(2, 40), clip),
        P.req_clip_run(50), *[P.req_audio(60, clip[i : i + 400]) for i in range(0, 16000, 400)],
    )
    (scores,) = [m for m in msgs if isinstance(m, P.Scores)]
    result = one_reply(msgs, 50)
    assert isinstance(result, P.Result) and scores.hop == 49
    assert np.array_equal(scores.scores, result.scores)


def test_reset_clears_stream_and_stats_but_keeps_config(fw: Path) -> None:
    audio = _noise(np.random.default_rng(2), 1.5, 3000)
    msgs = talk(
        fw, P.req_set_config(1, P.ConfigKey.SMOOTHING, 7), P.req_set_config(2, P.ConfigKey.THRESHOLD, 3, 99),
        P.req_audio(3, audio[:500]), P.req_reset(4), P.req_stats(5), P.req_info(6),
        P.req_set_config(7, P.ConfigKey.STREAM_SCORES, 1),
        *[P.req_audio(8, audio[i : i + 500]) for i in range(0, 16000, 500)],
    )
    stats = one_reply(msgs, 5)
    assert isinstance(stats, P.StatsReply)
    assert (stats.samples, stats.frames, stats.inferences, stats.frontend_cycles_max) == (0, 0, 0, 0)
    info = one_reply(msgs, 6)
    assert isinstance(info, P.Info)
    assert info.data["config"]["smoothing"] == 7 and info.data["config"]["thresholds"] == [180, 180, 180, 99]
    # After RESET the frontend starts afresh: the stream's first inference sees audio[:16000] only.
    (scores,) = [m for m in msgs if isinstance(m, P.Scores)]
    assert scores.hop == 49
    assert np.array_equal(scores.scores, fixture_model(compute_features(audio[:16000])))


@pytest.mark.parametrize(
    "body, code",
    [
        (b"", P.ErrorCode.BAD_LENGTH),
        (bytes([0]), P.ErrorCode.BAD_ARGUMENT),
        (bytes([7, 1]), P.ErrorCode.BAD_ARGUMENT),
        (bytes([6, 1, 0]), P.ErrorCode.BAD_LENGTH),
        (bytes([1, 0]), P.ErrorCode.BAD_ARGUMENT),
        (bytes([1, 51]), P.ErrorCode.BAD_ARGUMENT),
        (bytes([1, 2, 0]), P.ErrorCode.BAD_LENGTH),
        (bytes([2, 0]), P.ErrorCode.BAD_ARGUMENT),
        (bytes([2, 33]), P.ErrorCode.BAD_ARGUMENT),
        (bytes([3, 4, 100]), P.ErrorCode.BAD_ARGUMENT),
        (bytes([3, 1]), P.ErrorCode.BAD_LENGTH),
        (bytes([4, 1]), P.ErrorCode.BAD_LENGTH),
        (bytes([5, 2]), P.ErrorCode.BAD_ARGUMENT),
    ],
)
def test_set_config_rejects_bad_values_and_changes_nothing(fw: Path, body: bytes, code: int) -> None:
    msgs = talk(fw, P.req_info(1), P.build_frame(P.MsgType.SET_CONFIG, 2, body), P.req_info(3))
    err = one_reply(msgs, 2)
    assert isinstance(err, P.Error) and err.code == code and err.request_type == P.MsgType.SET_CONFIG
    before, after = one_reply(msgs, 1), one_reply(msgs, 3)
    assert isinstance(before, P.Info) and isinstance(after, P.Info)
    assert before.data == after.data


def test_set_config_accepts_the_documented_ranges(fw: Path) -> None:
    msgs = talk(
        fw, *[P.req_set_config(1, P.ConfigKey.INFERENCE_STRIDE, v) for v in (1, 50)],
        *[P.req_set_config(1, P.ConfigKey.SMOOTHING, v) for v in (1, 32)],
        P.req_set_config(1, P.ConfigKey.THRESHOLD, 0, 0), P.req_set_config(1, P.ConfigKey.THRESHOLD, 2, 255),
        P.req_set_config(1, P.ConfigKey.SUPPRESSION, 65535),
        P.req_set_config(1, P.ConfigKey.STREAM_SCORES, 1), P.req_set_config(1, P.ConfigKey.RELEASE, 255),
        P.req_info(2),
    )
    assert all(isinstance(m, P.Ok) for m in replies_to(msgs, 1)) and len(replies_to(msgs, 1)) == 9
    info = one_reply(msgs, 2)
    assert isinstance(info, P.Info)
    assert info.data["config"] == {
        "inference_stride": 50, "smoothing": 32, "thresholds": [0, 180, 255, 180],
        "suppression_ms": 65535, "release": 255, "stream_scores": 1,
    }
    json.dumps(info.data)  # plain JSON types only


def test_live_mode_api_gives_the_protocol_detections(fw: Path) -> None:
    # nk_app_push_audio (the board's microphone path) on raw PCM, via the host build's live mode.
    rng = np.random.default_rng(11)
    quiet = np.zeros(8000, np.int16)
    burst1, burst2 = _noise(rng, 1.2, 6000), _noise(rng, 0.7, 9000)
    audio = np.concatenate([quiet, burst1, quiet, quiet, quiet, burst2, quiet])
    env = {**os.environ, "NANOKWS_FW_LIVE": "1"}
    pcm = audio.astype("<i2").tobytes()
    proc = subprocess.run([str(fw)], input=pcm, capture_output=True, env=env, timeout=60)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr.decode()[-2000:]
    got = [
        tuple(int(kv.split("=")[1]) for kv in line.split()[1:3]) + (int(line.split("score=")[1]),)
        for line in proc.stdout.decode().splitlines()
    ]
    hops = audio.size // HOP
    _, want = expected_stream(compute_features(audio[: hops * HOP]), CFG, StreamConfig())
    assert want and got == want
    names = [line.split("name=")[1].split()[0] for line in proc.stdout.decode().splitlines()]
    assert names == [CFG.labels[label] for _, label, _ in want]


def test_a_failing_model_answers_internal_as_protocol_md_says() -> None:
    """PROTOCOL.md: a CLIP_RUN whose model fails gets ERROR INTERNAL and changes nothing; an inference
    that fails while AUDIO streams gets ERROR INTERNAL with the AUDIO's seq, then the AUDIO_ACK, whose
    counters include the samples (audio cannot be un-heard). The fixture model fails every invoke."""
    exe = build_fw("asan", FW_MODEL.parent / "fw_model_fail")
    clip = _noise(np.random.default_rng(9), 1, 3000)
    audio = [P.req_audio(100 + k, clip[i : i + 400]) for k, i in enumerate(range(0, 16000, 400))]
    msgs = talk(
        exe, P.req_stats(1), *P.clip_load_frames(range(2, 40), clip), P.req_clip_run(50), P.req_stats(51),
        *audio, P.req_stats(200),
    )
    err = one_reply(msgs, 50)
    assert isinstance(err, P.Error) and err.code == P.ErrorCode.INTERNAL
    assert err.request_type == P.MsgType.CLIP_RUN
    before, after = one_reply(msgs, 1), one_reply(msgs, 51)
    assert isinstance(before, P.StatsReply) and isinstance(after, P.StatsReply)
    # Nothing changed but rx_errors, which counts every ERROR sent (PROTOCOL.md).
    assert replace(before, seq=0, rx_errors=before.rx_errors + 1) == replace(after, seq=0), after
    failed = [seq for seq in range(100, 140) if any(isinstance(m, P.Error) for m in replies_to(msgs, seq))]
    assert failed, "no AUDIO reached an inference"
    total = 0
    for k, seq in enumerate(range(100, 140)):
        total += 400
        replies = replies_to(msgs, seq)
        kinds = [type(m) for m in replies]
        assert kinds == ([P.Error, P.AudioAck] if seq in failed else [P.AudioAck]), (seq, replies)
        if seq in failed:
            assert replies[0].code == P.ErrorCode.INTERNAL and replies[0].request_type == P.MsgType.AUDIO
        assert replies[-1].samples_total == total, k
    final = one_reply(msgs, 200)
    assert isinstance(final, P.StatsReply) and final.samples == 16000
    assert final.rx_errors == 1 + len(failed)
    assert not any(isinstance(m, P.Scores | P.Detection) for m in msgs)
