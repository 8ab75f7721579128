"""Quantisation maths of the compiler (the kernels themselves are checked bit-exact against
TFLite Micro in test_compiler.py, on the host reference path and the QEMU DSP path)."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
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


# ---- compile-time preparation for the fast kernels (lower.py); the C itself is checked bit-exact
# against TFLite Micro in test_compiler.py on ASan (portable path) and QEMU (DSP and portable) ----


def test_folded_bias_equals_the_per_mac_offset_including_zero_point_padding() -> None:
    from nanokws.compiler.lower import folded_bias

    rng = np.random.default_rng(2)
    for _ in range(200):
        oc, taps = int(rng.integers(1, 9)), int(rng.integers(1, 30))
        w = rng.integers(-128, 128, size=(oc, taps))
        bias = rng.integers(-5000, 5000, size=oc)
        in_offset = int(rng.integers(-127, 129))
        x = rng.integers(-128, 128, size=taps)
        outside = rng.random(taps) < 0.3  # taps in the padding
        # TFLite: padding taps are skipped, the others contribute w * (x + offset).
        want = bias + (w * np.where(outside, 0, x + in_offset)).sum(axis=1)
        # Fast kernels: padding taps read the zero point (-offset); the offset is folded into the bias.
        got = folded_bias(w, bias, in_offset) + (w * np.where(outside, -in_offset, x)).sum(axis=1)
        assert np.array_equal(got, want)
    assert np.array_equal(folded_bias(np.ones((2, 3), np.int8), None, 5), [15, 15])


def test_gemm_layout_interleaves_row_pairs_by_four() -> None:
    from nanokws.compiler.lower import gemm_order

    rows = np.arange(3 * 6).reshape(3, 6)  # 3 rows of k = 6: one pair + an odd last row
    laid = rows.reshape(-1)[gemm_order(3, 6)]
    want = [0, 1, 2, 3, 6, 7, 8, 9, 4, 5, 10, 11, 12, 13, 14, 15, 16, 17]
    assert laid.tolist() == want
    for oc, k in [(1, 1), (2, 4), (5, 7), (8, 40), (7, 9)]:
        order = gemm_order(oc, k)
        assert sorted(order.tolist()) == list(range(oc * k))  # a permutation: nothing lost or doubled


def test_depthwise_layout_groups_four_channels_per_tap() -> None:
    from nanokws.compiler.lower import dw_fast_order

    w = np.arange(2 * 6).reshape(2, 6)  # [taps = 2][channels = 6]: one group of 4 + 2 leftovers
    laid = w.reshape(-1)[dw_fast_order(2, 6)]
    want = [0, 1, 2, 3, 6, 7, 8, 9, 4, 10, 5, 11]
    assert laid.tolist() == want
    for taps, ch in [(1, 1), (9, 60), (9, 5), (25, 3)]:
        assert sorted(dw_fast_order(taps, ch).tolist()) == list(range(taps * ch))


def test_fast_kernel_preconditions() -> None:
    from nanokws.compiler.lower import accumulators_bounded

    w = np.full((2, 9), 127)
    assert accumulators_bounded(w, np.array([0, 0]), np.array([-8, -1]))
    assert not accumulators_bounded(w, np.array([0, 0]), np.array([-8, 0]))  # not a right shift
    big = np.full((1, 70000), 127)  # 128 * 127 * 70000 > 2^30
    assert not accumulators_bounded(big, np.array([0]), np.array([-8]))
    assert not accumulators_bounded(w[:1], np.array([1 << 30]), np.array([-8]))


def _requantize_tflite(x: int, m: int, shift: int) -> int:
    """TFLite's MultiplyByQuantizedMultiplier, written from its definition (Python integers)."""
    left, right = max(shift, 0), max(-shift, 0)
    a = x * (1 << left)
    ab = a * m
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    t = ab + nudge
    high = abs(t) // (1 << 31) * (1 if t >= 0 else -1)  # C division truncates toward zero
    mask = (1 << right) - 1
    rem, thr = high & mask, (mask >> 1) + (1 if high < 0 else 0)
    return (high >> right) + (1 if rem > thr else 0)


def test_bounded_requantisation_identity_holds() -> None:
    """The algebra behind nk_requantize_bounded (one floor shift for the high multiply, floor with a
    sign correction for the rounding shift), checked against TFLite's definition."""
    rng = np.random.default_rng(4)
    xs = np.concatenate([rng.integers(-(1 << 30) + 1, 1 << 30, 3000), rng.integers(-3000, 3000, 3000)])
    for x in xs.tolist():
        m, shift = int(rng.integers(1 << 30, 1 << 31)), -int(rng.integers(1, 32))
        right = -shift
        high = (x * m + (1 << 30)) >> 31
        fast = (high + (1 << (right - 1)) + (-1 if high < 0 else 0)) >> right
        assert fast == _requantize_tflite(x, m, shift), (x, m, shift)


def test_smmlar_output_stage_identity_holds() -> None:
    """nk_rq_fast's DSP form (nk_quant.h): SMMLAR(2x, m, c) = c + round(2x m / 2^32) with
    c = (2 zp + 1) 2^(e-1), the sign correction taken from x instead of the high word, one floor
    shift and a saturation, equals TFLite's requantisation + zero point + int8 clamp (e <= 22)."""
    from nanokws.compiler.lower import conv_rq_table

    rng = np.random.default_rng(5)
    xs = np.concatenate(
        [rng.integers(-(1 << 30) + 1, 1 << 30, 3000), rng.integers(-3000, 3000, 3000), np.arange(-40, 40)]
    )
    for x in xs.tolist():
        m, e, zp = int(rng.integers(1 << 30, 1 << 31)), int(rng.integers(1, 23)), int(rng.integers(-128, 128))
        _, _, c, right = conv_rq_table(np.array([0]), np.array([m]), np.array([-e]), zp).tolist()
        assert right == e and c == (2 * zp + 1) * (1 << (e - 1))
        x2 = 2 * x
        t = c + ((x2 * m + (1 << 31)) >> 32)  # SMMLAR: exact, inside int32
        assert -(1 << 31) <= t < (1 << 31)
        fast = max(-128, min(127, (t + (-1 if x2 < 0 else 0)) >> e))
        assert fast == max(-128, min(127, _requantize_tflite(x, m, -e) + zp)), (x, m, e, zp)
    # beyond 22 the kernel takes the general output stage: no rounding constant
    table = conv_rq_table(np.array([5]), np.array([1 << 30]), np.array([-23]), -128)
    assert table.tolist() == [5, 1 << 30, 0, 23]


def test_fast_kernel_scratch_matches_the_c_header_and_is_enough(tmp_path: Path) -> None:
    """lower.fast_scratch_bytes (what the compiler reserves in the arena) equals nk_kernels.h's
    nk_*_fast_scratch_bytes for seeded geometries and the limits' edges, and the fast kernels given
    a heap scratch of exactly that size (NULL for 0) stay inside it (ASan) and equal the reference
    kernels (tests/fixtures/fast_scratch_check.c)."""
    from nanokws.compiler.lower import fast_scratch_bytes
    from nanokws.paths import FIRMWARE_DIR

    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (cc)")
    kernels = FIRMWARE_DIR / "lib" / "kernels"
    exe = tmp_path / "fast_scratch_check"
    flags = ["-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wstrict-prototypes"]
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
    srcs = [Path(__file__).parent / "fixtures" / "fast_scratch_check.c", *sorted(kernels.glob("*.c"))]
    subprocess.run([cc, *flags, *san, f"-I{kernels}", "-o", str(exe), *map(str, srcs)], check=True)
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    keys = "in_h in_w in_c out_h out_w out_c k_h k_w stride_h stride_w pad_h pad_w".split()
    lines = proc.stdout.split("\n")[:-1]
    assert len(lines) == 60 + 10 + 5 + 7 + 3
    seen = {"conv": set(), "dw": set()}
    for line in lines:
        kind, *nums = line.split()
        v = dict(zip(keys, map(int, nums[:-1]), strict=True))
        want = int(nums[-1])
        assert fast_scratch_bytes(v, kind == "dw") == want, line
        seen[kind].add(want > 0)
    assert seen == {"conv": {True, False}, "dw": {True, False}}  # both outcomes exercised per kernel


def test_depthwise_3x3_takes_the_plane_only_with_enough_outputs_per_channel() -> None:
    """nk_dw3x3_uses_rows / nk_dw3x3_uses_plane (nk_kernels.h), seen through the scratch each path
    needs: a streaming row layer's call (one VALID output row, any width) takes the row path (no
    scratch); otherwise the plane (one channel's padded input) from NK_DW3_PLANE_MIN_OUTPUTS = 16
    outputs per channel, else the four-channel path (no scratch when VALID: no tap falls outside)."""
    from nanokws.compiler.lower import fast_scratch_bytes

    def dw(out_h: int, out_w: int, c: int = 12) -> dict[str, int]:
        return {"in_h": out_h + 2, "in_w": out_w + 2, "in_c": c, "out_h": out_h, "out_w": out_w, "out_c": c,
                "k_h": 3, "k_w": 3, "stride_h": 1, "stride_w": 1}

    assert fast_scratch_bytes(dw(1, 7), dw=True) == 0
    assert fast_scratch_bytes(dw(3, 5), dw=True) == 0  # 15 outputs
    assert fast_scratch_bytes(dw(4, 4), dw=True) == 6 * 32 + 1  # 16: a plane of 6 rows at the 32 pitch
    assert fast_scratch_bytes(dw(1, 17), dw=True) == 0  # one VALID row of 17: the row path
    assert fast_scratch_bytes(dw(2, 9), dw=True) == 4 * 32 + 1  # 18 outputs in 2 rows: a plane of 4 rows
    padded = dw(1, 17) | {"in_h": 1, "in_w": 17, "pad_h": 1, "pad_w": 1}  # SAME: taps fall outside
    assert fast_scratch_bytes(padded, dw=True) == 3 * 32 + 1  # the plane: 3 rows of 19
