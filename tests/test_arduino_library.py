"""`nanokws export --arduino-library`: the zip is a valid Arduino library, and its own sources, built
for the host (ASan/UBSan) and for QEMU's Cortex-M4, run the FromBuffer example's logic with the
detections and scores the host reference (the C frontend via nanokws.features, TFLite Micro, the
recognizer rules of PROTOCOL.md) predicts for the same audio.

Two models: the one shipped in firmware/model (whatever it is), and a small untrained one in the
other form: full-window when the shipped model streams (then the library carries its streaming
form), else streamable. The audio is real keywords from ../shared/data when
present, else noise bursts.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fixtures.capabilities import require_qemu, shared_or_none
from fixtures.firmware_io import CLIP_FRAMES, HOP, start_up_config
from fixtures.full_window_model import full_window_tiny
from fixtures.shipped import shipped_model_streams
from nanokws.cli import main as cli_main
from nanokws.data import read_wav, wav_bytes
from nanokws.features import compute_features
from nanokws.paths import FIRMWARE_DIR, SHARED_SPEECH_COMMANDS
from test_arduino_layer import predict

SHIPPED_TFLITE = FIRMWARE_DIR / "model" / "model.tflite"
# `nanokws ship` writes the streaming form's header only for a model that streams.
SHIPPED_STREAMS = shipped_model_streams()
OTHER_FORM = "full_window" if SHIPPED_STREAMS else "streaming"
HAVE_CXX = bool(shutil.which("gcc") and shutil.which("g++"))
# Arduino library specification (1.5 format): library.properties fields and categories.
REQUIRED_FIELDS = ("name", "version", "author", "maintainer", "sentence", "paragraph", "category", "url",
                   "architectures")
CATEGORIES = {"Display", "Communication", "Signal Input/Output", "Sensors", "Device Control", "Timing",
              "Data Storage", "Data Processing", "Other"}
ARDUINO_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9 _.-]*$")
CFLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wstrict-prototypes",
          "-Wno-unused-parameter", "-ffp-contract=off"]
SAN = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
DETECTION_RE = re.compile(r"^heard (\S+) score (\d+) at_ms (\d+)$")


@dataclass(frozen=True)
class Exported:
    zip_path: Path
    root: Path  # the unzipped library folder
    name: str
    audio: np.ndarray
    tflite: bytes
    kind: str  # "shipped" (trained), else OTHER_FORM (untrained: it may hear nothing)
    streaming: bool  # the library carries the streaming form


def _example_audio() -> np.ndarray:
    rng = np.random.default_rng(7)

    def quiet(seconds: float) -> np.ndarray:
        return np.clip(rng.normal(0, 3, int(seconds * 16000)), -32768, 32767).astype(np.int16)

    parts = [quiet(0.4)]
    if shared_or_none(SHARED_SPEECH_COMMANDS, "real clips") is not None:
        for word in ("yes", "no", "stop"):
            parts += [read_wav(sorted((SHARED_SPEECH_COMMANDS / word).glob("*.wav"))[3]), quiet(0.6)]
    else:
        for level in (6000, 9000):
            parts += [np.clip(rng.normal(0, level, 12000), -32768, 32767).astype(np.int16), quiet(0.8)]
    return np.concatenate(parts)


def _full_window_model() -> bytes:
    frames = compute_features(_example_audio())
    windows = np.stack([frames[i : i + CLIP_FRAMES] for i in range(0, len(frames) - CLIP_FRAMES, 9)])
    return full_window_tiny(windows)


@pytest.fixture(scope="module", params=["shipped", OTHER_FORM])
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    if request.param == "shipped":
        tflite = SHIPPED_TFLITE.read_bytes()  # read once: another run may replace the shipped model
        streaming = SHIPPED_STREAMS
    elif request.param == "streaming":
        from test_firmware_streaming import _model as streamable_model

        tflite, streaming = streamable_model("tiny"), True
    else:
        tflite, streaming = _full_window_model(), False
    tmp = tmp_path_factory.mktemp("arduino_lib")
    (tmp / "model.tflite").write_bytes(tflite)
    audio = _example_audio()
    (tmp / "example.wav").write_bytes(wav_bytes(audio))
    out = tmp / "lib.zip"
    rc = cli_main(["export", "--model", str(tmp / "model.tflite"), "--arduino-library", str(out),
                   "--library-version", "2.3.4", "--example-wav", str(tmp / "example.wav")])
    assert rc == 0 and out.is_file()
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        assert any(n.endswith("/src/nk_model_stream.h") for n in names) == streaming
        tops = {n.split("/")[0] for n in zf.namelist()}
        assert len(tops) == 1, tops
        zf.extractall(tmp / "unzipped")
    name = tops.pop()
    return Exported(out, tmp / "unzipped" / name, name, audio, tflite, request.param, streaming)


# --- the layout, against the Arduino library specification ------------------------------------


def _properties(root: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string("[lib]\n" + (root / "library.properties").read_text(encoding="utf-8"))
    return dict(parser["lib"])


def test_library_properties_has_the_required_fields(exported: Exported) -> None:
    props = _properties(exported.root)
    for key in REQUIRED_FIELDS:
        assert props.get(key, "").strip(), f"library.properties lacks {key}"
    assert props["name"] == exported.name and ARDUINO_NAME.match(props["name"])
    # The model's name (from its metadata), so two models install side by side.
    from nanokws.modelmeta import read_metadata

    assert props["name"] == re.sub(r"[^A-Za-z0-9_.-]", "_", str(read_metadata(exported.tflite)["model"]))
    assert props["version"] == "2.3.4"
    assert props["category"] in CATEGORIES
    assert props["precompiled"] == "false"
    archs = [a.strip() for a in props["architectures"].split(",")]
    assert archs and all(a == "*" or re.match(r"^[a-z0-9_]+$", a) for a in archs)
    assert props["includes"] == f"{exported.name}.h"
    assert (exported.root / "src" / props["includes"]).is_file()


def test_keywords_txt_names_public_methods(exported: Exported) -> None:
    api = (exported.root / "src" / "NanoKws.h").read_text()
    for line in (exported.root / "keywords.txt").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        word, kind = line.split("\t")  # the format: one tab between word and kind
        assert kind in ("KEYWORD1", "KEYWORD2", "LITERAL1") and re.search(rf"\b{word}\b", api), line


def test_library_json_agrees_with_library_properties(exported: Exported) -> None:
    props = _properties(exported.root)
    doc = json.loads((exported.root / "library.json").read_text())
    assert doc["name"] == props["name"] and doc["version"] == props["version"]
    assert doc["frameworks"] == "arduino" and doc["headers"] == f"{exported.name}.h"
    for example in doc["examples"]:
        assert (exported.root / example["base"] / example["files"][0]).is_file()


def test_src_layout_is_flat_and_self_contained(exported: Exported) -> None:
    src = exported.root / "src"
    assert not (exported.root / "utility").exists()  # the 1.5 format: src/ only
    names = {p.name for p in src.iterdir()}
    # Flat: the core's headers include each other by name, and the IDE puts only src/ on the path.
    assert all(p.is_file() for p in src.iterdir())
    # The header of the library's name, the public API, the compiled model and the kernels.
    assert {f"{exported.name}.h", "NanoKws.h", "nk_kws.h", "nk_kws.c", "nk_model.c", "nk_model.h",
            "model_config.h", "nk_simd.h", "platform_arduino.cpp"} <= names
    # Every quoted include, conditional or not, is a file of src/: PlatformIO's dependency finder
    # reads #include lines without evaluating #if, and would pull in another installed library
    # that has the header (two exported models installed side by side).
    for f in src.iterdir():
        for inc in re.findall(r'^\s*#\s*include\s+"([^"]+)"', f.read_text(), re.MULTILINE):
            assert inc in names, f"{f.name} includes {inc}, which src/ does not have"
    assert ("nk_model_stream.h" in names) == exported.streaming
    # The Cortex-M4 DSP path and its GCC 7 fallback (no <arm_acle.h> intrinsics) went along.
    simd = (src / "nk_simd.h").read_text()
    assert "smlad" in simd.lower() and "arm_acle.h" not in re.sub(r"/\*.*?\*/|//[^\n]*", "", simd, flags=re.S)
    # The README's model RAM is what the compiled model's header says it links.
    header, name = ("nk_model_stream.h", "NK_MODEL_STREAM_RAM_BYTES") if exported.streaming else (
        "nk_model.h", "NK_MODEL_ARENA_BYTES")
    m = re.search(rf"#define {name} (\d+)", (src / header).read_text())
    readme = (exported.root / "README.md").read_text()
    assert m and f"its own static RAM is {m[1]} bytes" in readme
    # The README's recognizer settings are those its model_config.h starts with (the suppression
    # follows the model's window).
    from nanokws.export.model_config import read_recognizer_defines

    rec = read_recognizer_defines((src / "model_config.h").read_text())
    assert f"smoothing over\n{rec.window} inferences" in readme
    assert f"{rec.suppression_ms} ms suppression" in readme
    # And the model is the one exported.
    assert hashlib.sha256(exported.tflite).hexdigest()[:16] in (src / "model_config.h").read_text()


def test_examples_folders_match_their_ino(exported: Exported) -> None:
    examples = exported.root / "examples"
    found = sorted(p.name for p in examples.iterdir())
    assert found == ["FromBuffer", "LiveKeywords", "SerialHarness"]
    for folder in examples.iterdir():
        inos = [p.name for p in folder.glob("*.ino")]
        assert inos == [f"{folder.name}.ino"], (folder.name, inos)
        text = (folder / f"{folder.name}.ino").read_text()
        assert f"#include <{exported.name}.h>" in text and "@LIBRARY_HEADER@" not in text


def test_zip_is_reproducible(exported: Exported, tmp_path: Path) -> None:
    from nanokws.export import export_arduino_library

    # Same file names (they are quoted in comments), another folder and another run.
    again = tmp_path / "again.zip"
    (tmp_path / "model.tflite").write_bytes(exported.tflite)
    (tmp_path / "example.wav").write_bytes(wav_bytes(exported.audio))
    export_arduino_library(
        tmp_path / "model.tflite", again, version="2.3.4", example_wav=tmp_path / "example.wav"
    )
    assert again.read_bytes() == exported.zip_path.read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--library-version", "1.0"], "MAJOR.MINOR.PATCH"),
        (["--library-name", "9lives"], "must start with a letter"),
        (["--library-name", "nk_kws"], "clashes with the core's nk_kws.h"),
    ],
)
def test_export_refuses_bad_names_in_one_line(
    exported: Exported, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    (tmp_path / "m.tflite").write_bytes(exported.tflite)
    out = tmp_path / "x.zip"
    rc = cli_main(["export", "--model", str(tmp_path / "m.tflite"), "--arduino-library", str(out), *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and len(err.splitlines()) == 1, err
    assert not out.exists()


# --- FromBuffer's logic on the exported sources vs the host reference ---------------------------


def _initial_stride(src: Path) -> int:
    """nk_kws.c's first stride: NK_KWS_DEFAULT_STRIDE, unless a streaming model's alignment needs
    the one it was compiled for (read from the exported headers, not retyped)."""

    def define(header: str, name: str) -> int:
        m = re.search(rf"#define {name} (\d+)", (src / header).read_text())
        assert m, name
        return int(m[1])

    default = define("nk_kws.h", "NK_KWS_DEFAULT_STRIDE")
    if not (src / "nk_model_stream.h").is_file():
        return default
    aligned = default % define("nk_model_stream.h", "NK_MODEL_STREAM_ALIGN") == 0
    return default if aligned else define("nk_model_stream.h", "NK_MODEL_STREAM_STRIDE")


def reference(exported: Exported) -> tuple[list[tuple[str, int, int]], list[int], int]:
    """(detections as (label, score, time_ms), the last inference's scores, inferences)."""
    from nanokws.harness.reference import Reference
    from nanokws.modelmeta import read_metadata

    ref = Reference(exported.tflite)
    labels = [str(x) for x in read_metadata(exported.tflite)["labels"]]
    features = compute_features(exported.audio[: exported.audio.size // HOP * HOP])
    sc = start_up_config(exported.root / "src", _initial_stride(exported.root / "src"))
    window = ref.window_frames
    dets = predict(features, ref.scores_from_features, labels, ref.output_scale, ref.output_zero_point, sc,
                   window=window)
    last = window - 1 + (len(features) - window) // sc.stride * sc.stride
    scores = ref.scores_from_features(features[last - window + 1 : last + 1])
    inferences = (len(features) - window) // sc.stride + 1
    heard = [(labels[k], s, hop * HOP * 1000 // 16000) for hop, k, s in dets]
    return heard, [int(x) for x in scores], inferences


def parse(stdout: str) -> tuple[list[tuple[str, int, int]], list[int], int]:
    lines = stdout.replace("\r\n", "\n").split("\n")
    dets = [(m[1], int(m[2]), int(m[3])) for m in map(DETECTION_RE.match, lines) if m]
    scores = [line for line in lines if line.startswith("scores")]
    inf = [line for line in lines if line.startswith("inferences ")]
    assert len(scores) == 1 and len(inf) == 1, stdout[-2000:]
    return dets, [int(x) for x in scores[0].split()[1:]], int(inf[0].split()[1])


# The FromBuffer sketch's steps through the C API, for targets without the Arduino API (QEMU).
FROM_BUFFER_C = r"""
#include <stdio.h>
#include <string.h>
#include "nk_kws.h"
#include "nk_platform.h"
#include "audio.h"

static nk_kws_t kws;

static void put(const char *s) { nk_platform_write((const uint8_t *)s, strlen(s)); }

static void heard(void *ctx, const nk_kws_detection_t *d) {
    char line[96];
    (void)ctx;
    snprintf(line, sizeof line, "heard %s score %u at_ms %lu\n", d->label, (unsigned)d->score,
             (unsigned long)d->time_ms);
    put(line);
}

int main(void) {
    char line[400];
    nk_platform_init();
    if (nk_kws_begin(&kws, nk_kws_model()) != NK_KWS_OK ||
        nk_kws_on_detection(&kws, heard, NULL) != NK_KWS_OK) {
        put("begin failed\n");
        nk_platform_exit(1);
    }
    for (size_t i = 0; i < kAudioSamples; i += 160) {
        size_t n = kAudioSamples - i < 160 ? kAudioSamples - i : 160;
        if (nk_kws_push(&kws, kAudio + i, n) != NK_KWS_OK) {
            put("push failed\n");
            nk_platform_exit(1);
        }
    }
    int8_t scores[32];
    size_t count = nk_kws_last_scores(&kws, scores, sizeof scores, NULL);
    int len = snprintf(line, sizeof line, "scores");
    for (size_t i = 0; i < count; i++) {
        len += snprintf(line + len, sizeof line - (size_t)len, " %d", (int)scores[i]);
    }
    snprintf(line + len, sizeof line - (size_t)len, "\ninferences %lu\n",
             (unsigned long)nk_kws_stats(&kws)->inferences);
    put(line);
    nk_platform_exit(0);
}
"""


def _run(cmd: list[str], **kw: object) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    assert proc.returncode == 0, " ".join(cmd[:3]) + "...\n" + (proc.stdout + proc.stderr)[-3000:]


def _compile_c(cc: str, flags: list[str], sources: list[Path], out: Path, includes: list[Path]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    objs = []
    for s in sources:
        obj = out / (s.stem + ".o")
        _run([cc, *flags, *[f"-I{i}" for i in includes], "-c", str(s), "-o", str(obj)])
        objs.append(obj)
    return objs


def build_on_double(exported: Exported, example: str, out: Path, sanitize: bool = True) -> Path:
    """examples/EXAMPLE/EXAMPLE.ino (and the example's other .cpp files) with the library's src/
    (C and C++) against the Arduino API double, compiled as the IDE does: Arduino.h first, the
    .ino as C++. ASan/UBSan at -O1, or -O2 without them (`sanitize=False`: real-time speed)."""
    src, folder = exported.root / "src", exported.root / "examples" / example
    double = FIRMWARE_DIR / "targets" / "arduino_host"
    san = SAN if sanitize else []
    core = ["-funsigned-char", "-DTARGET_NAME=ARDUINO_NANO33BLE", "-O1" if sanitize else "-O2", "-g", *san]
    objs = _compile_c("gcc", [*CFLAGS, *core], sorted(src.glob("*.c")), out / "c", [src])
    cxx = ["-std=gnu++14", "-fno-exceptions", "-fno-rtti", "-Wall", "-Wextra", "-Werror",
           "-Wno-unused-parameter", "-ffp-contract=off", *core]
    inc = [f"-I{p}" for p in (double, src, folder)]
    for s in [*sorted(src.glob("*.cpp")), *sorted(double.glob("*.cpp")), *sorted(folder.glob("*.cpp"))]:
        obj = out / (s.stem + ".oxx")
        _run(["g++", *cxx, *inc, "-c", str(s), "-o", str(obj)])
        objs.append(obj)
    sketch = out / f"{example}.o"
    _run(["g++", *cxx, *inc, "-include", "Arduino.h", "-x", "c++", "-c", str(folder / f"{example}.ino"),
          "-o", str(sketch)])
    exe = out / example
    _run(["g++", *san, *map(str, objs), str(sketch), "-lm", "-o", str(exe)])
    return exe


@pytest.mark.skipif(not HAVE_CXX, reason="gcc/g++ not installed")
def test_from_buffer_sketch_on_the_arduino_double_matches_the_reference(
    exported: Exported, tmp_path: Path
) -> None:
    exe = build_on_double(exported, "FromBuffer", tmp_path)
    proc = subprocess.run([str(exe)], stdin=subprocess.DEVNULL, capture_output=True, timeout=300,
                          env={**os.environ, "NKA_STOP_AFTER_LOOPS": "1"})
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    out = proc.stdout.decode()
    got = parse(out)
    want = reference(exported)
    assert want[0] or not SHARED_SPEECH_COMMANDS.is_dir() or exported.kind != "shipped", "words unheard"
    assert got == want
    assert re.search(r"cycles_per_inference [1-9]\d* ram_bytes [1-9]\d*", out), out[-500:]


@pytest.mark.skipif(not HAVE_CXX, reason="gcc/g++ not installed")
def test_serial_harness_sketch_answers_the_harness_bit_exact(exported: Exported, tmp_path: Path) -> None:
    # SerialHarness.ino on the double, driven as `nanokws hil` drives a board: clip mode's int8
    # scores equal TFLite Micro's on the same frontend features, and INFO names this model.
    from nanokws.harness.device import Device, ProcessTransport
    from nanokws.harness.reference import Reference

    exe = build_on_double(exported, "SerialHarness", tmp_path)
    ref = Reference(exported.tflite)
    audio = exported.audio
    clips = [audio[i : i + 16000] for i in range(0, audio.size - 16000, 12000)][:4]
    with Device(ProcessTransport([str(exe)], env=dict(os.environ)), timeout=60.0) as dev:
        info = dev.connect().data
        assert info["model_hash"] == hashlib.sha256(exported.tflite).hexdigest()[:16]
        for clip in clips:
            result = dev.classify(clip)
            want = ref.scores_from_features(compute_features(clip))
            assert np.array_equal(result.scores, want), (result.scores, want)
        assert dev.stats().rx_errors == 0


@pytest.mark.skipif(not HAVE_CXX, reason="gcc/g++ not installed")
def test_live_keywords_sketch_prints_the_reference_detections(exported: Exported, tmp_path: Path) -> None:
    # LiveKeywords.ino with the firmware's live_audio.cpp, fed through the PDM double at real time.
    from nanokws.harness.reference import Reference
    from nanokws.modelmeta import read_metadata
    from test_arduino_layer import duration_ms, printed, run_steady, stream_audio, write_wav

    exe = build_on_double(exported, "LiveKeywords", tmp_path, sanitize=False)
    pdm = write_wav(tmp_path / "words.wav", exported.audio)
    ref = Reference(exported.tflite)
    labels = [str(x) for x in read_metadata(exported.tflite)["labels"]]
    sc = start_up_config(exported.root / "src", _initial_stride(exported.root / "src"))
    dets = predict(compute_features(stream_audio(exported.audio)), ref.scores_from_features, labels,
                   ref.output_scale, ref.output_zero_point, sc, window=ref.window_frames)
    assert dets or not SHARED_SPEECH_COMMANDS.is_dir() or exported.kind != "shipped", "words unheard"
    # A stalled test machine makes the sketch fall behind real time, and then it rightly skips
    # inferences (which changes the detections): once more at half speed before judging.
    for speed in (1.0, 0.5):
        run = run_steady(exe, pdm, stop_ms=duration_ms(exported.audio) + 200, speed=speed)
        assert run.rc == 0, run.stderr[-2000:]
        if run.heard() == printed(dets, labels):
            break
    assert run.heard() == printed(dets, labels), run.stdout[-2000:]
    assert len([1 for _, on in run.led() if on]) == len(dets)


@pytest.mark.parametrize("target", ["asan", "qemu"])
def test_from_buffer_logic_on_exported_sources_matches_the_reference(
    exported: Exported, tmp_path: Path, target: str
) -> None:
    src, example = exported.root / "src", exported.root / "examples" / "FromBuffer"
    main = tmp_path / "from_buffer_main.c"
    main.write_text(FROM_BUFFER_C)
    sources = [*sorted(src.glob("*.c")), main]
    if target == "asan":
        if not HAVE_CXX:
            pytest.skip("gcc not installed")
        platform = sorted((FIRMWARE_DIR / "targets" / "host").glob("*.c"))
        objs = _compile_c("gcc", [*CFLAGS, "-O1", "-g", *SAN], [*sources, *platform], tmp_path / "o",
                          [src, example])
        exe = tmp_path / "from_buffer"
        _run(["gcc", *SAN, *map(str, objs), "-lm", "-o", str(exe)])
        proc = subprocess.run([str(exe)], stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
        out = proc.stdout.decode()
    else:
        require_qemu()
        from nanokws.qemu import Qemu

        qemu_dir = FIRMWARE_DIR / "targets" / "qemu"
        arch = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]
        flags = [*CFLAGS, "-O2", *arch, "-ffunction-sections", "-fdata-sections", "-DNK_TARGET_QEMU=1"]
        objs = _compile_c("arm-none-eabi-gcc", flags, [*sources, *sorted(qemu_dir.glob("*.c"))],
                          tmp_path / "o", [src, example, qemu_dir])
        elf = tmp_path / "from_buffer.elf"
        _run(["arm-none-eabi-gcc", *arch, "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs",
              "-Wl,--gc-sections", f"-T{qemu_dir / 'mps2_an386.ld'}", *map(str, objs), "-lm", "-o", str(elf)])
        with Qemu(elf) as q:
            assert q.proc.stdout is not None
            data = q.proc.stdout.read()
            assert q.wait(300) == 0, q.stderr_text()
        out = data.decode()
    assert parse(out) == reference(exported)


# --- the C API's contract (firmware/lib/kws, with the fixture model) -----------------------------

API_CHECK_C = r"""
#include <stdio.h>
#include <string.h>
#include "nk_kws.h"

#define CHECK(x) do { if (!(x)) { printf("FAILED line %d: %s\n", __LINE__, #x); return 1; } } while (0)

static nk_kws_t a, b;
static _Alignas(16) unsigned char block[NK_KWS_MEMORY_BYTES + 16];
static int calls;
static void count(void *ctx, const nk_kws_detection_t *d) { (void)d; (*(int *)ctx)++; }

int main(void) {
    const nk_kws_model_t *m = nk_kws_model();
    nk_kws_t *in_block = NULL;
    int8_t scores[8];
    CHECK(m->num_labels == NK_MODEL_NUM_LABELS && strcmp(m->labels[2], "yes") == 0);
    CHECK(strcmp(nk_kws_status_name(NK_KWS_ERR_IN_USE), "NK_KWS_ERR_IN_USE") == 0);
    /* Not started: every call says so, and nothing is read. */
    CHECK(nk_kws_push(&a, NULL, 0) == NK_KWS_ERR_NOT_STARTED);
    CHECK(nk_kws_set_threshold(&a, 0, 1) == NK_KWS_ERR_NOT_STARTED);
    CHECK(nk_kws_begin(NULL, m) == NK_KWS_ERR_ARGUMENT && nk_kws_begin(&a, NULL) == NK_KWS_ERR_ARGUMENT);
    /* A memory block: too small, misaligned, then right. */
    CHECK(nk_kws_begin_in(block, NK_KWS_MEMORY_BYTES - 1u, m, &in_block) == NK_KWS_ERR_MEMORY);
    CHECK(nk_kws_begin_in(block + 1, NK_KWS_MEMORY_BYTES, m, &in_block) == NK_KWS_ERR_MEMORY);
    CHECK(in_block == NULL);
    CHECK(nk_kws_begin_in(block, sizeof block, m, &in_block) == NK_KWS_OK && in_block == (nk_kws_t *)block);
    /* One started state per model: the model's arena is one static instance. */
    CHECK(nk_kws_begin(&a, m) == NK_KWS_ERR_IN_USE);
    CHECK(nk_kws_end(in_block) == NK_KWS_OK && nk_kws_begin(&a, m) == NK_KWS_OK);
    CHECK(nk_kws_begin(&b, m) == NK_KWS_ERR_IN_USE && nk_kws_push(&b, NULL, 0) == NK_KWS_ERR_NOT_STARTED);
    /* Settings: range checks change nothing on failure. */
    CHECK(nk_kws_set_threshold(&a, NK_MODEL_NUM_LABELS, 10) == NK_KWS_ERR_ARGUMENT);
    CHECK(nk_kws_set_threshold(&a, 3, 77) == NK_KWS_OK && nk_kws_threshold(&a, 3) == 77);
    CHECK(nk_kws_set_smoothing(&a, 0) == NK_KWS_ERR_ARGUMENT && nk_kws_smoothing(&a) == 4);
    CHECK(nk_kws_set_stride(&a, 0) == NK_KWS_ERR_STRIDE && nk_kws_set_stride(&a, 51) == NK_KWS_ERR_STRIDE);
    CHECK(nk_kws_stride(&a) == NK_KWS_DEFAULT_STRIDE && nk_kws_set_stride(&a, 5) == NK_KWS_OK);
    CHECK(nk_kws_stride(&a) == 5 && nk_kws_set_stride(&a, NK_KWS_DEFAULT_STRIDE) == NK_KWS_OK);
    CHECK(nk_kws_push(&a, NULL, 3) == NK_KWS_ERR_ARGUMENT);
    CHECK(nk_kws_release(&a) == NK_REC_DEFAULT_RELEASE && nk_kws_release(&b) == 0);
    CHECK(nk_kws_set_release(&a, 255) == NK_KWS_OK && nk_kws_release(&a) == 255);
    CHECK(strcmp(m->config_source, "library defaults") == 0); /* the fixture has no NK_MODEL_REC_* */
    /* Loud noise: the fixture model says "yes"/"no" to it. Poll and callback see the same. With
     * hysteresis off (release 255) the unbroken noise fires again after every suppression time. */
    CHECK(nk_kws_set_all_thresholds(&a, 1) == NK_KWS_OK && nk_kws_threshold(&a, 0) == 1);
    CHECK(nk_kws_on_detection(&a, count, &calls) == NK_KWS_OK);
    CHECK(nk_kws_last_scores(&a, scores, sizeof scores, NULL) == 0);
    unsigned seed = 1;
    for (int i = 0; i < 16000 * 6; i++) {
        int16_t s;
        seed = seed * 1103515245u + 12345u;
        s = (int16_t)((int)((seed >> 16) & 0x7FFF) - 16384);
        CHECK(nk_kws_push(&a, &s, 1) == NK_KWS_OK);
    }
    const nk_kws_stats_t *st = nk_kws_stats(&a);
    CHECK(st->samples == 16000u * 6u && st->inferences > 0 && st->detections > NK_KWS_QUEUE_LEN);
    CHECK((int)st->detections == calls);
    uint32_t hop = 0;
    CHECK(nk_kws_last_scores(&a, scores, 2, &hop) == 2 && hop > 0);
    nk_kws_detection_t d, prev = {0};
    int polled = 0;
    while (nk_kws_poll(&a, &d)) {
        CHECK(d.label_index < NK_MODEL_NUM_LABELS && d.label == m->labels[d.label_index]);
        CHECK(d.time_ms == d.hop * 20u && (polled == 0 || d.hop > prev.hop));
        prev = d;
        polled++;
    }
    CHECK(polled == (int)NK_KWS_QUEUE_LEN); /* the newest ones; older unpolled ones dropped */
    CHECK(nk_kws_reset(&a) == NK_KWS_OK && nk_kws_stats(&a)->samples == 0 && !nk_kws_poll(&a, &d));
    CHECK(nk_kws_threshold(&a, 3) == 1 && nk_kws_release(&a) == 255); /* reset keeps the configuration */
    CHECK(nk_kws_end(&a) == NK_KWS_OK && nk_kws_end(&a) == NK_KWS_ERR_NOT_STARTED);
    printf("ok\n");
    return 0;
}
"""


@pytest.mark.skipif(not HAVE_CXX, reason="gcc not installed")
def test_c_api_contract_with_the_fixture_model(tmp_path: Path) -> None:
    from fixtures.firmware_io import FW_MODEL

    lib = FIRMWARE_DIR / "lib"
    main = tmp_path / "api_check.c"
    main.write_text(API_CHECK_C)
    sources = [main, lib / "kws" / "nk_kws.c", *sorted((lib / "frontend").glob("*.c")),
               lib / "recognizer" / "nk_recognizer.c", FW_MODEL / "nk_model.c",
               *sorted((FIRMWARE_DIR / "targets" / "host").glob("*.c"))]
    includes = [*sorted(p for p in lib.iterdir() if p.is_dir()), FW_MODEL]
    objs = _compile_c("gcc", [*CFLAGS, "-O1", "-g", *SAN], sources, tmp_path / "o", includes)
    exe = tmp_path / "api_check"
    _run(["gcc", *SAN, *map(str, objs), "-lm", "-o", str(exe)])
    proc = subprocess.run([str(exe)], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr
