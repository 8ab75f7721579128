"""Training-time augmentation, in the audio domain (before the C frontend) and the feature domain.

Audio: random time shift, background noise at a random SNR, random gain — then features come from
the real frontend, so the model learns exactly what the device computes. Feature form (the shared
log-mel npz has no audio): frame shift, SpecAugment masks, and noise mixing done in the power
domain, since the int8 value is an affine function of ln(mel power).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# int8 feature = LOG_GAIN * ln(power) + const (docs/architecture.md: 10.04 ln(P) + 145.9 - 128).
LOG_GAIN = 10.04


@dataclass(frozen=True)
class AudioAugment:
    max_shift_samples: int = 1600  # +-100 ms at 16 kHz
    noise_probability: float = 0.8
    snr_db: tuple[float, float] = (0.0, 20.0)
    gain_db: tuple[float, float] = (-6.0, 6.0)


@dataclass(frozen=True)
class FeatureAugment:
    max_shift_frames: int = 5  # +-100 ms at 20 ms per frame
    noise_probability: float = 0.5
    snr_db: tuple[float, float] = (0.0, 20.0)
    specaugment: bool = False
    time_masks: int = 2
    time_mask_frames: int = 5
    freq_masks: int = 2
    freq_mask_channels: int = 5


def _shift(x: np.ndarray, shift: int, fill: float) -> np.ndarray:
    """Shift along axis 0 by `shift` (positive = later), filling the gap with `fill`."""
    out = np.full_like(x, fill)
    if shift > 0:
        out[shift:] = x[:-shift]
    elif shift < 0:
        out[:shift] = x[-shift:]
    else:
        out[:] = x
    return out


def augment_audio(audio: np.ndarray, noise: list[np.ndarray], rng: np.random.Generator,
                  cfg: AudioAugment = AudioAugment()) -> np.ndarray:
    """Augment int16 clips [n, samples]; returns a new int16 array of the same shape."""
    clips = audio.astype(np.float32)
    n, length = clips.shape
    for i in range(n):
        x = _shift(clips[i], int(rng.integers(-cfg.max_shift_samples, cfg.max_shift_samples + 1)), 0.0)
        x *= np.float32(10.0 ** (rng.uniform(*cfg.gain_db) / 20.0))
        if noise and rng.random() < cfg.noise_probability:
            src = noise[int(rng.integers(len(noise)))]
            if len(src) >= length:
                start = int(rng.integers(len(src) - length + 1))
                seg = src[start:start + length].astype(np.float32)
            else:
                seg = np.resize(src, length).astype(np.float32)
            sig_power = float(np.mean(x * x))
            noise_power = float(np.mean(seg * seg)) + 1e-9
            if sig_power < 1.0:  # (near) silent clip: add the noise at its own level
                x = x + seg * np.float32(rng.uniform(0.1, 1.0))
            else:
                snr = rng.uniform(*cfg.snr_db)
                x = x + seg * np.float32(np.sqrt(sig_power / (noise_power * 10.0 ** (snr / 10.0))))
        clips[i] = x
    return np.clip(np.rint(clips), -32768, 32767).astype(np.int16)


def mix_features(a: np.ndarray, b: np.ndarray, gain_db: float) -> np.ndarray:
    """Features of (signal a + noise b scaled by gain_db), computed in the power domain."""
    fa = a.astype(np.float64) / LOG_GAIN
    fb = b.astype(np.float64) / LOG_GAIN + gain_db * np.log(10.0) / 10.0
    mixed = LOG_GAIN * np.logaddexp(fa, fb)
    return np.clip(np.rint(mixed), -128, 127).astype(np.int8)


def augment_features(features: np.ndarray, noise: np.ndarray | None, rng: np.random.Generator,
                     cfg: FeatureAugment = FeatureAugment()) -> np.ndarray:
    """Augment int8 features [n, frames, channels]; returns a new int8 array."""
    out = np.empty_like(features)
    n, frames, channels = features.shape
    for i in range(n):
        x = features[i]
        floor = float(x.min())
        x = _shift(x, int(rng.integers(-cfg.max_shift_frames, cfg.max_shift_frames + 1)), floor)
        if noise is not None and len(noise) and rng.random() < cfg.noise_probability:
            # Relative level: the noise slice's power is lowered by a random SNR-like amount.
            x = mix_features(x, noise[int(rng.integers(len(noise)))], -float(rng.uniform(*cfg.snr_db)))
        if cfg.specaugment:
            x = x.copy()
            fill = np.int8(np.rint(x.mean()))
            for _ in range(cfg.time_masks):
                w = int(rng.integers(0, cfg.time_mask_frames + 1))
                t0 = int(rng.integers(0, frames - w + 1))
                x[t0:t0 + w, :] = fill
            for _ in range(cfg.freq_masks):
                w = int(rng.integers(0, cfg.freq_mask_channels + 1))
                f0 = int(rng.integers(0, channels - w + 1))
                x[:, f0:f0 + w] = fill
        out[i] = x
    return out
