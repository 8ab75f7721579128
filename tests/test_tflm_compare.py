"""`nanokws bench --compare-tflm`: finding the source trees and their pins, the clear errors, the
build's staleness check, the ratio table, and (when NANOKWS_TFLM_SOURCES names the trees) the real
side-by-side run under QEMU."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from nanokws.compiler import tflm_compare as tc
from nanokws.compiler.tflm_compare import build as tflm_build
from nanokws.compiler.tflm_compare import folders
from nanokws.errors import NanokwsError

ROOT = Path(__file__).resolve().parents[1]
HAVE_GIT = shutil.which("git") is not None
needs_git = pytest.mark.skipif(not HAVE_GIT, reason="git is not installed")

TFLM_MARKER_TEXT = "// micro_interpreter.h\n"


def _tflm_tree(path: Path, cmsis: str = "4ab83cc3cc98fb85ed6dafb55e8ca02f1628dcae") -> Path:
    """A fake TFLite Micro work tree: the marker header, the download scripts that carry the pins, a
    sources.inc with two kernels and one test, and a cmsis_nn kernel folder."""
    micro = path / "tensorflow" / "lite" / "micro"
    make = micro / "tools" / "make"
    (make / "ext_libs").mkdir(parents=True)
    (micro / "micro_interpreter.h").write_text(TFLM_MARKER_TEXT)
    (make / "ext_libs" / "cmsis_nn_download.sh").write_text(
        f'if [ -d x ]; then\n  echo skip\nelse\n  ZIP_PREFIX_NN="{cmsis}"\n'
        '  CMSIS_NN_URL="http://github.com/ARM-software/CMSIS-NN/archive/${ZIP_PREFIX_NN}.zip"\nfi\n'
    )
    (make / "flatbuffers_download.sh").write_text('else\n  ZIP_PREFIX="v25.9.23"\n  FLATBUFFERS_URL="x"\n')
    (make / "third_party_downloads.inc").write_text(
        'GEMMLOWP_URL := "https://github.com/google/gemmlowp/archive/719139ce755a0f31cbf1c37f7f98adcc7fc9f425.zip"\n'
        'GEMMLOWP_MD5 := "7e8191b24853d75de2af87622ad293ba"\n'
        'RUY_URL="https://github.com/google/ruy/archive/d37128311b445e758136b8602d1bbd2a755e115d.zip"\n'
    )
    (make / "sources.inc").write_text(
        "MICROLITE_TEST_SRCS := \\\n$(TENSORFLOW_ROOT)tensorflow/lite/micro/hexdump_test.cc \\\n"
        "$(TENSORFLOW_ROOT)tensorflow/lite/micro/odd_helper.cc\n\n"
        "MICROLITE_CC_KERNEL_SRCS := \\\n$(TENSORFLOW_ROOT)tensorflow/lite/micro/kernels/conv.cc \\\n"
        "$(TENSORFLOW_ROOT)tensorflow/lite/micro/kernels/floor.cc\n\nOTHER := x\n"
    )
    for rel in (
        "micro_interpreter.cc",
        "hexdump_test.cc",
        "odd_helper.cc",
        "debug_log.cc",
        "cortex_m_generic/debug_log.cc",
        "memory_planner/greedy_memory_planner.cc",
        "kernels/conv.cc",
        "kernels/floor.cc",
        "kernels/cmsis_nn/conv.cc",
    ):
        (micro / rel).parent.mkdir(parents=True, exist_ok=True)
        (micro / rel).write_text("//\n")
    for rel in (
        "tensorflow/lite/core/c/common.cc",
        "tensorflow/lite/array.cc",
        "tensorflow/lite/experimental/x.cc",
        "tensorflow/compiler/mlir/lite/schema/schema_utils.cc",
    ):
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text("//\n")
    return path


def _plain(path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
    return path


def _fake_bare(path: Path) -> Path:
    """Just the shape find_trees recognises as a bare mirror."""
    (path / "objects").mkdir(parents=True)
    (path / "refs").mkdir()
    (path / "HEAD").write_text("ref: refs/heads/main\n")
    return path


def _all_trees(root: Path) -> Path:
    _tflm_tree(root / "tflite-micro")
    _plain(root / "CMSIS-NN", {"Include/arm_nnfunctions.h": "", "Source/A/arm_a_s8.c": ""})
    _plain(root / "flatbuffers", {"include/flatbuffers/flatbuffers.h": ""})
    _plain(root / "gemmlowp", {"fixedpoint/fixedpoint.h": ""})
    _fake_bare(root / "google+ruy" / "repo")
    return root


# ---------------------------------------------------------------------------------------------
# Finding the trees, and the errors


def test_missing_folder_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NanokwsError, match=r"no such folder \(a folder holding the TFLite Micro"):
        tc.find_trees(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NanokwsError, match="not a folder"):
        tc.find_trees(tmp_path / "file")


def test_missing_trees_are_named_with_how_to_get_them(tmp_path: Path) -> None:
    _tflm_tree(tmp_path / "tflite-micro")
    _plain(tmp_path / "gemmlowp", {"fixedpoint/fixedpoint.h": ""})
    with pytest.raises(NanokwsError) as err:
        tc.find_trees(tmp_path)
    msg = str(err.value)
    assert "missing CMSIS-NN, flatbuffers, ruy" in msg
    assert f"git clone https://github.com/ARM-software/CMSIS-NN {tmp_path / 'CMSIS-NN'}" in msg
    assert "https://github.com/google/ruy" in msg and "gemmlowp:" not in msg
    assert "<owner>+<name>/repo" in msg


def test_an_empty_folder_does_not_count_as_a_tree(tmp_path: Path) -> None:
    _all_trees(tmp_path)
    shutil.rmtree(tmp_path / "gemmlowp")
    (tmp_path / "gemmlowp").mkdir()
    with pytest.raises(NanokwsError, match="missing gemmlowp"):
        tc.find_trees(tmp_path)


def test_a_tree_that_is_not_tflite_micro_is_refused(tmp_path: Path) -> None:
    _all_trees(tmp_path)
    (tmp_path / "tflite-micro" / tc.TFLM_MARKER).unlink()
    with pytest.raises(NanokwsError, match="is not a TFLite Micro tree"):
        tc.find_trees(tmp_path)


def test_work_trees_and_fetch_mirrors_are_both_found(tmp_path: Path) -> None:
    trees = tc.find_trees(_all_trees(tmp_path))
    assert set(trees) == set(tc.TREES)
    assert trees["tflite-micro"].path == tmp_path / "tflite-micro" and not trees["tflite-micro"].bare
    assert not trees["tflite-micro"].git
    assert trees["ruy"].path == tmp_path / "google+ruy" / "repo" and trees["ruy"].bare and trees["ruy"].git


def test_bench_cli_fails_fast_in_one_line_without_the_trees(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nanokws.cli import main

    rc = main(
        ["bench", "--model", str(ROOT / "firmware/model/model.tflite"), "--compare-tflm", str(tmp_path / "x")]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("nanokws bench: error: --compare-tflm") and "no such folder" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_bench_help_teaches_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    from nanokws.cli import main

    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--compare-tflm PATH" in out
    assert "PATH/<owner>+<name>/repo" in out and "git clone https://github.com/tensorflow/tflite-micro" in out


def test_missing_cross_compiler_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(
        NanokwsError, match=r"'arm-none-eabi-gcc' not found on PATH; install it with: .*libstdc\+\+"
    ):
        tc.require_cxx("hard")


# ---------------------------------------------------------------------------------------------
# Pins and source lists


def test_pins_are_read_from_tflite_micros_download_scripts(tmp_path: Path) -> None:
    tflm = _tflm_tree(tmp_path / "t", cmsis="0123456789abcdef0123456789abcdef01234567")
    assert tc.read_pins(tflm) == {
        "CMSIS-NN": "0123456789abcdef0123456789abcdef01234567",
        "flatbuffers": "v25.9.23",
        "gemmlowp": "719139ce755a0f31cbf1c37f7f98adcc7fc9f425",
        "ruy": "d37128311b445e758136b8602d1bbd2a755e115d",
    }
    (tflm / tc.MAKE_DIR / "third_party_downloads.inc").unlink()
    (tflm / tc.MAKE_DIR / "flatbuffers_download.sh").write_text("# no pin here\n")
    pins = tc.read_pins(tflm)
    assert pins["gemmlowp"] is None and pins["ruy"] is None and pins["flatbuffers"] is None
    assert pins["CMSIS-NN"] == "0123456789abcdef0123456789abcdef01234567"


def test_source_lists_follow_tflite_micros_makefile(tmp_path: Path) -> None:
    tflm = _tflm_tree(tmp_path / "t")
    cmsis = _plain(
        tmp_path / "c",
        {
            "Source/Conv/arm_conv_s8.c": "",
            "Source/Conv/arm_conv_f32.c": "",
            "Source/Conv/arm_conv_f16.c": "",
            "Source/NN/arm_nntables_flt.c": "",
            "Source/Bindings/arm_py.cpp": "",
        },
    )
    micro = tflm / "tensorflow/lite/micro"
    ref = tc.tflm_sources(tflm, "reference", cmsis)
    rel = {p.relative_to(tmp_path).as_posix() for p in ref}
    assert "t/tensorflow/lite/micro/micro_interpreter.cc" in rel
    assert "t/tensorflow/lite/micro/memory_planner/greedy_memory_planner.cc" in rel
    assert (
        "t/tensorflow/lite/core/c/common.cc" in rel
        and "t/tensorflow/compiler/mlir/lite/schema/schema_utils.cc" in rel
    )
    assert micro / "cortex_m_generic/debug_log.cc" in ref and micro / "debug_log.cc" not in ref
    for excluded in ("hexdump_test.cc", "odd_helper.cc", "array.cc", "x.cc"):
        assert not any(p.name == excluded for p in ref), excluded
    assert micro / "kernels/conv.cc" in ref and micro / "kernels/floor.cc" in ref
    assert not any(p.is_relative_to(cmsis) for p in ref)

    opt = tc.tflm_sources(tflm, "cmsis_nn", cmsis)
    assert micro / "kernels/cmsis_nn/conv.cc" in opt and micro / "kernels/conv.cc" not in opt
    assert micro / "kernels/floor.cc" in opt
    assert [p.name for p in opt if p.is_relative_to(cmsis)] == ["arm_conv_s8.c"]


def test_op_resolver_methods_come_from_the_header(tmp_path: Path) -> None:
    tflm = _tflm_tree(tmp_path / "t")
    (tflm / "tensorflow/lite/micro/micro_mutable_op_resolver.h").write_text(
        "  TfLiteStatus AddConv2D(\n      const TFLMRegistration& registration = Register_CONV_2D()) {\n"
        "    return AddBuiltin(BuiltinOperator_CONV_2D, registration, ParseConv2D);\n  }\n"
        "  TfLiteStatus AddDepthwiseConv2D(\n"
        "      const TFLMRegistration& registration = Register_DEPTHWISE_CONV_2D()) {\n"
        "    return AddBuiltin(BuiltinOperator_DEPTHWISE_CONV_2D, registration,\n"
        "                      ParseDepthwiseConv2D);\n  }\n"
        "  TfLiteStatus AddCustom(const char* name, TFLMRegistration* registration) {\n"
        "    return kTfLiteOk;\n  }\n"
    )
    m = tc.op_resolver_map(tflm)
    assert m == {
        "CONV_2D": ("AddConv2D", ["Register_CONV_2D"]),
        "DEPTHWISE_CONV_2D": ("AddDepthwiseConv2D", ["Register_DEPTHWISE_CONV_2D"]),
    }
    header = tc.ops_header(["DEPTHWISE_CONV_2D", "CONV_2D", "CONV_2D"], m)
    assert "#define NK_TFLM_NUM_OPS 2" in header
    assert header.index("AddConv2D") < header.index("AddDepthwiseConv2D")
    with pytest.raises(NanokwsError, match="no Add method for SOFTMAX"):
        tc.ops_header(["SOFTMAX"], m)


def test_only_the_models_kernels_are_compiled(tmp_path: Path) -> None:
    k = tmp_path / "tensorflow/lite/micro/kernels"
    files = {
        "conv.cc": "TFLMRegistration Register_CONV_2D() {\n",
        "conv_common.cc": "TfLiteStatus ConvPrepare() {\n",
        "floor.cc": "TFLMRegistration Register_FLOOR() { return x; }\n",
        "floor_common.cc": "// helpers of floor\n",
        "kernel_util.cc": "// helpers of every kernel\n",
        "detection_postprocess.cc": "TFLMRegistration* Register_DETECTION_POSTPROCESS() {\n",
        "pooling.cc": "TFLMRegistration Register_AVERAGE_POOL_2D() {\n}\n"
        "TFLMRegistration Register_MAX_POOL_2D() {\n",
        "cmsis_nn/softmax.cc": "TFLMRegistration Register_SOFTMAX() {\n",
    }
    _plain(k, files)
    srcs = [k / f for f in files] + [tmp_path / "tensorflow/lite/micro/micro_allocator.cc"]
    kept = tc.select_kernels(srcs, {"Register_CONV_2D", "Register_MAX_POOL_2D", "Register_SOFTMAX"})
    assert [p.name for p in kept] == [
        "conv.cc",
        "conv_common.cc",
        "kernel_util.cc",
        "pooling.cc",
        "softmax.cc",
        "micro_allocator.cc",
    ]


def test_objects_without_cmsis_nn_switches_are_shared(tmp_path: Path) -> None:
    plain, switch, obj = tmp_path / "a.h", tmp_path / "b.h", tmp_path / "x.cc.o"
    plain.write_text("int a;\n")
    switch.write_text("#if defined(CMSIS_NN)\n#endif\n")
    obj.with_suffix(".d").write_text(f"{obj}: {plain}\n")
    assert tflm_build._variant_neutral(obj, {})
    obj.with_suffix(".d").write_text(f"{obj}: {plain} \\\n {switch}\n")
    assert not tflm_build._variant_neutral(obj, {})


def test_firmware_arch_is_the_makefiles(monkeypatch: pytest.MonkeyPatch) -> None:
    assert tc.firmware_arch("hard") == [
        "-mcpu=cortex-m4",
        "-mthumb",
        "-mfpu=fpv4-sp-d16",
        "-mfloat-abi=hard",
    ]
    assert tc.firmware_arch("soft")[-1] == "-mfloat-abi=soft"
    flags = tc.Flags("O2", "hard", tc.firmware_arch("hard"))
    assert "-DCMSIS_NN" in flags.tflm("cmsis_nn", c=False) and "-DCMSIS_NN" not in flags.tflm(
        "reference", c=False
    )
    assert "-w" in flags.tflm("reference", c=True) and "-w" not in flags.runner("reference")
    assert {"-Wall", "-Wextra", "-Werror"} <= set(flags.runner("reference"))
    # Our QEMU platform C is built with the Makefile's own CSTD and WARN (read, not retyped).
    platform = flags.platform()
    assert platform[:2] == ["-std=c11", "-ffp-contract=off"] and "-Wstrict-prototypes" in platform
    assert "-DNK_TARGET_QEMU=1" in platform


def test_a_missing_makefile_variable_is_one_clear_error() -> None:
    from nanokws.cbuild import makefile_flags
    from nanokws.errors import NanokwsError

    with pytest.raises(NanokwsError, match="no 'NK_NO_SUCH_FLAGS :=' line"):
        makefile_flags("NK_NO_SUCH_FLAGS")


# ---------------------------------------------------------------------------------------------
# Exporting pinned commits from git


def _git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "GIT_CEILING_DIRECTORIES": str(cwd.parent),
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


@needs_git
def test_pinned_commit_is_exported_and_an_absent_pin_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(folders, "src_dir", lambda: tmp_path / "src")
    work = _plain(tmp_path / "ruy", {"ruy/profiler/instrumentation.h": "// old\n", "README": "x"})
    _git(work, "init", "-q")
    _git(work, "add", ".")
    _git(work, "commit", "-q", "-m", "one")
    old = _git(work, "rev-parse", "HEAD")
    (work / "ruy/profiler/instrumentation.h").write_text("// new\n")
    _git(work, "commit", "-q", "-am", "two")
    new = _git(work, "rev-parse", "HEAD")
    bare = tmp_path / "mirror" / "google+ruy" / "repo"
    _git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))

    for tree in (tc.Tree("ruy", work, bare=False, git=True), tc.Tree("ruy", bare, bare=True, git=True)):
        src = tc.materialize(tree, old)
        assert src.pinned and src.commit == old and src.note == ""
        assert (src.root / "ruy/profiler/instrumentation.h").read_text() == "// old\n"
        assert not (src.root / "README").exists()  # only what the build needs
        assert src.identity() == old

    absent = "0" * 40
    src = tc.materialize(tc.Tree("ruy", bare, bare=True, git=True), absent)
    assert not src.pinned and src.commit == new
    assert f"pin {absent} is not in {bare}: used its HEAD {new[:12]}" in src.note
    assert (src.root / "ruy/profiler/instrumentation.h").read_text() == "// new\n"

    (work / "ruy/profiler/instrumentation.h").write_text("// edited\n")
    src = tc.materialize(tc.Tree("ruy", work, bare=False, git=True), absent)
    assert src.root == work and src.dirty and "uncommitted changes" in src.note and "as it is" in src.note
    assert str(work) in src.identity()

    plain = _plain(tmp_path / "plain", {"ruy/x.h": ""})
    src = tc.materialize(tc.Tree("ruy", plain, bare=False, git=False), old)
    assert src.commit is None and "not a git tree" in src.note and src.root == plain


@needs_git
def test_flatbuffers_get_tflite_micros_patch_on_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(folders, "src_dir", lambda: tmp_path / "src")
    fb = _plain(
        tmp_path / "flatbuffers",
        {"include/flatbuffers/flatbuffers.h": "", "include/flatbuffers/base.h": "a\nb\n"},
    )
    tflm = _tflm_tree(tmp_path / "t")
    (tflm / tc.FLATBUFFERS_PATCH).write_text(
        "diff --git a/include/flatbuffers/base.h b/include/flatbuffers/base.h\n"
        "--- a/include/flatbuffers/base.h\n+++ b/include/flatbuffers/base.h\n@@ -1,2 +1,3 @@\n a\n+tflm\n b\n"
    )
    src = tc.prepare_flatbuffers(tc.Source("flatbuffers", fb, None, "v1", False, "work tree"), tflm)
    assert (src.root / "include/flatbuffers/base.h").read_text() == "a\ntflm\nb\n"
    assert (fb / "include/flatbuffers/base.h").read_text() == "a\nb\n"  # the user's tree untouched
    assert src.extra["tflm_patch"].endswith(": applied")
    # A tree that already carries the patch (TFLM's own downloads folder) is taken as it is.
    (fb / "include/flatbuffers/base.h").write_text("a\ntflm\nb\n")
    again = tc.prepare_flatbuffers(tc.Source("flatbuffers", fb, None, "v1", False, "work tree"), tflm)
    assert again.extra["tflm_patch"].endswith(": already applied") and again.root != src.root


# ---------------------------------------------------------------------------------------------
# The build's staleness check


def test_objects_are_rebuilt_only_when_a_dependency_changes(tmp_path: Path) -> None:
    src, hdr, obj = tmp_path / "a.cc", tmp_path / "a.h", tmp_path / "obj" / "a.cc.o"
    src.write_text("x")
    hdr.write_text("y")
    assert tc.stale(obj)
    obj.parent.mkdir()
    obj.write_text("o")
    assert tc.stale(obj)  # no dependency file: an interrupted compile
    obj.with_suffix(".d").write_text(f"{obj}: {src} \\\n {hdr}\n\n{hdr}:\n")
    old = obj.stat().st_mtime - 10
    os.utime(src, (old, old))
    os.utime(hdr, (old, old))
    assert not tc.stale(obj)
    os.utime(hdr, (old + 20, old + 20))
    assert tc.stale(obj)
    hdr.unlink()
    assert tc.stale(obj)


# ---------------------------------------------------------------------------------------------
# The table


def _synthetic() -> dict[str, Any]:
    def rt(instr: int, ms: float, **kw: Any) -> dict[str, Any]:
        return {
            "instructions_per_inference": instr,
            "instructions_per_inference_features": instr + 40,
            "board_ms_lower_bound": ms,
            "flash_bytes_without_model": 90_000,
            **kw,
        }

    tflm = {
        "arena_used_bytes": 20_356,
        "init_instructions": 123_440,
        "outputs_equal_to_nanokws": True,
        "mismatched_inputs": 0,
        "mismatched_elements": 0,
    }
    return {
        "model": "model.tflite",
        "runtimes": {
            "tflm_reference": rt(40_803_640, 637.557, **tflm),
            "tflm_cmsis_nn": rt(6_409_240, 100.144, **{**tflm, "arena_used_bytes": 20_404}),
            "nanokws": rt(2_849_240, 44.519, arena_bytes=15_808),
        },
        "ratios": {"nanokws_vs_tflm_cmsis_nn": round(2_849_240 / 6_409_240, 4)},
        "inputs": {"random": 3, "features": 3, "notes": ["a note"]},
        "sources": {
            "tflite-micro": {"commit": "90b983c2b3f1" + "0" * 28, "pin": None, "pinned": False, "note": ""},
            "CMSIS-NN": {
                "commit": "4ab83cc3cc98fb85ed6dafb55e8ca02f1628dcae",
                "pin": "4ab83cc3cc98fb85ed6dafb55e8ca02f1628dcae",
                "pinned": True,
                "note": "",
            },
            "flatbuffers": {
                "commit": "1872409707" + "0" * 30,
                "pin": "v25.9.23",
                "pinned": True,
                "note": "",
                "tflm_patch": "x: applied",
            },
            "ruy": {
                "commit": "d37128311b44" + "0" * 28,
                "pin": "ffff",
                "pinned": False,
                "note": "pin ffff is not in /m: used its HEAD d37128311b44",
            },
        },
        "compiler": "arm-none-eabi-g++ 12.2.1",
        "flags": {"opt": "-O2", "float_abi": "hard"},
        "build": {"cache": "build/tflm_compare/k", "objects_compiled": 0, "seconds": 1.2},
    }


def test_ratio_table_and_its_lines_from_a_synthetic_result() -> None:
    text = tc.format_table(_synthetic())
    lines = text.splitlines()
    assert "| model | TFLM reference | TFLM + CMSIS-NN | nanokws today | nanokws / CMSIS-NN |" in lines
    assert "| model.tflite | 40,803,640 | 6,409,240 | 2,849,240 | 0.445 |" in lines
    assert "median of 3 random inputs" in text and "not Cortex-M4 cycles" in text
    assert (
        "at least (1 instruction/cycle): TFLM reference >= 637.6 ms, TFLM + CMSIS-NN >= 100.1 ms, "
        "nanokws >= 44.5 ms"
    ) in text
    assert "outputs, TFLM reference vs nanokws on 6 inputs: equal element by element" in text
    assert "arena: TFLM reference 20,356 B, TFLM + CMSIS-NN 20,404 B" in text and "nanokws 15,808 B" in text
    assert "CMSIS-NN 4ab83cc3cc98 (pinned)" in text and "flatbuffers 187240970700 (= pin v25.9.23)" in text
    assert "applied TFLM patch" in text and "[pin ffff is not in /m: used its HEAD d37128311b44]" in text
    assert "note: a note" in text
    assert "virtual" not in text.lower()  # never QEMU's clock as board time


def test_table_says_how_many_outputs_differ() -> None:
    c = copy.deepcopy(_synthetic())
    c["runtimes"]["tflm_cmsis_nn"].update(
        outputs_equal_to_nanokws=False, mismatched_inputs=1, mismatched_elements=3
    )
    c["inputs"]["features"] = 0
    text = tc.format_table(c)
    assert "outputs, TFLM + CMSIS-NN vs nanokws on 3 inputs: DIFFER on 1 inputs (3 elements)" in text
    assert "real features" not in text


# ---------------------------------------------------------------------------------------------
# The real thing (opt-in: CI does not need it)


def _sources_or_skip() -> Path:
    value = os.environ.get(tc.SOURCES_ENV, "")
    if not value:
        pytest.skip(
            f"{tc.SOURCES_ENV} is not set (a folder with the TFLite Micro, CMSIS-NN, flatbuffers, "
            "gemmlowp and ruy source trees)"
        )
    return Path(value)


@pytest.mark.slow
@pytest.mark.qemu
def test_tflite_micro_side_by_side_on_the_default_model() -> None:
    sources = _sources_or_skip()
    tflite = (ROOT / "firmware/model/model.tflite").read_bytes()
    c = tc.compare(tflite, sources, runs=2, progress=False)
    rt = c["runtimes"]
    ref, cmsis, ours = (
        rt[k]["instructions_per_inference"] for k in ("tflm_reference", "tflm_cmsis_nn", "nanokws")
    )
    assert c["outputs_equal"], {k: v.get("mismatched_elements") for k, v in rt.items()}
    assert ref > cmsis > ours > 0
    assert ref % 40 == 0 and cmsis % 40 == 0
    assert c["ratios"]["nanokws_vs_tflm_cmsis_nn"] == pytest.approx(ours / cmsis, abs=1e-4)
    for key in ("tflm_reference", "tflm_cmsis_nn"):
        assert 10_000 < rt[key]["arena_used_bytes"] < rt[key]["arena_size_bytes"]
        assert rt[key]["flash_bytes_without_model"] > 0
    assert c["sources"]["CMSIS-NN"]["commit"] and c["sources"]["tflite-micro"]["commit"]
    # a second run finds everything built
    again = tc.compare(tflite, sources, runs=1, progress=False)
    assert again["build"]["objects_compiled"] == 0
    # Same input, same count, within the count's resolution: one SysTick tick (40 instructions) of
    # phase, which depends on how long QEMU idled (-icount warps idle time) before the timed call.
    first = rt["tflm_cmsis_nn"]["instructions_each_input"][0]
    assert abs(again["runtimes"]["tflm_cmsis_nn"]["instructions_each_input"][0] - first) <= 40
