"""`nanokws ship`: the installed folder is consistent with the model, and the card's numbers are real."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from nanokws.data import labels_for
from nanokws.paths import FIRMWARE_MODEL_DIR
from test_train import KEYWORDS, make_tone_dataset


def _array_bytes(cc: str) -> bytes:
    body = cc[cc.index("g_model_data[] = {"):cc.index("};")]
    return bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body))


def _define(text: str, name: str) -> str:
    m = re.search(rf"#define {name} (.+)", text)
    assert m, f"{name} missing"
    return m.group(1).strip()


def _litert_outputs(tflite: bytes, feats: np.ndarray) -> np.ndarray:
    """int8 outputs from TensorFlow's interpreter with its builtin kernels (XNNPACK rounds differently),
    each clip centred in the model's window as window.py does when the window is longer."""
    import tensorflow as tf
    from nanokws.window import pad_to_input

    interp = tf.lite.Interpreter(model_content=tflite, experimental_op_resolver_type=(
        tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    outs = []
    for f in feats:
        interp.set_tensor(inp["index"], pad_to_input(f, inp["shape"]).reshape(inp["shape"]).astype(np.int8))
        interp.invoke()
        outs.append(interp.get_tensor(out["index"]).reshape(-1))
    return np.array(outs)


def _tflm_outputs(tflite: bytes, feats: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(tflite)
    outs = []
    for f in feats:
        interp.set_input(f.reshape(1, 49, 40, 1).astype(np.int8), 0)
        interp.invoke()
        outs.append(interp.get_output(0).reshape(-1))
    return np.array(outs)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, dict]:
    from nanokws.ship import ship_model
    from nanokws.train import train_model

    data = make_tone_dataset(tmp_path_factory.mktemp("tones"), speakers=50, seed=2)
    run = train_model([data], "tiny", tmp_path_factory.mktemp("run"), epochs=3, keywords=KEYWORDS,
                      command="nanokws train --test", verbose=False)
    out = tmp_path_factory.mktemp("ship")
    labels = labels_for(KEYWORDS)
    rec = tmp_path_factory.mktemp("rec") / "recognizer.json"
    rec.write_text(json.dumps({"labels": labels, "source": "test calibration", "window": 3, "release": 40,
                               "suppression_ms": 900, "thresholds": [200 + i for i in range(len(labels))]}))
    from nanokws.streams.builder import StreamOptions, build_stream, load_material, write_stream

    stream = tmp_path_factory.mktemp("stream")
    write_stream(stream, *build_stream(load_material(data, KEYWORDS, "test"),
                                       StreamOptions(minutes=1.0, seed=3, split="test", snrs=(None, 10.0))))
    card = ship_model(run.tflite_path, [data], out, split="test", ship_command="nanokws ship --test",
                      verbose=False, snrs=[10.0], quieter_db=[30.0], recognizer=rec, stream=stream)
    return run.tflite_path, data, out, card


def check_installed_folder(out: Path, tflite: bytes) -> dict:
    """Every artifact in `out` is made from the same .tflite bytes; returns the card."""
    sha = hashlib.sha256(tflite).hexdigest()
    assert (out / "model.tflite").read_bytes() == tflite
    assert _array_bytes((out / "model_data.cc").read_text()) == tflite
    assert _define((out / "model_config.h").read_text(), "NK_MODEL_HASH") == f'"{sha[:16]}"'
    card = json.loads((out / "model_card.json").read_text())
    assert card["sha256"] == sha and card["model_hash"] == sha[:16]
    assert card["size"]["int8_model_bytes"] == len(tflite)
    assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    present = sorted(p.name for p in out.iterdir() if p.is_file() and p.name != "README.md")
    assert sorted(card["files"]) == present
    if (out / "nk_model.c").exists():
        report = json.loads((out / "compile_report.json").read_text())
        assert report["sha256"] == sha
        assert int(_define((out / "nk_model.h").read_text(), "NK_MODEL_ARENA_BYTES")) == report["arena_bytes"]
        assert card["size"]["arena_compiled_bytes"] == report["arena_bytes"]
        stream = report.get("streaming") or {}
        linked = stream["total_ram_bytes"] if stream.get("generated") else report["arena_bytes"]
        if "model_ram_bytes" in card["size"]:
            assert card["size"]["model_ram_bytes"] == linked
        else:  # a card written before streaming forms existed: its arena is the model RAM
            assert not stream.get("generated")
        assert card["architecture"]["macs"] == report["total_macs"] > 0
    md = (out / "model_card.md").read_text()
    assert f"{card['accuracy']['int8']:.2%}" in md and str(len(tflite)) in md
    assert all(cmd in md for cmd in card["reproduce"])
    return card


def test_card_headline_robustness_and_versions(shipped: tuple[Path, Path, Path, dict]) -> None:
    """The card leads with the compiled C's accuracy; its robustness rows are `nanokws eval`'s
    conditions on the same clips; it records the tool versions."""
    from nanokws.evaluate import evaluate_model
    from nanokws.versions import tool_versions

    model, data, out, card = shipped
    acc = card["accuracy"]
    assert acc["compiled_c"] is not None and acc["device"] == acc["compiled_c"]["accuracy"]
    md = (out / "model_card.md").read_text()
    first_row = next(line for line in md.splitlines() if line.startswith("| int8"))
    assert "compiled C the firmware runs" in first_row and f"{acc['device']:.2%}" in first_row
    ev = evaluate_model(model, [data], split="test", snrs=[10.0], quieter_db=[30.0], verbose=False)
    assert card["robustness"] == ev["conditions"]
    assert [r["name"] for r in card["robustness"]] == ["clean", "10 dB SNR", "30 dB quieter"]
    assert "## Robustness" in md and "30 dB quieter" in md
    assert (out / "robustness.png").read_bytes()[:4] == b"\x89PNG"
    assert card["versions"] == tool_versions() and "Tool versions: " in md


def test_recognizer_settings_go_into_the_firmware_config_and_the_card(
    shipped: tuple[Path, Path, Path, dict],
) -> None:
    _model, _data, out, card = shipped
    labels = card["labels"]
    want = [200 + i for i in range(len(labels))]
    config = (out / "model_config.h").read_text()
    assert _define(config, "NK_MODEL_REC_THRESHOLDS") == "{ " + ", ".join(map(str, want)) + " }"
    assert _define(config, "NK_MODEL_REC_WINDOW") == "3" and _define(config, "NK_MODEL_REC_RELEASE") == "40"
    assert _define(config, "NK_MODEL_REC_SUPPRESSION_MS") == "900"
    assert card["recognizer"] == {"source": "test calibration", "thresholds": want, "window": 3,
                                  "suppression_ms": 900, "release": 40, "labels": labels}
    md = (out / "model_card.md").read_text()
    assert "From: test calibration." in md and f"{labels[2]} {want[2]}" in md


def test_card_streaming_section_is_the_installed_firmware_on_the_stream(
    shipped: tuple[Path, Path, Path, dict], tmp_path: Path
) -> None:
    """The card's streaming numbers are what the installed folder's own firmware path (with its
    model_config.h start-up settings, here recognizer.json's) gives on the stream."""
    from nanokws.streams import metrics
    from nanokws.streams.builder import read_stream
    from nanokws.streams.scorer import score_audio

    _model, _data, out, card = shipped
    sd = card["streaming_detection"]
    audio, truth = read_stream(Path(sd["stream"]))
    run = score_audio(out, audio, build_root=tmp_path)
    assert run.config["thresholds"] == card["recognizer"]["thresholds"] and run.config["window"] == 3
    rep = metrics.evaluate(truth, metrics.timed(run.detections, run.labels, run.hop_samples, run.sample_rate))
    for key in ("keywords", "hits", "frr", "distractor_words_fired", "repeats", "confusions", "fa_per_hour",
                "latency_s"):
        assert sd[key] == rep[key], key
    assert sd["keywords"] > 0 and sd["replay_equals_firmware"] is True
    assert (out / "det.png").read_bytes()[:4] == b"\x89PNG" and len(sd["det_overall"]) > 10
    md = (out / "model_card.md").read_text()
    assert "## Streaming detection" in md and f"{sd['keywords'] - sd['hits']} of {sd['keywords']}" in md
    if sd["hits"]:
        assert f"| {sd['latency_s']['median']} s / {sd['latency_s']['p90']} s |" in md


def test_installed_files_all_come_from_the_model(shipped: tuple[Path, Path, Path, dict]) -> None:
    model, _data, out, card = shipped
    on_disk = check_installed_folder(out, model.read_bytes())
    on_disk.pop("files")
    assert on_disk == {k: v for k, v in card.items() if k != "files"}
    assert (out / "nk_model.c").exists(), "the compiler is in this checkout, so ship must compile"
    assert card["reproduce"] == ["nanokws train --test", "nanokws ship --test"]
    assert card["labels"][2:] == KEYWORDS
    # Deployed parameters, counted with TensorFlow's own reader: the constant inputs (weights, biases)
    # of the compute ops; Keras counts BatchNormalization statistics too (folded away at conversion).
    import tensorflow as tf

    interp = tf.lite.Interpreter(model_content=model.read_bytes())
    interp.allocate_tensors()
    consts = {i for op in interp._get_ops_details()
              if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
              for i in list(op["inputs"])[1:] if i >= 0}
    want = sum(int(np.prod(interp.get_tensor(i).shape)) for i in consts)
    assert card["architecture"]["params"] == want > 0
    assert card["architecture"]["keras_params"] >= want  # equal for `tiny`: it has no BatchNorm


def test_card_accuracy_matches_an_independent_evaluation(shipped: tuple[Path, Path, Path, dict]) -> None:
    import keras
    from nanokws.data import load_dataset
    from nanokws.features import compute_features_batch

    model, data, _out, card = shipped
    audio, y = load_dataset(data, KEYWORDS).arrays("test")
    feats = compute_features_batch(audio)
    outs, micro = _litert_outputs(model.read_bytes(), feats), _tflm_outputs(model.read_bytes(), feats)
    preds = np.argmax(outs, axis=1)
    cm = np.array(card["confusion"])
    assert card["accuracy"]["n"] == len(y) == cm.sum()
    assert card["accuracy"]["int8"] == pytest.approx(np.mean(preds == y))
    for i in range(len(card["labels"])):
        assert cm[i].sum() == np.count_nonzero(y == i) and cm[:, i].sum() == np.count_nonzero(preds == i)
    net = keras.models.load_model(model.with_name("model.keras"), compile=False)
    float_preds = np.argmax(net.predict(feats.astype(np.float32)[..., None], verbose=0), axis=1)
    assert card["accuracy"]["float"] == pytest.approx(np.mean(float_preds == y))
    acc = card["accuracy"]
    assert acc["float_minus_int8"] == pytest.approx(acc["float"] - acc["int8"])
    assert acc["int8_tflm"] == pytest.approx(np.mean(np.argmax(micro, axis=1) == y))
    # The compiled C ran on every clip (ship refuses a model whose C differs from TFLite Micro), so
    # its accuracy is TFLite Micro's.
    c = acc["compiled_c"]
    assert c["clips"] == len(y) and c["equal_to_tflm"] is True
    assert c["accuracy"] == pytest.approx(np.mean(np.argmax(micro, axis=1) == y))
    # Which LiteRT build the card used (ai_edge_litert or TensorFlow's) decides a rare rounding tie.
    from nanokws.evaluate.runtime import run_litert

    litert = run_litert(model.read_bytes(), feats)
    assert acc["tflm_mismatches"] == np.count_nonzero(np.any(litert != micro, axis=1))
    assert acc["tflm_agrees_with_litert"] == (acc["tflm_mismatches"] == 0)


def test_ship_writes_verify_json_beside_the_card(shipped: tuple[Path, Path, Path, dict]) -> None:
    """`nanokws verify` ran on the compiled C (every tensor, the default number of inputs, the held-out
    features among them); verify.json records it and the card says so in one line."""
    from nanokws.compiler.verify import DEFAULT_N
    from nanokws.ship import verify_section
    from nanokws.versions import tool_versions

    model, _data, out, card = shipped
    doc = json.loads((out / "verify.json").read_text())
    assert doc["ok"] is True and doc["targets"] == ["asan"] and doc["n"] == DEFAULT_N
    assert doc["model_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert all(doc["inputs"].get(k, 0) > 0 for k in ("edge", "features", "random"))
    assert doc["tflm_version"] == tool_versions()["tflite-micro"]
    assert len(doc["tensors_compared"]) == len(card["architecture"]["layers"])
    assert doc["results"]["asan"]["mismatched_inputs"] == 0
    assert card["verify"] == verify_section(doc)
    md = (out / "model_card.md").read_text()
    stream = " and the streaming form's scores" if doc["streaming_form_compared"] else ""
    assert [line for line in md.splitlines() if "verify.json" in line] == [
        f"Bit-exact: every tensor of the compiled C ({len(doc['tensors_compared'])} layer outputs{stream}) "
        f"equal to TFLite Micro {doc['tflm_version']}'s on {doc['n']} inputs (edge {doc['inputs']['edge']}, "
        f"features {doc['inputs']['features']}, random {doc['inputs']['random']}) on ASan/UBSan (host); "
        "record: `verify.json`."]


def test_shipping_without_compiling_removes_stale_compiled_c(shipped: tuple[Path, Path, Path, dict]) -> None:
    from nanokws.ship import ship_model

    model, data, out, _card = shipped
    assert (out / "nk_model.c").exists()
    card = ship_model(model, [data], out, split="test", compile_c=False, verbose=False)
    assert not (out / "nk_model.c").exists() and not (out / "compile_report.json").exists()
    assert not (out / "verify.json").exists() and card["verify"] is None
    assert card["architecture"]["macs"] is None and card["targets"]["met"]["arena_bytes"] is False
    check_installed_folder(out, model.read_bytes())


def test_cli_missing_model_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nanokws.cli import main

    assert main(["ship", "--model", str(tmp_path / "none.tflite"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not found" in err
    assert not (tmp_path / "o").exists()


def test_help_teaches() -> None:
    from nanokws.ship import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    text = parser.format_help()
    assert "nanokws ship --model" in text and "default: test" in text


def test_card_reproduce_lists_the_stream_build_and_the_quoted_bench() -> None:
    """The card's commands in the order they ran: train, the stream's build (its truth.json's, as
    `nanokws stream score` reports it), the bench report given with --bench, ship; a stream without
    a recorded command, or a bench ship runs itself, adds none."""
    from nanokws.ship import reproduce_commands

    bench = {"command": "nanokws bench --b"}
    assert reproduce_commands("nanokws train --t", "nanokws stream build --x", bench, "nanokws ship --s") == [
        "nanokws train --t", "nanokws stream build --x", "nanokws bench --b", "nanokws ship --s"]
    assert reproduce_commands("nanokws train --t", None, True, "nanokws ship --s") == [
        "nanokws train --t", "nanokws ship --s"]
    assert reproduce_commands(None, None, False, None) == []


def test_card_reproduce_lists_the_calibration_of_the_installed_recognizer(tmp_path: Path) -> None:
    """A recognizer.json that `nanokws calibrate` wrote brings its command (calibration.json beside
    it) into the card's commands, after training; a hand-written one, or one whose calibration.json
    has no command (a calibration run from Python), adds none."""
    from nanokws.ship import calibrate_command_for, reproduce_commands

    rec = tmp_path / "cal" / "recognizer.json"
    rec.parent.mkdir()
    rec.write_text("{}")
    assert calibrate_command_for(rec) is None and calibrate_command_for(None) is None
    (rec.parent / "calibration.json").write_text(json.dumps({"command": None}))
    assert calibrate_command_for(rec) is None
    (rec.parent / "calibration.json").write_text(json.dumps({"command": "nanokws calibrate --c"}))
    assert calibrate_command_for(rec) == "nanokws calibrate --c"
    assert reproduce_commands("nanokws train --t", "nanokws stream build --x", False, "nanokws ship --s",
                              calibrate_command_for(rec)) == [
        "nanokws train --t", "nanokws calibrate --c", "nanokws stream build --x", "nanokws ship --s"]


# --- the model that ships in the repository ------------------------------------------------------


def test_repo_firmware_model_is_consistent() -> None:
    card = check_installed_folder(FIRMWARE_MODEL_DIR, (FIRMWARE_MODEL_DIR / "model.tflite").read_bytes())
    assert card["reproduce"] and card["reproduce"][0].startswith("nanokws train")
    assert card["reproduce"][-1].startswith("nanokws ship")  # after any stream it is scored on
    acc = card["accuracy"]
    # LiteRT's and TFLite Micro's int8 kernels may round a few clips differently; never many.
    assert acc["tflm_mismatches"] <= 0.01 * acc["n"] and abs(acc["int8_tflm"] - acc["int8"]) <= 0.01
    assert card["accuracy"]["int8_tflm"] == card["accuracy"]["int8"]


@pytest.mark.slow
def test_repo_card_accuracy_is_reproducible_on_shared_clips(shared_speech_commands: Path) -> None:
    from nanokws.data import load_dataset
    from nanokws.features import compute_features_batch

    card = json.loads((FIRMWARE_MODEL_DIR / "model_card.json").read_text())
    audio, y = load_dataset(shared_speech_commands, card["labels"][2:]).arrays(card["accuracy"]["split"])
    tflite = (FIRMWARE_MODEL_DIR / "model.tflite").read_bytes()
    preds = np.argmax(_litert_outputs(tflite, compute_features_batch(audio)), axis=1)
    assert card["accuracy"]["n"] == len(y)
    assert np.array_equal(np.array(card["confusion"]), _confusion(y, preds, len(card["labels"])))


def _confusion(y: np.ndarray, p: np.ndarray, n: int) -> np.ndarray:
    cm = np.zeros((n, n), np.int64)
    for t, q in zip(y, p, strict=True):
        cm[t, q] += 1
    return cm


def test_repo_compiled_c_regenerates_identically_from_the_shipped_tflite(tmp_path: Path) -> None:
    from nanokws.compiler import compile_model
    from nanokws.export import export_model
    from nanokws.streams.replay import RecognizerConfig, RecognizerFile

    # The start-up recognizer settings the card records (a calibration's, or the library's).
    rec = json.loads((FIRMWARE_MODEL_DIR / "model_card.json").read_text())["recognizer"]
    rec_file = RecognizerFile(RecognizerConfig.from_json(rec), tuple(rec["labels"]), rec["source"])
    tflite_path = FIRMWARE_MODEL_DIR / "model.tflite"
    compile_model(tflite_path.read_bytes(), tmp_path / "c", source="model.tflite", measure_tflm=False,
                  recognizer=rec_file)
    export_model(tflite_path, tmp_path / "e", recognizer=rec_file)
    for folder, names in (("c", ("nk_model.c", "nk_model.h", "model_config.h")),
                          ("e", ("model_data.cc", "model_data.h", "model_config.h"))):
        for name in names:
            assert (tmp_path / folder / name).read_bytes() == (FIRMWARE_MODEL_DIR / name).read_bytes(), name


# The shipped model's every tensor against TFLite Micro, on ASan and on QEMU: tests/test_verify.py.


def test_card_counts_the_streaming_ram_not_the_unlinked_arena() -> None:
    """A model with a streaming form: the firmware links its stream RAM, not the full-window arena,
    so the RAM target is judged on that, and the card says which is which."""
    from nanokws.ship import TARGETS, _card, render_card_md

    compiled = {"arena_bytes": 21_952, "weights_flash_bytes": 16_000, "total_macs": 1_000, "layers": [],
                "tflm_arena_total_bytes": 28_000,
                "streaming": {"generated": True, "total_ram_bytes": 8_900}}
    report = {"accuracy": 0.9, "float": None, "labels": ["a", "b"], "tflm_accuracy": 0.9, "n": 10,
              "split": "test", "data": ["d"], "tflm_agrees": True, "tflm_mismatches": 0,
              "per_class": {}, "confusion": [[1, 0], [0, 1]]}
    card = _card(b"x" * 100, {"model": "m"}, report, compiled, (10, None), {}, [])
    assert card["size"]["model_ram_bytes"] == 8_900 and card["size"]["streaming"] is True
    assert card["targets"]["met"]["arena_bytes"] is (8_900 <= TARGETS["arena_bytes"])
    md = render_card_md(card)
    assert "8900 B" in md and "not linked when the firmware streams" in md
    compiled["streaming"] = {"generated": False, "total_ram_bytes": 8_900}
    card = _card(b"x" * 100, {"model": "m"}, report, compiled, (10, None), {}, [])
    assert card["size"]["model_ram_bytes"] == 21_952 and card["targets"]["met"]["arena_bytes"] is False


def test_card_names_a_distillation_teacher_by_its_bytes(tmp_path: Path) -> None:
    """A distilled model's card names its teacher with its sha256 (recorded at training, or hashed
    from the file when older metrics lack it): runs/ is not in the repository, so the path alone
    would not find the teacher again. Without a teacher there is no such line."""
    import hashlib

    from nanokws.ship import _card, render_card_md

    teacher = tmp_path / "teacher.tflite"
    teacher.write_bytes(b"teacher bytes")
    sha = hashlib.sha256(b"teacher bytes").hexdigest()
    report = {"accuracy": 0.9, "float": None, "labels": ["a", "b"], "tflm_accuracy": 0.9, "n": 10,
              "split": "test", "data": ["d"], "tflm_agrees": True, "tflm_mismatches": 0,
              "per_class": {}, "confusion": [[1, 0], [0, 1]]}
    for recorded in ({"sha256": sha}, {}):  # metrics with the hash, and older ones without it
        train = {"seed": 2, "teacher": {"model": str(teacher), "weight": 0.5, **recorded}}
        card = _card(b"x" * 100, {"model": "m"}, report, None, (10, None), train, [])
        assert card["training"]["teacher"] == {"model": str(teacher), "weight": 0.5, "sha256": sha}
        md = render_card_md(card)
        assert f"Distilled from `{teacher}` (sha256 {sha[:16]}…, teacher weight 0.5)" in md
        assert "teacher {" not in md  # not also dumped raw into the training line
    gone = {"seed": 2, "teacher": {"model": str(tmp_path / "gone.tflite"), "weight": 0.5}}
    card = _card(b"x" * 100, {"model": "m"}, report, None, (10, None), gone, [])
    assert "sha256 unknown" in render_card_md(card)
    card = _card(b"x" * 100, {"model": "m"}, report, None, (10, None), {"seed": 2}, [])
    assert card["training"]["teacher"] is None and "Distilled" not in render_card_md(card)


def test_float_predictions_centre_clips_in_a_longer_window(tmp_path: Path) -> None:
    """ship's float column runs the Keras model on the clips centred in its window, as the int8
    paths do: the same predictions as on the clips padded by hand."""
    import keras
    from nanokws.ship import _float_predictions
    from nanokws.train.models_extra import ds_cnn_stream_net
    from nanokws.window import pad_to_window

    keras.utils.set_random_seed(0)
    model = ds_cnn_stream_net(4, stem=4, channels=8, blocks=2, name="w", frames=60)
    model.save(tmp_path / "model.keras")
    x = np.random.default_rng(0).integers(-128, 128, size=(5, 49, 40)).astype(np.int8)
    got = _float_predictions(tmp_path / "model.keras", x)
    want = np.argmax(model.predict(pad_to_window(x, 60).astype(np.float32)[..., None], verbose=0), axis=1)
    np.testing.assert_array_equal(got, want)
