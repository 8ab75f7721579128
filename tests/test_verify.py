"""`nanokws verify`: every intermediate tensor of the compiled C against TFLite Micro's, for every
input (edge cases, real features, random), per target; the shipped model on ASan and on QEMU (the
Cortex-M4 build with the DSP kernels) at the default number of inputs; verify.json beside the card;
nk_model_invoke's documented -1 for NULL pointers."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fixtures import capabilities
from fixtures.cfixture import build_fixture_c
from fixtures.shipped import shipped_model_streams
from nanokws.compiler import verify as V
from nanokws.paths import FIRMWARE_MODEL_DIR, SHARED_SPEECH_COMMANDS

SHIPPED = FIRMWARE_MODEL_DIR / "model.tflite"
_HEADER = (FIRMWARE_MODEL_DIR / "nk_model.h").read_text()
NUM_LAYERS = int(re.findall(r"#define NK_MODEL_NUM_LAYERS (\d+)", _HEADER)[0])


@pytest.fixture(scope="module")
def build_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One model/build folder for the module: each target's firmware library is built once.
    return tmp_path_factory.mktemp("verify_build")


# ---- inputs and comparison (no build) ------------------------------------------------------------


def test_edge_inputs_are_the_extremes_and_their_steps() -> None:
    cases = dict(V.edge_inputs((1, 49, 40, 1), zero_point=-128))
    assert list(cases) == ["min", "max", "alternating", "alternating_inverse", "zero", "rows_alternating",
                           "step", "ramp_up", "ramp_down"]
    assert all(v.dtype == np.int8 and v.shape == (1960,) for v in cases.values())
    assert set(cases["min"]) == {-128} and set(cases["max"]) == {127} and set(cases["zero"]) == {0}
    assert cases["alternating"][:4].tolist() == [-128, 127, -128, 127]
    assert np.array_equal(cases["alternating_inverse"], -1 - cases["alternating"])
    rows = cases["rows_alternating"].reshape(49, 40)
    assert set(rows[0]) == {-128} and set(rows[1]) == {127} and set(rows[48]) == {-128}
    assert sorted(set(cases["ramp_up"].tolist())) == list(range(-128, 128))
    assert cases["ramp_up"][255] == 127 and cases["ramp_down"][0] == 127
    # A zero point that is not already an extreme or 0 gets its own case; others do not repeat one.
    assert dict(V.edge_inputs((1, 49, 40, 1), zero_point=-3))["zero_point"].tolist() == [-3] * 1960
    assert "rows_alternating" not in dict(V.edge_inputs((1, 12), 0))


@pytest.mark.parametrize(("n", "features", "want"), [
    (200, 500, {"edge": 9, "features": 95, "random": 96}),
    (20, 500, {"edge": 6, "features": 7, "random": 7}),
    (3, 500, {"edge": 1, "features": 1, "random": 1}),
    (1, 500, {"edge": 1}),
    (200, 30, {"edge": 9, "features": 30, "random": 161}),
    (200, 0, {"edge": 9, "random": 191}),
])
def test_inputs_are_edge_cases_real_features_and_random(n: int, features: int, want: dict[str, int]) -> None:
    feats = np.random.default_rng(4).integers(-128, 128, (features, 49, 40), dtype=np.int8)
    notes: list[str] = []
    inputs = V.make_inputs((1, 49, 40, 1), -128, n, 0, None, feats, notes)
    assert inputs.values.shape == (n, 1960) and inputs.values.dtype == np.int8
    assert {k: inputs.kinds.count(k) for k in dict.fromkeys(inputs.kinds)} == want
    real = inputs.values[[k == "features" for k in inputs.kinds]]
    assert all(any(np.array_equal(r, f.reshape(-1)) for f in feats) for r in real)  # drawn, not made up
    assert bool(notes) == (want.get("features", 0) < (n - want["edge"]) // 2)  # a shortfall is said
    again = V.make_inputs((1, 49, 40, 1), -128, n, 0, None, feats, [])
    assert np.array_equal(inputs.values, again.values)  # seeded


def _infos(sizes: list[int]) -> list[V.TensorInfo]:
    return [V.TensorInfo(n, n, "CONV_2D", 10 + n, f"t{n}", (size,)) for n, size in enumerate(sizes)]


def test_a_difference_in_one_intermediate_tensor_is_caught_when_the_output_agrees() -> None:
    infos = _infos([6, 4, 3])
    rng = np.random.default_rng(0)
    ref = {t.tensor: rng.integers(-128, 128, t.elements).astype(np.int8) for t in infos}
    got = {k: v.copy() for k, v in ref.items()}
    assert V.differing(infos, ref, got) == []
    got[11][2] += 1  # one element of the middle tensor; the last tensor (the output) still agrees
    assert V.differing(infos, ref, got) == [1]
    where = V.first_difference(infos[1], ref[11], got[11])
    assert [where[k] for k in ("layer", "element", "expected", "got", "differing_elements")] == [
        1, 2, int(ref[11][2]), int(ref[11][2]) + 1, 1]
    del got[12]  # a tensor the program did not dump differs too
    got[10] = got[10][:5]  # and one of another length
    assert V.differing(infos, ref, got) == [0, 1, 2]
    assert V.first_difference(infos[0], ref[10], got[10])["note"] == "5 values instead of 6"


# ---- the shipped model: every tensor, default number of inputs, on ASan and on QEMU --------------


def _shipped_every_tensor(build_root: Path, target: str) -> V.VerifyResult:
    data = capabilities.shared_or_none(SHARED_SPEECH_COMMANDS, "real clips")
    t0 = time.perf_counter()
    res = V.verify(SHIPPED.read_bytes(), target, data=data or build_root / "no-data", build_dir=build_root,
                   progress=False)
    print(f"verify {target}: {res.n} inputs in {time.perf_counter() - t0:.1f} s "
          f"({res.results[0].seconds:.1f} s in the compiled C)")
    # What ran is the shipped C: the compiler regenerates firmware/model's nk_model.c byte for byte.
    for name in ("nk_model.c", "nk_model.h"):
        assert (build_root / "model" / name).read_bytes() == (FIRMWARE_MODEL_DIR / name).read_bytes(), name
    assert res.n == V.DEFAULT_N >= 200 and res.targets == [target]
    kinds = res.kind_counts()
    assert kinds["edge"] >= 9 and kinds["random"] >= 90
    if data is not None:
        assert kinds["features"] >= 90
    assert len(res.tensors) == NUM_LAYERS and res.not_compared == []
    (r,) = res.results
    assert res.ok and r.ok, "\n".join(V.report_lines(res))
    assert r.tensor_bad == [0] * NUM_LAYERS and r.output_bad == 0
    assert all(n > 0 and bad == 0 for n, bad in r.kinds.values())
    return res


@pytest.mark.slow
def test_shipped_model_every_tensor_bit_exact_on_asan(build_root: Path) -> None:
    _shipped_every_tensor(build_root, "asan")


@pytest.mark.slow
@pytest.mark.qemu
def test_shipped_model_every_tensor_bit_exact_on_qemu_dsp_build(build_root: Path) -> None:
    """The Cortex-M4 build (-mcpu=cortex-m4, the DSP/SIMD kernels) under QEMU."""
    _shipped_every_tensor(build_root, "qemu")


# ---- a mismatch fails, names the tensor and keeps exit code 1 -------------------------------------


def _flip_after_layer(layer: int) -> Callable[..., Any]:
    """compile_model, then the generated invoke flips bit 0 of the first element of `layer`'s output
    right after the layer runs (the next layers read the damaged tensor)."""
    from nanokws.compiler import compile as compile_mod

    real = compile_mod.compile_model

    def compile_model(tflite: bytes, out_dir: Any, *args: Any, **kwargs: Any) -> Any:
        result = real(tflite, out_dir, *args, **kwargs)
        c = Path(out_dir) / "nk_model.c"
        offset = result.plan.offsets[result.layers[layer].output]
        hook = f"    if (nk_hook) {{ nk_hook({layer}, 0); }}\n"
        text = c.read_text()
        # The whole window's nk_model_invoke (the streaming form's row code, appended after it, calls
        # the same hook around its own work).
        at = text.index(hook, text.index("int nk_model_invoke("))
        c.write_text(text[:at] + f"    nk_arena[{offset}] ^= 1;\n" + text[at:])
        return result

    return compile_model


def test_a_damaged_layer_fails_with_exit_1_and_is_named(
    build_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nanokws.cli import main
    from nanokws.compiler import compile as compile_mod

    monkeypatch.setattr(compile_mod, "compile_model", _flip_after_layer(2))
    out = tmp_path / "v.json"
    rc = main(["verify", "--model", str(SHIPPED), "--n", "12", "--data", str(tmp_path / "none"),
               "--build-dir", str(build_root), "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 1, text
    doc = json.loads(out.read_text())
    assert doc["ok"] is False and doc["targets"] == ["host"] and doc["n"] == 12
    host = doc["results"]["host"]
    assert host["mismatched_inputs"] == 12 and host["by_kind"] == {"edge": {"inputs": 4, "mismatched": 4},
                                                                   "random": {"inputs": 8, "mismatched": 8}}
    assert [t["mismatched_inputs"] for t in host["by_tensor"]][:3] == [0, 0, 12]
    first = host["first_mismatch"]
    assert (first["input"], first["case"], first["layer"], first["element"]) == (0, "edge:min", 2, 0)
    assert first["got"] == first["expected"] ^ 1
    assert doc["mismatch"] == first
    assert "MISMATCH" in text and "layer 2 (op 2 " in text and "differs on 12 inputs" in text


# ---- the record: verify --json, verify.json beside the shipped card ------------------------------


def test_json_records_target_inputs_tensors_tflm_version_and_model(build_root: Path, tmp_path: Path) -> None:
    from nanokws.cli import main
    from nanokws.versions import tool_versions

    out = tmp_path / "v.json"
    assert main(["verify", "--model", str(SHIPPED), "--n", "9", "--data", str(tmp_path / "none"),
                 "--build-dir", str(build_root), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["ok"] is True and doc["targets"] == ["host"] and doc["n"] == 9
    assert doc["inputs"] == {"edge": 3, "random": 6} and doc["edge_cases"] == ["min", "max", "alternating"]
    assert doc["model_sha256"] == hashlib.sha256(SHIPPED.read_bytes()).hexdigest()
    assert doc["tflm_version"] == tool_versions()["tflite-micro"] and doc["tflm_version"]
    assert [t["layer"] for t in doc["tensors_compared"]] == list(range(NUM_LAYERS))
    assert doc["values_compared_per_input"] == sum(t["elements"] for t in doc["tensors_compared"])
    assert doc["results"]["host"]["by_tensor"] == [
        {"layer": t["layer"], "tensor": t["tensor"], "mismatched_inputs": 0} for t in doc["tensors_compared"]]
    assert doc["command"].startswith("nanokws verify")


def test_repo_verify_json_is_the_shipped_models_every_tensor_record() -> None:
    from nanokws.ship import render_card_md, verify_section

    doc = json.loads((FIRMWARE_MODEL_DIR / "verify.json").read_text())
    assert doc["model_sha256"] == hashlib.sha256(SHIPPED.read_bytes()).hexdigest()
    assert doc["ok"] is True and {"asan", "qemu"} <= set(doc["targets"]) and doc["n"] >= 200
    assert set(doc["inputs"]) == {"edge", "features", "random"} and sum(doc["inputs"].values()) == doc["n"]
    assert len(doc["tensors_compared"]) == NUM_LAYERS and doc["tflm_version"]
    for target in doc["targets"]:
        assert doc["results"][target]["ok"] is True and doc["results"][target]["mismatched_inputs"] == 0
    card = json.loads((FIRMWARE_MODEL_DIR / "model_card.json").read_text())
    assert card["verify"] == verify_section(doc) and "verify.json" in card["files"]
    md = (FIRMWARE_MODEL_DIR / "model_card.md").read_text()
    assert md == render_card_md(card) and "record: `verify.json`." in md


def test_refresh_verify_installs_the_record_and_the_card_line(tmp_path: Path) -> None:
    from nanokws.errors import NanokwsError
    from nanokws.ship import refresh_verify

    for name in ("model_card.json", "model_card.md"):
        shutil.copy(FIRMWARE_MODEL_DIR / name, tmp_path / name)
    card = json.loads((tmp_path / "model_card.json").read_text())
    card.pop("verify", None)
    card["files"] = [f for f in card["files"] if f != "verify.json"]
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    doc = {"ok": True, "targets": ["asan"], "n": 200, "inputs": {"edge": 9, "random": 191},
           "model_sha256": card["sha256"], "tflm_version": "9.9", "tensors_compared": [{}] * 3}
    with pytest.raises(NanokwsError, match="not this one"):
        refresh_verify(tmp_path, {**doc, "model_sha256": "0" * 64})
    with pytest.raises(NanokwsError, match="not a passing"):
        refresh_verify(tmp_path, {**doc, "ok": False})
    assert not (tmp_path / "verify.json").exists()
    new = refresh_verify(tmp_path, doc)
    assert json.loads((tmp_path / "verify.json").read_text()) == doc
    assert "verify.json" in new["files"] and new["verify"]["tensors_per_input"] == 3
    md = (tmp_path / "model_card.md").read_text()
    line = [x for x in md.splitlines() if x.startswith("Bit-exact:")]
    assert line == ["Bit-exact: every tensor of the compiled C (3 layer outputs) equal to TFLite Micro 9.9's "
                    "on 200 inputs (edge 9, random 191) on ASan/UBSan (host); record: `verify.json`."]


# ---- nk_model_invoke: its status means something ---------------------------------------------------


def null_check(model_dir: Path, tmp_path: Path) -> list[str]:
    """Build tests/fixtures/invoke_null_check.c with `model_dir`'s compiled C (ASan/UBSan,
    -Werror) and return its output lines."""
    exe = build_fixture_c("invoke_null_check.c", model_dir, ("kernels",), tmp_path,
                          extra_flags=("-Wshadow", "-Wstrict-prototypes"))
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.splitlines()


def test_invoke_returns_minus_1_for_null_pointers_and_leaves_the_output(tmp_path: Path) -> None:
    """nk_model.h: 0, or -1 (nothing run, output untouched) when input or output is NULL; the shipped
    model's generated C. With a streaming form, also nk_model_stream_push: a NULL frame is refused,
    and the first scores come after exactly the model's window of frames."""
    want = ["invoke -1 -1 0 1"]
    report = json.loads((FIRMWARE_MODEL_DIR / "compile_report.json").read_text())
    if shipped_model_streams():
        want.append(f"stream -1 {report['streaming']['window_frames']}")
    assert null_check(FIRMWARE_MODEL_DIR, tmp_path) == want


# ---- a model with a streaming form ----------------------------------------------------------------


@pytest.mark.slow
def test_streaming_form_is_verified_too(build_root: Path, tmp_path: Path) -> None:
    """A streamable model: verify also pushes every input through nk_model_stream_push (after a
    reset) and compares its scores; the stream's NULL frame is refused without counting a frame."""
    import tensorflow as tf
    from fixtures.tflite_int8 import convert_full_int8

    tf.keras.utils.set_random_seed(3)
    inp = tf.keras.Input((49, 40, 1), batch_size=1)
    x = tf.keras.layers.Conv2D(4, (5, 4), strides=(2, 2), padding="valid", activation="relu")(inp)
    x = tf.keras.layers.DepthwiseConv2D((3, 3), padding="valid", activation="relu")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    model = tf.keras.Model(inp, tf.keras.layers.Softmax()(tf.keras.layers.Dense(5)(x)))
    rng = np.random.default_rng(3)
    tflite = convert_full_int8(model, lambda: (rng.normal(0, 40, (1, 49, 40, 1)) for _ in range(16)))
    res = V.verify(tflite, "host", 12, data=tmp_path / "none", build_dir=build_root, progress=False)
    assert res.streaming and res.ok, "\n".join(V.report_lines(res))
    assert res.results[0].stream_bad == 0 and res.as_dict()["streaming_form_compared"] is True
    assert null_check(build_root / "model", tmp_path) == ["invoke -1 -1 0 1", "stream -1 49"]


def test_given_clip_features_are_centred_in_a_longer_window() -> None:
    """ship hands verify its held-out clips' 49-frame features; a model with a longer window gets them
    centred in it (window.py), not refused as the wrong size."""
    from nanokws.compiler.verify import make_inputs
    from nanokws.window import pad_to_window

    clips = np.random.default_rng(2).integers(-128, 128, size=(30, 49, 40)).astype(np.int8)
    notes: list[str] = []
    inputs = make_inputs([1, 60, 40, 1], 0, 12, 0, None, clips, notes)
    real = inputs.values[[k == "features" for k in inputs.kinds]]
    assert len(real) == 4 and not notes
    padded = pad_to_window(clips, 60).reshape(30, -1)
    assert all(any(np.array_equal(r, p) for p in padded) for r in real)


def test_given_clip_features_longer_than_the_window_are_noted_not_padded() -> None:
    """Clips longer than the model's window cannot be centred in it: noted, random inputs instead
    (as before windows), not an error."""
    from nanokws.compiler.verify import make_inputs

    clips = np.random.default_rng(2).integers(-128, 128, size=(30, 49, 40)).astype(np.int8)
    notes: list[str] = []
    inputs = make_inputs([1, 20, 40, 1], 0, 12, 0, None, clips, notes)
    assert "features" not in inputs.kinds and any("the model takes 800" in n for n in notes)
