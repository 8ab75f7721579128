"""The feature definition in float64 numpy: what the fixed-point C frontend approximates.

Used by the table generator (window, mel filters) and, as a yardstick only, by the tests and
`nanokws features compare`. Never used to make training features: those come from the C code.
"""

from __future__ import annotations

import numpy as np

from .config_header import read_config


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: 1127 * ln(1 + f / 700)."""
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def hann_window(length: int) -> np.ndarray:
    """Symmetric Hann window (both end points zero), as numpy's `np.hanning`."""
    n = np.arange(length, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / (length - 1))


def mel_matrix(
    sample_rate: int, fft_size: int, channels: int, lower_hz: float, upper_hz: float
) -> np.ndarray:
    """[fft_size // 2 + 1, channels] triangular filters, linear in mel between equally spaced edges.

    The DC bin gets no weight; weights are not area-normalised (peak 1), as in
    `tf.signal.linear_to_mel_weight_matrix`.
    """
    bins = fft_size // 2 + 1
    bin_mel = hz_to_mel(np.arange(bins) * sample_rate / fft_size)
    edges = np.linspace(hz_to_mel(lower_hz), hz_to_mel(upper_hz), channels + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel[:, None] - lower) / (center - lower)
    falling = (upper - bin_mel[:, None]) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    return weights


def reference_levels(audio: np.ndarray, config: dict[str, int] | None = None) -> np.ndarray:
    """Unrounded output levels [frames, channels] (float64) of int16 `audio`, before clamping."""
    cfg = config or read_config()
    win, hop, nfft = cfg["NK_FE_WINDOW_SAMPLES"], cfg["NK_FE_HOP_SAMPLES"], cfg["NK_FE_FFT_SIZE"]
    x = np.asarray(audio, dtype=np.float64) / 32768.0
    frames = 0 if len(x) < win else (len(x) - win) // hop + 1
    idx = np.arange(frames)[:, None] * hop + np.arange(win)[None, :]
    spectrum = np.fft.rfft(x[idx] * hann_window(win), n=nfft, axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    mel = power @ mel_matrix(
        cfg["NK_FE_SAMPLE_RATE"],
        nfft,
        cfg["NK_FE_NUM_CHANNELS"],
        cfg["NK_FE_LOWER_HZ"],
        cfg["NK_FE_UPPER_HZ"],
    )
    floor = 10.0 ** cfg["NK_FE_LOG_FLOOR_EXP10"]
    scale = cfg["NK_FE_LOG_SCALE_MILLI"] / 1000.0
    offset = cfg["NK_FE_LOG_OFFSET_MILLI"] / 1000.0 - cfg["NK_FE_OUTPUT_SHIFT"]
    return scale * np.log(mel + floor) + offset


def reference_features(audio: np.ndarray, config: dict[str, int] | None = None) -> np.ndarray:
    """int8 [frames, channels]: `reference_levels` rounded and clamped like the C frontend's output."""
    return np.clip(np.round(reference_levels(audio, config)), -128, 127).astype(np.int8)


def floor_level(config: dict[str, int] | None = None) -> float:
    """The level of silence (mel power 0): values near it are dominated by the 1e-6 floor."""
    cfg = config or read_config()
    scale = cfg["NK_FE_LOG_SCALE_MILLI"] / 1000.0
    offset = cfg["NK_FE_LOG_OFFSET_MILLI"] / 1000.0 - cfg["NK_FE_OUTPUT_SHIFT"]
    return scale * np.log(10.0 ** cfg["NK_FE_LOG_FLOOR_EXP10"]) + offset
