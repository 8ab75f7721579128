"""`nanokws export`: the C array equals the .tflite, and the generated C/C++ compiles and agrees."""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from nanokws.paths import FIRMWARE_LIB_DIR

FRONTEND_INC = FIRMWARE_LIB_DIR / "frontend"
LABELS = ["_silence_", "_unknown_", "yes", "no", "up"]
HAVE_CC = bool(shutil.which("gcc") and shutil.which("g++"))
needs_cc = pytest.mark.skipif(not HAVE_CC, reason="gcc/g++ not installed")


def _model(frontend: dict[str, int] | None = None) -> bytes:
    from nanokws.features import FRONTEND_CONFIG
    from nanokws.train.convert import convert_int8
    from nanokws.train.models import build_model

    calib = np.random.default_rng(0).integers(-128, 128, (10, 49, 40)).astype(np.int8)
    meta = {"labels": LABELS, "frontend": dict(frontend or FRONTEND_CONFIG), "model": "tiny"}
    return convert_int8(build_model("tiny", len(LABELS)), calib, meta)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Path]:
    from nanokws.export import export_model

    root = tmp_path_factory.mktemp("export")
    tflite = _model()
    (root / "model.tflite").write_bytes(tflite)
    paths = export_model(root / "model.tflite", root / "out")
    assert sorted(paths) == ["model_config.h", "model_data.cc", "model_data.h"]
    return tflite, root / "out"


def test_c_array_parses_back_to_the_tflite_bytes(exported: tuple[bytes, Path]) -> None:
    tflite, out = exported
    cc = (out / "model_data.cc").read_text()
    assert "alignas(16) const unsigned char g_model_data[]" in cc
    body = cc[cc.index("g_model_data[] = {"):cc.index("};")]
    data = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body))
    assert data == tflite
    assert f"g_model_data_len = {len(tflite)};" in cc
    header = (out / "model_data.h").read_text()
    assert "extern const unsigned char g_model_data[];" in header
    assert hashlib.sha256(tflite).hexdigest()[:16] in header and "yes" in header


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


PRINT_CONFIG = r"""
#include <stdio.h>
#include "model_config.h"
static const char *const labels[] = NK_MODEL_LABELS;
int main(void) {
    printf("%d %d %.9g %d %.9g %d %s %d\n", NK_MODEL_NUM_LABELS, (int)(sizeof labels / sizeof labels[0]),
           (double)NK_MODEL_INPUT_SCALE, NK_MODEL_INPUT_ZERO_POINT, (double)NK_MODEL_OUTPUT_SCALE,
           NK_MODEL_OUTPUT_ZERO_POINT, NK_MODEL_HASH, NK_MODEL_FE_NUM_CHANNELS);
    for (int i = 0; i < NK_MODEL_NUM_LABELS; i++) printf("%s\n", labels[i]);
    return 0;
}
"""


@needs_cc
@pytest.mark.parametrize("lang", ["c11", "c++17"])
def test_model_config_compiles_and_matches_the_flatbuffer(exported: tuple[bytes, Path], lang: str) -> None:
    import tensorflow as tf

    tflite, out = exported
    (out.parent / "print_config.c").write_text(PRINT_CONFIG)
    c_cmd, cxx_cmd = ["gcc", "-std=c11", "-Wstrict-prototypes"], ["g++", "-std=c++17", "-x", "c++"]
    compiler = c_cmd if lang == "c11" else cxx_cmd
    exe = out.parent / f"print_{lang}"
    proc = _run([*compiler, "-Wall", "-Wextra", "-Werror", "-Wshadow", f"-I{FRONTEND_INC}", f"-I{out}",
                 "print_config.c", "-o", str(exe)], out.parent)
    assert proc.returncode == 0, proc.stderr
    lines = _run([str(exe)], out.parent).stdout.splitlines()
    interp = tf.lite.Interpreter(model_content=tflite)
    in_scale, in_zp = interp.get_input_details()[0]["quantization"]
    out_scale, out_zp = interp.get_output_details()[0]["quantization"]
    fields = lines[0].split()
    assert int(fields[0]) == int(fields[1]) == len(LABELS)
    assert float(fields[2]) == pytest.approx(in_scale, rel=1e-7) and int(fields[3]) == in_zp
    assert float(fields[4]) == pytest.approx(out_scale, rel=1e-7) and int(fields[5]) == out_zp
    assert fields[6] == hashlib.sha256(tflite).hexdigest()[:16]
    assert int(fields[7]) == 40
    assert lines[1:] == LABELS


DUMP_ARRAY = r"""
#include <cstdio>
#include "model_data.h"
int main() { return std::fwrite(g_model_data, 1, g_model_data_len, stdout) == g_model_data_len ? 0 : 1; }
"""


@needs_cc
def test_model_data_compiles_links_and_holds_the_model(exported: tuple[bytes, Path]) -> None:
    tflite, out = exported
    work = out.parent
    (work / "dump.cc").write_text(DUMP_ARRAY)
    proc = _run(["g++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-c", str(out / "model_data.cc"),
                 "-o", "model_data.o"], work)
    assert proc.returncode == 0, proc.stderr
    proc = _run(["g++", "-std=c++11", f"-I{out}", "dump.cc", "model_data.o", "-o", "dump"], work)
    assert proc.returncode == 0, proc.stderr
    dumped = subprocess.run([str(work / "dump")], capture_output=True)
    assert dumped.returncode == 0 and dumped.stdout == tflite


@needs_cc
def test_static_assert_rejects_a_model_for_another_frontend(tmp_path: Path) -> None:
    from nanokws.export import render_model_config
    from nanokws.features import FRONTEND_CONFIG

    other = dict(FRONTEND_CONFIG, NK_FE_NUM_CHANNELS=32)
    (tmp_path / "model_config.h").write_text(render_model_config(_model(other)))
    (tmp_path / "use.c").write_text('#include "model_config.h"\nint main(void) { return 0; }\n')
    proc = _run(["gcc", "-std=c11", f"-I{FRONTEND_INC}", "-I.", "use.c", "-o", "use"], tmp_path)
    assert proc.returncode != 0 and "num_channels" in proc.stderr


def test_cli_exports_and_rejects_a_non_tflite(tmp_path: Path, exported: tuple[bytes, Path]) -> None:
    from nanokws.errors import NanokwsError
    from nanokws.export import cli

    tflite, _ = exported
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    (tmp_path / "m.tflite").write_bytes(tflite)
    good = ["--model", str(tmp_path / "m.tflite"), "--out", str(tmp_path / "o")]
    assert cli.run(parser.parse_args(good)) == 0
    assert (tmp_path / "o" / "model_config.h").read_text().startswith("/*")
    (tmp_path / "bad.tflite").write_bytes(b"not a model at all")
    with pytest.raises(NanokwsError, match="TFL3"):
        cli.run(parser.parse_args(["--model", str(tmp_path / "bad.tflite"), "--out", str(tmp_path / "o2")]))


def test_recognizer_settings_reach_model_config_through_export_and_compile(
    tmp_path: Path, exported: tuple[bytes, Path]
) -> None:
    """Without --recognizer, model_config.h names the library's defaults (read from
    nk_recognizer.h); with a recognizer.json, `export --recognizer` and `compile --recognizer` write
    its settings; settings for other labels stop both with one line."""
    from nanokws.cheader import parse_int_defines
    from nanokws.compiler import cli as compile_cli
    from nanokws.errors import NanokwsError
    from nanokws.export import cli
    from nanokws.streams.replay import RecognizerConfig, save_recognizer_json

    tflite, out = exported
    text = (out / "model_config.h").read_text()
    defaults = RecognizerConfig.defaults(len(LABELS))
    assert '#define NK_MODEL_REC_SOURCE "library defaults"' in text
    assert "#define NK_MODEL_REC_THRESHOLDS { " + ", ".join(map(str, defaults.thresholds)) + " }" in text
    got = parse_int_defines(text)
    names = ("NK_MODEL_REC_WINDOW", "NK_MODEL_REC_SUPPRESSION_MS", "NK_MODEL_REC_RELEASE")
    assert tuple(got[n] for n in names) == (defaults.window, defaults.suppression_ms, defaults.release)

    (tmp_path / "m.tflite").write_bytes(tflite)
    cfg = RecognizerConfig((0, 0, 200, 150, 99), window=6, suppression_ms=1000, release=40)
    rec = tmp_path / "recognizer.json"
    save_recognizer_json(rec, cfg, LABELS, 'calibrated "val" ?? 5% FRR')
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args(["--model", str(tmp_path / "m.tflite"), "--out", str(tmp_path / "e"),
                                      "--recognizer", str(rec)])) == 0
    cparser = argparse.ArgumentParser()
    compile_cli.add_arguments(cparser)
    argv = ["--model", str(tmp_path / "m.tflite"), "--out", str(tmp_path / "c"), "--no-tflm", "--recognizer"]
    assert compile_cli.run(cparser.parse_args([*argv, str(rec)])) == 0
    for folder in ("e", "c"):
        text = (tmp_path / folder / "model_config.h").read_text()
        assert '#define NK_MODEL_REC_SOURCE "calibrated \\"val\\" ?\\077 5% FRR"' in text
        assert "#define NK_MODEL_REC_THRESHOLDS { 0, 0, 200, 150, 99 }" in text
        got = parse_int_defines(text)
        assert tuple(got[n] for n in names) == (6, 1000, 40)
    if HAVE_CC:  # the source string is valid C (no trigraph) under -std=c11 -Werror
        (tmp_path / "src.c").write_text('#include <stdio.h>\n#include "model_config.h"\n'
                                        "int main(void) { puts(NK_MODEL_REC_SOURCE); return 0; }\n")
        proc = _run(["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{FRONTEND_INC}",
                     f"-I{tmp_path / 'c'}", "src.c", "-o", "src"], tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert _run([str(tmp_path / "src")], tmp_path).stdout == 'calibrated "val" ?? 5% FRR\n'
    save_recognizer_json(rec, RecognizerConfig((1, 2, 3, 4, 5)), ["a", "b", "c", "d", "e"], "other model")
    with pytest.raises(NanokwsError, match="labels"):
        cli.run(parser.parse_args(["--model", str(tmp_path / "m.tflite"), "--out", str(tmp_path / "e2"),
                                   "--recognizer", str(rec)]))
    with pytest.raises(NanokwsError, match="labels"):
        compile_cli.run(cparser.parse_args(["--model", str(tmp_path / "m.tflite"), "--out",
                                            str(tmp_path / "c2"), "--no-tflm", "--recognizer", str(rec)]))
