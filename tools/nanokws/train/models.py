"""Keras architectures by name. Each uses only layers that convert to TFLite Micro builtins.

Allowed after conversion: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, AVERAGE_POOL_2D,
MAX_POOL_2D, MEAN, RESHAPE, SOFTMAX, ADD (BatchNorm folds into the convolutions, ReLU fuses).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import NanokwsError
from .sources import CHANNELS as MEL_CHANNELS
from .sources import FRAMES as CLIP_FRAMES

INPUT_SHAPE = (CLIP_FRAMES, MEL_CHANNELS, 1)  # [frames, mel channels, 1]: the frontend's int8 output as float


def input_shape(frames: int) -> tuple[int, int, int]:
    """A model's input for a window of `frames` frames (window.py)."""
    return (frames, MEL_CHANNELS, 1)


ALLOWED_OPS = frozenset({
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN",
    "RESHAPE", "SOFTMAX", "ADD", "PAD",
})


def _input_scaling(keras: Any, x: Any) -> Any:
    # Inputs are -128..127; a fixed rescale keeps early activations small for stable training and
    # folds into the first convolution's weights at conversion.
    return keras.layers.Rescaling(1.0 / 64.0)(x)


def tiny(num_classes: int) -> Any:
    """micro_speech class: one strided 8-filter conv, a 2x2 max pool, one dense layer (~15 KB int8)."""
    import keras

    inp = keras.Input(INPUT_SHAPE, name="features")
    x = _input_scaling(keras, inp)
    x = keras.layers.Conv2D(8, (10, 8), strides=(2, 2), padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D((2, 2), padding="same")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.25)(x)
    x = keras.layers.Dense(num_classes)(x)
    out = keras.layers.Softmax()(x)
    return keras.Model(inp, out, name="tiny")


def dw_block(keras: Any, x: Any, channels: int, stride: int, reg: Any) -> Any:
    """Depthwise 3x3 (+BN, ReLU) then pointwise 1x1 (+BN, ReLU); BN folds at conversion."""
    x = keras.layers.DepthwiseConv2D((3, 3), strides=(stride, stride), padding="same", use_bias=False,
                                     depthwise_regularizer=reg)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(channels, (1, 1), padding="same", use_bias=False, kernel_regularizer=reg)(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.layers.ReLU()(x)


def ds_cnn_net(num_classes: int, *, stem: int, channels: int, blocks: int, name: str, strided_block: bool,
               dropout: tuple[float, float]) -> Any:
    """DS-CNN: conv 10x4 stride 2 (`stem` channels), an optional stride-2 depthwise-separable block,
    `blocks` stride-1 blocks of `channels`, average pool over what is left, dense. `dropout` is
    (after the stem, before the pool)."""
    import keras

    reg = keras.regularizers.l2(1e-4)
    inp = keras.Input(INPUT_SHAPE, name="features")
    x = _input_scaling(keras, inp)
    x = keras.layers.Conv2D(stem, (10, 4), strides=(2, 2), padding="same", use_bias=False,
                            kernel_regularizer=reg)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Dropout(dropout[0])(x)
    if strided_block:
        x = dw_block(keras, x, channels, 2, reg)
    for _ in range(blocks):
        x = dw_block(keras, x, channels, 1, reg)
    return pool_dense_head(keras, inp, x, num_classes, reg, dropout[1], name)


def pool_dense_head(keras: Any, inp: Any, x: Any, num_classes: int, reg: Any, dropout: float,
                    name: str) -> Any:
    """Dropout, average pool over all that is left (time x frequency), dense, softmax: the model."""
    x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.AveragePooling2D(pool_size=(int(x.shape[1]), int(x.shape[2])))(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(num_classes, kernel_regularizer=reg)(x)
    out = keras.layers.Softmax()(x)
    return keras.Model(inp, out, name=name)


def _ds_cnn(num_classes: int, channels: int, blocks: int, name: str) -> Any:
    """MLPerf Tiny KWS DS-CNN: conv 10x4 stride 2, N x (depthwise 3x3 + pointwise), avg pool, dense."""
    return ds_cnn_net(num_classes, stem=channels, channels=channels, blocks=blocks, name=name,
                      strided_block=False, dropout=(0.2, 0.4))


def ds_cnn_s(num_classes: int) -> Any:
    """MLPerf Tiny DS-CNN small: 64 channels, 4 depthwise-separable blocks (~25k params)."""
    return _ds_cnn(num_classes, 64, 4, "ds_cnn_s")


def ds_cnn_xs(num_classes: int) -> Any:
    """A narrower DS-CNN: 32 channels, 3 blocks, for tighter flash/RAM and faster inference."""
    return _ds_cnn(num_classes, 32, 3, "ds_cnn_xs")


MODELS: dict[str, Callable[[int], Any]] = {"tiny": tiny, "ds_cnn_xs": ds_cnn_xs, "ds_cnn_s": ds_cnn_s}

from .models_extra import EXTRA_MODELS, WINDOWED_MODELS  # noqa: E402  (models_extra builds on the helpers above)

MODELS.update(EXTRA_MODELS)


def build_model(name: str, num_classes: int, frames: int | None = None) -> Any:
    """A fresh, uncompiled keras.Model `name` with `num_classes` softmax outputs over a window of
    `frames` (None: one clip; more only for the models VALID in time, window.py)."""
    if name not in MODELS:
        raise NanokwsError(f"unknown model '{name}' (choose from {', '.join(MODELS)})")
    if frames is None or frames == CLIP_FRAMES:
        return MODELS[name](num_classes)
    if name not in WINDOWED_MODELS:
        raise NanokwsError(f"a window of {frames} frames needs a model that is VALID in time "
                           f"({', '.join(sorted(WINDOWED_MODELS))}); '{name}' is padded in time")
    if frames < CLIP_FRAMES:
        raise NanokwsError(f"the window must hold a whole clip: at least {CLIP_FRAMES} frames, not {frames}")
    return MODELS[name](num_classes, frames=frames)
