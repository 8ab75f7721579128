"""Dead output channels (all weights zero) no longer keep a layer off the fast kernels.

TFLite quantises a dead channel's bias with a vanishing weight scale, so the int32 bias sits at
+-2^30, past the fast kernels' accumulator bound; the compiler gives such a channel the same
constant output with a small bias and scale (lower.fold_dead_channels). Checked here: the .tflite
really has such a bias, the fast kernels are chosen, and every tensor (and the streaming form's
scores) equals TFLite Micro's on ASan/UBSan and on QEMU's Cortex-M4 build.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from nanokws.compiler import quant
from nanokws.compiler import verify as V

SHAPE = (14, 10, 3)


@pytest.fixture(scope="module")
def dead_model() -> bytes:
    """Conv (output channel 2 dead, bias > 0) -> ReLU -> depthwise (channel 0 dead with a positive
    bias, channel 3 dead with a negative one that the ReLU clamps) -> pool -> dense."""
    import tensorflow as tf
    from fixtures.tflite_int8 import convert_full_int8

    tf.keras.utils.set_random_seed(5)
    inp = tf.keras.Input(SHAPE, batch_size=1)
    conv = tf.keras.layers.Conv2D(5, (3, 3), padding="valid", activation="relu")
    dw = tf.keras.layers.DepthwiseConv2D((3, 3), padding="valid", activation="relu")
    x = dw(conv(inp))
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    model = tf.keras.Model(inp, tf.keras.layers.Dense(4)(x))
    k, b = conv.get_weights()
    k[..., 2], b[2] = 0.0, 0.8
    conv.set_weights([k, b + 0.05])
    k, b = dw.get_weights()
    k[:, :, 0, :], b[0] = 0.0, 0.45
    k[:, :, 3, :], b[3] = 0.0, -0.3
    dw.set_weights([k, b])
    rng = np.random.default_rng(5)
    return convert_full_int8(model, lambda: (rng.normal(0, 1, (1, *SHAPE)) for _ in range(24)))


def _biases(tflite: bytes) -> list[np.ndarray]:
    from nanokws.compiler.tflite_reader import read_graph

    g = read_graph(tflite)
    convs = [op for op in g.operators if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    return [g.tensors[op.inputs[2]].data for op in convs]


def test_the_model_has_dead_channels_past_the_fast_bound(dead_model: bytes) -> None:
    conv_bias, dw_bias = _biases(dead_model)
    assert abs(int(conv_bias[2])) >= 1 << 29  # dead: the bias alone is near the bound
    assert abs(int(dw_bias[0])) >= 1 << 30 and abs(int(dw_bias[3])) >= 1 << 30


def test_fast_kernels_run_both_layers(dead_model: bytes, tmp_path: Path) -> None:
    from nanokws.compiler.compile import compile_model

    compile_model(dead_model, tmp_path, measure_tflm=False)
    c = (tmp_path / "nk_model.c").read_text()
    assert "nk_conv2d_fast_s8(&l0_params" in c and "nk_dwconv2d_fast_s8(&l1_params" in c
    assert "nk_conv2d_s8(" not in c and "nk_dwconv2d_s8(" not in c


@pytest.mark.parametrize("target", ["asan", pytest.param("qemu", marks=pytest.mark.qemu)])
def test_every_tensor_equals_tflite_micro(dead_model: bytes, tmp_path: Path, target: str) -> None:
    res = V.verify(dead_model, target, 60, data=tmp_path / "no-data", build_dir=tmp_path, progress=False)
    assert res.ok and res.streaming, "\n".join(V.report_lines(res))
    assert res.results[0].stream_bad == 0


def test_requantize_matches_the_folded_constant_rule() -> None:
    # 4k at multiplier 2^30, shift -1 is exactly k, over the whole int8 output range and beyond.
    for k in range(-300, 301):
        assert quant.requantize(4 * k, 1 << 30, -1) == k
    # Rounding: half away from zero in both steps (0.5 -> 1, -0.5 -> -1, 1.5 -> 2).
    assert quant.requantize(2, 1 << 30, -1) == 1 and quant.requantize(-2, 1 << 30, -1) == -1
    assert quant.requantize(6, 1 << 30, -1) == 2 and quant.requantize(-6, 1 << 30, -1) == -2
    # The single saturating case of the doubling multiply.
    assert quant.requantize(-(1 << 31), -(1 << 31), 0) == (1 << 31) - 1
