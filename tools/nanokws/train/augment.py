"""Training-time augmentation, in the audio domain (before the C frontend) and the feature domain.

Audio: random time shift, background noise at a random SNR, random gain, optionally speed
perturbation (resampling: tempo and pitch together) — then features come from the real frontend,
so the model learns exactly what the device computes. Feature form (the shared log-mel npz has no
audio): frame shift, SpecAugment masks, noise mixing done in the power domain (the int8 value is an
affine function of ln(mel power)), and optionally the feature-domain analogue of speed
perturbation: a time stretch of the frames and a shift of the mel channels (a mel channel is about
a constant fraction of an octave above 1 kHz, so a one-channel shift is roughly a pitch change).
Level: optionally the whole example is made quieter (a gain in audio; in features a constant shift
down to the frontend's floor), so distant or quiet talkers are recognised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..window import pad_to_window

# int8 feature = LOG_GAIN * ln(power) + const (docs/architecture.md: 10.04 ln(P) + 145.9 - 128).
LOG_GAIN = 10.04


def _feature_floor() -> int:
    """The frontend's lowest output: its log floor (power 10^NK_FE_LOG_FLOOR_EXP10) through the same
    affine map, from the frontend's config header (-121 today; digital silence gives exactly this)."""
    from ..features.config_header import read_config

    c = read_config()
    log_floor = c["NK_FE_LOG_FLOOR_EXP10"] * np.log(10.0)
    value = c["NK_FE_LOG_SCALE_MILLI"] / 1000.0 * log_floor + c["NK_FE_LOG_OFFSET_MILLI"] / 1000.0
    return int(np.clip(np.rint(value - c["NK_FE_OUTPUT_SHIFT"]), -128, 127))


FEATURE_FLOOR = _feature_floor()


def attenuate_features(x: np.ndarray, db: float) -> np.ndarray:
    """Features of the same audio `db` dB quieter: every mel power scales by 10^(-db/10), a constant
    shift of LOG_GAIN * ln(10) * db / 10 int8 steps, held at the frontend's floor as the C frontend
    clamps there. Noise in the example gets quieter too (a distant talker, a low microphone gain)."""
    shifted = np.rint(x.astype(np.float64) - LOG_GAIN * np.log(10.0) * db / 10.0)
    return np.clip(np.maximum(shifted, FEATURE_FLOOR), -128, 127).astype(np.int8)


@dataclass(frozen=True)
class AudioAugment:
    max_shift_samples: int = 1600  # +-100 ms at 16 kHz
    noise_probability: float = 0.8
    snr_db: tuple[float, float] = (0.0, 20.0)
    gain_db: tuple[float, float] = (-6.0, 6.0)
    speed: tuple[float, float] | None = None  # e.g. (0.9, 1.1): resample by a random factor
    level_db: float = 0.0  # > 0: with level_probability the whole clip, noise too, 0..level_db dB quieter
    level_probability: float = 0.5


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
    stretch: tuple[float, float] | None = None  # e.g. (0.9, 1.1): time-stretch factor of the frames
    max_channel_shift: int = 0  # e.g. 1: shift the mel channels up or down by up to this many
    level_db: float = 0.0  # > 0: with level_probability, the whole example up to this many dB quieter
    level_probability: float = 0.5
    # (lo, hi): noise mixed at a true signal-to-noise ratio drawn from lo..hi dB, the example's own
    # in-band (mel) power over the noise's; None: the noise slice at its own level minus snr_db, whose
    # effective SNR on the shared npz has a median near 57 dB (95% of mixes above 10 dB).
    speech_snr_db: tuple[float, float] | None = None
    # (label index, frames): examples of that label (_unknown_) shifted by up to +-frames instead of
    # max_shift_frames, partly out of the window, as other words pass through a stream's windows.
    wide_shift: tuple[int, int] | None = None
    # (silence label index, probability): with that probability a word (any label but silence) gets a
    # neighbouring word from the same batch, cut by the window's edge, as a stream's window shows the
    # word before or after. The label stays: a whole keyword beside a cut word is still that keyword,
    # another word beside a cut keyword is still not one.
    neighbour: tuple[int, float] | None = None
    neighbour_cut: tuple[float, float] = (0.4, 0.9)  # share of the neighbour's active frames outside
    neighbour_gap_frames: int = 3  # least silence between the two words' active parts (60 ms)
    # A model window longer than a clip (window.py): each example is first centred in this many frames,
    # padded with its minimum; shifts, neighbours and noise then act on the whole window. None: a clip.
    window_frames: int | None = None


def speed_perturb(x: np.ndarray, factor: float) -> np.ndarray:
    """Play `x` `factor` times faster (tempo and pitch both scale), centred, same length, zero-padded."""
    n = len(x)
    src_len = max(2, int(round(n / factor)))
    resampled = np.interp(np.arange(src_len) * factor, np.arange(n), x).astype(np.float32)
    out = np.zeros(n, np.float32)
    if src_len >= n:
        start = (src_len - n) // 2
        out[:] = resampled[start:start + n]
    else:
        start = (n - src_len) // 2
        out[start:start + src_len] = resampled
    return out


def stretch_frames(x: np.ndarray, factor: float, fill: float) -> np.ndarray:
    """Time-stretch frames [frames, channels] by `factor` (>1 = slower) about the centre, linear
    interpolation between frames; frames that come from outside the clip are `fill`."""
    frames = x.shape[0]
    centre = (frames - 1) / 2.0
    pos = centre + (np.arange(frames) - centre) / factor
    lo = np.floor(pos).astype(int)
    frac = (pos - lo)[:, None]
    inside = (lo >= 0) & (lo + 1 <= frames - 1)
    lo_c, hi_c = np.clip(lo, 0, frames - 1), np.clip(lo + 1, 0, frames - 1)
    out = (1.0 - frac) * x[lo_c].astype(np.float32) + frac * x[hi_c].astype(np.float32)
    out[~inside] = fill
    return np.clip(np.rint(out), -128, 127).astype(x.dtype)


def shift_channels(x: np.ndarray, shift: int) -> np.ndarray:
    """Shift mel channels (axis 1) by `shift` (positive = higher), repeating the edge channel."""
    if shift == 0:
        return x
    idx = np.clip(np.arange(x.shape[1]) - shift, 0, x.shape[1] - 1)
    return x[:, idx]


def shift_time(x: np.ndarray, shift: int, fill: float) -> np.ndarray:
    """Shift along axis 0 (time: samples or frames) by `shift` (positive = later), filling the gap with
    `fill`."""
    out = np.full_like(x, fill)
    if shift > 0:
        out[shift:] = x[:-shift]
    elif shift < 0:
        out[:shift] = x[-shift:]
    else:
        out[:] = x
    return out


def noise_gain(signal_power: float, noise_power: float, snr_db: float) -> float:
    """Gain on a noise segment of `noise_power` (mean square) that puts it `snr_db` below a clip of
    `signal_power`: SNR = the clip's power over the added noise's, both over the whole clip."""
    return float(np.sqrt(signal_power / ((noise_power + 1e-9) * 10.0 ** (snr_db / 10.0))))


def augment_audio(audio: np.ndarray, noise: list[np.ndarray], rng: np.random.Generator,
                  cfg: AudioAugment = AudioAugment()) -> np.ndarray:
    """Augment int16 clips [n, samples]; returns a new int16 array of the same shape."""
    clips = audio.astype(np.float32)
    n, length = clips.shape
    for i in range(n):
        x = clips[i]
        if cfg.speed is not None:
            x = speed_perturb(x, float(rng.uniform(*cfg.speed)))
        x = shift_time(x, int(rng.integers(-cfg.max_shift_samples, cfg.max_shift_samples + 1)), 0.0)
        x *= np.float32(10.0 ** (rng.uniform(*cfg.gain_db) / 20.0))
        if noise and rng.random() < cfg.noise_probability:
            src = noise[int(rng.integers(len(noise)))]
            if len(src) >= length:
                start = int(rng.integers(len(src) - length + 1))
                seg = src[start:start + length].astype(np.float32)
            else:
                seg = np.resize(src, length).astype(np.float32)
            sig_power = float(np.mean(x * x))
            if sig_power < 1.0:  # (near) silent clip: add the noise at its own level
                x = x + seg * np.float32(rng.uniform(0.1, 1.0))
            else:
                snr = rng.uniform(*cfg.snr_db)
                x = x + seg * np.float32(noise_gain(sig_power, float(np.mean(seg * seg)), snr))
        if cfg.level_db > 0 and rng.random() < cfg.level_probability:  # no draw when off: same stream
            x = x * np.float32(10.0 ** (-rng.uniform(0.0, cfg.level_db) / 20.0))
        clips[i] = x
    return np.clip(np.rint(clips), -32768, 32767).astype(np.int16)


def mix_features(a: np.ndarray, b: np.ndarray, gain_db: float) -> np.ndarray:
    """Features of (signal a + noise b scaled by gain_db), computed in the power domain."""
    fa = a.astype(np.float64) / LOG_GAIN
    fb = b.astype(np.float64) / LOG_GAIN + gain_db * np.log(10.0) / 10.0
    mixed = LOG_GAIN * np.logaddexp(fa, fb)
    return np.clip(np.rint(mixed), -128, 127).astype(np.int8)


def mel_power_db(x: np.ndarray) -> float:
    """In-band power of int8 features in dB, up to the affine map's constant (which cancels in a
    ratio of two examples): the sum over frames and mel channels of exp(x / LOG_GAIN)."""
    return float(10.0 * np.log10(np.exp(x.astype(np.float64) / LOG_GAIN).sum()))


def snr_gain_db(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> float:
    """The gain on `noise` (features) that puts it `snr_db` below `signal`'s in-band power."""
    return mel_power_db(signal) - mel_power_db(noise) - snr_db


def active_span(x: np.ndarray, below_peak: float = 35.0) -> tuple[int, int]:
    """[start, end) frames of the word in features [frames, channels]: the first and last frame whose
    in-band power is within `below_peak` int8 steps (35: about 15 dB; a median 13 frames on the shared
    npz's words) of the loudest frame's."""
    power = LOG_GAIN * np.log(np.exp(x.astype(np.float64) / LOG_GAIN).sum(axis=1))
    on = np.flatnonzero(power >= power.max() - below_peak)
    return int(on[0]), int(on[-1]) + 1


def add_cut_neighbour(x: np.ndarray, other: np.ndarray, rng: np.random.Generator,
                      cut: tuple[float, float] = (0.4, 0.9), gap_frames: int = 3) -> np.ndarray:
    """`x` with the active part of `other` added (in the power domain) before or after its word, a random
    `cut` share of it beyond the window's edge and at least `gap_frames` from x's word. Returned
    unchanged when x's word leaves no room on the side drawn (two draws either way)."""
    frames = x.shape[0]
    start, end = active_span(x)
    o_start, o_end = active_span(other)
    length = o_end - o_start
    after = rng.random() < 0.5
    share = float(rng.uniform(*cut))
    inside = max(1, length - int(np.ceil(share * length)))
    place = frames - inside if after else inside - length  # where other's active part starts
    if (after and place - end < gap_frames) or (not after and start - (place + length) < gap_frames):
        return x
    lo, hi = max(0, place), min(frames, place + length)
    src = other[o_start + (lo - place):o_start + (hi - place)]
    out = x.copy()
    mixed = LOG_GAIN * np.logaddexp(out[lo:hi] / LOG_GAIN, src / LOG_GAIN)  # powers add
    out[lo:hi] = np.clip(np.rint(mixed), -128, 127).astype(x.dtype)
    return out


def _noise_window(first: np.ndarray, noise: np.ndarray, rng: np.random.Generator, frames: int) -> np.ndarray:
    """`frames` frames of noise: `first`, then further random slices, joined end to end."""
    parts = [first]
    while sum(len(p) for p in parts) < frames:
        parts.append(noise[int(rng.integers(len(noise)))])
    return np.concatenate(parts)[:frames]


def augment_features(features: np.ndarray, noise: np.ndarray | None, rng: np.random.Generator,
                     cfg: FeatureAugment = FeatureAugment(), labels: np.ndarray | None = None) -> np.ndarray:
    """Augment int8 features [n, frames, channels]; returns a new int8 array (of cfg.window_frames
    frames when set). `labels` (label index per example) is needed only for cfg.wide_shift and
    cfg.neighbour."""
    needs_labels = cfg.wide_shift is not None or cfg.neighbour is not None
    if needs_labels and (labels is None or len(labels) != len(features)):
        raise ValueError("wide_shift and neighbour need one label per example")
    n, frames, channels = features.shape
    if cfg.window_frames is not None:
        frames = cfg.window_frames
    out = np.empty((n, frames, channels), features.dtype)
    for i in range(n):
        x = pad_to_window(features[i], frames)
        floor = float(x.min())
        if cfg.stretch is not None:
            x = stretch_frames(x, float(rng.uniform(*cfg.stretch)), floor)
        if cfg.max_channel_shift:
            x = shift_channels(x, int(rng.integers(-cfg.max_channel_shift, cfg.max_channel_shift + 1)))
        reach = cfg.max_shift_frames
        if cfg.wide_shift is not None and labels is not None and int(labels[i]) == cfg.wide_shift[0]:
            reach = cfg.wide_shift[1]
        x = shift_time(x, int(rng.integers(-reach, reach + 1)), floor)
        if cfg.neighbour is not None and labels is not None and n > 1 and rng.random() < cfg.neighbour[1]:
            j = int(rng.integers(n - 1))
            j += j >= i  # any other example of the batch
            if int(labels[i]) != cfg.neighbour[0] and int(labels[j]) != cfg.neighbour[0]:
                x = add_cut_neighbour(x, features[j], rng, cfg.neighbour_cut, cfg.neighbour_gap_frames)
        if noise is not None and len(noise) and rng.random() < cfg.noise_probability:
            slice_ = noise[int(rng.integers(len(noise)))]
            if len(slice_) < frames:  # a window longer than a slice: more random slices after it
                slice_ = _noise_window(slice_, noise, rng, frames)
            if cfg.speech_snr_db is None:
                # Relative level: the noise slice's power is lowered by a random SNR-like amount.
                x = mix_features(x, slice_, -float(rng.uniform(*cfg.snr_db)))
            else:  # a true SNR against this example's power (same number of draws as above)
                x = mix_features(x, slice_, snr_gain_db(x, slice_, float(rng.uniform(*cfg.speech_snr_db))))
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
        if cfg.level_db > 0 and rng.random() < cfg.level_probability:  # no draw when off: same stream
            x = attenuate_features(x, float(rng.uniform(0.0, cfg.level_db)))
        out[i] = x
    return out
