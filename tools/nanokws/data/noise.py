"""Deterministic synthetic noise: white, pink, brown, mains hum, and speech-shaped babble.

All generators return float32 at unit RMS, so callers pick the level (SNR) themselves.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SAMPLE_RATE = 16000


def _unit_rms(x: np.ndarray) -> np.ndarray:
    x = x - x.mean()
    rms = float(np.sqrt(np.mean(x * x)))
    return (x / rms if rms > 0 else x).astype(np.float32)


def _shaped(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Gaussian noise whose power falls as 1/f**exponent (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    freqs[0] = freqs[1]  # no DC blow-up
    spectrum *= freqs ** (-exponent / 2.0)
    spectrum[0] = 0.0
    return _unit_rms(np.fft.irfft(spectrum, n))


def white(n: int, rng: np.random.Generator) -> np.ndarray:
    return _unit_rms(rng.standard_normal(n))


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    return _shaped(n, rng, 1.0)


def brown(n: int, rng: np.random.Generator) -> np.ndarray:
    return _shaped(n, rng, 2.0)


def hum(n: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum (50 or 60 Hz) with decaying harmonics, a slow wobble and a little hiss."""
    t = np.arange(n) / SAMPLE_RATE
    f0 = 50.0 if rng.random() < 0.5 else 60.0
    wobble = 1.0 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t)
    x = sum((0.6**k) * np.sin(2 * np.pi * f0 * (k + 1) * t + rng.uniform(0, 2 * np.pi)) for k in range(8))
    return _unit_rms(x * wobble + 0.05 * rng.standard_normal(n))


def babble(n: int, rng: np.random.Generator) -> np.ndarray:
    """Speech-like noise without speech: several talkers of pink noise through moving formant
    bands, switched on and off at syllable rate."""
    out = np.zeros(n)
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    for _ in range(int(rng.integers(4, 8))):
        spectrum = np.fft.rfft(pink(n, rng))
        gain = np.zeros_like(freqs)
        for centre, width in ((rng.uniform(300, 900), 150), (rng.uniform(900, 2500), 300)):
            gain += np.exp(-0.5 * ((freqs - centre) / width) ** 2)
        voice = np.fft.irfft(spectrum * gain, n)
        rate = rng.uniform(3.0, 6.0)  # syllables per second
        t = np.arange(n) / SAMPLE_RATE
        envelope = np.clip(np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)), 0, None) ** 2
        out += voice * envelope * rng.uniform(0.5, 1.0)
    return _unit_rms(out)


GENERATORS: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "white_noise": white,
    "pink_noise": pink,
    "brown_noise": brown,
    "mains_hum": hum,
    "babble": babble,
}
