"""Quantisation maths of the compiler (the kernels themselves are checked bit-exact against
TFLite Micro in test_compiler.py, on the host reference path and the QEMU DSP path)."""

from __future__ import annotations

import math

import numpy as np
from nanokws.compiler import quant


def test_quantize_multiplier_reconstructs_the_real_value() -> None:
    rng = np.random.default_rng(0)
    for real in np.concatenate([10.0 ** rng.uniform(-9, 3, size=2000), [1.0, 0.5, 2.0**-20]]):
        m, shift = quant.quantize_multiplier(float(real))
        assert (1 << 30) <= m < (1 << 31)
        # multiplier * 2^(shift-31) equals the real value to within half a unit in the last place.
        assert abs(m * 2.0 ** (shift - 31) - real) <= 2.0 ** (shift - 32) * 1.0000001


def test_quantize_multiplier_edge_cases() -> None:
    assert quant.quantize_multiplier(0.0) == (0, 0)
    assert quant.quantize_multiplier(2.0**-40) == (0, 0)  # shift below -31 flushes to zero
    # A mantissa that rounds up to 2^31 moves to the next exponent.
    m, shift = quant.quantize_multiplier(1.0 - 2.0**-40)
    assert (m, shift) == (1 << 30, 1)


def test_round_half_away_from_zero() -> None:
    for x in (0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, -2.4999):
        assert quant.round_half_away(x) == int(math.copysign(math.floor(abs(x) + 0.5), x))


def test_padding_matches_same_rule() -> None:
    for size in range(1, 20):
        for k in range(1, 6):
            for s in range(1, 4):
                out = quant.out_size(True, size, k, s)
                assert out == math.ceil(size / s)
                pad = quant.padding(size, k, s, out)
                total = max(0, (out - 1) * s + k - size)
                assert pad == total // 2 and pad >= 0


def test_mean_multiplier_folds_one_over_n() -> None:
    rng = np.random.default_rng(1)
    for _ in range(500):
        in_s, out_s, n = float(rng.uniform(0.01, 1)), float(rng.uniform(0.01, 1)), int(rng.integers(1, 2000))
        m, shift = quant.mean_multiplier(in_s, out_s, n)
        ratio = float(np.float32(in_s)) / float(np.float32(out_s)) / n
        assert abs(m * 2.0 ** (shift - 31) - ratio) <= ratio * 2.0**-29
