"""Architectures sized for the shipped model's budget: int8 model <= 25 KB, static arena <= 16 KB.

Why a new shape: a DS-CNN keeps two activation tensors alive per layer, so at the MLPerf resolution
(25 x 20 after the first conv) even 32 channels need 2 x 16 000 B of arena. `ds_cnn_m16` halves
the resolution early (a strided depthwise conv, 13 x 10) and then stays at 60 channels, so the
largest pair of live tensors is 2 x 7 800 B. Only layers that convert to our supported builtins.
"""

from __future__ import annotations

from typing import Any

from .models import CLIP_FRAMES, INPUT_SHAPE, _input_scaling, ds_cnn_net, input_shape, pool_dense_head


def _ds_cnn_strided(num_classes: int, stem: int, channels: int, blocks: int, name: str) -> Any:
    # The stride-2 block takes 25x20 to 13x10 right after the stem: the arena's peak is there, not later.
    return ds_cnn_net(num_classes, stem=stem, channels=channels, blocks=blocks, name=name, strided_block=True,
                      dropout=(0.1, 0.3))


def ds_cnn_m16(num_classes: int) -> Any:
    """DS-CNN for a 16 KB arena: 24-ch stem, strided block to 13x10, then 3 blocks of 60 ch (~16k params)."""
    return _ds_cnn_strided(num_classes, 24, 60, 3, "ds_cnn_m16")


def ds_cnn_m12(num_classes: int) -> Any:
    """The same with 48 channels (~11k params), so the .tflite itself stays under 25 KB."""
    return _ds_cnn_strided(num_classes, 24, 48, 3, "ds_cnn_m12")




def _freq_mean_broadcast(keras: Any, x: Any) -> Any:
    """Every frequency row replaced by the mean over all rows: BC-ResNet's pool-then-broadcast.

    Our compiler has no broadcasting ADD, so instead of pooling to one row and broadcasting it back,
    average-pool with a window of 2F-1 rows, stride 1, 'same' padding: from any row the window covers
    all F rows, and TFLite's average pool divides by the valid (unpadded) count, so each output row is
    exactly the frequency mean and the tensor keeps its shape for a same-shape ADD.
    """
    freq = int(x.shape[2])
    return keras.layers.AveragePooling2D(pool_size=(1, 2 * freq - 1), strides=(1, 1), padding="same")(x)


def _bc_block(keras: Any, x: Any, channels: int, freq_stride: int, drop: float, reg: Any) -> Any:
    """One broadcast-residual block on [time, freq, channels].

    f2: frequency depthwise conv (1x3) + BN, a 2-D feature; f1: its frequency mean through a temporal
    depthwise conv (3x1) + BN + ReLU and a pointwise conv, a 1-D feature applied at every frequency.
    Out = ReLU(identity + f2 + f1); a transition block (channel change or stride) first maps x with
    a pointwise conv and drops the identity, as in the paper.
    """
    transition = freq_stride != 1 or int(x.shape[-1]) != channels
    if transition:
        # The frequency stride sits on this pointwise conv: TF cannot train a depthwise conv with
        # unequal strides ("only supports equal length strides"), a regular conv it can.
        x = keras.layers.Conv2D(channels, (1, 1), strides=(1, freq_stride), use_bias=False,
                                kernel_regularizer=reg)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    f2 = keras.layers.DepthwiseConv2D((1, 3), padding="same", use_bias=False, depthwise_regularizer=reg)(x)
    f2 = keras.layers.BatchNormalization()(f2)  # the paper's SubSpectralNorm does not fold into a conv
    f1 = _freq_mean_broadcast(keras, f2)
    f1 = keras.layers.DepthwiseConv2D((3, 1), padding="same", use_bias=False, depthwise_regularizer=reg)(f1)
    f1 = keras.layers.BatchNormalization()(f1)
    f1 = keras.layers.ReLU()(f1)  # swish in the paper; ReLU fuses into the conv here
    f1 = keras.layers.Conv2D(channels, (1, 1), use_bias=False, kernel_regularizer=reg)(f1)
    f1 = keras.layers.BatchNormalization()(f1)
    f1 = keras.layers.Dropout(drop)(f1)
    y = keras.layers.Add()([f2, f1]) if transition else keras.layers.Add()([keras.layers.Add()([x, f2]), f1])
    return keras.layers.ReLU()(y)


def bc_resnet(num_classes: int, width: int = 8, name: str = "bc_resnet_1") -> Any:
    """BC-ResNet (Kim et al., 2021) on our 49x40 input, from our builtins only.

    Stem conv 5x5 (frequency stride 2) -> stages of (2, 2, 4, 4) broadcast-residual blocks with
    (1, 1.5, 2, 2.5) x `width` channels, frequency stride 2 entering stages 2 and 3 -> depthwise head
    over the remaining frequencies, pointwise 4 x `width`, mean over time, dense. Differences from
    the paper: no dilation (our compiler has none) and 49 frames at 20 ms instead of 101 at 10 ms,
    BatchNorm instead of SubSpectralNorm, ReLU instead of swish; see docs/models.md.
    """
    import keras

    reg = keras.regularizers.l2(1e-4)
    inp = keras.Input(INPUT_SHAPE, name="features")
    x = _input_scaling(keras, inp)
    x = keras.layers.Conv2D(2 * width, (5, 5), strides=(1, 2), padding="same", use_bias=False,
                            kernel_regularizer=reg)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    stages = ((2, width, 1), (2, width * 3 // 2, 2), (4, width * 2, 2), (4, width * 5 // 2, 1))
    for blocks, channels, stride in stages:
        for b in range(blocks):
            x = _bc_block(keras, x, channels, stride if b == 0 else 1, 0.1, reg)
    x = keras.layers.DepthwiseConv2D((5, int(x.shape[2])), padding="valid", use_bias=False,
                                     depthwise_regularizer=reg)(x)  # collapses frequency
    x = keras.layers.Conv2D(4 * width, (1, 1), use_bias=False, kernel_regularizer=reg)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.AveragePooling2D(pool_size=(int(x.shape[1]), 1))(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(num_classes, kernel_regularizer=reg)(x)
    out = keras.layers.Softmax()(x)
    return keras.Model(inp, out, name=name)


def bc_resnet_1(num_classes: int) -> Any:
    """BC-ResNet-1 style (width 8, ~8k params): broadcast residual blocks, see `bc_resnet`."""
    return bc_resnet(num_classes, 8, "bc_resnet_1")


def bc_resnet_2(num_classes: int) -> Any:
    """BC-ResNet-2 style (width 16, ~27k params)."""
    return bc_resnet(num_classes, 16, "bc_resnet_2")


def ds_cnn_stream_net(num_classes: int, *, stem: int, channels: int, blocks: int, name: str,
                      dw_time: int = 3, freq_pad: bool = False, frames: int = CLIP_FRAMES) -> Any:
    """A DS-CNN whose time axis is computed without padding, so `nanokws compile --streaming` can run
    it incrementally (each new pair of frames computes one new row per layer).

    Stem conv 10x4, stride 2 in time and frequency, VALID -> `blocks` x (depthwise 3x3 VALID + BN +
    ReLU, pointwise 1x1 + BN + ReLU; the first pointwise conv also has frequency stride 2) -> average
    pool over the remaining time x frequency -> dense -> softmax. TFLite has one padding mode for both
    axes, so frequency is VALID too: 40 -> 19 -> 17 -> 9 (stride-2 pointwise) -> -2 per further block.
    Time: 49 -> 20 rows after the stem -> -(dw_time - 1) per block. Only the stem strides in time (2,
    which divides the live inference stride of 2 frames); the frequency strides are free. Each block
    widens the receptive field by (dw_time - 1) x 2 frames: 10 + blocks x (dw_time - 1) x 2 in all.

    `freq_pad` keeps the frequency edges: a frequency-only zero PAD (ZeroPadding2D, 0 rows of time)
    before every depthwise conv, which is then still VALID in time but SAME-like in frequency
    (19 -> 19 -> 10 (stride-2 pointwise) -> 10 ...). The compiler folds each PAD into the conv that
    reads it (a conv's own padding reads the same zero point), so PADs cost no kernel call or arena.
    None before the stem: it would stop the converter folding the input scaling into the stem (a MUL
    op would remain). `frames`: the window (window.py); longer than a clip adds pooled rows.
    """
    import keras

    reg = keras.regularizers.l2(1e-4)
    inp = keras.Input(input_shape(frames), name="features")
    x = _input_scaling(keras, inp)
    x = keras.layers.Conv2D(stem, (10, 4), strides=(2, 2), padding="valid", use_bias=False,
                            kernel_regularizer=reg)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Dropout(0.1)(x)
    for b in range(blocks):
        if freq_pad:
            x = keras.layers.ZeroPadding2D(((0, 0), (1, 1)))(x)
        x = keras.layers.DepthwiseConv2D((dw_time, 3), padding="valid", use_bias=False,
                                         depthwise_regularizer=reg)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        # Frequency stride on the pointwise conv: TF cannot train a depthwise conv with unequal strides.
        x = keras.layers.Conv2D(channels, (1, 1), strides=(1, 2 if b == 0 else 1), padding="valid",
                                use_bias=False, kernel_regularizer=reg)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    return pool_dense_head(keras, inp, x, num_classes, reg, 0.3, name)


def ds_cnn_stream_pad(num_classes: int, frames: int = CLIP_FRAMES) -> Any:
    """Streamable DS-CNN with SAME-like frequency edges: 24-ch stem, 4 blocks of 48 ch (~12k params)."""
    return ds_cnn_stream_net(num_classes, stem=24, channels=48, blocks=4, name="ds_cnn_stream_pad",
                             freq_pad=True, frames=frames)


def ds_cnn_stream_t5(num_classes: int, frames: int = CLIP_FRAMES) -> Any:
    """ds_cnn_stream with 5-row depthwise kernels and a 24-ch stem (~12k params): a receptive field of
    42 frames (0.84 s) before the pool instead of 26, about what the SAME-padded ds_cnn_m12 sees with
    its two time strides (which a stream at stride 2 cannot have)."""
    return ds_cnn_stream_net(num_classes, stem=24, channels=48, blocks=4, name="ds_cnn_stream_t5", dw_time=5,
                             frames=frames)


def ds_cnn_stream(num_classes: int, frames: int = CLIP_FRAMES) -> Any:
    """Streamable DS-CNN (VALID in time): 32-ch stem, 4 blocks of 48 ch (~12k params); ds_cnn_stream_net."""
    return ds_cnn_stream_net(num_classes, stem=32, channels=48, blocks=4, name="ds_cnn_stream", frames=frames)


def ds_cnn_stream_s4(num_classes: int, frames: int = CLIP_FRAMES) -> Any:
    """ds_cnn_m12's shape, VALID in time: two time strides (stem and a strided depthwise block), so
    `nanokws compile` streams the layers after the second stride as two interleaved phases.

    Stem 10x4 stride 2 VALID (32 ch; 49x40 -> 20x19), then a frequency-only zero PAD before every
    depthwise conv (SAME-like in frequency, as ds_cnn_m12), a stride-2 depthwise-separable block to
    9x10 (48 ch), three stride-1 blocks (time 9 -> 7 -> 5 -> 3), average pool, dense. Each last-layer
    row sees 10 + 2x2 + 3x2x4 = 38 frames, as ds_cnn_m12's do (~12k params). Over a window of 86
    frames (`frames`, window.py) it pools 13 such rows, as ds_cnn_m12 does over its padded 49.
    """
    import keras

    reg = keras.regularizers.l2(1e-4)
    inp = keras.Input(input_shape(frames), name="features")
    x = _input_scaling(keras, inp)
    x = keras.layers.Conv2D(32, (10, 4), strides=(2, 2), padding="valid", use_bias=False,
                            kernel_regularizer=reg)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Dropout(0.1)(x)
    for stride in (2, 1, 1, 1):
        x = keras.layers.ZeroPadding2D(((0, 0), (1, 1)))(x)
        x = keras.layers.DepthwiseConv2D((3, 3), strides=(stride, stride), padding="valid", use_bias=False,
                                         depthwise_regularizer=reg)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.Conv2D(48, (1, 1), padding="valid", use_bias=False, kernel_regularizer=reg)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    return pool_dense_head(keras, inp, x, num_classes, reg, 0.3, "ds_cnn_stream_s4")


# Models VALID in time, which take a window longer than one clip (`nanokws train --window-frames`).
WINDOWED_MODELS = frozenset({"ds_cnn_stream", "ds_cnn_stream_pad", "ds_cnn_stream_t5", "ds_cnn_stream_s4"})

EXTRA_MODELS = {"ds_cnn_m16": ds_cnn_m16, "ds_cnn_m12": ds_cnn_m12, "bc_resnet_1": bc_resnet_1,
                "bc_resnet_2": bc_resnet_2, "ds_cnn_stream": ds_cnn_stream,
                "ds_cnn_stream_pad": ds_cnn_stream_pad, "ds_cnn_stream_t5": ds_cnn_stream_t5,
                "ds_cnn_stream_s4": ds_cnn_stream_s4}
