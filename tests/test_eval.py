"""`nanokws eval`: report fields, confusion bookkeeping, LiteRT vs TFLite Micro, --split all."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from test_train import KEYWORDS, make_tone_dataset, tone_clip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from nanokws.train import train_model

    data = make_tone_dataset(tmp_path_factory.mktemp("tones"), speakers=50, seed=1)
    result = train_model([data], "tiny", tmp_path_factory.mktemp("model"), epochs=4, keywords=KEYWORDS,
                         verbose=False)
    return result.tflite_path, data


def test_report_fields_agree_with_an_independent_run(setup: tuple[Path, Path], tmp_path: Path) -> None:
    import tensorflow as tf
    from nanokws.data import labels_for, load_dataset
    from nanokws.evaluate import evaluate_model
    from nanokws.features import compute_features_batch

    model, data = setup
    report = evaluate_model(model, [data], split="validation", json_path=tmp_path / "r.json",
                            plot_path=tmp_path / "c.png", verbose=False)
    assert json.loads((tmp_path / "r.json").read_text()) == report
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    labels = labels_for(KEYWORDS)
    assert report["labels"] == labels
    # Recompute predictions here with TensorFlow's interpreter and the dataset's own labels.
    audio, y = load_dataset(data, KEYWORDS).arrays("validation")
    feats = compute_features_batch(audio)
    interp = tf.lite.Interpreter(model_content=model.read_bytes())
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    preds = []
    for f in feats:
        interp.set_tensor(inp["index"], f.reshape(1, 49, 40, 1))
        interp.invoke()
        preds.append(int(np.argmax(interp.get_tensor(out["index"]))))
    cm = np.array(report["confusion"])
    assert report["n"] == len(y) == cm.sum()
    assert report["accuracy"] == pytest.approx(np.mean(np.array(preds) == y))
    for i, label in enumerate(labels):
        assert cm[i].sum() == np.count_nonzero(y == i) == report["per_class"][label]["support"]
        assert cm[:, i].sum() == preds.count(i)
    assert report["tflm_agrees"] is True and report["tflm_mismatches"] == 0


def test_split_all_uses_official_test_layout(setup: tuple[Path, Path], tmp_path: Path) -> None:
    from nanokws.data import wav_bytes
    from nanokws.evaluate import evaluate_model

    model, _ = setup
    rng = np.random.default_rng(5)
    counts = {"yes": 4, "no": 3, "up": 2, "_unknown_": 3, "_silence_": 2}
    for folder, count in counts.items():
        (tmp_path / folder).mkdir()
        for k in range(count):
            if folder == "_silence_":
                clip = rng.normal(0, 200, 16000).astype(np.int16)
            else:
                clip = tone_clip("cat" if folder == "_unknown_" else folder, rng)
            (tmp_path / folder / f"s{k}_nohash_{k}.wav").write_bytes(wav_bytes(clip))
    report = evaluate_model(model, [tmp_path], split="all", verbose=False)
    assert report["n"] == sum(counts.values())
    rows = np.array(report["confusion"]).sum(axis=1)
    assert dict(zip(report["labels"], rows.tolist(), strict=True)) == {
        "_silence_": 2, "_unknown_": 3, "yes": 4, "no": 3, "up": 2}
    assert report["tflm_agrees"] is True


def test_limit_and_cli(setup: tuple[Path, Path], tmp_path: Path) -> None:
    from nanokws.errors import NanokwsError
    from nanokws.evaluate import cli

    model, data = setup
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    out = tmp_path / "e.json"
    args = parser.parse_args(["--model", str(model), "--data", str(data), "--limit", "7", "--json", str(out)])
    assert args.split == "test"
    assert cli.run(args) == 0
    report = json.loads(out.read_text())
    assert report["n"] == 7 == sum(map(sum, report["confusion"]))
    with pytest.raises(NanokwsError, match="not found"):
        cli.run(parser.parse_args(["--model", str(tmp_path / "none.tflite"), "--data", str(data)]))


def test_per_class_metrics_by_hand() -> None:
    from nanokws.evaluate.metrics import summarize

    s = summarize(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), ["a", "b", "c"])
    assert s["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert s["accuracy"] == pytest.approx(3 / 5)
    assert s["per_class"]["a"]["precision"] == pytest.approx(1 / 2)
    assert s["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert s["per_class"]["b"]["f1"] == pytest.approx(0.8)
    assert s["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    # Balanced: recalls a 1/2, b 2/2, c 0/1 -> mean 1/2 (plain accuracy 3/5 weighs b's two clips).
    assert s["balanced_accuracy"] == pytest.approx(0.5)
    # A class with no clips does not count.
    s = summarize(np.array([0, 0, 1]), np.array([0, 1, 1]), ["a", "b", "c"])
    assert s["balanced_accuracy"] == pytest.approx((1 / 2 + 1) / 2)


def test_litert_input_requantisation_rounds_like_the_firmware() -> None:
    """One rule for frontend frames -> model input (the firmware's lroundf table: half away from
    zero), not numpy's half-to-even: at scale 2 the frames 1, 3, -1, -3 sit exactly on ties."""
    from nanokws.evaluate.runtime import _to_model_input
    from nanokws.harness.reference import requantize_input

    x = np.array([[1, 3, -1, -3, 5, 127, -128]], dtype=np.int8)
    got = _to_model_input(x, np.int8, 2.0, 0)
    assert got.tolist() == [[1, 2, -1, -2, 3, 64, -64]]
    assert np.array_equal(got, requantize_input(x, 2.0, 0))
    assert np.array_equal(_to_model_input(x, np.int8, 1.0, 0), x)


def test_condition_audio_has_the_asked_snr_and_level() -> None:
    from nanokws.errors import NanokwsError
    from nanokws.evaluate.conditions import Condition, apply_condition, conditions_from

    rng = np.random.default_rng(0)
    clips = np.stack([tone_clip("yes", rng) for _ in range(3)])
    noise = [rng.normal(0, 2000, 16000 * 4).astype(np.int16)]
    assert [c.name for c in conditions_from([10, 10], [30])] == ["clean", "10 dB SNR", "30 dB quieter"]
    assert apply_condition(clips, noise, Condition(), 0, 0) is clips
    for snr in (20.0, 5.0, 0.0):
        noisy = apply_condition(clips, noise, Condition(snr_db=snr), seed=0, index=1)
        assert np.array_equal(noisy, apply_condition(clips, noise, Condition(snr_db=snr), seed=0, index=1))
        added = noisy.astype(np.float64) - clips
        got = 10 * np.log10(np.mean(clips.astype(np.float64) ** 2, axis=1) / np.mean(added**2, axis=1))
        assert np.allclose(got, snr, atol=0.05), (snr, got)
    quiet = apply_condition(clips, noise, Condition(quieter_db=30.0), seed=0, index=2)
    assert np.abs(quiet.astype(np.float64) - clips * 10 ** -1.5).max() <= 0.5
    names = [c.name for c in conditions_from([], [], [120, -240])]
    assert names == ["clean", "120 ms later", "240 ms earlier"]
    later = apply_condition(clips, noise, Condition(shift_ms=120.0), seed=0, index=3)
    earlier = apply_condition(clips, noise, Condition(shift_ms=-240.0), seed=0, index=4)
    assert np.array_equal(later[:, 1920:], clips[:, :-1920]) and not later[:, :1920].any()
    assert np.array_equal(earlier[:, :-3840], clips[:, 3840:]) and not earlier[:, -3840:].any()
    with pytest.raises(NanokwsError, match="out of its window"):
        apply_condition(clips, noise, Condition(shift_ms=1000.0), seed=0, index=5)


def test_conditions_in_the_report(setup: tuple[Path, Path], tmp_path: Path) -> None:
    from nanokws.data import load_dataset, noise_region
    from nanokws.evaluate import evaluate_model
    from nanokws.evaluate.conditions import Condition, apply_condition
    from nanokws.evaluate.runtime import run_litert
    from nanokws.features import compute_features_batch

    model, data = setup
    report = evaluate_model(model, [data], split="validation", snrs=[0.0], quieter_db=[40.0],
                            shifts_ms=[300.0], conditions_plot=tmp_path / "c.png", verbose=False)
    rows = report["conditions"]
    assert [r["name"] for r in rows] == ["clean", "0 dB SNR", "40 dB quieter", "300 ms later"]
    assert rows[0]["accuracy"] == report["accuracy"] and all(r["n"] == report["n"] for r in rows)
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    # The 0 dB row, recomputed here from the validation part of the noise only.
    ds = load_dataset(data, KEYWORDS)
    audio, y = ds.arrays("validation")
    noise = [noise_region(r, "validation") for r in ds.noise]
    feats = compute_features_batch(apply_condition(audio, noise, Condition(snr_db=0.0), seed=0, index=1))
    acc = float(np.mean(np.argmax(run_litert(model.read_bytes(), feats), axis=1) == y))
    assert rows[1]["accuracy"] == acc


def test_conditions_need_audio(setup: tuple[Path, Path], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    from nanokws.cli import main

    model, _data = setup
    npz = tmp_path / "f.npz"
    np.savez(npz, x=np.zeros((1, 49, 40), np.int8))
    base = ["eval", "--model", str(model), "--data", str(npz), "--split", "validation"]
    assert main([*base, "--snr", "10"]) != 0
    assert "need audio (a dataset folder)" in capsys.readouterr().err
    assert main([*base, "--conditions-plot", str(tmp_path / "p.png")]) != 0
    assert "--conditions-plot needs --snr" in capsys.readouterr().err
