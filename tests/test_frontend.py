"""The C frontend: Python extension == firmware build (bit-exact), streaming == clip, closeness to
the float64 definition, committed tables == generator output, clear errors on bad input."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
from nanokws.cbuild import build_programs
from nanokws.errors import NanokwsError
from nanokws.features import (
    FRONTEND_CONFIG,
    compute_features,
    compute_features_batch,
    compute_features_stream,
    gen_tables,
)
from nanokws.features.config_header import read_config
from nanokws.features.reference import floor_level, reference_levels

CFG = read_config()
CH = CFG["NK_FE_NUM_CHANNELS"]
RATE = CFG["NK_FE_SAMPLE_RATE"]


def _synthetic() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1234)
    n = CFG["NK_FE_CLIP_SAMPLES"]
    t = np.arange(n) / RATE
    sweep = np.sin(2 * np.pi * (30 * t + (7900 - 30) / 2 * t**2))  # 30 Hz .. 7.9 kHz
    impulses = np.zeros(n, np.int16)
    impulses[[0, 479, 4000, 9001]] = [32767, -32768, 12345, -1]
    return {
        "silence": np.zeros(n, np.int16),
        "dc_max": np.full(n, 32767, np.int16),
        "dc_min": np.full(n, -32768, np.int16),
        "dc_tiny": np.full(n, -1, np.int16),
        "sweep_full": np.round(32767 * sweep).astype(np.int16),
        "sweep_tiny": np.round(1.6 * sweep).astype(np.int16),
        "clipped_sine": np.clip(np.round(1e5 * np.sin(2 * np.pi * 997 * t)), -32768, 32767).astype(np.int16),
        "square_full": np.where(np.sin(2 * np.pi * 440 * t) >= 0, 32767, -32768).astype(np.int16),
        "noise_full": rng.integers(-32768, 32768, n).astype(np.int16),
        "noise_lsb": rng.integers(-1, 2, n).astype(np.int16),
        "tone_in_noise": np.round(15000 * np.sin(2 * np.pi * 300 * t) + rng.normal(0, 4, n)).astype(np.int16),
        "impulses": impulses,
    }


SYNTHETIC = _synthetic()


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert (w.getsampwidth(), w.getnchannels(), w.getframerate()) == (2, 1, RATE), path
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.int16)


def _real_clips(root: Path, count: int) -> dict[str, np.ndarray]:
    files = sorted(p for p in root.glob("*/*.wav") if p.parent.name != "_background_noise_")
    step = max(1, len(files) // count)
    clips = {f"{p.parent.name}/{p.name}": _read_wav(p) for p in files[::step][:count]}
    noise = sorted((root / "_background_noise_").glob("*.wav"))
    if noise:  # a long recording: many frames, including quiet and loud stretches
        clips[f"noise/{noise[0].name}"] = _read_wav(noise[0])[: 10 * RATE]
    return clips


@pytest.fixture(scope="module")
def frontend_dump() -> Path:
    return build_programs("asan", ["frontend_dump"])["frontend_dump"]


def _dump(exe: Path, audio: np.ndarray, stream: bool = False) -> np.ndarray:
    cmd = [str(exe), "--stream"] if stream else [str(exe)]
    proc = subprocess.run(cmd, input=audio.astype("<i2").tobytes(), capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    return np.frombuffer(proc.stdout, dtype=np.int8).reshape(-1, CH)


def _check_close_to_reference(name: str, audio: np.ndarray) -> tuple[float, int]:
    """Contract: within +-1 level on >= 99% of values, never more than 2 above the floor region."""
    ours = compute_features(audio).astype(np.int64)
    levels = reference_levels(audio)
    ref = np.clip(np.round(levels), -128, 127)
    assert ours.shape == ref.shape, name
    diff = np.abs(ours - ref)
    within1 = float(np.mean(diff <= 1))
    above_floor = levels > floor_level() + 1.0
    worst = int(diff[above_floor].max()) if above_floor.any() else 0
    assert within1 >= 0.99, f"{name}: only {within1:.4f} of values within +-1"
    assert worst <= 2, f"{name}: a value {worst} levels off the float reference"
    return within1, worst


def test_committed_tables_equal_generator_output() -> None:
    fresh = gen_tables.render(CFG)
    committed = gen_tables.TABLES_C.read_text(encoding="utf-8")
    assert committed == fresh, (
        "nk_frontend_tables.c is stale: run PYTHONPATH=tools python -m nanokws.features.gen_tables"
    )


def test_config_comes_from_the_header_and_matches_the_contract() -> None:
    assert FRONTEND_CONFIG == CFG
    # docs/architecture.md: 30 ms / 20 ms framing at 16 kHz, 40 channels, 49 frames a clip.
    assert (RATE, CFG["NK_FE_WINDOW_SAMPLES"], CFG["NK_FE_HOP_SAMPLES"], CH) == (16000, 480, 320, 40)
    frames = (CFG["NK_FE_CLIP_SAMPLES"] - CFG["NK_FE_WINDOW_SAMPLES"]) // CFG["NK_FE_HOP_SAMPLES"] + 1
    assert frames == CFG["NK_FE_CLIP_FRAMES"] == 49


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_python_equals_firmware_build_on_synthetic_audio(frontend_dump: Path, name: str) -> None:
    audio = SYNTHETIC[name]
    py = compute_features(audio)
    assert py.shape == (CFG["NK_FE_CLIP_FRAMES"], CH) and py.dtype == np.int8
    assert np.array_equal(py, _dump(frontend_dump, audio))
    assert np.array_equal(py, _dump(frontend_dump, audio, stream=True))


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_audio_is_close_to_float_reference(name: str) -> None:
    _check_close_to_reference(name, SYNTHETIC[name])


def test_silence_is_the_floor_and_loudness_orders_levels() -> None:
    floor = int(np.round(floor_level()))
    assert np.all(compute_features(SYNTHETIC["silence"]) == floor)
    t = np.arange(16000) / RATE
    quiet, loud = (np.round(a * np.sin(2 * np.pi * 1000 * t)).astype(np.int16) for a in (300, 30000))
    # 100x the amplitude = 10^4 x the power = 10.04 * ln(10^4) ~ 92.5 levels in the 1 kHz channel.
    peak_ch = int(np.argmax(compute_features(loud)[10]))
    gap = int(compute_features(loud)[10, peak_ch]) - int(compute_features(quiet)[10, peak_ch])
    assert abs(gap - 10.04 * np.log(1e4)) <= 1.5


def test_real_clips_bit_exact_and_close_to_reference(
    frontend_dump: Path, shared_speech_commands: Path
) -> None:
    clips = _real_clips(shared_speech_commands, 24)
    assert len(clips) >= 10
    for name, audio in clips.items():
        py = compute_features(audio)
        assert np.array_equal(py, _dump(frontend_dump, audio)), name
        _check_close_to_reference(name, audio)
    whole = [a[: len(a) // 320 * 320] for a in clips.values()]
    for audio in whole[:6]:
        assert np.array_equal(_dump(frontend_dump, audio, stream=True), compute_features(audio))


@pytest.mark.parametrize("length", [0, 100, 479, 480, 799, 800, 959, 960, 16000, 16100, 16159, 16160])
def test_frame_count_and_streaming_equal_clip(frontend_dump: Path, length: int) -> None:
    audio = np.resize(SYNTHETIC["tone_in_noise"], length).astype(np.int16)
    clip = compute_features(audio)
    expected = 0 if length < 480 else (length - 480) // 320 + 1
    assert clip.shape == (expected, CH)
    assert np.array_equal(clip, _dump(frontend_dump, audio))
    # Streaming sees whole hops only: frame k is emitted once hop k+1 arrives.
    hops = length // 320
    stream = compute_features_stream(audio)
    assert stream.shape == (max(hops - 1, 0), CH)
    assert np.array_equal(stream, clip[: len(stream)])
    assert np.array_equal(_dump(frontend_dump, audio, stream=True), stream)


def test_batch_equals_single_clips_with_and_without_threads() -> None:
    batch_in = np.stack([SYNTHETIC[k] for k in sorted(SYNTHETIC)])
    singles = np.stack([compute_features(a) for a in batch_in])
    assert np.array_equal(compute_features_batch(batch_in, workers=1), singles)
    assert np.array_equal(compute_features_batch(batch_in, workers=3), singles)
    # Non-contiguous input is accepted (copied) and gives the same bits.
    strided = np.repeat(batch_in, 2, axis=1)[:, ::2]
    assert np.array_equal(compute_features_batch(strided), singles)


@pytest.mark.parametrize(
    ("call", "audio", "message"),
    [
        (compute_features, np.zeros(16000, np.float32), "int16"),
        (compute_features, np.zeros(16000, np.int32), "int16"),
        (compute_features, np.zeros((2, 16000), np.int16), "dimension"),
        (compute_features_batch, np.zeros(16000, np.int16), "dimension"),
        (compute_features_batch, np.zeros((2, 16000), np.float64), "int16"),
        (compute_features_batch, np.zeros((2, 100), np.int16), "shorter than one window"),
    ],
)
def test_bad_input_raises_clear_error(call, audio: np.ndarray, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NanokwsError, match=message):
        call(audio)


def test_reference_window_is_numpys_symmetric_hann() -> None:
    from nanokws.features.reference import hann_window

    assert np.allclose(hann_window(CFG["NK_FE_WINDOW_SAMPLES"]), np.hanning(CFG["NK_FE_WINDOW_SAMPLES"]))


@pytest.mark.slow
def test_reference_mel_filters_equal_tensorflows_htk_filters() -> None:
    """Independent check of the filter bank: TF builds HTK-mel triangles the same way."""
    import tensorflow as tf
    from nanokws.features.reference import mel_matrix

    ours = mel_matrix(RATE, CFG["NK_FE_FFT_SIZE"], CH, CFG["NK_FE_LOWER_HZ"], CFG["NK_FE_UPPER_HZ"])
    theirs = tf.signal.linear_to_mel_weight_matrix(
        CH,
        CFG["NK_FE_FFT_SIZE"] // 2 + 1,
        RATE,
        float(CFG["NK_FE_LOWER_HZ"]),
        float(CFG["NK_FE_UPPER_HZ"]),
        dtype=tf.float64,
    ).numpy()
    assert np.allclose(ours, theirs, atol=1e-12)
