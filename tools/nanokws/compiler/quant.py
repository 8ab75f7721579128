"""TFLite's integer quantisation maths, reproduced exactly (it decides bit-exactness)."""

from __future__ import annotations

import math

import numpy as np

from ..errors import NanokwsError

_OUT_OF_RANGE = "a scale or option of the model is out of range"
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}


def round_half_away(x: float) -> int:
    """std::round: halves away from zero (Python's round() is banker's rounding)."""
    if not math.isfinite(x):
        raise NanokwsError(f"quantisation parameter {x} is not finite ({_OUT_OF_RANGE})")
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real = multiplier * 2^(shift - 31), multiplier in [2^30, 2^31)."""
    if not math.isfinite(real) or real < 0.0:
        raise NanokwsError(f"quantisation multiplier {real} is not finite and >= 0 ({_OUT_OF_RANGE})")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = round_half_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return int(q_fixed), int(shift)


def activation_range(activation: int, scale: float, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8 (float32 division, then std::round)."""

    def quantize(f: float) -> int:
        return zero_point + round_half_away(float(np.float32(f) / np.float32(scale)))

    lo, hi = -128, 127
    if activation == 1:
        return max(lo, quantize(0.0)), hi
    if activation == 3:
        return max(lo, quantize(0.0)), min(hi, quantize(6.0))
    if activation == 2:
        return max(lo, quantize(-1.0)), min(hi, quantize(1.0))
    return lo, hi


def out_size(padding_same: bool, in_size: int, k: int, stride: int) -> int:
    return (in_size + stride - 1) // stride if padding_same else (in_size - k + stride) // stride


def padding(in_size: int, k: int, stride: int, out: int) -> int:
    """TFLite ComputePadding (the top/left part; an odd remainder goes bottom/right)."""
    total = (out - 1) * stride + k - in_size
    return max(0, total // 2) if total > 0 else 0


def softmax_params(beta: float, input_scale: float) -> tuple[int, int, int]:
    """PreprocessSoftmaxScaling + CalculateInputRadius for 5 integer bits: (mult, left_shift, diff_min)."""
    real = min(
        float(np.float32(beta)) * float(np.float32(input_scale)) * float(1 << 26), float((1 << 31) - 1)
    )
    mult, shift = quantize_multiplier(real)
    radius = math.floor(1.0 * ((1 << 5) - 1) * (1 << 26) / (1 << shift))
    return mult, shift, -int(radius)


def add_params(s1: float, s2: float, so: float) -> dict[str, int]:
    """PrepareAdd for int8: inputs shifted left by 20 then rescaled to twice the larger scale."""
    left_shift = 20
    twice_max = 2.0 * float(max(np.float32(s1), np.float32(s2)))
    m1, sh1 = quantize_multiplier(float(np.float32(s1)) / twice_max)
    m2, sh2 = quantize_multiplier(float(np.float32(s2)) / twice_max)
    mo, sho = quantize_multiplier(twice_max / ((1 << left_shift) * float(np.float32(so))))
    return {
        "left_shift": left_shift,
        "in1_mult": m1,
        "in1_shift": sh1,
        "in2_mult": m2,
        "in2_shift": sh2,
        "out_mult": mo,
        "out_shift": sho,
    }


def mean_multiplier(in_scale: float, out_scale: float, n: int) -> tuple[int, int]:
    """QuantizedMeanOrSum: QuantizeMultiplier(in/out) with 1/n folded in by integer division."""
    if n < 1:
        raise NanokwsError(f"MEAN over {n} elements")
    mult, shift = quantize_multiplier(float(np.float32(in_scale)) / float(np.float32(out_scale)))
    s = min(n.bit_length() - 1, 32, 31 + shift)
    return int(np.int32((mult << s) // n)), shift - s


def requantize(x: int, multiplier: int, shift: int) -> int:
    """x * multiplier * 2^shift as the kernels' nk_requantize (TFLite's MultiplyByQuantizedMultiplier):
    int32 wrap of the left shift, doubling high multiply rounded half away from zero (C division
    truncates), then a rounding right shift with ties away from zero."""
    left, right = max(shift, 0), max(-shift, 0)
    shifted = ((x << left) + (1 << 31)) % (1 << 32) - (1 << 31)
    if shifted == multiplier == -(1 << 31):
        high = (1 << 31) - 1
    else:
        ab = shifted * multiplier
        nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
        num = ab + nudge
        high = abs(num) // (1 << 31) * (1 if num >= 0 else -1)
    mask = (1 << right) - 1
    remainder = high & mask
    threshold = (mask >> 1) + (1 if high < 0 else 0)
    return (high >> right) + (1 if remainder > threshold else 0)

