"""The fast kernels' compile-time contracts come from their C (firmware/lib/kernels/nk_*_pack.c,
nk_kernels.h) through the nanokws._frontend extension: the packed weights and constants equal what
the shipped model's nk_model.c holds, they equal an independent statement of the documented layouts
on random geometries, bad arguments are clear errors, and the packing C compiles warning-free for the
host and to nothing for the board."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from nanokws.compiler import lower
from nanokws.compiler.tflite_reader import read_graph
from nanokws.paths import FIRMWARE_DIR

KERNELS = FIRMWARE_DIR / "lib" / "kernels"
SHIPPED = FIRMWARE_DIR / "model"
PACK_SOURCES = sorted(KERNELS.glob("*_pack.c"))
WARN = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wstrict-prototypes", "-ffp-contract=off"]


def _c_arrays(source: str) -> dict[str, np.ndarray]:
    """Every `static const intN_t name[n] = {...};` of a generated nk_model.c, by name."""
    arrays = {}
    for m in re.finditer(r"static const int(8|32)_t (\w+)\[(\d+)\] = \{([^}]*)\};", source):
        values = np.array([int(v) for v in m.group(4).replace("\n", " ").split(",") if v.strip()], np.int64)
        assert values.size == int(m.group(3)), m.group(2)
        arrays[m.group(2)] = values
    return arrays


def _fast_layers(tflite: bytes) -> list[tuple[lower.Layer, dict[str, object]]]:
    """The shipped model's fast conv layers with the .tflite's own data for each: weights, bias and the
    per-channel multipliers and shifts."""
    g = read_graph(tflite)
    out = []
    for layer in lower.lower(g):
        if not layer.call.startswith(("nk_conv2d_fast_s8", "nk_dwconv2d_fast_s8")):
            continue
        op = g.operators[layer.op_index]
        w, inp, res = g.tensors[op.inputs[1]], g.tensors[layer.inputs[0]], g.tensors[op.outputs[0]]
        oc = layer.params["out_c"]
        mult, shift = lower._per_channel(op, inp, w, res, oc)
        bias = g.tensors[op.inputs[2]].data if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        out.append((layer, {"w": w.data, "bias": bias, "mult": mult, "shift": shift}))
    return out


def test_c_packing_equals_the_shipped_model() -> None:
    """For every fast conv of firmware/model's model.tflite, the C packing of the .tflite's weights
    (nk_conv2d_fast_pack / nk_dwconv2d_fast_pack) is byte for byte the shipped nk_model.c's arrays, and
    the scratch the compiler plans is the C's nk_*_fast_scratch_bytes."""
    arrays = _c_arrays((SHIPPED / "nk_model.c").read_text())
    layers = _fast_layers((SHIPPED / "model.tflite").read_bytes())
    assert {ly.opcode for ly, _ in layers} == {"CONV_2D", "DEPTHWISE_CONV_2D"}
    for layer, d in layers:
        dw = layer.opcode == "DEPTHWISE_CONV_2D"
        # As the compiler does: channels with all-zero weights get their constant first.
        bias, mult, shift, _ = lower.fold_dead_channels(
            layer.params, d["w"], d["bias"], d["mult"], d["shift"], dw  # type: ignore[arg-type]
        )
        packed = lower.pack_fast_conv(layer.params, d["w"], bias, mult, shift, dw)  # type: ignore[arg-type]
        assert packed is not None, layer.prefix
        w_packed, consts = packed
        assert np.array_equal(arrays[f"{layer.prefix}_w"], w_packed), layer.prefix
        assert np.array_equal(arrays[f"{layer.prefix}_bias_f" if dw else f"{layer.prefix}_rq"], consts), (
            layer.prefix
        )
        if dw:
            assert np.array_equal(arrays[f"{layer.prefix}_mult"], mult)
            assert np.array_equal(arrays[f"{layer.prefix}_shift"], shift)
        kernels = lower._kernels()
        fields = {f: int(layer.params.get(f, 0)) for f in kernels.conv_params_fields()}
        scratch = (
            kernels.dwconv2d_fast_scratch_bytes(fields) if dw else kernels.conv2d_fast_scratch_bytes(fields)
        )
        assert layer.scratch == scratch


# ---- an independent statement of the layouts nk_kernels.h documents, for random geometries ----


def _gemm_ref(rows: np.ndarray) -> np.ndarray:
    """Rows in pairs: per 4 inputs, the even row's 4 then the odd row's 4; each row's k % 4 leftovers
    after the pair's groups (even row's first); an odd last row as it is."""
    out_c, k = rows.shape
    k4 = k - k % 4
    parts = []
    for oc in range(0, out_c - 1, 2):
        a, b = rows[oc], rows[oc + 1]
        for i in range(0, k4, 4):
            parts += [a[i : i + 4], b[i : i + 4]]
        parts += [a[k4:], b[k4:]]
    if out_c % 2:
        parts.append(rows[-1])
    return np.concatenate(parts) if parts else np.zeros(0, rows.dtype)


def _dw_ref(w: np.ndarray) -> np.ndarray:
    """[taps][channels] -> groups of four channels, each group's taps consecutive ([group][tap][4]),
    then the channels % 4 last channels one after another ([channel][tap])."""
    taps, ch = w.shape
    main = ch - ch % 4
    groups = [w[:, c : c + 4].reshape(-1) for c in range(0, main, 4)]
    rest = [w[:, c] for c in range(main, ch)]
    return np.concatenate(groups + rest)


def _rq_ref(bias_f: np.ndarray, mult: np.ndarray, shift: np.ndarray, zp: int) -> np.ndarray:
    e = -shift.astype(np.int64)
    c = np.where((e >= 1) & (e <= 22), (2 * zp + 1) * (np.int64(1) << np.clip(e - 1, 0, 62)), 0)
    return np.stack([bias_f, mult, c, e], axis=1).reshape(-1)


def _geometry(rng: np.random.Generator, dw: bool) -> dict[str, int]:
    k_h, k_w = int(rng.integers(1, 11)), int(rng.integers(1, 6))
    in_c = int(rng.integers(1, 70))
    out_c = in_c if dw else int(rng.integers(1, 40))
    geometry = {"in_h": 20, "in_w": 20, "in_c": in_c, "out_h": 10, "out_w": 10, "out_c": out_c}
    geometry.update(k_h=k_h, k_w=k_w, stride_h=2, stride_w=2, pad_h=0, pad_w=0, depth_mult=1 if dw else 0)
    geometry.update(act_min=-128, act_max=127)
    geometry.update(in_offset=int(rng.integers(-127, 129)), out_offset=int(rng.integers(-128, 128)))
    return geometry


@pytest.mark.parametrize("dw", [False, True], ids=["conv", "depthwise"])
def test_c_packing_equals_the_documented_layouts(dw: bool) -> None:
    rng = np.random.default_rng(7 + dw)
    for _ in range(60):
        v = _geometry(rng, dw)
        oc, taps = v["out_c"], v["k_h"] * v["k_w"]
        k = taps if dw else taps * v["in_c"]
        w = rng.integers(-127, 128, size=(taps, oc) if dw else (oc, k)).astype(np.int8)
        bias = rng.integers(-20000, 20000, size=oc) if rng.random() < 0.8 else None
        mult = rng.integers(1 << 30, (1 << 31) - 1, size=oc)
        shift = -rng.integers(1, 30, size=oc)
        packed = lower.pack_fast_conv(v, w, bias, mult, shift, dw)
        assert packed is not None
        rows = w.T if dw else w
        bias_f = (0 if bias is None else bias) + v["in_offset"] * rows.astype(np.int64).sum(axis=1)
        w_packed, consts = packed
        assert np.array_equal(w_packed, _dw_ref(w) if dw else _gemm_ref(w)), v
        want = bias_f if dw else _rq_ref(bias_f, mult, shift, v["out_offset"])
        assert np.array_equal(consts, want), v
        # the same layouts as index permutations (nk_gemm_order / nk_dw_fast_order)
        order = lower.dw_fast_order(taps, oc) if dw else lower.gemm_order(oc, k)
        assert np.array_equal(w.reshape(-1)[order], w_packed)


@pytest.mark.parametrize("dw", [False, True], ids=["conv", "depthwise"])
def test_unbounded_accumulators_leave_the_reference_kernel(dw: bool) -> None:
    """No packing (None) where nk_requantize_bounded would not be exact: a left shift, or weights and
    bias whose worst accumulator reaches 2^30; one channel is enough."""
    v = {"in_c": 4, "out_c": 4, "k_h": 3, "k_w": 3, "depth_mult": 1, "in_offset": 0, "out_offset": 0}
    w = np.ones((9, 4) if dw else (4, 36), np.int8)
    mult, shift = np.full(4, 1 << 30), np.full(4, -3)
    assert lower.pack_fast_conv(v, w, None, mult, shift, dw) is not None
    assert lower.pack_fast_conv(v, w, None, mult, np.array([-3, -3, 0, -3]), dw) is None
    assert lower.pack_fast_conv(v, w, np.array([0, (1 << 30) - 1, 0, 0]), mult, shift, dw) is None


def test_bad_arguments_are_clear_errors() -> None:
    v = {"in_c": 4, "out_c": 8, "k_h": 3, "k_w": 3, "depth_mult": 2}
    with pytest.raises(ValueError, match="nk_dwconv2d_fast_pack: invalid arguments"):
        lower.pack_fast_conv(v, np.ones((9, 8), np.int8), None, np.ones(8), -np.ones(8), True)
    with pytest.raises(ValueError, match="w must be a contiguous array of 288"):
        lower.pack_fast_conv(v, np.ones(5, np.int8), None, np.ones(8), -np.ones(8), False)
    with pytest.raises(ValueError, match="shift must be"):
        lower.pack_fast_conv(v, np.ones((8, 36), np.int8), None, np.ones(8), -np.ones(7), False)
    with pytest.raises(ValueError, match="weight outside int8"):
        lower.pack_fast_conv(v, np.full((8, 36), 300), None, np.ones(8), -np.ones(8), False)
    with pytest.raises(ValueError, match="nk_gemm_order: invalid arguments"):
        lower.gemm_order(0, 4)


def test_packing_c_compiles_clean_for_the_host_and_empty_for_the_board(tmp_path: Path) -> None:
    """With NK_KERNELS_PACK (the extension) the packing compiles under the firmware's warnings; without
    it (every firmware build, the board's included) each file defines no symbol at all."""
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (cc)")
    for src in PACK_SOURCES:
        obj = tmp_path / (src.stem + ".o")
        cmd = [cc, *WARN, "-O2", "-DNK_KERNELS_PACK", f"-I{KERNELS}", "-c", str(src), "-o", str(obj)]
        subprocess.run(cmd, check=True)
    arm = shutil.which("arm-none-eabi-gcc")
    if arm is None:
        pytest.skip("arm-none-eabi-gcc not installed (the board build's empty objects not checked)")
    flags = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft", "-Os"]
    for src in PACK_SOURCES:
        obj = tmp_path / (src.stem + ".arm.o")
        subprocess.run([arm, *WARN, *flags, f"-I{KERNELS}", "-c", str(src), "-o", str(obj)], check=True)
        nm = subprocess.run(["arm-none-eabi-nm", str(obj)], capture_output=True, text=True, check=True)
        assert nm.stdout.strip() == "", f"{src.name} defines symbols on the board: {nm.stdout}"
