"""Architectures sized for the shipped model's budget: int8 model <= 25 KB, static arena <= 16 KB.

Why a new shape: a DS-CNN keeps two activation tensors alive per layer, so at the MLPerf resolution
(25 x 20 after the first conv) even 32 channels need 2 x 16 000 B of arena. `ds_cnn_m16` halves
the resolution early (a strided depthwise conv, 13 x 10) and then stays at 60 channels, so the
largest pair of live tensors is 2 x 7 800 B. Only layers that convert to our supported builtins.
"""

from __future__ import annotations

from typing import Any

from .models import INPUT_SHAPE, _input_scaling


def _dw_block(keras: Any, x: Any, channels: int, stride: int, reg: Any) -> Any:
    """Depthwise 3x3 (+BN, ReLU) then pointwise 1x1 (+BN, ReLU); BN folds at conversion."""
    x = keras.layers.DepthwiseConv2D((3, 3), strides=(stride, stride), padding="same", use_bias=False,
                                     depthwise_regularizer=reg)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(channels, (1, 1), padding="same", use_bias=False, kernel_regularizer=reg)(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.layers.ReLU()(x)


def _ds_cnn_strided(num_classes: int, stem: int, channels: int, blocks: int, name: str) -> Any:
    import keras

    reg = keras.regularizers.l2(1e-4)
    inp = keras.Input(INPUT_SHAPE, name="features")
    x = _input_scaling(keras, inp)
    x = keras.layers.Conv2D(stem, (10, 4), strides=(2, 2), padding="same", use_bias=False,
                            kernel_regularizer=reg)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Dropout(0.1)(x)
    x = _dw_block(keras, x, channels, 2, reg)  # 25x20 -> 13x10: the arena's peak is here, not later
    for _ in range(blocks):
        x = _dw_block(keras, x, channels, 1, reg)
    x = keras.layers.Dropout(0.3)(x)
    x = keras.layers.AveragePooling2D(pool_size=(int(x.shape[1]), int(x.shape[2])))(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(num_classes, kernel_regularizer=reg)(x)
    out = keras.layers.Softmax()(x)
    return keras.Model(inp, out, name=name)


def ds_cnn_m16(num_classes: int) -> Any:
    """DS-CNN for a 16 KB arena: 24-ch stem, strided block to 13x10, then 3 blocks of 60 ch (~16k params)."""
    return _ds_cnn_strided(num_classes, 24, 60, 3, "ds_cnn_m16")


def ds_cnn_m12(num_classes: int) -> Any:
    """The same with 48 channels (~11k params), so the .tflite itself stays under 25 KB."""
    return _ds_cnn_strided(num_classes, 24, 48, 3, "ds_cnn_m12")


EXTRA_MODELS = {"ds_cnn_m16": ds_cnn_m16, "ds_cnn_m12": ds_cnn_m12}
