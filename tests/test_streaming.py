"""Exact streaming inference (`nanokws compile --streaming`, nk_model_stream.h, stream_runner).

Every inference of the streaming form (frames pushed one at a time, each layer computing only its
new time rows) must equal, element by element, TFLite Micro's output for the full model on the
same window of frames, over long streams (hundreds of consecutive windows), under ASan/UBSan and
under QEMU (Cortex-M4F). Also: non-streamable models are refused with one line naming the layer,
the clip model from the same compile folder still matches TFLite Micro, and stale streaming
headers do not survive a non-streaming compile.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fixtures.tflite_int8 import convert_full_int8
from nanokws.cbuild import build_programs
from nanokws.compiler import compile_model, tflm
from nanokws.compiler.runner import ModelRunner
from nanokws.compiler.stream_runner import StreamRunner
from nanokws.compiler.streaming import NotStreamableError

HAVE_QEMU = bool(shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc"))
needs_qemu = pytest.mark.skipif(not HAVE_QEMU, reason="qemu-system-arm / arm-none-eabi-gcc not installed")

_CACHE: dict[str, bytes] = {}  # conversions take seconds: once per model per session


@pytest.fixture(scope="session")
def build_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One model folder and one build folder per target: the firmware library is built once per
    # target, each new model recompiles only its own sources (tests run sequentially).
    return tmp_path_factory.mktemp("stream_build")


def _convert(key: str, make: Callable[[Any], Any], seed: int, calib: np.ndarray | None = None) -> bytes:
    """Full-int8 .tflite of `make(keras)` with random weights, calibrated on `calib` (inputs) or on
    int8-range noise."""
    if key not in _CACHE:
        import tensorflow as tf

        tf.keras.utils.set_random_seed(seed)
        model = make(tf.keras)
        shape = tuple(model.inputs[0].shape)
        rng = np.random.default_rng(seed)

        def rep() -> Iterator[np.ndarray]:
            if calib is not None:
                for x in calib:
                    yield np.asarray(x).reshape(shape)
                return
            for _ in range(24):
                yield rng.integers(-128, 128, size=shape)

        _CACHE[key] = convert_full_int8(model, rep)
    return _CACHE[key]


def _dense(keras: Any, units: int, stddev: float = 3.0) -> Any:
    """A head with large random weights: untrained logits then spread enough that the int8 scores
    change from window to window (otherwise a softmax of near-equal logits hides every difference)."""
    return keras.layers.Dense(units, kernel_initializer=keras.initializers.RandomNormal(stddev=stddev))


def _avgpool_model(keras: Any) -> Any:
    """Time stride 2 stem, depthwise, strided-frequency pointwise, global AVERAGE_POOL_2D head."""
    inp = keras.Input((49, 12, 1), batch_size=1)
    x = keras.layers.Rescaling(1 / 64)(inp)
    x = keras.layers.Conv2D(6, (5, 3), strides=(2, 1), padding="valid", activation="relu")(x)
    x = keras.layers.DepthwiseConv2D((3, 3), padding="valid", activation="relu")(x)
    x = keras.layers.Conv2D(8, (1, 1), strides=(1, 2), padding="valid", activation="relu")(x)
    x = keras.layers.DepthwiseConv2D((3, 1), padding="valid")(x)
    x = keras.layers.AveragePooling2D(pool_size=(int(x.shape[1]), int(x.shape[2])))(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inp, keras.layers.Softmax()(_dense(keras, 5)(x)))


def _mean_maxpool_model(keras: Any) -> Any:
    """Time stride 1 conv, a 2x2 stride-2 max pool (row-wise), GlobalAveragePooling2D (MEAN) head."""
    inp = keras.Input((49, 10, 1), batch_size=1)
    x = keras.layers.Rescaling(1 / 64)(inp)
    x = keras.layers.Conv2D(4, (3, 3), padding="valid", activation="relu")(x)
    x = keras.layers.MaxPooling2D((2, 2), padding="valid")(x)
    x = keras.layers.Conv2D(6, (3, 1), padding="valid")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, _dense(keras, 4)(x))


def _window_model(keras: Any) -> Any:
    """No pooling: flatten + dense over the last layer's whole window (the 'window' head)."""
    inp = keras.Input((49, 8, 1), batch_size=1)
    x = keras.layers.Rescaling(1 / 64)(inp)
    x = keras.layers.Conv2D(4, (4, 3), strides=(2, 2), padding="valid", activation="relu")(x)
    x = keras.layers.DepthwiseConv2D((3, 3), padding="valid", activation="relu")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inp, keras.layers.Softmax()(_dense(keras, 6, 0.3)(x)))


def _pad_freq_model(keras: Any) -> Any:
    """Frequency-only PADs (one asymmetric) before VALID convs: SAME-like in frequency, VALID in time,
    as ds_cnn_stream_pad. The compiler folds each PAD into the conv that reads it."""
    inp = keras.Input((49, 10, 1), batch_size=1)
    x = keras.layers.Rescaling(1 / 64)(inp)
    x = keras.layers.Conv2D(5, (4, 3), strides=(2, 1), padding="valid", activation="relu")(x)
    x = keras.layers.ZeroPadding2D(((0, 0), (1, 1)))(x)
    x = keras.layers.DepthwiseConv2D((3, 3), padding="valid", activation="relu")(x)
    x = keras.layers.ZeroPadding2D(((0, 0), (0, 2)))(x)
    x = keras.layers.Conv2D(7, (2, 3), strides=(1, 2), padding="valid", activation="relu")(x)
    x = keras.layers.AveragePooling2D(pool_size=(int(x.shape[1]), int(x.shape[2])))(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inp, keras.layers.Softmax()(_dense(keras, 5)(x)))


def _phased_rowsum_model(keras: Any) -> Any:
    """Time strides 2, 2, 2 (8 in all): at an inference stride of 2 frames the layers after the second
    stride run as 2, then 4 interleaved phases; the pool's rows end 5 frames before the window does
    (2 rows of delay)."""
    inp = keras.Input((49, 10, 1), batch_size=1)
    x = keras.layers.Rescaling(1 / 64)(inp)
    x = keras.layers.Conv2D(6, (4, 3), strides=(2, 1), padding="valid", activation="relu")(x)
    x = keras.layers.DepthwiseConv2D((3, 3), strides=(2, 2), padding="valid", activation="relu")(x)
    x = keras.layers.Conv2D(8, (1, 1), padding="valid", activation="relu")(x)
    x = keras.layers.DepthwiseConv2D((3, 1), padding="valid", activation="relu")(x)
    x = keras.layers.Conv2D(8, (2, 1), strides=(2, 1), padding="valid", activation="relu")(x)
    x = keras.layers.DepthwiseConv2D((2, 3), padding="valid")(x)
    x = keras.layers.AveragePooling2D(pool_size=(int(x.shape[1]), int(x.shape[2])))(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inp, keras.layers.Softmax()(_dense(keras, 5)(x)))


def _phased_window_model(keras: Any) -> Any:
    """Two time strides then flatten + dense: the 'window' head gathers every 2nd ring row."""
    inp = keras.Input((49, 8, 1), batch_size=1)
    x = keras.layers.Rescaling(1 / 64)(inp)
    x = keras.layers.Conv2D(4, (4, 3), strides=(2, 1), padding="valid", activation="relu")(x)
    x = keras.layers.Conv2D(4, (3, 3), strides=(2, 2), padding="valid", activation="relu")(x)
    x = keras.layers.DepthwiseConv2D((3, 1), padding="valid", activation="relu")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inp, keras.layers.Softmax()(_dense(keras, 6, 0.3)(x)))


def _strides_2_3_model(keras: Any) -> Any:
    """Time strides 2 then 3: at an inference stride of 3 the first (2) neither divides nor is a
    multiple of the alignment (3)."""
    inp = keras.Input((49, 6, 1), batch_size=1)
    x = keras.layers.Conv2D(4, (3, 3), strides=(2, 1), padding="valid", activation="relu")(inp)
    x = keras.layers.MaxPooling2D((3, 1), padding="valid")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, _dense(keras, 3)(x))


SMALL = {
    "avgpool": _avgpool_model,
    "mean_maxpool": _mean_maxpool_model,
    "window": _window_model,
    "pad_freq": _pad_freq_model,
    "phased_rowsum": _phased_rowsum_model,
    "phased_window": _phased_window_model,
}


def _ds_cnn_stream(arch: str = "ds_cnn_stream") -> bytes:
    """The `arch` architecture (ds_cnn_stream or ds_cnn_stream_pad) with seeded untrained weights,
    calibrated on frontend frames of synthetic audio (calibrating on uniform noise, as for a trained
    model's sanity check, leaves an untrained model's int8 scores constant)."""

    def make(keras: Any) -> Any:
        from nanokws.train.models import INPUT_SHAPE, build_model

        model = build_model(arch, 12)
        # Untrained, the activations shrink layer after layer (~1e-5 at the pool): set each
        # BatchNormalization's statistics from sample windows so every layer's output has unit spread.
        x = calib[:16].astype(np.float32)
        for bn in [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]:
            pre = keras.Model(model.inputs, bn.input).predict(x, verbose=0)
            mean, var = pre.mean(axis=(0, 1, 2)), pre.var(axis=(0, 1, 2)) + 1e-6
            gamma, beta, _, _ = bn.get_weights()
            bn.set_weights([gamma, beta, mean, var])
        dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)][-1]
        w, b = dense.get_weights()
        dense.set_weights([w * 4.0, b])  # spread the untrained logits (see _dense)
        inp = keras.Input(INPUT_SHAPE, batch_size=1)  # fixed batch: Flatten stays a RESHAPE
        return keras.Model(inp, model(inp, training=False))

    frames = _speech_frames(None, 6)
    calib = np.stack([frames[i : i + 49] for i in range(0, len(frames) - 49, 13)])[..., None]
    return _convert(arch, make, seed=0, calib=calib)


def _build(
    tflite: bytes, target: str, root: Path, stride: int = 2
) -> tuple[Path, dict[str, Path], dict[str, Any]]:
    model_dir = root / f"model-{target}"
    report = compile_model(tflite, model_dir, measure_tflm=False, stream=True, stream_stride=stride).report
    progs = build_programs(
        target, ["stream_runner", "model_runner"], model_dir, out_dir=root / f"build-{target}"
    )
    return model_dir, progs, report


def _check_stream(tflite: bytes, runner: StreamRunner, frames: np.ndarray, stride: int) -> list[int]:
    """Push `frames`; every inference's scores must equal TFLite Micro's on that window. Returns the
    push cycles of each inference."""
    window = runner.window_frames
    batch = runner.push(frames)
    expected_ends = list(range(window, len(frames) + 1, stride))
    assert [s.frames for s in batch.scores] == expected_ends
    got = np.stack([s.scores for s in batch.scores])
    windows = np.stack([frames[end - window : end].reshape(-1) for end in expected_ends])
    want = tflm.run(tflite, windows)
    bad = np.nonzero(np.any(got != want, axis=1))[0]
    assert bad.size == 0, (
        f"{bad.size} of {len(got)} inferences differ from TFLite Micro; first at frame "
        f"{expected_ends[bad[0]]}: got {got[bad[0]].tolist()} want {want[bad[0]].tolist()}"
    )
    # The comparison can fail: the scores change from window to window, and the window one frame
    # earlier would not have matched.
    distinct = len({row.tobytes() for row in got})
    assert distinct > len(got) // 10, f"only {distinct} distinct score vectors in {len(got)} windows"
    shifted = tflm.run(
        tflite, np.stack([frames[e - window - 1 : e - 1].reshape(-1) for e in expected_ends[1:9]])
    )
    assert not np.array_equal(shifted, got[1:9])
    return [s.cycles for s in batch.scores]


def _frames(n: int, width: int, seed: int) -> np.ndarray:
    """Random int8 frames with slowly drifting level, so windows differ but are not pure noise."""
    rng = np.random.default_rng(seed)
    drift = np.cumsum(rng.normal(0, 6, size=(n, 1)), axis=0)
    return np.clip(rng.normal(0, 40, size=(n, width)) + drift, -128, 127).astype(np.int8)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_small_models_stream_bit_exact_on_asan(name: str, build_root: Path) -> None:
    tflite = _convert(name, SMALL[name], seed=len(name))
    model_dir, progs, report = _build(tflite, "asan", build_root)
    st = report["streaming"]
    assert st["streamable"] and st["generated"], st
    assert st["mode"] == ("window" if "window" in name else "rowsum")
    phases = [stage["phases"] for stage in st["stages"]]
    assert (max(phases) > 1) == name.startswith("phased"), phases
    assert (model_dir / "nk_model_stream.h").is_file()
    assert st["macs_per_inference"] < st["full_window_macs"]
    width = int(np.prod(tflm.interpreter(tflite).get_input_details(0)["shape"][2:]))
    frames = _frames(460, width, seed=7)
    with StreamRunner(progs["stream_runner"], "asan") as r:
        assert (r.frame_len, r.window_frames, r.stride) == (width, 49, 2)
        assert r.state_bytes == st["state_bytes"] and r.work_bytes == st["work_bytes"]
        _check_stream(tflite, r, frames, 2)  # 206 consecutive windows
        # After a reset the stream starts over: the first scores need a whole window again.
        r.reset()
        _check_stream(tflite, r, frames[100:220], 2)
        # Clip mode from the same folder: nk_model_invoke in the same program equals TFLite Micro.
        for end in (49, 133, 460):
            out, _ = r.invoke(frames[end - 49 : end])
            np.testing.assert_array_equal(out, tflm.run(tflite, frames[None, end - 49 : end])[0])


def test_stride_can_change_to_multiples_of_the_alignment(build_root: Path) -> None:
    tflite = _convert("avgpool", SMALL["avgpool"], seed=len("avgpool"))
    _, progs, report = _build(tflite, "asan", build_root)
    assert report["streaming"]["stride_align_frames"] == 2
    frames = _frames(300, 12, seed=11)
    with StreamRunner(progs["stream_runner"], "asan") as r:
        assert r.set_stride(3) == -1 and r.set_stride(0) == -1
        assert r.set_stride(6) == 0
        _check_stream(tflite, r, frames, 6)
        # A new stride takes effect at once (as the firmware's INFERENCE_STRIDE does): the next
        # window comes at least `stride` frames after the previous one, at a multiple of the
        # alignment (2) after it.
        r.reset()
        assert r.set_stride(10) == 0
        first = r.push(frames[:103]).scores
        assert [s.frames for s in first] == list(range(49, 104, 10))  # the last at frame 99
        assert r.set_stride(2) == 0
        rest = r.push(frames[103:140]).scores
        assert [s.frames for s in rest] == list(range(105, 141, 2))  # not 104: 5 frames after 99
        r.reset()
        assert r.set_stride(6) == 0
        r.push(frames[:100])  # last scores at frame 97
        assert r.set_stride(2) == 0
        ends = [s.frames for s in r.push(frames[100:120]).scores]
        assert ends == list(range(101, 121, 2)), ends  # 101 - 97 = 4 frames since: at once
        got = np.stack([s.scores for s in first + rest])
        want = tflm.run(
            tflite, np.stack([frames[s.frames - 49 : s.frames].reshape(-1) for s in first + rest])
        )
        np.testing.assert_array_equal(got, want)


def test_clip_mode_of_a_streaming_folder_matches_tflm_in_model_runner(build_root: Path) -> None:
    tflite = _convert("window", SMALL["window"], seed=len("window"))
    _, progs, _ = _build(tflite, "asan", build_root)
    x = _frames(49 * 5, 8, seed=3).reshape(5, -1)
    with ModelRunner(progs["model_runner"], "asan") as r:
        got = np.stack([r.infer(row).output for row in x])
    np.testing.assert_array_equal(got, tflm.run(tflite, x))


def _speech_frames(root: Path | None, seconds: int) -> np.ndarray:
    """Frontend frames of consecutive clips (keywords and other words) from `root`, or of synthetic
    audio (tone bursts and chirps in noise) when `root` is None."""
    from nanokws.features import compute_features

    if root is None:
        rng = np.random.default_rng(5)
        t = np.arange(16000 * seconds) / 16000.0
        f = 300 + 1500 * (1 + np.sin(2 * np.pi * 0.37 * t))  # a slow chirp
        bursts = (np.sin(2 * np.pi * 1.3 * t) > 0.3).astype(np.float64)
        audio = 6000 * bursts * np.sin(2 * np.pi * np.cumsum(f) / 16000) + rng.normal(0, 300, t.size)
        return compute_features(np.clip(audio, -32768, 32767).astype(np.int16))
    from nanokws.data.wav import fit_clip, read_wav

    words = ["yes", "no", "up", "happy", "down", "left", "bird", "right", "on", "off", "stop", "go", "tree"]
    clips = []
    for i in range(seconds):
        wavs = sorted((root / words[i % len(words)]).glob("*.wav"))
        if wavs:
            clips.append(fit_clip(read_wav(wavs[(7 * i) % len(wavs)])))
    return compute_features(np.concatenate(clips))


def _ds_stream_case(
    target: str, build_root: Path, frames: np.ndarray, arch: str = "ds_cnn_stream"
) -> list[int]:
    tflite = _ds_cnn_stream(arch)
    _, progs, report = _build(tflite, target, build_root)
    st = report["streaming"]
    assert st["frame_len"] == 40 and st["window_frames"] == 49
    with StreamRunner(progs["stream_runner"], target) as r:
        return _check_stream(tflite, r, frames, 2)


@pytest.mark.parametrize("arch", ["ds_cnn_stream", "ds_cnn_stream_pad", "ds_cnn_stream_s4"])
def test_ds_cnn_stream_synthetic_audio_on_asan(build_root: Path, arch: str) -> None:
    frames = _speech_frames(None, 9)
    assert len(frames) >= 440
    _ds_stream_case("asan", build_root, frames, arch)


def test_ds_cnn_stream_real_clips_on_asan(build_root: Path, shared_speech_commands: Path) -> None:
    _ds_stream_case("asan", build_root, _speech_frames(shared_speech_commands, 13))


@needs_qemu
@pytest.mark.parametrize("name", ["avgpool", "pad_freq", "phased_rowsum"])
def test_small_model_stream_bit_exact_on_qemu(build_root: Path, name: str) -> None:
    tflite = _convert(name, SMALL[name], seed=len(name))
    _, progs, _ = _build(tflite, "qemu", build_root)
    width = int(np.prod(tflm.interpreter(tflite).get_input_details(0)["shape"][2:]))
    with StreamRunner(progs["stream_runner"], "qemu") as r:
        _check_stream(tflite, r, _frames(400, width, seed=9), 2)


@needs_qemu
def test_ds_cnn_stream_on_qemu_and_instruction_counts(build_root: Path) -> None:
    """Real clips when present, synthetic audio otherwise; the streaming step must be far cheaper than
    the full inference (instructions = SysTick ticks x 40 under -icount shift=0)."""
    from nanokws.paths import SHARED_SPEECH_COMMANDS

    root = SHARED_SPEECH_COMMANDS if SHARED_SPEECH_COMMANDS.is_dir() else None
    frames = _speech_frames(root, 9)
    tflite = _ds_cnn_stream()
    _, progs, _ = _build(tflite, "qemu", build_root)
    with StreamRunner(progs["stream_runner"], "qemu") as r:
        assert r.cycle_unit == "qemu_systick_ticks"
        _check_stream(tflite, r, frames, 2)
        # Steady state: all pushes of 2 x 40 frames after a full window, per inference.
        steady = r.push(frames[:80])
        _, full = r.invoke(frames[:49])
    per_inference = steady.total_cycles / len(steady.scores)
    assert len(steady.scores) == 40
    assert per_inference * 5 < full, (per_inference, full)


# ---- refusal and detection ----


def _same_padded_ds_cnn() -> bytes:
    """ds_cnn_m12 (the previous shipped default; SAME padding on both axes) with random weights."""

    def make(keras: Any) -> Any:
        from nanokws.train.models import INPUT_SHAPE, build_model

        inp = keras.Input(INPUT_SHAPE, batch_size=1)  # fixed batch: Flatten stays a RESHAPE
        return keras.Model(inp, build_model("ds_cnn_m12", 12)(inp, training=False))

    calib = np.random.default_rng(4).integers(-128, 128, size=(16, 49, 40, 1)).astype(np.float32)
    return _convert("ds_cnn_m12", make, seed=4, calib=calib)


def test_same_padded_model_is_refused_with_one_line(tmp_path: Path) -> None:
    tflite = _same_padded_ds_cnn()
    with pytest.raises(NotStreamableError) as err:
        compile_model(tflite, tmp_path / "c", measure_tflm=False, stream=True)
    msg = str(err.value)
    assert "\n" not in msg
    assert "layer 0 CONV_2D pads the time axis (SAME" in msg and "streaming needs VALID in time" in msg
    # Without --streaming it compiles and the report says why it cannot stream.
    report = compile_model(tflite, tmp_path / "c", measure_tflm=False).report
    assert report["streaming"]["streamable"] is False
    assert report["streaming"]["reason"] == msg.split(": ", 1)[1]
    assert not (tmp_path / "c" / "nk_model_stream.h").exists()


def test_cli_refuses_with_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nanokws.cli import main

    model = tmp_path / "same.tflite"
    model.write_bytes(_same_padded_ds_cnn())
    rc = main(["compile", "--model", str(model), "--out", str(tmp_path / "c"), "--no-tflm", "--streaming"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and "layer 0 CONV_2D pads the time axis" in err[0], err


def test_time_strides_must_divide_or_be_multiples_of_the_alignment(tmp_path: Path) -> None:
    tflite = _convert("strides_2_3", _strides_2_3_model, seed=5)
    with pytest.raises(
        NotStreamableError,
        match=r"layer 0 CONV_2D: the time strides up to here multiply to 2, which neither divides nor is a "
        r"multiple of 3 frames",
    ):
        compile_model(tflite, tmp_path / "c", measure_tflm=False, stream=True, stream_stride=3)
    st = compile_model(tflite, tmp_path / "c6", measure_tflm=False, stream=True, stream_stride=6).report
    assert (st["streaming"]["stride_align_frames"], st["streaming"]["collapse_row_spacing"]) == (6, 1)
    # At 2 frames the max pool's stride 3 goes beyond the alignment: its rows come every 2 frames and
    # the MEAN gathers every 3rd of them.
    _, progs, report = _build(tflite, "asan", tmp_path / "b", stride=2)
    st = report["streaming"]
    assert (st["stride_align_frames"], st["collapse_row_spacing"]) == (2, 3)
    with StreamRunner(progs["stream_runner"], "asan") as r:
        _check_stream(tflite, r, _frames(200, 6, seed=2), 2)


@pytest.mark.parametrize("stride", [1, 3, 4])
def test_a_time_stride_beyond_the_inference_stride_streams_in_phases(build_root: Path, stride: int) -> None:
    """mean_maxpool strides 2 in time. At an inference stride of 1 or 3 frames (alignment 1) the layer
    after the stride keeps 2 interleaved histories; at 4 (alignment 2) it needs none. Every
    inference equals TFLite Micro on its window, and the RAM grows by the second history."""
    tflite = _convert("mean_maxpool", SMALL["mean_maxpool"], seed=len("mean_maxpool"))
    model_dir, progs, report = _build(tflite, "asan", build_root / f"mm{stride}", stride=stride)
    st = report["streaming"]
    phased = stride != 4
    assert st["stride_align_frames"] == (1 if phased else 2)
    assert [s["phases"] for s in st["stages"]] == [1, 1, 2 if phased else 1]
    assert st["collapse_delay_rows"] == (1 if phased else 0)  # rows end 1 frame before the window
    assert st["ring_rows"] == (21 - 1) * (2 if phased else 1) + 1 + st["collapse_delay_rows"]
    assert st["stages"][2]["history_bytes"] == (2 if phased else 1) * 3 * 4 * 4
    with StreamRunner(progs["stream_runner"], "asan") as r:
        assert (r.stride, r.align) == (stride, st["stride_align_frames"])
        _check_stream(tflite, r, _frames(300, 10, seed=stride), stride)
        if stride == 1:  # a new stride at once, at any phase
            r.reset()
            assert r.set_stride(5) == 0
            _check_stream(tflite, r, _frames(200, 10, seed=8), 5)


def test_compile_detects_streamable_models_unless_told_not_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --streaming, `nanokws compile` generates the streaming form whenever the model can
    stream (and says so); --no-streaming opts out; the Python API detects by default too."""
    from nanokws.cli import main

    tflite = _convert("window", SMALL["window"], seed=len("window"))
    model = tmp_path / "m.tflite"
    model.write_bytes(tflite)
    out = tmp_path / "c"
    assert main(["compile", "--model", str(model), "--out", str(out), "--no-tflm"]) == 0
    text = capsys.readouterr().out
    assert "streaming form generated" in text and "nk_model_stream.h" in text.splitlines()[-1]
    assert (out / "nk_model_stream.h").is_file()
    st = json.loads((out / "compile_report.json").read_text())["streaming"]
    assert st["generated"] and st["requested"] == "detect"
    assert main(["compile", "--model", str(model), "--out", str(out), "--no-tflm", "--no-streaming"]) == 0
    text = capsys.readouterr().out
    assert "streaming form not generated (--no-streaming)" in text
    assert "nk_model_stream.h" not in text.splitlines()[-1]
    assert not (out / "nk_model_stream.h").exists()
    assert compile_model(tflite, out, measure_tflm=False).report["streaming"]["generated"]
    # Both flags at once are a usage error.
    with pytest.raises(SystemExit):
        main(["compile", "--model", str(model), "--out", str(out), "--streaming", "--no-streaming"])
    # A model that cannot stream compiles without the form and says why.
    same = tmp_path / "same.tflite"
    same.write_bytes(_same_padded_ds_cnn())
    assert main(["compile", "--model", str(same), "--out", str(tmp_path / "s"), "--no-tflm"]) == 0
    text = capsys.readouterr().out
    assert "not streamable (the firmware runs the full window per inference): layer 0 CONV_2D" in text
    assert not (tmp_path / "s" / "nk_model_stream.h").exists()


def test_stale_stream_header_is_removed_and_runner_says_so(build_root: Path, tmp_path: Path) -> None:
    tflite = _convert("avgpool", SMALL["avgpool"], seed=len("avgpool"))
    out = tmp_path / "c"
    compile_model(tflite, out, measure_tflm=False, stream=True)
    assert (out / "nk_model_stream.h").is_file()
    report = compile_model(tflite, out, measure_tflm=False, stream=False).report
    assert not (out / "nk_model_stream.h").exists()
    assert report["streaming"]["streamable"] and not report["streaming"]["generated"]
    assert report["streaming"]["requested"] == "off"
    assert json.loads((out / "compile_report.json").read_text())["streaming"]["generated"] is False
    progs = build_programs("asan", ["stream_runner"], out, out_dir=tmp_path / "b")
    from nanokws.errors import NanokwsError

    with pytest.raises(NanokwsError, match="no streaming form"):
        StreamRunner(progs["stream_runner"], "asan")


def test_ds_cnn_stream_budget() -> None:
    """The architecture's targets, converted as `nanokws train` does: .tflite <= 25,600 B, streaming
    RAM (state + work) <= 16 KB, an inference step a small fraction of the full window's MACs."""
    import tempfile

    import keras
    from nanokws.train.convert import convert_int8
    from nanokws.train.models import INPUT_SHAPE, build_model

    keras.utils.set_random_seed(0)
    calibration = np.random.default_rng(1).integers(-128, 128, (40, *INPUT_SHAPE[:2])).astype(np.int8)
    meta = {"labels": [f"l{i}" for i in range(12)], "model": "ds_cnn_stream"}
    tflite = convert_int8(build_model("ds_cnn_stream", 12), calibration, meta)
    assert len(tflite) <= 25_600
    with tempfile.TemporaryDirectory() as d:
        st = compile_model(tflite, d, measure_tflm=False, stream=True).report["streaming"]
    assert st["state_bytes"] + st["work_bytes"] <= 16 * 1024
    assert st["macs_per_inference"] * 10 < st["full_window_macs"]


def _saturated_pool_model(width: int) -> Any:
    """One 3-row conv whose bias drives most outputs to -128, then a global average pool over
    `width` frequency bins of one channel: each row's partial sum adds `width` values, reaching
    -128 x width on the rows that saturate."""

    def make(keras: Any) -> Any:
        inp = keras.Input((49, width, 1), batch_size=1)
        # Positive taps: an all -128 input gives the conv's least output (-1.5 x 2 - 4 = -7), which
        # calibration maps to -128.
        x = keras.layers.Rescaling(1 / 64)(inp)
        const = keras.initializers.Constant
        x = keras.layers.Conv2D(1, (3, 1), padding="valid", kernel_initializer=const(0.5),
                                bias_initializer=const(-4.0))(x)
        x = keras.layers.AveragePooling2D(pool_size=(int(x.shape[1]), width))(x)
        x = keras.layers.Flatten()(x)
        return keras.Model(inp, keras.layers.Softmax()(_dense(keras, 3, stddev=0.3)(x)))

    return make


@pytest.mark.parametrize("width", [256, 257])
def test_partial_sums_are_int16_up_to_256_values_a_row_and_exact_at_the_bound(width: int,
                                                                               build_root: Path) -> None:
    """A row's partial sum of up to 256 int8 values fits int16 (-32768..32512), so the ring keeps
    int16 sums and halves its RAM; from 257 values it keeps int32. At 256 the saturated rows sum to
    exactly -32768, and every inference still equals TFLite Micro."""
    frames = _frames(200, width, seed=3)
    frames[40:90] = -128  # whole windows of saturated rows
    calib = np.stack([frames[s : s + 49, :, None] for s in (0, 40, 70, 120, 150)])  # the -128 rows included
    tflite = _convert(f"saturated{width}", _saturated_pool_model(width), seed=1, calib=calib)
    model_dir, progs, report = _build(tflite, "asan", build_root / f"sat{width}")
    st = report["streaming"]
    assert st["mode"] == "rowsum"
    sum_bytes = 2 if width <= 256 else 4
    assert st["partial_sums_bytes"] == st["ring_rows"] * 1 * sum_bytes
    ctype = "int16_t" if width <= 256 else "int32_t"
    assert f"static {ctype} nk_stream_sums[" in (model_dir / "nk_model.c").read_text()
    with StreamRunner(progs["stream_runner"], "asan") as r:
        batch = r.push(frames)
        got = np.stack([s.scores for s in batch.scores])
        ends = [s.frames for s in batch.scores]
        want = tflm.run(tflite, np.stack([frames[e - 49 : e].reshape(-1) for e in ends]))
        np.testing.assert_array_equal(got, want)
        assert len({row.tobytes() for row in got}) > 3  # the scores do change from window to window
