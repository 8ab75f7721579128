"""Issue #12, "no traceback, ever": every bad input a new user (or a fuzzer) found ends as one line
naming the file and the problem, with the documented exit code, and hil's report says `fault`."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from nanokws.cli import main
from nanokws.errors import NanokwsError, check_output_dir, check_output_file, describe, one_line
from nanokws.paths import FIRMWARE_MODEL_DIR

GOOD_MODEL = FIRMWARE_MODEL_DIR / "model.tflite"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    rc = main(argv)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return rc, err


def _edit(mutate: Callable[[Any], None]) -> bytes:
    """The default model with its object tree changed by `mutate` (a schema ModelT)."""
    from nanokws.modelmeta import pack_model, unpack_model

    tflite = GOOD_MODEL.read_bytes()
    model = unpack_model(tflite)
    mutate(model)
    return pack_model(model, len(tflite) + 4096)


def _output_shape() -> str:
    from nanokws.modelmeta import unpack_model

    return str([int(d) for d in _io_tensor(unpack_model(GOOD_MODEL.read_bytes()), "output").shape])


def _io_tensor(model: Any, role: str) -> Any:
    sg = model.subgraphs[0]
    return sg.tensors[(sg.inputs if role == "input" else sg.outputs)[0]]


def _set_metadata_blob(blob: bytes) -> Callable[[Any], None]:
    def mutate(model: Any) -> None:
        (entry,) = [m for m in model.metadata if m.name in (b"nanokws", "nanokws")]
        model.buffers[entry.buffer].data = list(blob)

    return mutate


def _meta_with(**changes: Any) -> Callable[[Any], None]:
    from nanokws.modelmeta import read_metadata

    meta = read_metadata(GOOD_MODEL.read_bytes())
    meta.update(changes)
    return _set_metadata_blob(json.dumps(meta).encode())


def _set(attr: str, value: Any, role: str = "input") -> Callable[[Any], None]:
    def mutate(model: Any) -> None:
        setattr(_io_tensor(model, role), attr, value)

    return mutate


def _set_scale(value: float) -> Callable[[Any], None]:
    def mutate(model: Any) -> None:
        _io_tensor(model, "output").quantization.scale = [value]

    return mutate


def _first_op_to(code: int) -> Callable[[Any], None]:
    def mutate(model: Any) -> None:
        op_code = model.operatorCodes[model.subgraphs[0].operators[0].opcodeIndex]
        op_code.builtinCode = code
        op_code.deprecatedBuiltinCode = min(code, 127)

    return mutate


# name -> (bytes of the bad model, a piece of the expected one-line message)
def _bad_models() -> dict[str, tuple[Callable[[], bytes], str]]:
    good = GOOD_MODEL.read_bytes()
    rng = np.random.default_rng(12)
    return {
        "truncated": (lambda: good[: len(good) // 3], "malformed flatbuffer"),
        "truncated_to_header": (lambda: good[:12], "malformed flatbuffer"),
        "random_bytes_after_TFL3": (
            lambda: b"\x10\x00\x00\x00TFL3" + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes(),
            "malformed flatbuffer",
        ),
        "not_a_flatbuffer": (lambda: b"hello, this is text, not a model", "missing 'TFL3'"),
        "nan_scale": (lambda: _edit(_set_scale(math.nan)), "scale nan (must be finite and positive)"),
        "zero_scale": (lambda: _edit(_set_scale(0.0)), "scale 0.0 (must be finite and positive)"),
        "negative_dimension": (lambda: _edit(_set("shape", [1, -49, 40, 1])), "negative dimension"),
        "float_input": (lambda: _edit(_set("type", 0)), "model input is FLOAT32, need a full-int8 model"),
        "float_output": (
            lambda: _edit(_set("type", 0, "output")), "model output is FLOAT32, need a full-int8 model"
        ),
        "input_not_49x40": (
            lambda: _edit(_set("shape", [1, 49, 39, 1])), "is not a window of the frontend's frames"
        ),
        "output_size_vs_labels": (
            lambda: _edit(_meta_with(labels=["_silence_", "_unknown_", "yes"])),
            "values (shape [1, 12]) but the metadata lists 3 labels".replace("[1, 12]", _output_shape()),
        ),
        "metadata_not_utf8": (lambda: _edit(_set_metadata_blob(b"\xff\xfe{")), "not valid UTF-8 JSON"),
        "metadata_not_json": (lambda: _edit(_set_metadata_blob(b"{labels: oops")), "not valid UTF-8 JSON"),
        "metadata_not_object": (lambda: _edit(_set_metadata_blob(b"[1, 2]")), "not a JSON object"),
        "metadata_labels_not_list": (lambda: _edit(_meta_with(labels=5)), "labels must be a non-empty list"),
        "metadata_other_frontend": (
            lambda: _edit(_meta_with(frontend={"NK_FE_NUM_CHANNELS": 32})), "different frontend parameters"
        ),
        "unsupported_op": (lambda: _edit(_first_op_to(28)), "op 0 TANH: operator not supported"),
        # Found by the mutation campaign: a NaN softmax beta reached compiler/quant.py.
        "softmax_beta_nan": (lambda: _edit(_softmax_beta(math.nan)), "SOFTMAX: beta nan (must be finite"),
    }


def _softmax_beta(value: float) -> Callable[[Any], None]:
    def mutate(model: Any) -> None:
        sg = model.subgraphs[0]
        (op,) = [o for o in sg.operators if type(o.builtinOptions).__name__ == "SoftmaxOptionsT"]
        op.builtinOptions.beta = value

    return mutate


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0])
def test_quant_refuses_non_finite_multipliers(value: float) -> None:
    from nanokws.compiler import quant

    with pytest.raises(NanokwsError, match="not finite"):
        quant.quantize_multiplier(value)
    if value != math.inf:  # softmax_params clamps an infinite beta to the largest multiplier, as TFLite does
        with pytest.raises(NanokwsError, match="not finite"):
            quant.softmax_params(value, 1.0 / 256)


BAD_MODELS = sorted(_bad_models())


@pytest.mark.parametrize("name", BAD_MODELS)
def test_bad_model_is_one_clear_line_from_check_model(name: str) -> None:
    from nanokws.modelcheck import check_model

    make, expected = _bad_models()[name]
    with pytest.raises(NanokwsError) as info:
        check_model(make(), "bad.tflite")
    line = str(info.value)
    assert line.startswith("bad.tflite"), line
    assert expected in line, line
    assert "\n" not in line and info.value.exit_code == 2


def test_the_default_model_passes() -> None:
    from nanokws.modelcheck import check_model

    checked = check_model(GOOD_MODEL.read_bytes(), "m")
    assert checked.meta is not None and len(checked.meta["labels"]) == checked.graph.tensors[
        checked.graph.outputs[0]
    ].size


# Every command that takes a model refuses a bad one with one line and exit 2, before any work.
def _commands(model: Path, tmp: Path) -> dict[str, list[str]]:
    data = tmp / "data"
    data.mkdir(exist_ok=True)
    return {
        "compile": ["compile", "--model", str(model), "--out", str(tmp / "c"), "--no-tflm"],
        "export": ["export", "--model", str(model), "--out", str(tmp / "e")],
        "eval": ["eval", "--model", str(model), "--data", str(data)],
        "verify": ["verify", "--model", str(model), "--build-dir", str(tmp / "b")],
        "bench": ["bench", "--model", str(model), "--build-dir", str(tmp / "b")],
        "ship": ["ship", "--model", str(model), "--data", str(data), "--out", str(tmp / "s"), "--no-bench"],
        "hil": ["hil", "--host", "--model", str(model), "--data", str(data), "--report", str(tmp / "h.json")],
    }


@pytest.mark.parametrize("case", ["truncated", "random_bytes_after_TFL3", "float_input", "input_not_49x40",
                                  "output_size_vs_labels", "nan_scale"])
@pytest.mark.parametrize("command", ["compile", "export", "eval", "verify", "bench", "ship", "hil"])
def test_every_command_refuses_a_bad_model_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, case: str
) -> None:
    make, expected = _bad_models()[case]
    model = tmp_path / "bad.tflite"
    model.write_bytes(make())
    rc, err = _run(_commands(model, tmp_path)[command], capsys)
    assert rc == 2, err
    assert len(err) == 1, err
    assert err[0].startswith(f"nanokws {command}: error: {model}"), err[0]
    assert expected in err[0]
    assert not (tmp_path / "c" / "nk_model.c").exists() and not (tmp_path / "s").exists()
    if command == "hil":
        report = json.loads((tmp_path / "h.json").read_text())
        assert report["status"] == "fault" and expected in report["fault"]


# --- WAV files ----------------------------------------------------------------------------------


def _wav(samples: int = 16000) -> bytes:
    from nanokws.data import wav_bytes

    return wav_bytes(np.zeros(samples, np.int16))


def _bad_wavs() -> dict[str, bytes]:
    ok = _wav()
    fmt_at = ok.index(b"fmt ")
    data_at = ok.index(b"data")
    return {
        "corrupt_fmt_id": ok[:fmt_at] + b"f\x00t " + ok[fmt_at + 4 :],
        "corrupt_data_id": ok[:data_at] + b"\x01\x02\x03\x04" + ok[data_at + 4 :],
        "huge_fmt_size": ok[: fmt_at + 4] + struct.pack("<I", 0xFFFFFFF0) + ok[fmt_at + 8 :],
        "huge_data_size": ok[: data_at + 4] + struct.pack("<I", 0xFFFFFFF0) + ok[data_at + 8 :],
        "short_fmt": ok[: fmt_at + 4] + struct.pack("<I", 4) + ok[fmt_at + 8 :],
        "riff_only": b"RIFF\x04\x00\x00\x00WAVE",
        "no_data_chunk": ok[:data_at],
    }


@pytest.mark.parametrize("name", sorted(_bad_wavs()))
def test_bad_wav_is_a_wav_format_error(tmp_path: Path, name: str) -> None:
    from nanokws.data import WavFormatError, read_wav

    path = tmp_path / f"{name}.wav"
    path.write_bytes(_bad_wavs()[name])
    with pytest.raises(WavFormatError) as info:
        read_wav(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_dataset_skips_and_lists_a_corrupt_wav(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nanokws.data import load_dataset

    root = tmp_path / "ds"
    for word in ("yes", "no"):
        (root / word).mkdir(parents=True)
        for i in range(3):
            (root / word / f"spk{i}_nohash_0.wav").write_bytes(_wav())
    bad = root / "yes" / "spk9_nohash_0.wav"
    bad.write_bytes(_bad_wavs()["corrupt_data_id"])
    (root / "_background_noise_").mkdir()
    (root / "_background_noise_" / "n.wav").write_bytes(_wav(32000))
    ds = load_dataset(root, ["yes", "no"], seed=0)
    assert [p for p, _ in ds.skipped] == [bad]
    assert "corrupt chunk id" in ds.skipped[0][1]
    assert main(["data", "--data", str(root), "--keywords", "yes", "no"]) == 0
    out = capsys.readouterr().out
    assert "skipped files: 1" in out and f"{bad}: not a valid WAV file (corrupt chunk id" in out
    # eval and ship (load_eval_data) go on without it and say so in one line.
    from nanokws.evaluate.evaluate import load_eval_data

    x, y = load_eval_data([root], ["yes", "no"], "all", None, progress=True)
    assert len(y) == 6 and x.shape[1:] == (49, 40)
    out = capsys.readouterr().out
    assert f"note: skipped 1 files of {root} (first: {bad}: not a valid WAV file" in out


# --- output paths, checked before the work ------------------------------------------------------


def _output_cases(tmp: Path) -> dict[str, tuple[list[str], str]]:
    a_file = tmp / "a_file"
    a_file.write_text("x")
    a_dir = tmp / "a_dir"
    a_dir.mkdir()
    data = tmp / "data"
    data.mkdir()
    m = str(GOOD_MODEL)
    unwritable = "/proc/nanokws-no-such-dir/out.json"
    return {
        "eval_json_is_dir": (
            ["eval", "--model", m, "--data", str(data), "--json", str(a_dir)], "is a folder"
        ),
        "eval_json_under_file": (
            ["eval", "--model", m, "--data", str(data), "--json", str(a_file / "r.json")], "not a folder"
        ),
        "eval_plot_unwritable": (
            ["eval", "--model", m, "--data", str(data), "--plot", unwritable], "cannot create the folder"
        ),
        "verify_json_is_dir": (["verify", "--model", m, "--json", str(a_dir)], "is a folder"),
        "bench_json_under_file": (["bench", "--model", m, "--json", str(a_file / "b.json")], "not a folder"),
        "compile_out_is_file": (["compile", "--model", m, "--out", str(a_file)], "not a folder"),
        "train_out_is_file": (["train", "--data", str(data), "--out", str(a_file)], "not a folder"),
        "train_out_under_file": (
            ["train", "--data", str(data), "--out", str(a_file / "run")], "not a folder"
        ),
        "train_out_unwritable": (
            ["train", "--data", str(data), "--out", "/proc/nanokws-no-such-dir/run"], "cannot create"
        ),
        "hil_report_is_dir": (
            ["hil", "--host", "--data", str(data), "--report", str(a_dir)], "is a folder"
        ),
        "hil_report_under_file": (
            ["hil", "--host", "--data", str(data), "--report", str(a_file / "h.json")], "not a folder"
        ),
        "hil_report_unwritable": (
            ["hil", "--host", "--data", str(data), "--report", unwritable], "cannot create"
        ),
        "hil_junit_is_dir": (
            ["hil", "--host", "--data", str(data), "--report", str(tmp / "h.json"), "--junit", str(a_dir)],
            "is a folder",
        ),
    }


@pytest.mark.parametrize(
    "name",
    [
        "eval_json_is_dir", "eval_json_under_file", "eval_plot_unwritable", "verify_json_is_dir",
        "bench_json_under_file", "compile_out_is_file", "train_out_is_file", "train_out_under_file",
        "train_out_unwritable", "hil_report_is_dir", "hil_report_under_file", "hil_report_unwritable",
        "hil_junit_is_dir",
    ],
)
def test_unwritable_output_is_one_line_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    argv, expected = _output_cases(tmp_path)[name]
    rc, err = _run(argv, capsys)
    assert rc == 2, err
    assert len(err) == 1 and expected in err[0], err
    assert err[0].startswith(f"nanokws {argv[0]}: error: ")


def test_output_checks_accept_good_paths(tmp_path: Path) -> None:
    assert check_output_file(tmp_path / "new" / "deeper" / "r.json") == tmp_path / "new" / "deeper" / "r.json"
    assert (tmp_path / "new" / "deeper").is_dir()
    assert check_output_dir(tmp_path / "out") == tmp_path / "out"
    assert not list((tmp_path / "out").iterdir())  # the probe leaves nothing behind


# --- numbers ------------------------------------------------------------------------------------

ODD_NUMBERS = {
    "data_seed_negative": ["data", "--data", "x", "--seed", "-5"],
    "data_silence_share_huge": ["data", "--data", "x", "--silence-share", "1e9"],
    "data_unknown_share_negative": ["data", "--data", "x", "--unknown-share", "-1"],
    "data_share_nan": ["data", "--data", "x", "--unknown-share", "nan"],
    "bench_runs_negative": ["bench", "--model", "m", "--runs", "-2"],
    "hil_speed_negative": ["hil", "--host", "--data", "x", "--report", "r.json", "--speed", "-1"],
    "hil_duration_negative": ["hil", "--host", "--data", "x", "--report", "r.json", "--mode", "stream",
                              "--duration", "-5"],
    "hil_threshold_256": ["hil", "--host", "--data", "x", "--report", "r.json", "--threshold", "256"],
    "hil_limit_zero": ["hil", "--host", "--data", "x", "--report", "r.json", "--limit", "0"],
    "hil_timeout_inf": ["hil", "--host", "--data", "x", "--report", "r.json", "--timeout", "inf"],
    "train_epochs_zero": ["train", "--data", "x", "--out", "o", "--epochs", "0"],
    "train_lr_zero": ["train", "--data", "x", "--out", "o", "--lr", "0"],
    "verify_n_text": ["verify", "--model", "m", "--n", "ten"],
}


@pytest.mark.parametrize("name", sorted(ODD_NUMBERS))
def test_odd_numbers_are_usage_errors(capsys: pytest.CaptureFixture[str], name: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(ODD_NUMBERS[name])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("nanokws ") and "error: argument" in err[-1], err
    assert "out of range" in err[-1] or "not a" in err[-1], err[-1]


def test_argtypes_accept_their_bounds() -> None:
    from nanokws.argtypes import SEED, float_in, int_in

    assert int_in(0, 5)("5") == 5 and SEED("0") == 0 and SEED(str(2**32 - 1)) == 2**32 - 1
    assert float_in(0.0, 1.0)("1") == 1.0 and float_in(0.0, lo_open=True)("1e-9") == 1e-9


# --- the boundary itself ------------------------------------------------------------------------


def _boom(exc: BaseException) -> Callable[..., int]:
    def run(*_: Any) -> int:
        raise exc

    return run


@pytest.mark.parametrize(
    ("exc", "code", "piece"),
    [
        (NanokwsError("x.wav: bad\nthing"), 2, "error: x.wav: bad thing"),
        (IsADirectoryError(21, "Is a directory", "out.json"), 2, "error: out.json: Is a directory"),
        (TypeError("unsupported operand"), 1, "internal error: TypeError: unsupported operand"),
        (ZeroDivisionError("division by zero"), 1, "internal error: ZeroDivisionError"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
)
def test_boundary_one_line_and_exit_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], exc: BaseException, code: int,
    piece: str,
) -> None:
    import nanokws.compiler.cli as compiler_cli

    monkeypatch.delenv("NANOKWS_DEBUG", raising=False)
    monkeypatch.setattr(compiler_cli, "run", _boom(exc))
    rc, err = _run(["compile", "--model", "m.tflite", "--out", "o"], capsys)
    assert rc == code
    assert len(err) == 1 and piece in err[0], err
    assert "Traceback" not in err[0]


def test_debug_env_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import nanokws.compiler.cli as compiler_cli

    monkeypatch.setenv("NANOKWS_DEBUG", "1")
    monkeypatch.setattr(compiler_cli, "run", _boom(TypeError("bug")))
    rc, err = _run(["compile", "--model", "m.tflite", "--out", "o"], capsys)
    assert rc == 1
    assert err[0].startswith("Traceback") and err[-1] == "nanokws compile: internal error: TypeError: bug"


def test_hil_report_is_fault_on_an_unexpected_exception(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import nanokws.harness.cli as hil_cli

    monkeypatch.delenv("NANOKWS_DEBUG", raising=False)

    def crash(args: Any, report: dict[str, Any]) -> int:
        report["status"] = "running"
        raise TypeError("'<' not supported between instances of 'NoneType' and 'float'")

    monkeypatch.setattr(hil_cli, "_run", crash)
    report_path = tmp_path / "h.json"
    rc, err = _run(["hil", "--host", "--data", str(tmp_path), "--report", str(report_path),
                    "--junit", str(tmp_path / "h.xml")], capsys)
    assert rc == 1 and len(err) == 1 and "internal error: TypeError" in err[0]
    report = json.loads(report_path.read_text())
    assert report["status"] == "fault" and report["fault_kind"] == "internal"
    assert report["fault"].startswith("internal error: TypeError")
    assert "<error" in (tmp_path / "h.xml").read_text()


def test_describe_and_one_line() -> None:
    assert one_line("a\n  b\tc") == "a b c"
    assert describe(FileNotFoundError(2, "No such file or directory", "m.tflite")) == (
        "m.tflite: No such file or directory"
    )
    assert describe(ValueError()) == "ValueError"


def test_hil_lists_a_corrupt_wav_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A corrupt WAV in hil's dataset is skipped and listed in the report, not fatal."""
    import contextlib

    import nanokws.harness.cli as hil_cli
    import nanokws.harness.launch as launch
    from nanokws.modelmeta import read_metadata

    labels = read_metadata(GOOD_MODEL.read_bytes())["labels"]
    root = tmp_path / "ds"
    for word in [*labels[2:], "cat"]:
        (root / word).mkdir(parents=True)
        (root / word / "spk1_nohash_0.wav").write_bytes(_wav())
    bad = root / "yes" / "spk2_nohash_0.wav"
    bad.write_bytes(_bad_wavs()["corrupt_fmt_id"])
    (root / "_background_noise_").mkdir()
    (root / "_background_noise_" / "n.wav").write_bytes(_wav(32000))

    class _Dummy:
        def link_stats(self) -> dict[str, int]:
            return {"retried_requests": 0}

    monkeypatch.setattr(launch, "build_firmware", lambda *a: tmp_path)
    monkeypatch.setattr(launch, "host_device", lambda *a: contextlib.nullcontext(_Dummy()))
    monkeypatch.setattr(hil_cli, "_run_device", lambda args, report, *rest: 0)
    report = tmp_path / "h.json"
    rc = main(["hil", "--host", "--data", str(root), "--split", "all", "--report", str(report)])
    assert rc == 0
    assert f"note: skipped 1 files of {root} (first: {bad}: not a valid WAV file" in capsys.readouterr().out
    rep = json.loads(report.read_text())
    assert rep["skipped_files"] == [{"path": str(bad), "reason": rep["skipped_files"][0]["reason"]}]
    assert "corrupt chunk id" in rep["skipped_files"][0]["reason"]
    assert rep["link"] == {"retried_requests": 0}


def test_every_command_is_in_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """All listed commands build their parsers; a command whose module cannot import is an error,
    not a silently missing subcommand."""
    import argparse
    import importlib

    from nanokws import cli

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert sorted(sub.choices) == sorted(name for name, _m, _h in cli.COMMANDS)
    real = importlib.import_module

    def broken(name: str, *a: object) -> object:
        if name == "nanokws.streams.calibrate":
            raise ModuleNotFoundError("No module named 'nanokws.streams.calibrate'", name=name)
        return real(name, *a)

    monkeypatch.setattr(importlib, "import_module", broken)
    with pytest.raises(ModuleNotFoundError):
        cli.build_parser()
