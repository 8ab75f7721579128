"""The model compiler: single-op Keras models with random shapes and quantisation, converted to
full int8, compiled, built (ASan/UBSan host build, a subset under QEMU) and compared element by
element with TFLite Micro; whole KWS-shaped models; the unsupported-op error path."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fixtures.tflite_int8 import convert_full_int8
from nanokws.compiler import verify as verify_mod

HAVE_QEMU = bool(shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc"))
needs_qemu = pytest.mark.skipif(not HAVE_QEMU, reason="qemu-system-arm / arm-none-eabi-gcc not installed")

_CACHE: dict[str, bytes] = {}  # conversions are slow: keep them for the whole session


@pytest.fixture(scope="session")
def tf() -> Any:
    import tensorflow

    return tensorflow


@pytest.fixture(scope="session")
def build_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One fixed model/build folder per target: the firmware library is built once per target and
    # each new model only recompiles its own sources (tests run sequentially).
    return tmp_path_factory.mktemp("compiler_build")


def convert(
    tf: Any, key: str, make: Callable[[Any], Any], seed: int, in_scale: float = 1.0, in_shift: float = 0.0
) -> bytes:
    """Full-int8 .tflite of the Keras model `make(keras)`, calibrated on seeded random data."""
    if key in _CACHE:
        return _CACHE[key]
    tf.keras.utils.set_random_seed(seed)
    model = make(tf.keras)
    shape = tuple(model.inputs[0].shape)
    rng = np.random.default_rng(seed)

    def rep() -> Iterator[np.ndarray]:
        for _ in range(16):
            yield rng.normal(size=shape) * in_scale + in_shift

    _CACHE[key] = convert_full_int8(model, rep)
    return _CACHE[key]


def assert_bit_exact(tflite: bytes, target: str, build_root: Path, n: int = 6, fast: bool = True) -> None:
    res = verify_mod.verify(
        tflite,
        target,
        n,
        data=build_root / "no-data",
        seed=3,
        build_dir=build_root,
        progress=False,
        fast=fast,
    )
    assert res.n == n
    assert res.ok, f"mismatch on {target}: {res.mismatch}"


# ---- single-op property cases: every parameter drawn from a seeded generator ----


def _act(rng: np.random.Generator) -> str | None:
    return [None, "relu", "relu6"][int(rng.integers(3))]


def conv_case(seed: int) -> Callable[[Any], Any]:
    rng = np.random.default_rng(seed)
    h, w, c = int(rng.integers(5, 14)), int(rng.integers(4, 12)), int(rng.integers(1, 9))
    kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 5))
    sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    pad = ["same", "valid"][int(rng.integers(2))]
    filters, bias, act = int(rng.integers(1, 17)), bool(rng.integers(2)), _act(rng)
    if pad == "valid":
        kh, kw = min(kh, h), min(kw, w)

    def make(keras: Any) -> Any:
        inp = keras.Input((h, w, c), batch_size=1)
        return keras.Model(
            inp,
            keras.layers.Conv2D(
                filters, (kh, kw), strides=(sh, sw), padding=pad, use_bias=bias, activation=act
            )(inp),
        )

    return make


def dwconv_case(seed: int) -> Callable[[Any], Any]:
    rng = np.random.default_rng(seed)
    h, w, c = int(rng.integers(4, 13)), int(rng.integers(4, 11)), int(rng.integers(1, 9))
    kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    s = int(rng.integers(1, 3))
    pad = ["same", "valid"][int(rng.integers(2))]
    mult, act = int(rng.integers(1, 4)), _act(rng)

    def make(keras: Any) -> Any:
        inp = keras.Input((h, w, c), batch_size=1)
        return keras.Model(
            inp,
            keras.layers.DepthwiseConv2D(
                (kh, kw), strides=(s, s), padding=pad, depth_multiplier=mult, activation=act
            )(inp),
        )

    return make


def dense_case(seed: int) -> Callable[[Any], Any]:
    rng = np.random.default_rng(seed)
    h, w, units, act = int(rng.integers(1, 7)), int(rng.integers(1, 40)), int(rng.integers(1, 33)), _act(rng)

    def make(keras: Any) -> Any:
        inp = keras.Input((h, w), batch_size=1)
        return keras.Model(inp, keras.layers.Dense(units, activation=act)(keras.layers.Flatten()(inp)))

    return make


def pool_case(seed: int, kind: str) -> Callable[[Any], Any]:
    rng = np.random.default_rng(seed)
    h, w, c = int(rng.integers(3, 13)), int(rng.integers(3, 11)), int(rng.integers(1, 9))
    k, s = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    pad = ["same", "valid"][int(rng.integers(2))]

    def make(keras: Any) -> Any:
        inp = keras.Input((h, w, c), batch_size=1)
        layer = keras.layers.AveragePooling2D if kind == "avg" else keras.layers.MaxPooling2D
        return keras.Model(inp, layer((k, k), strides=(s, s), padding=pad)(inp))

    return make


def mean_case(seed: int) -> Callable[[Any], Any]:
    rng = np.random.default_rng(seed)
    h, w, c, keep = (
        int(rng.integers(2, 12)),
        int(rng.integers(2, 10)),
        int(rng.integers(1, 17)),
        bool(seed % 2),
    )

    def make(keras: Any) -> Any:
        inp = keras.Input((h, w, c), batch_size=1)
        x = keras.layers.Conv2D(c, 1)(inp)  # gives the mean different in/out quantisation
        return keras.Model(inp, keras.layers.GlobalAveragePooling2D(keepdims=keep)(x))

    return make


def softmax_case(seed: int) -> Callable[[Any], Any]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))

    def make(keras: Any) -> Any:
        inp = keras.Input((n,), batch_size=1)
        return keras.Model(inp, keras.layers.Softmax()(keras.layers.Dense(n)(inp)))

    return make


def add_case(seed: int) -> Callable[[Any], Any]:
    rng = np.random.default_rng(seed)
    h, w, c = int(rng.integers(2, 9)), int(rng.integers(2, 9)), int(rng.integers(1, 9))
    act = _act(rng)

    def make(keras: Any) -> Any:
        inp = keras.Input((h, w, c), batch_size=1)
        a = keras.layers.Conv2D(c, 1)(inp)
        b = keras.layers.DepthwiseConv2D(3, padding="same")(inp)
        x = keras.layers.Add()([a, b])
        return keras.Model(inp, keras.layers.Activation(act)(x) if act else x)

    return make


def pointwise_case(seed: int) -> Callable[[Any], Any]:
    """1x1 conv (the fast kernel's in-place path), channel counts not multiples of 2 or 4."""
    rng = np.random.default_rng(seed)
    h, w, c, filters = (
        int(rng.integers(1, 8)),
        int(rng.integers(1, 8)),
        int(rng.integers(1, 19)),
        int(rng.integers(1, 20)),
    )
    act = _act(rng)

    def make(keras: Any) -> Any:
        inp = keras.Input((h, w, c), batch_size=1)
        return keras.Model(inp, keras.layers.Conv2D(filters, 1, activation=act)(inp))

    return make


def dw3x3_case(seed: int) -> Callable[[Any], Any]:
    """Depthwise 3x3 as in DS-CNN, channel counts around multiples of four (groups + leftovers)."""
    rng = np.random.default_rng(seed)
    h, w, c = int(rng.integers(3, 12)), int(rng.integers(3, 12)), int(rng.integers(1, 14))
    s, pad = int(rng.integers(1, 3)), ["same", "valid"][int(rng.integers(2))]

    def make(keras: Any) -> Any:
        inp = keras.Input((h, w, c), batch_size=1)
        return keras.Model(
            inp, keras.layers.DepthwiseConv2D(3, strides=s, padding=pad, activation="relu")(inp)
        )

    return make


def dw3x3_shape_case(
    h: int, w: int, c: int, s: int, pad: str, activation: str | None = None
) -> Callable[[Any], Any]:
    """Depthwise 3x3 at chosen shapes: the plane kernel's rows along the longer output axis, rows
    longer than its fixed pitch (NK_DW3_PITCH), odd lengths, stride 2, VALID; with an activation,
    an output range narrower than int8 (the general output stage instead of the fast one)."""

    def make(keras: Any) -> Any:
        inp = keras.Input((h, w, c), batch_size=1)
        layer = keras.layers.DepthwiseConv2D(3, strides=s, padding=pad, activation=activation)
        return keras.Model(inp, layer(inp))

    return make


def conv_shape_case(
    h: int, w: int, c: int, filters: int, k: tuple[int, int], s: int, pad: str
) -> Callable[[Any], Any]:
    """Conv at chosen shapes: pixel counts around multiples of the three-pixel blocks, odd channel
    counts, and the 10x4 one-channel stem (rows gathered straight into the expanded lanes)."""

    def make(keras: Any) -> Any:
        inp = keras.Input((h, w, c), batch_size=1)
        return keras.Model(
            inp, keras.layers.Conv2D(filters, k, strides=s, padding=pad, activation="relu")(inp)
        )

    return make


def global_pool_case(h: int, w: int, c: int) -> Callable[[Any], Any]:
    """A global average pool over more than 256 taps (the 16-bit lane sums are flushed into int32
    every 256 taps) with a channel count that is not a multiple of four."""

    def make(keras: Any) -> Any:
        inp = keras.Input((h, w, c), batch_size=1)
        return keras.Model(inp, keras.layers.AveragePooling2D((h, w))(inp))

    return make


def pad_case(seed: int) -> Callable[[Any], Any]:
    """An explicit PAD (asymmetric, height and/or width) read by a VALID conv or depthwise conv: the
    compiler folds it into the convolution's own padding (streamable models pad frequency only)."""
    rng = np.random.default_rng(seed)
    h, w, c = int(rng.integers(3, 10)), int(rng.integers(3, 10)), int(rng.integers(1, 9))
    pads = tuple(tuple(int(v) for v in rng.integers(0, 3, size=2)) for _ in range(2))
    k, s, dw = int(rng.integers(1, 4)), int(rng.integers(1, 3)), bool(seed % 2)
    act = _act(rng)

    def make(keras: Any) -> Any:
        inp = keras.Input((h, w, c), batch_size=1)
        x = keras.layers.ZeroPadding2D(pads)(inp)
        conv = (
            keras.layers.DepthwiseConv2D((k, 3), strides=s, activation=act)
            if dw
            else keras.layers.Conv2D(int(rng.integers(1, 12)), (k, 3), strides=s, activation=act)
        )
        return keras.Model(inp, conv(x))

    return make


CASES: list[tuple[str, Callable[[], Callable[[Any], Any]]]] = (
    [(f"conv{s}", lambda s=s: conv_case(s)) for s in range(6)]
    + [(f"dwconv{s}", lambda s=s: dwconv_case(100 + s)) for s in range(5)]
    + [(f"dense{s}", lambda s=s: dense_case(200 + s)) for s in range(3)]
    + [(f"avgpool{s}", lambda s=s: pool_case(300 + s, "avg")) for s in range(3)]
    + [(f"maxpool{s}", lambda s=s: pool_case(400 + s, "max")) for s in range(3)]
    + [(f"mean{s}", lambda s=s: mean_case(500 + s)) for s in range(2)]
    + [(f"softmax{s}", lambda s=s: softmax_case(600 + s)) for s in range(2)]
    + [(f"add{s}", lambda s=s: add_case(700 + s)) for s in range(2)]
    + [(f"pw{s}", lambda s=s: pointwise_case(800 + s)) for s in range(3)]
    + [(f"dw3x3_{s}", lambda s=s: dw3x3_case(900 + s)) for s in range(3)]
    + [(f"pad{s}", lambda s=s: pad_case(1000 + s)) for s in range(4)]
    + [
        ("dw3x3_long", lambda: dw3x3_shape_case(34, 3, 5, 1, "same")),
        ("dw3x3_wide", lambda: dw3x3_shape_case(4, 13, 9, 1, "valid")),
        ("dw3x3_s2", lambda: dw3x3_shape_case(25, 20, 6, 2, "same")),
        # Either side of NK_DW3_PLANE_MIN_OUTPUTS (16 outputs per channel: the plane, else the
        # four-channel path), and one output row as a streaming row layer computes it (the row
        # path): a multiple of four channels; a remainder of two channels with ReLU6 (the general
        # output stage).
        ("dw3x3_row", lambda: dw3x3_shape_case(3, 9, 12, 1, "valid")),
        ("dw3x3_row_tail", lambda: dw3x3_shape_case(3, 19, 10, 1, "valid", "relu6")),
        ("dw3x3_15", lambda: dw3x3_shape_case(5, 7, 5, 1, "valid")),
        ("dw3x3_16", lambda: dw3x3_shape_case(6, 6, 6, 1, "valid")),
        ("stem_lanes", lambda: conv_shape_case(15, 10, 1, 7, (10, 4), 2, "same")),
        ("pw_triples", lambda: conv_shape_case(5, 2, 13, 9, (1, 1), 1, "valid")),
        # 3 + 3 + 2 pixels: the two-column GEMM (pw_triples ends in the one-column one).
        ("pw_pair", lambda: conv_shape_case(4, 2, 13, 9, (1, 1), 1, "valid")),
        ("avgpool_global", lambda: global_pool_case(20, 15, 6)),
    ]
)
QEMU_SUBSET = {
    "conv0",
    "conv3",
    "dwconv1",
    "dense0",
    "avgpool0",
    "mean1",
    "softmax0",
    "add0",
    "pw0",
    "pw1",
    "dw3x3_0",
    "dw3x3_1",
    "dw3x3_long",
    "dw3x3_wide",
    "dw3x3_s2",
    "dw3x3_row",
    "dw3x3_row_tail",
    "dw3x3_15",
    "dw3x3_16",
    "stem_lanes",
    "pw_triples",
    "pw_pair",
    "avgpool_global",
    "pad0",
    "pad1",
}


def _tflite(tf: Any, name: str) -> bytes:
    make = dict(CASES)[name]()
    seed = sum(map(ord, name))
    rng = np.random.default_rng(seed)
    # Random input quantisation: scale and offset of the calibration data vary per case.
    return convert(
        tf, name, make, seed, in_scale=float(rng.uniform(0.2, 4.0)), in_shift=float(rng.uniform(-2, 2))
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n, _ in CASES])
def test_single_op_bit_exact_asan(tf: Any, build_root: Path, name: str) -> None:
    assert_bit_exact(_tflite(tf, name), "asan", build_root)


@pytest.mark.slow
@pytest.mark.qemu
@needs_qemu
@pytest.mark.parametrize("name", sorted(QEMU_SUBSET))
def test_single_op_bit_exact_qemu(tf: Any, build_root: Path, name: str) -> None:
    assert_bit_exact(_tflite(tf, name), "qemu", build_root, n=4)


# ---- whole models with random initial weights ----


def project_model(tf: Any, name: str) -> bytes:
    """The project's own architecture `name` (as `nanokws train` builds it), random-initialised and
    converted by the project's own full-int8 converter, calibrated on seeded random features."""
    key = f"project:{name}"
    if key not in _CACHE:
        from nanokws.data import labels_for
        from nanokws.features import FRONTEND_CONFIG
        from nanokws.train.convert import convert_int8
        from nanokws.train.models import build_model

        tf.keras.utils.set_random_seed(11)
        labels = labels_for(["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"])
        model = build_model(name, len(labels))
        calib = np.random.default_rng(11).integers(-128, 128, size=(64, 49, 40)).astype(np.int8)
        meta = {"labels": labels, "frontend": dict(FRONTEND_CONFIG), "model": name}
        _CACHE[key] = convert_int8(model, calib, meta)
    return _CACHE[key]


PROJECT_MODELS = ["tiny", "ds_cnn_s"]


@pytest.mark.slow
@pytest.mark.parametrize("target", ["asan", pytest.param("qemu", marks=[pytest.mark.qemu, needs_qemu])])
@pytest.mark.parametrize("name", PROJECT_MODELS)
def test_project_models_bit_exact(tf: Any, build_root: Path, name: str, target: str) -> None:
    assert_bit_exact(project_model(tf, name), target, build_root, n=6 if target == "qemu" else 10)


@pytest.mark.slow
def test_compile_report_and_arena(tf: Any, tmp_path: Path) -> None:
    from nanokws.compiler import compile_model
    from nanokws.compiler.lower import lower
    from nanokws.compiler.planner import plan_arena
    from nanokws.compiler.tflite_reader import read_graph

    tflite = project_model(tf, "ds_cnn_s")
    res = compile_model(tflite, tmp_path / "out")
    rep = res.report
    assert (tmp_path / "out" / "nk_model.c").is_file() and (
        tmp_path / "out" / "compile_report.json"
    ).is_file()
    # MACs from first principles: conv 25x20x64x(10*4*1) + 4 x (dw 25x20x64x9 + pw 25x20x64x64) + dense 64x12.
    assert rep["total_macs"] == 25 * 20 * 64 * 40 + 4 * (25 * 20 * 64 * 9 + 25 * 20 * 64 * 64) + 64 * 12
    assert rep["tflm_arena_total_bytes"] > 0
    # Two live activation buffers never overlap, and every tensor fits in the arena.
    g = read_graph(tflite)
    plan = plan_arena(g, lower(g))
    for i, a in enumerate(plan.buffers):
        assert a.offset + a.size <= plan.arena_bytes
        for b in plan.buffers[i + 1 :]:
            if a.first <= b.last and b.first <= a.last:
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset
    # Ping-pong of two 25x20x64 buffers is the lower bound for this chain.
    assert plan.arena_bytes >= 2 * 25 * 20 * 64


def _scratch_model(keras: Any) -> Any:
    """3x3 conv (gathers patches and expands them), 3x3 SAME depthwise (one channel's padded input
    plane), then a 1x1 conv (reads its input in place, expands it)."""
    inp = keras.Input((9, 8, 3), batch_size=1)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(inp)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    return keras.Model(inp, keras.layers.Conv2D(5, 1)(x))


def _pointwise_model(keras: Any) -> Any:
    inp = keras.Input((6, 5, 7), batch_size=1)
    x = keras.layers.Conv2D(8, 1, activation="relu")(inp)
    return keras.Model(inp, keras.layers.Conv2D(4, 1)(x))


@pytest.mark.slow
def test_kernel_scratch_is_planned_in_the_arena(tf: Any, build_root: Path, tmp_path: Path) -> None:
    """The fast kernels' scratch is a per-layer region of the arena (counted in arena_bytes, like
    TFLite Micro's scratch buffers): aligned, inside the arena, disjoint from the layer's input and
    output and from every buffer alive at the same time; passed in the generated call; reported as
    scratch_bytes; and the compiled model stays bit-exact under ASan."""
    from nanokws.compiler import compile_model
    from nanokws.compiler.planner import ALIGN
    from nanokws.compiler.tflite_reader import read_graph

    tflite = convert(tf, "scratch", _scratch_model, seed=21, in_scale=2.0)
    res = compile_model(tflite, tmp_path / "fast", measure_tflm=False)
    g, plan, rep = read_graph(tflite), res.plan, res.report
    # Conv: the expanded pixel triple (6k) + 3 bytes of alignment + three gathered fields (3k),
    # k = 27; depthwise 3x3 on 9x8: a plane of 10 rows of 11 (along h, the longer axis) at the
    # 32-byte pitch plus 1 byte of slack; the in-place 1x1 conv: the expanded triple only (k = 6).
    want = [6 * 27 + 3 + 3 * 27, 10 * 32 + 1, 6 * 6 + 3]
    assert [layer.scratch for layer in res.layers] == want
    assert rep["scratch_bytes"] == plan.scratch_bytes == max(want)
    assert [row["scratch_bytes"] for row in rep["layers"]] == want
    assert sorted(plan.scratch) == [0, 1, 2]
    c_src = (res.out_dir / "nk_model.c").read_text()
    for n, (off, size) in plan.scratch.items():
        layer = res.layers[n]
        assert size == layer.scratch > 0 and off % ALIGN == 0 and off + size <= plan.arena_bytes
        assert rep["layers"][n]["scratch_offset"] == off
        for t in [*layer.inputs, layer.output]:
            t_off, t_size = plan.offsets[t], g.tensors[t].size
            assert off + size <= t_off or t_off + t_size <= off, (n, t)
        assert f"nk_arena + {plan.offsets[layer.output]}, nk_arena + {off});" in c_src
    assert c_src.count(", NULL);") == 0  # every fast conv layer gets its scratch
    for i, a in enumerate(plan.buffers):
        for b in plan.buffers[i + 1 :]:
            if a.first <= b.last and b.first <= a.last:
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset
    assert plan.arena_bytes >= max(
        sum(g.tensors[t].size for t in [*layer.inputs, layer.output]) + layer.scratch for layer in res.layers
    )
    assert_bit_exact(tflite, "asan", build_root, n=4)
    # No scratch with the reference kernels only; 1x1 stride-1 convs (in place) need only the
    # expanded pixel triple.
    ref = compile_model(tflite, tmp_path / "ref", measure_tflm=False, fast=False)
    assert ref.report["scratch_bytes"] == 0 and not ref.plan.scratch
    assert all(row["scratch_offset"] is None for row in ref.report["layers"])
    pw_tflite = convert(tf, "scratch_pw", _pointwise_model, seed=22)
    pw = compile_model(pw_tflite, tmp_path / "pw", measure_tflm=False)
    assert [layer.scratch for layer in pw.layers] == [6 * 7 + 3, 6 * 8 + 3]
    assert "nk_conv2d_fast_s8(" in (pw.out_dir / "nk_model.c").read_text()


@pytest.mark.slow
def test_unsupported_op_is_one_line_exit_2(
    tf: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nanokws.cli import main

    def make(keras: Any) -> Any:
        inp = keras.Input((8,), batch_size=1)
        return keras.Model(inp, keras.layers.Activation("tanh")(keras.layers.Dense(8)(inp)))

    model = tmp_path / "tanh.tflite"
    model.write_bytes(convert(tf, "tanh", make, seed=5))
    code = main(["compile", "--model", str(model), "--out", str(tmp_path / "out"), "--no-tflm"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert "TANH" in err[0] and "op 1" in err[0]
    assert not (tmp_path / "out" / "nk_model.c").exists()


@pytest.mark.slow
@pytest.mark.parametrize("where", ["pool", "two_readers"])
def test_unfoldable_pad_is_one_line_exit_2(
    tf: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """A PAD the compiler cannot fold into a convolution (before a pool, or read twice) is refused,
    naming the op, instead of being compiled wrongly."""
    from nanokws.cli import main

    def make(keras: Any) -> Any:
        inp = keras.Input((6, 6, 2), batch_size=1)
        x = keras.layers.ZeroPadding2D(((0, 0), (1, 1)))(inp)
        if where == "pool":
            return keras.Model(inp, keras.layers.MaxPooling2D(2)(x))
        a = keras.layers.Conv2D(2, 3)(x)
        b = keras.layers.Conv2D(2, 3)(x)
        return keras.Model(inp, keras.layers.Add()([a, b]))

    model = tmp_path / "pad.tflite"
    model.write_bytes(convert(tf, f"pad_{where}", make, seed=3))
    code = main(["compile", "--model", str(model), "--out", str(tmp_path / "out"), "--no-tflm"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1, err
    assert "PAD" in err[0] and "exactly one CONV_2D/DEPTHWISE_CONV_2D" in err[0], err[0]
    assert not (tmp_path / "out" / "nk_model.c").exists()


# ---- fast kernels: selected, still bit-exact on both Cortex-M4 paths, and actually faster ----


@pytest.mark.slow
def test_fast_kernels_are_selected_and_reference_kernels_stay_exact(
    tf: Any, build_root: Path, tmp_path: Path
) -> None:
    from nanokws.compiler import compile_model

    tflite = project_model(tf, "ds_cnn_s")
    fast_c = (compile_model(tflite, tmp_path / "f", measure_tflm=False).out_dir / "nk_model.c").read_text()
    ref_c = (
        compile_model(tflite, tmp_path / "r", measure_tflm=False, fast=False).out_dir / "nk_model.c"
    ).read_text()
    assert "nk_conv2d_fast_s8(" in fast_c and "nk_dwconv2d_fast_s8(" in fast_c
    assert "nk_conv2d_s8(" not in fast_c and "nk_dwconv2d_s8(" not in fast_c
    assert "_fast_s8(" not in ref_c
    # The reference kernels remain the semantic reference: still bit-exact.
    for name in ("conv1", "dwconv0", "dw3x3_2"):
        assert_bit_exact(_tflite(tf, name), "asan", build_root, n=4, fast=False)


def _fast_kernel_disassembly(elf: Path) -> str:
    """Disassembly of the fast kernels' inner-loop functions only (GCC itself emits SMLABB for
    plain int8 products elsewhere; only the DSP paths use SXTB16)."""
    import re
    import subprocess

    from nanokws.cbuild import require_tool

    asm = subprocess.run(
        [require_tool("arm-none-eabi-objdump"), "-d", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    bodies = re.findall(r"<nk_(?:gemm_cols|dwconv2d_fast)_s8>:\n(.*?)\n\n", asm, re.S)
    assert len(bodies) == 2, "fast kernels not linked"
    return "\n".join(bodies)


@pytest.mark.slow
@pytest.mark.qemu
@needs_qemu
def test_portable_kernels_bit_exact_on_cortex_m4(tf: Any, tmp_path: Path) -> None:
    """The same model built for QEMU twice: with the DSP paths and with -DNK_KERNELS_NO_DSP. Both
    must match TFLite Micro, and the disassembly proves which path each build runs."""
    from nanokws.cbuild import build_programs
    from nanokws.compiler import compile_model, tflm
    from nanokws.compiler.runner import ModelRunner

    tflite = project_model(tf, "ds_cnn_s")
    model_dir = compile_model(tflite, tmp_path / "model", measure_tflm=False).out_dir
    rng = np.random.default_rng(8)
    inputs = rng.integers(-128, 128, size=(3, 49 * 40)).astype(np.int8)
    expected = tflm.run(tflite, inputs)
    for flags, dsp in (([], True), (["EXTRA_CFLAGS=-DNK_KERNELS_NO_DSP"], False)):
        out = tmp_path / ("dsp" if dsp else "portable")
        elf = build_programs("qemu", ["model_runner"], model_dir, out, extra_make_args=flags)["model_runner"]
        asm = _fast_kernel_disassembly(elf)
        assert ("sxtb16" in asm) == dsp and ("smlad" in asm) == dsp
        with ModelRunner(elf, "qemu") as runner:
            for x, want in zip(inputs, expected, strict=True):
                assert np.array_equal(runner.infer(x).output, want.reshape(-1)), f"dsp={dsp}"


@pytest.mark.slow
@pytest.mark.qemu
@needs_qemu
def test_fast_kernels_cut_instructions(tf: Any, tmp_path: Path) -> None:
    from nanokws.compiler.bench import bench

    tflite = project_model(tf, "ds_cnn_s")
    fast = bench(tflite, runs=1, build_dir=tmp_path / "f", measure_tflm=False)
    ref = bench(tflite, runs=1, build_dir=tmp_path / "r", measure_tflm=False, fast=False)
    # Measured ~3x fewer instructions (docs/performance.md); fail if that is mostly lost.
    assert fast["instructions_per_inference"] * 2 < ref["instructions_per_inference"]
    assert fast["macs_per_instruction"] > 0.3
