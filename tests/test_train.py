"""Training, augmentation and full-int8 conversion (nanokws.train).

The data is a tone-pattern dataset in the Speech Commands layout made here with numpy: each word
is a chirp with its own frequency sweep, varied per "speaker" in pitch, timing and level, so a
model can learn it in a few seconds while the real pipeline (WAV -> C frontend -> model) runs.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

SR = 16000
# word -> (start Hz, end Hz) of its chirp. "cat" and "dog" are the non-keywords (unknown).
PATTERNS = {"yes": (400.0, 1600.0), "no": (1600.0, 400.0), "up": (900.0, 900.0),
            "cat": (2500.0, 2500.0), "dog": (300.0, 3000.0)}
KEYWORDS = ["yes", "no", "up"]


def tone_clip(word: str, rng: np.random.Generator) -> np.ndarray:
    f0, f1 = PATTERNS[word]
    pitch = rng.uniform(0.9, 1.1)
    dur = rng.uniform(0.35, 0.6)
    n = int(dur * SR)
    start = int(rng.integers(1000, SR - n - 1000))
    t = np.arange(n) / SR
    phase = 2 * np.pi * np.cumsum(pitch * (f0 + (f1 - f0) * t / dur)) / SR
    x = np.zeros(SR)
    x[start:start + n] = np.sin(np.pi * t / dur) * (np.sin(phase) + 0.3 * np.sin(2 * phase))
    x *= rng.uniform(0.1, 0.5) * 32767 / 1.3
    x += rng.normal(0, 30, SR)
    return np.clip(x, -32768, 32767).astype(np.int16)


def make_tone_dataset(root: Path, speakers: int = 80, seed: int = 0) -> Path:
    """Speech Commands layout: one folder per word, `<speaker>_nohash_0.wav`, background noise."""
    from nanokws.data import wav_bytes

    rng = np.random.default_rng(seed)
    for word in PATTERNS:
        (root / word).mkdir(parents=True, exist_ok=True)
        for s in range(speakers):
            (root / word / f"{s * 7919 + seed:08x}_nohash_0.wav").write_bytes(wav_bytes(tone_clip(word, rng)))
    (root / "_background_noise_").mkdir(exist_ok=True)
    walk = np.cumsum(rng.normal(0, 1, SR * 30))
    noise = walk - np.convolve(walk, np.ones(50) / 50, "same")
    brown = (noise / noise.std() * 800).astype(np.int16)
    (root / "_background_noise_" / "brown.wav").write_bytes(wav_bytes(brown))
    return root


@pytest.fixture(scope="module")
def tone_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tone_dataset(tmp_path_factory.mktemp("tones"))


@pytest.fixture(scope="module")
def trained(tone_data: Path, tmp_path_factory: pytest.TempPathFactory):
    from nanokws.train import train_model

    out = tmp_path_factory.mktemp("tiny")
    return train_model([tone_data], "tiny", out, epochs=15, seed=0, keywords=KEYWORDS, command="test",
                       verbose=False)


def _io_details(tflite: bytes):
    import tensorflow as tf

    interp = tf.lite.Interpreter(model_content=tflite)
    return interp.get_input_details()[0], interp.get_output_details()[0]


@pytest.mark.slow
def test_tiny_learns_and_beats_chance_on_held_out_speakers(trained, tone_data: Path) -> None:
    from nanokws.evaluate import evaluate_model

    chance = 1 / (len(KEYWORDS) + 2)
    assert trained.metrics["float_val_accuracy"] > 0.8
    assert trained.metrics["int8_val_accuracy"] > 0.8
    report = evaluate_model(trained.tflite_path, [tone_data], split="test", verbose=False)
    assert report["n"] >= 20
    assert report["accuracy"] > max(0.75, 3 * chance)


@pytest.mark.slow
def test_int8_model_io_is_frontend_int8_verbatim(trained) -> None:
    from nanokws.train.convert import operator_names
    from nanokws.train.models import ALLOWED_OPS

    tflite = trained.tflite_path.read_bytes()
    inp, out = _io_details(tflite)
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    assert inp["quantization"] == (1.0, 0)
    assert list(inp["shape"]) == [1, 49, 40, 1]
    assert list(out["shape"]) == [1, len(KEYWORDS) + 2]
    assert set(operator_names(tflite)) <= ALLOWED_OPS


@pytest.mark.slow
def test_metadata_and_artifacts(trained) -> None:
    import keras
    from nanokws.data import labels_for
    from nanokws.features import FRONTEND_CONFIG
    from nanokws.modelmeta import read_metadata

    meta = read_metadata(trained.tflite_path.read_bytes())
    assert meta["labels"] == labels_for(KEYWORDS)
    assert meta["frontend"] == dict(FRONTEND_CONFIG)
    assert meta["model"] == "tiny"
    metrics = json.loads(trained.metrics_path.read_text())
    assert metrics["int8_size_bytes"] == trained.tflite_path.stat().st_size
    assert metrics["epochs_run"] == len(metrics["history"]["val_accuracy"]) >= 1
    assert metrics["seed"] == 0 and metrics["command"] == "test"
    assert trained.curves_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = keras.models.load_model(trained.keras_path)
    assert model.count_params() == metrics["params"]
    assert not list(trained.out_dir.glob(".staging*"))  # atomic staging cleaned up


def _convert(name: str, num_classes: int) -> bytes:
    from nanokws.train.convert import convert_int8
    from nanokws.train.models import build_model

    calib = np.random.default_rng(0).integers(-128, 128, (20, 49, 40)).astype(np.int8)
    labels = [f"c{i}" for i in range(num_classes)]
    meta = {"labels": labels, "frontend": {}, "model": name}
    return convert_int8(build_model(name, num_classes), calib, meta)


def test_tiny_int8_fits_20kb_with_default_keywords() -> None:
    from nanokws.data import DEFAULT_KEYWORDS, labels_for

    tflite = _convert("tiny", len(labels_for(DEFAULT_KEYWORDS)))
    assert len(tflite) <= 20 * 1024


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ds_cnn_s", "ds_cnn_xs"])
def test_ds_cnn_converts_to_supported_int8_ops(name: str) -> None:
    from nanokws.train.convert import operator_names
    from nanokws.train.models import ALLOWED_OPS

    tflite = _convert(name, 12)
    ops = operator_names(tflite)
    assert set(ops) <= ALLOWED_OPS
    assert ops.count("DEPTHWISE_CONV_2D") == (4 if name == "ds_cnn_s" else 3)
    inp, out = _io_details(tflite)
    assert inp["quantization"] == (1.0, 0) and out["dtype"] == np.int8


def test_feature_mixing_adds_power() -> None:
    from nanokws.train.augment import LOG_GAIN, mix_features

    a = np.full((49, 40), 10, np.int8)
    # Equal powers double: + LOG_GAIN * ln 2 levels.
    doubled = round(10 + LOG_GAIN * np.log(2))
    assert np.array_equal(mix_features(a, a, 0.0), np.full((49, 40), doubled, np.int8))
    # Noise 60 dB down changes nothing; 60 dB up dominates.
    quiet = mix_features(a, np.full((49, 40), 10, np.int8), -60.0)
    assert np.array_equal(quiet, a)
    loud = mix_features(a, np.full((49, 40), -50, np.int8), 60.0)
    assert np.all(loud == np.int8(np.clip(round(-50 + LOG_GAIN * 6 * np.log(10)), -128, 127)))


def test_audio_and_feature_augmentation_shapes_and_randomness() -> None:
    from nanokws.train.augment import FeatureAugment, augment_audio, augment_features

    rng = np.random.default_rng(1)
    audio = np.stack([tone_clip("yes", rng) for _ in range(4)])
    noise = [rng.normal(0, 500, SR * 3).astype(np.int16)]
    out = augment_audio(audio, noise, np.random.default_rng(2))
    assert out.dtype == np.int16 and out.shape == audio.shape and not np.array_equal(out, audio)
    assert np.array_equal(out, augment_audio(audio, noise, np.random.default_rng(2)))  # seeded
    feats = rng.integers(-128, 128, (4, 49, 40)).astype(np.int8)
    aug = augment_features(feats, None, np.random.default_rng(3), FeatureAugment(specaugment=True))
    assert aug.dtype == np.int8 and aug.shape == feats.shape and not np.array_equal(aug, feats)


@pytest.mark.slow
def test_trains_on_feature_form_npz_plus_audio(tone_data: Path, tmp_path: Path) -> None:
    """A small npz in the shared gsc_v2_logmel format, built from the tone clips' real features."""
    from nanokws.data import load_dataset
    from nanokws.features import compute_features_batch
    from nanokws.train import train_model

    ds = load_dataset(tone_data, ["yes", "no", "up", "cat", "dog"])
    audio, _ = ds.arrays("all")
    words = np.array([ex.word for ex in ds.examples("all")])
    pixels = (compute_features_batch(audio).astype(np.int16) + 128).astype(np.uint8)
    split = np.where(np.arange(len(words)) % 5 == 0, "validation", "training")
    npz = tmp_path / "form.npz"
    np.savez(npz, features=pixels, word=words, speaker=np.array([ex.speaker for ex in ds.examples("all")]),
             utterance=np.zeros(len(words), np.int32), split=split)
    result = train_model([npz, tone_data], "tiny", tmp_path / "out", epochs=2, keywords=KEYWORDS,
                         specaugment=True, label_smoothing=0.1, mixup=0.2, weight_decay=0.01,
                         unknown_share=math.inf, verbose=False)
    assert (result.metrics["label_smoothing"], result.metrics["mixup"], result.metrics["weight_decay"]) == (
        0.1, 0.2, 0.01)
    assert result.metrics["unknown_share"] == "all"
    train_unknown = np.count_nonzero((split == "training") & ~np.isin(words, KEYWORDS))
    assert result.metrics["data"][0]["train"] == np.count_nonzero(split == "training")  # every unknown kept
    assert train_unknown > 0
    kinds = [d["kind"] for d in result.metrics["data"]]
    assert kinds == ["feature_form", "audio"]
    assert result.metrics["num_train"] > len(words) * 0.7
    assert result.tflite_path.is_file()


def test_speed_perturbation_and_its_feature_domain_analogue() -> None:
    from nanokws.train.augment import shift_channels, speed_perturb, stretch_frames

    t = np.arange(16000) / SR
    tone = (np.sin(2 * np.pi * 1000 * t) * (np.abs(t - 0.5) < 0.25)).astype(np.float32)
    fast = speed_perturb(tone, 1.1)
    assert fast.shape == tone.shape
    # 10% faster: the tone's burst is 10% shorter and its zero crossings 10% denser.
    def burst(x: np.ndarray) -> int:
        loud = np.nonzero(np.abs(x) > 0.5)[0]
        return int(loud[-1] - loud[0])
    assert burst(fast) == pytest.approx(burst(tone) / 1.1, rel=0.03)
    crossings = lambda x: int(np.count_nonzero(np.diff(np.sign(x[np.abs(x) > 1e-3])) != 0))  # noqa: E731
    assert crossings(fast) == pytest.approx(crossings(tone), rel=0.03)  # same count, shorter burst
    np.testing.assert_allclose(speed_perturb(tone, 1.0), tone, atol=1e-6)

    frames = np.zeros((49, 40), np.int8) - 100
    frames[20:29] = 50  # a 9-frame "word" around the centre frame 24
    slow = stretch_frames(frames, 1.2, -100.0)
    assert np.count_nonzero(slow[:, 0] > 0) > np.count_nonzero(frames[:, 0] > 0)
    assert np.array_equal(stretch_frames(frames, 1.0, -100.0), frames)
    ramp = np.tile(np.arange(40, dtype=np.int8), (49, 1))
    up = shift_channels(ramp, 1)
    assert np.array_equal(up[:, 1:], ramp[:, :-1]) and np.array_equal(up[:, 0], ramp[:, 0])
    assert np.array_equal(shift_channels(ramp, -1)[:, :-1], ramp[:, 1:])


def test_mixup_blends_inputs_and_targets_with_the_same_weights() -> None:
    from nanokws.train.batches import mixup

    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (32, 49, 40, 1)).astype(np.float32)
    labels = rng.integers(0, 5, 32)
    y = np.eye(5, dtype=np.float32)[labels]
    xm, ym = mixup(x, y, 0.4, np.random.default_rng(1))
    assert xm.shape == x.shape and ym.shape == y.shape
    np.testing.assert_allclose(ym.sum(axis=1), 1.0, rtol=1e-6)
    # Recover each example's weight and partner from the targets, then check the inputs used them.
    rng2 = np.random.default_rng(1)
    lam = rng2.beta(0.4, 0.4, size=32).astype(np.float32)
    partner = rng2.permutation(32)
    expect = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[partner]
    np.testing.assert_allclose(xm, expect, rtol=1e-6)
    np.testing.assert_allclose(ym, lam[:, None] * y + (1 - lam[:, None]) * y[partner], rtol=1e-6)
    assert not np.array_equal(xm, x)


@pytest.mark.parametrize("option", [{"label_smoothing": 1.0}, {"mixup": -1.0}, {"weight_decay": -0.1}])
def test_bad_regulariser_values_are_one_line_errors(option: dict[str, float], tmp_path: Path) -> None:
    from nanokws.errors import NanokwsError
    from nanokws.train import train_model

    with pytest.raises(NanokwsError) as info:
        train_model([tmp_path], "tiny", tmp_path / "o", verbose=False, **option)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_cli_reports_bad_data_in_one_line(tmp_path: Path) -> None:
    import argparse

    from nanokws.errors import NanokwsError
    from nanokws.train import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert args.model == "tiny" and args.epochs >= 1
    with pytest.raises(NanokwsError) as info:
        cli.run(args)
    assert "missing" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(SystemExit):
        parser.parse_args(["--data", str(tmp_path), "--model", "resnet", "--out", "o"])


@pytest.mark.slow
def test_same_command_twice_gives_the_same_model_bytes(tone_data: Path, tmp_path: Path) -> None:
    """Reproducibility: two fresh processes running the same `nanokws train` command (seeded
    augmentation, shuffling, initialisation, deterministic TF ops) write byte-identical .tflite files.
    The shipped model's card relies on this for "reproducible with this command"."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root / "tools")}
    outputs = []
    for run in ("a", "b"):
        out = tmp_path / run
        subprocess.run([sys.executable, "-m", "nanokws", "train", "--data", str(tone_data), "--model", "tiny",
                        "--keywords", *KEYWORDS, "--epochs", "2", "--seed", "4", "--label-smoothing", "0.1",
                        "--mixup", "0.2", "--specaugment", "--speed-pitch", "--out", str(out)],
                       check=True, env=env, capture_output=True)
        outputs.append((out / "model.tflite").read_bytes())
    assert outputs[0] == outputs[1]


def test_distillation_blends_the_teachers_probabilities_into_the_targets(trained, tone_data: Path) -> None:
    """--teacher: every batch's targets are (1 - w) one-hot + w x the teacher's probabilities on that
    same augmented input; the teacher is the int8 model as LiteRT runs it."""
    from nanokws.evaluate.runtime import run_litert
    from nanokws.train.augment import AudioAugment, FeatureAugment
    from nanokws.train.batches import make_batches
    from nanokws.train.distill import load_teacher
    from nanokws.train.sources import load_training_data

    td = load_training_data([tone_data], KEYWORDS, seed=0, progress=False)
    teacher = load_teacher(trained.tflite_path, td.labels)
    x = td.val_x.astype(np.float32)[..., None]
    p = teacher(x)
    assert p.shape == (len(x), len(td.labels)) and np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    raw = run_litert(trained.tflite_path.read_bytes(), td.val_x)
    # LiteRT's optimised kernels (fast, for training) against its reference ones: an LSB apart at most.
    assert np.mean(np.argmax(p, axis=1) == np.argmax(raw, axis=1)) >= 0.95
    assert len(set(np.argmax(p, axis=1))) > 1  # a trained teacher, not a constant
    plain = make_batches(td, 16, 0, FeatureAugment(), AudioAugment())
    taught = make_batches(td, 16, 0, FeatureAugment(), AudioAugment(), teacher=teacher, teacher_weight=0.3)
    (x0, y0), (x1, y1) = plain[2], taught[2]
    np.testing.assert_array_equal(x0, x1)  # the same augmented batch
    np.testing.assert_allclose(y1, 0.7 * y0 + 0.3 * teacher(x1), atol=1e-6)
    assert not np.array_equal(y0, y1)


def test_teacher_with_other_labels_or_missing_is_refused(trained, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from nanokws.cli import main
    from nanokws.errors import NanokwsError
    from nanokws.train.distill import load_teacher

    with pytest.raises(NanokwsError, match="are not the training labels"):
        load_teacher(trained.tflite_path, ["_silence_", "_unknown_", "left"])
    rc = main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
               "--teacher", str(tmp_path / "none.tflite")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--teacher" in err[0] and "not found" in err[0], err
    assert not (tmp_path / "o").exists()


def test_training_with_a_teacher_records_it(trained, tone_data: Path, tmp_path: Path) -> None:
    from nanokws.train import train_model

    result = train_model([tone_data], "tiny", tmp_path / "s", epochs=1, keywords=KEYWORDS, verbose=False,
                         teacher=trained.tflite_path, teacher_weight=0.4, command="test")
    sha = hashlib.sha256(trained.tflite_path.read_bytes()).hexdigest()
    assert result.metrics["teacher"] == {"model": str(trained.tflite_path), "weight": 0.4, "sha256": sha}
    saved = json.loads(result.metrics_path.read_text())
    assert saved["teacher"]["weight"] == 0.4 and saved["teacher"]["sha256"] == sha
    from nanokws.versions import tool_versions

    assert saved["versions"] == tool_versions() and saved["versions"]["tensorflow"]


def test_teacher_scores_a_batch_in_one_invoke_as_it_would_one_by_one() -> None:
    """The shipped-before ds_cnn_m16 takes any batch size: one invoke per batch, equal to batches of 1."""
    from nanokws.modelmeta import read_metadata, read_model_bytes
    from nanokws.train.distill import load_teacher

    path = Path(__file__).resolve().parents[1] / "docs" / "candidates" / "ds_cnn_m16" / "model.tflite"
    labels = read_metadata(read_model_bytes(path))["labels"]
    teacher = load_teacher(path, labels)
    x = np.random.default_rng(1).integers(-128, 128, size=(7, 49, 40, 1)).astype(np.float32)
    together = teacher(x)
    apart = np.concatenate([teacher(x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_allclose(together, apart, atol=1e-6)
    assert together.shape == (7, len(labels)) and len({row.tobytes() for row in together}) > 1


def test_feature_attenuation_matches_the_frontend_on_quieter_audio() -> None:
    """attenuate_features(features(x), d) is what the C frontend computes for x d dB quieter, up to
    rounding and the int16 quantisation of the quieter audio: both clamp at the same floor."""
    from nanokws.features import compute_features_batch
    from nanokws.train.augment import FEATURE_FLOOR, attenuate_features

    rng = np.random.default_rng(3)
    loud = tone_clip("yes", rng).astype(np.float64) * 2.0 + rng.normal(0, 300, SR)
    assert np.abs(loud).max() < 32000  # no int16 clipping: a clipped clip is not the same sound quieter
    loud_i16 = np.clip(np.rint(loud), -32768, 32767).astype(np.int16)[None]
    assert FEATURE_FLOOR == int(compute_features_batch(np.zeros((1, SR), np.int16)).min())
    for db in (10.0, 20.0, 30.0):
        quiet = np.clip(np.rint(loud * 10.0 ** (-db / 20.0)), -32768, 32767).astype(np.int16)[None]
        want = compute_features_batch(quiet)[0].astype(int)
        got = attenuate_features(compute_features_batch(loud_i16)[0], db).astype(int)
        above = want > FEATURE_FLOOR + 20  # well above the floor: no int16 quantisation noise there
        assert above.sum() > 200
        assert np.abs(got - want)[above].max() <= 2, db
        # Not a no-op: the shift is LOG_GAIN ln(10) db / 10 levels.
        assert np.abs(got - compute_features_batch(loud_i16)[0])[above].min() >= int(2.3 * db) - 1


def test_level_augmentation_draws_nothing_when_off() -> None:
    """--level-db 0 keeps the random stream, so the default recipe's batches are unchanged."""
    from nanokws.train.augment import FeatureAugment, augment_features

    x = np.random.default_rng(4).integers(-100, 100, (6, 49, 40)).astype(np.int8)
    a = augment_features(x, None, np.random.default_rng(5), FeatureAugment())
    b = augment_features(x, None, np.random.default_rng(5), FeatureAugment(level_db=0.0))
    assert np.array_equal(a, b)
    always = FeatureAugment(level_db=30.0, level_probability=1.0)
    c = augment_features(x, None, np.random.default_rng(5), always)
    assert not np.array_equal(a, c) and int(c.astype(int).sum()) < int(a.astype(int).sum())


def test_true_snr_mixing_puts_the_noise_the_asked_db_below_the_example() -> None:
    """--snr-db: the added noise's in-band power is the example's power minus the drawn SNR."""
    from nanokws.train.augment import LOG_GAIN, mel_power_db, mix_features, snr_gain_db

    rng = np.random.default_rng(7)
    speech = rng.integers(-60, 60, (49, 40)).astype(np.int8)
    noise = rng.integers(-110, -40, (49, 40)).astype(np.int8)
    for snr in (0.0, 10.0, 20.0):
        gain = snr_gain_db(speech, noise, snr)
        added_db = mel_power_db(noise) + gain  # the noise's power after the gain
        assert abs((mel_power_db(speech) - added_db) - snr) < 1e-9
        mixed = mix_features(speech, noise, gain)
        # Mixing adds power: the mix's power is the sum, 10 log10(1 + 10^(-snr/10)) dB above the speech
        # (within int8 rounding of each element: +-0.5 level = +-0.5 / LOG_GAIN in ln).
        want = 10 * np.log10(1 + 10 ** (-snr / 10))
        got = mel_power_db(mixed) - mel_power_db(speech)
        assert abs(got - want) < 10 * np.log10(np.exp(0.5 / LOG_GAIN)) + 1e-9


def test_true_snr_option_keeps_the_draws_and_lowers_the_snr() -> None:
    """speech_snr_db draws as many numbers as the default mixing (later draws unchanged) and, at a low
    SNR, changes the example far more than the default's mostly quiet noise."""
    from nanokws.train.augment import FeatureAugment, augment_features

    x = np.random.default_rng(4).integers(-40, 100, (8, 49, 40)).astype(np.int8)
    noise = np.random.default_rng(6).integers(-100, -60, (3, 49, 40)).astype(np.int8)
    base = FeatureAugment(noise_probability=1.0)
    low = FeatureAugment(noise_probability=1.0, speech_snr_db=(0.0, 0.0))
    r1, r2 = np.random.default_rng(5), np.random.default_rng(5)
    a = augment_features(x, noise, r1, base)
    b = augment_features(x, noise, r2, low)
    assert r1.random() == r2.random()  # same number of draws
    assert np.abs(b.astype(int) - x).mean() > np.abs(a.astype(int) - x).mean() + 1.0


def test_unknown_share_and_neighbours_options_parse_and_check(tmp_path: Path) -> None:
    import argparse

    from nanokws.errors import NanokwsError
    from nanokws.train import cli, train_model

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    base = ["--data", str(tmp_path), "--out", str(tmp_path / "o")]
    assert parser.parse_args(base).unknown_share is None
    assert parser.parse_args([*base, "--unknown-share", "2.5"]).unknown_share == 2.5
    assert math.isinf(parser.parse_args([*base, "--unknown-share", "ALL"]).unknown_share)
    for bad in ("0", "-1", "many"):
        with pytest.raises(SystemExit):
            parser.parse_args([*base, "--unknown-share", bad])
    with pytest.raises(NanokwsError, match="_unknown_ share"):
        train_model([tmp_path], "tiny", tmp_path / "o", verbose=False, unknown_share=0.0)
    assert parser.parse_args([*base, "--neighbours", "0.5"]).neighbours == 0.5
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--neighbours", "1.5"])
    with pytest.raises(NanokwsError, match="neighbour"):
        train_model([tmp_path], "tiny", tmp_path / "o", verbose=False, neighbours=2.0)


def test_snr_range_is_checked(tmp_path: Path) -> None:
    from nanokws.errors import NanokwsError
    from nanokws.train import train_model

    with pytest.raises(NanokwsError, match="SNR range"):
        train_model([tmp_path], "tiny", tmp_path / "o", verbose=False, snr_db=(20.0, 0.0))


def test_unknown_shift_moves_only_unknown_examples_further() -> None:
    """wide_shift: examples of the chosen label shift up to its reach, the others keep +-max_shift_frames;
    the number of draws is unchanged (the recipe's other randomness stays put)."""
    from nanokws.train.augment import FeatureAugment, augment_features

    n = 400
    x = np.full((n, 49, 40), -121, np.int8)
    x[:, 20:29, :] = 50  # a 'word' in the middle
    labels = np.where(np.arange(n) % 2 == 0, 1, 2)  # 1 = _unknown_ here
    cfg = FeatureAugment(noise_probability=0.0, wide_shift=(1, 20))
    r1, r2 = np.random.default_rng(3), np.random.default_rng(3)
    out = augment_features(x, None, r1, cfg, labels)
    augment_features(x, None, r2, FeatureAugment(noise_probability=0.0))
    assert r1.random() == r2.random()

    # The 9-frame word stays inside the window at any shift of +-20: its first frame gives the shift.
    shifts = np.array([int(np.argmax(e[:, 0] > 0)) - 20 for e in out])
    unknown, other = shifts[labels == 1], shifts[labels == 2]
    assert np.abs(other).max() <= 5 and np.abs(unknown).max() <= 20
    assert (np.abs(unknown) > 10).mean() > 0.3  # half of +-20 frames lies beyond +-10
    with pytest.raises(ValueError):
        augment_features(x, None, np.random.default_rng(0), cfg)  # labels needed


def _word(start: int, end: int, level: int = 50) -> np.ndarray:
    x = np.full((49, 40), -121, np.int8)
    x[start:end] = level
    return x


def test_cut_neighbour_sits_at_the_window_edge_beside_the_word() -> None:
    """The neighbour's active part is cut by the window's edge (its drawn share outside), keeps a gap to
    the word, and nothing else changes; a word that fills the window gets no neighbour."""
    from nanokws.train.augment import active_span, add_cut_neighbour

    word, other = _word(18, 30), _word(10, 30, 40)  # 12-frame word; 20-frame neighbour
    assert active_span(word) == (18, 30) and active_span(other) == (10, 30)
    sides = set()
    for seed in range(60):
        out = add_cut_neighbour(word, other, np.random.default_rng(seed), cut=(0.4, 0.9), gap_frames=2)
        changed = np.flatnonzero((out != word).any(axis=1))
        assert np.array_equal(out[18:30], word[18:30])
        if len(changed) == 0:
            continue
        lo, hi = int(changed[0]), int(changed[-1]) + 1
        assert np.array_equal(changed, np.arange(lo, hi))  # one contiguous piece
        assert lo == 0 or hi == 49  # cut by an edge
        assert 20 - int(np.ceil(0.9 * 20)) <= hi - lo <= 20 - int(np.ceil(0.4 * 20))
        assert lo >= 30 + 2 or hi <= 18 - 2
        assert (out[lo:hi] >= 40).all()  # the neighbour's power (plus the floor's)
        sides.add(lo == 0)
    assert sides == {True, False}
    full = _word(0, 49)
    assert np.array_equal(add_cut_neighbour(full, other, np.random.default_rng(0)), full)


def test_neighbour_option_spares_silence_and_draws_nothing_when_off() -> None:
    from nanokws.train.augment import FeatureAugment, augment_features

    x = np.stack([_word(18, 30), _word(12, 36, 30), _word(20, 26, 60), np.full((49, 40), -100, np.int8)] * 8)
    labels = np.array([2, 1, 3, 0] * 8)  # 0 = _silence_ here
    plain = FeatureAugment(max_shift_frames=0, noise_probability=0.0)
    r1, r2 = np.random.default_rng(4), np.random.default_rng(4)
    assert np.array_equal(augment_features(x, None, r1, plain, labels), x)
    augment_features(x, None, r2, FeatureAugment(max_shift_frames=0, noise_probability=0.0, neighbour=None))
    assert r1.random() == r2.random()
    cfg = FeatureAugment(max_shift_frames=0, noise_probability=0.0, neighbour=(0, 1.0))
    out = augment_features(x, None, np.random.default_rng(4), cfg, labels)
    assert np.array_equal(out[labels == 0], x[labels == 0])
    changed = (out != x).any(axis=(1, 2))
    assert changed[labels != 0].mean() > 0.3
    with pytest.raises(ValueError):
        augment_features(x, None, np.random.default_rng(0), cfg)


def test_ema_keeps_validates_and_converts_the_averaged_weights(tone_data: Path, tmp_path: Path) -> None:
    """--ema M: the model kept, validated and converted is the moving average of the weights. With M
    so close to 1 that the average barely leaves the first step's weights, two epochs that teach the
    plain run the words leave the averaged model near chance; and the accuracy validation recorded
    for the best epoch is the kept model's, so the stopper kept the averaged weights it scored."""
    import argparse

    from nanokws.errors import NanokwsError
    from nanokws.train import cli, train_model

    common = {"epochs": 2, "seed": 0, "keywords": KEYWORDS, "command": "test", "verbose": False}
    plain = train_model([tone_data], "tiny", tmp_path / "plain", **common)  # type: ignore[arg-type]
    frozen = train_model([tone_data], "tiny", tmp_path / "ema", ema=0.99999, **common)  # type: ignore[arg-type]
    chance = 1.0 / len(plain.metrics["labels"])
    assert plain.metrics["ema"] == 0.0 and frozen.metrics["ema"] == 0.99999
    assert plain.metrics["float_val_accuracy"] > chance + 0.3  # 0.63 here, chance 0.2
    assert frozen.metrics["float_val_accuracy"] < chance + 0.15  # 0.23 here; without the swap 0.63
    for m in (plain.metrics, frozen.metrics):
        validated = m["history"]["val_accuracy"][m["best_epoch"] - 1]
        assert abs(m["float_val_accuracy"] - validated) <= 1.0 / m["num_validation"] + 1e-6
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    base = ["--data", str(tmp_path), "--out", str(tmp_path / "o")]
    assert parser.parse_args([*base, "--ema", "0.999"]).ema == 0.999
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--ema", "1"])
    with pytest.raises(NanokwsError, match="momentum"):
        train_model([tmp_path], "tiny", tmp_path / "o", verbose=False, ema=1.0)


def test_window_longer_than_a_clip_trains_a_valid_in_time_model_and_centres_clips(tone_data: Path,
                                                                                    tmp_path: Path) -> None:
    """--window-frames N: a model VALID in time takes N frames; every 49-frame example is centred in
    them, padded with its own minimum, and evaluation pads the same way: the int8 model's scores on a
    clip equal its scores on that clip padded by hand."""
    from nanokws.errors import NanokwsError
    from nanokws.evaluate.runtime import run_litert, run_tflm
    from nanokws.train import train_model
    from nanokws.train.augment import FeatureAugment, augment_features
    from nanokws.train.sources import load_training_data
    from nanokws.window import pad_to_window

    rng = np.random.default_rng(0)
    clips = rng.integers(-100, 100, size=(3, 49, 40)).astype(np.int8)
    padded = pad_to_window(clips, 60)
    assert padded.shape == (3, 60, 40)
    np.testing.assert_array_equal(padded[:, 5:54], clips)  # 11 frames: 5 before, 6 after
    for x, p in zip(clips, padded, strict=True):
        assert np.all(p[:5] == x.min()) and np.all(p[54:] == x.min())
    assert pad_to_window(clips, 49) is clips
    with pytest.raises(NanokwsError, match="cannot hold"):
        pad_to_window(clips, 40)

    # Augmentation over the window: noise slices of one clip's length are joined to cover it.
    noise = rng.integers(-128, -60, size=(4, 49, 40)).astype(np.int8)
    cfg = FeatureAugment(window_frames=60, noise_probability=1.0, max_shift_frames=0)
    out = augment_features(clips, noise, np.random.default_rng(1), cfg)
    assert out.shape == (3, 60, 40) and out.dtype == np.int8
    assert np.all(out >= padded)  # mixing adds power everywhere, the padding included
    assert np.any(out[:, :5] > padded[:, :5]) and np.any(out[:, 54:] > padded[:, 54:])

    result = train_model([tone_data], "ds_cnn_stream", tmp_path / "w", epochs=1, seed=0, keywords=KEYWORDS,
                         window_frames=60, command="test", verbose=False)
    assert result.metrics["window_frames"] == 60
    tflite = result.tflite_path.read_bytes()
    td = load_training_data([tone_data], KEYWORDS, seed=0, progress=False)
    some = td.val_x[:6]
    by_hand = run_litert(tflite, pad_to_window(some, 60))
    np.testing.assert_array_equal(run_litert(tflite, some), by_hand)
    np.testing.assert_array_equal(run_tflm(tflite, some), by_hand)
    with pytest.raises(NanokwsError, match="VALID in time"):
        train_model([tone_data], "tiny", tmp_path / "t", epochs=1, keywords=KEYWORDS, window_frames=60,
                    verbose=False)

    # A teacher over the same window teaches a student over it (its probabilities on the padded,
    # augmented window); one over another window is refused, naming both, before any training.
    from nanokws.train.distill import load_teacher

    taught = train_model([tone_data], "ds_cnn_stream", tmp_path / "s", epochs=1, seed=1, keywords=KEYWORDS,
                         window_frames=60, teacher=result.tflite_path, command="test", verbose=False)
    assert taught.metrics["teacher"]["model"] == str(result.tflite_path)
    assert taught.metrics["teacher"]["weight"] == 0.5
    assert taught.metrics["window_frames"] == 60
    teacher = load_teacher(result.tflite_path, td.labels, 60)
    probs = teacher(pad_to_window(some, 60).astype(np.float32)[..., None])
    assert probs.shape == (len(some), len(td.labels)) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(NanokwsError, match="its window is 60 frames, the student's 49"):
        train_model([tone_data], "ds_cnn_stream", tmp_path / "s49", epochs=1, keywords=KEYWORDS,
                    teacher=result.tflite_path, verbose=False)
    assert not (tmp_path / "s49").exists()
