"""A model's window may be longer than one clip: the clip's frames sit in its middle, padded.

A model that is VALID in time (streamable) pools over (rows - 1) x stride + receptive field <= its
window's frames, so over one clip's 49 frames it must trade a row's context for pooled rows. A longer
window gives it both, at the same cost per streaming inference (one new row per layer). In a live
stream the frames around a word are real audio; a one-second clip (training, evaluation, clip mode)
is centred in the window and padded on both sides with that clip's own quietest value (its minimum
over frames and channels, the same fill augmentation's time shift uses): the clip with its quietest
background around it. The window's length travels in the model itself, as its input tensor's shape.
"""

from __future__ import annotations

import numpy as np

from .errors import NanokwsError


def clip_offset(window_frames: int, clip_frames: int) -> int:
    """Frames of padding before a centred clip (the extra odd frame goes after it)."""
    if window_frames < clip_frames:
        raise NanokwsError(f"a window of {window_frames} frames cannot hold a clip of {clip_frames}")
    return (window_frames - clip_frames) // 2


def pad_to_window(features: np.ndarray, window_frames: int) -> np.ndarray:
    """int8 features [n, frames, channels] (or one clip [frames, channels]) centred in `window_frames`
    frames, each example padded with its own minimum. Returned unchanged when already that long."""
    x = np.asarray(features)
    single = x.ndim == 2
    if single:
        x = x[None]
    frames = x.shape[1]
    if frames == window_frames:
        return features
    before = clip_offset(window_frames, frames)
    fill = x.reshape(len(x), -1).min(axis=1) if x.size else np.zeros(len(x), x.dtype)
    out = np.empty((len(x), window_frames, x.shape[2]), x.dtype)
    out[:] = fill[:, None, None]
    out[:, before:before + frames] = x
    return out[0] if single else out


def pad_to_input(features: np.ndarray, input_shape: tuple[int, ...] | list[int]) -> np.ndarray:
    """Clips [n, frames, channels] (or one [frames, channels]) centred in the window of a model input
    of `input_shape` (any shape whose size is whole frames of that many channels)."""
    return pad_to_window(features, window_frames_of(input_shape, int(np.shape(features)[-1])))


def window_frames_of(input_shape: tuple[int, ...] | list[int], channels: int) -> int:
    """Frames of a model's input tensor of `input_shape` ([1, frames, channels, 1] or flat)."""
    size = int(np.prod(input_shape))
    if size % channels:
        raise NanokwsError(f"the model's input ({size} values) is not whole {channels}-channel frames")
    return size // channels
