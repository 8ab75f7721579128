"""`nanokws export --arduino-library OUT.zip`: a trained model as an Arduino/PlatformIO library.

The zip holds one folder named after the model (Arduino's library format 1.5):

    NAME/library.properties   NAME/library.json   NAME/README.md
    NAME/src/NAME.h           the header a sketch includes (the NanoKws class, nk_kws.h's C API)
    NAME/src/...              the portable C core (firmware/lib/*: frontend, kernels with their
                              Cortex-M4 DSP paths and GCC 7 fallbacks, recognizer, protocol, the
                              public API), the compiled model, the Arduino platform glue
    NAME/examples/LiveKeywords, SerialHarness, FromBuffer

Everything is copied from this checkout's firmware/ and compiled from the .tflite here, so the
library runs the same code the host, QEMU and board builds of the firmware run.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import NanokwsError
from ..modelmeta import read_metadata, read_model_bytes
from ..paths import FIRMWARE_DIR, FIRMWARE_LIB_DIR
from .model_config import model_hash

DEFAULT_VERSION = "1.0.0"
DEFAULT_URL = "https://github.com/nanokws/nanokws"
EXAMPLES = ("LiveKeywords", "SerialHarness", "FromBuffer")
# Fixed zip timestamps: the same model and checkout give the same bytes.
_ZIP_TIME = (2026, 1, 1, 0, 0, 0)
_NAME_OK = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_VERSION_OK = re.compile(r"^\d+\.\d+\.\d+$")


@dataclass(frozen=True)
class LibraryInfo:
    name: str
    version: str
    labels: list[str]
    model_hash: str
    streaming: bool
    files: list[str]  # paths inside the zip


def library_name(model_name: str) -> str:
    """The Arduino library name for a model name: letters, digits, '_', '.', '-', starting with a
    letter (Arduino's rule; also a valid header file name). Other characters become '_'."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", model_name.strip())
    if not name or not name[0].isalpha():
        name = "kws_" + name
    return name


def _check_name(name: str) -> str:
    if not _NAME_OK.match(name) or len(name) > 63:
        raise NanokwsError(
            f"library name {name!r} must start with a letter and hold only letters, digits, '_', '.', '-' "
            "(at most 63 characters)"
        )
    return name


def _guard(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def core_sources() -> dict[str, bytes]:
    """The portable core flattened into src/: every lib/<part>/*.c|*.h (one include folder, as the
    Arduino IDE compiles src/), plus the Arduino platform glue from firmware/src/."""
    files: dict[str, bytes] = {}
    for part in sorted(p for p in FIRMWARE_LIB_DIR.iterdir() if p.is_dir()):
        for f in sorted(part.iterdir()):
            if f.suffix in (".c", ".h"):
                if f.name in files:
                    raise NanokwsError(f"two firmware/lib files named {f.name}: the library's src/ is flat")
                files[f.name] = f.read_bytes()
    files["platform_arduino.cpp"] = (FIRMWARE_DIR / "src" / "platform_arduino.cpp").read_bytes()
    return files


def model_sources(compiled: Path) -> dict[str, bytes]:
    """What `nanokws compile` wrote that the firmware builds: nk_model.c/.h, model_config.h and,
    for a streamable model, nk_model_stream.h."""
    names = ["nk_model.c", "nk_model.h", "model_config.h", "nk_model_stream.h"]
    files = {n: (compiled / n).read_bytes() for n in names if (compiled / n).is_file()}
    missing = {"nk_model.c", "nk_model.h", "model_config.h"} - set(files)
    if missing:
        raise NanokwsError(f"the compiler wrote no {', '.join(sorted(missing))} in {compiled}")
    return files


def render_header(name: str, version: str, labels: list[str], digest: str) -> str:
    g = _guard(name)
    keywords = ", ".join(x for x in labels if not x.startswith("_"))
    return f"""// {name} {version}: keyword spotting ({keywords}).
// Exported by `nanokws export --arduino-library` from the model with sha256[:16] {digest}.
// See README.md; the examples show the five lines a sketch needs:
//
//     #include <{name}.h>
//     NanoKws kws;                                        // all its RAM: NanoKws::kRamBytes
//     void heard(const NanoKws::Detection &d) {{ Serial.println(d.label); }}
//     kws.begin();  kws.onDetection(heard);               // in setup()
//     kws.push(samples, count);                           // in loop(): 16 kHz mono int16
#ifndef {g}_H
#define {g}_H

#define {g}_VERSION "{version}"
#define {g}_MODEL_HASH "{digest}"

#include "NanoKws.h"

#endif  // {g}_H
"""


def render_properties(name: str, version: str, labels: list[str], digest: str, url: str) -> str:
    keywords = ", ".join(x for x in labels if not x.startswith("_"))
    return "\n".join([
        f"name={name}",
        f"version={version}",
        "author=nanokws",
        "maintainer=nanokws",
        f"sentence=Keyword spotting on the board: hears {keywords}.",
        f"paragraph=The {name} model (sha256 {digest}) compiled to plain C by nanokws, with its int16 PCM "
        "frontend and a small C/C++ API: push audio, get detections, read scores, set thresholds. No heap; "
        "all RAM known at compile time. Examples: LiveKeywords (Nano 33 BLE Sense microphone), "
        "SerialHarness (checked by nanokws hil), FromBuffer (any board).",
        "category=Data Processing",
        f"url={url}",
        "architectures=*",
        f"includes={name}.h",
        "precompiled=false",
        "",
    ])


def render_library_json(name: str, version: str, labels: list[str], digest: str, url: str) -> str:
    keywords = [x for x in labels if not x.startswith("_")]
    doc = {
        "name": name,
        "version": version,
        "description": f"Keyword spotting ({', '.join(keywords)}) with the {name} model "
        f"(sha256 {digest}), compiled to C by nanokws.",
        "keywords": ["keyword spotting", "speech", "audio", "tinyml"],
        "homepage": url,
        "frameworks": "arduino",
        "platforms": "*",
        "headers": f"{name}.h",
        "build": {"flags": ["-ffp-contract=off"], "libArchive": False},
        "examples": [{"name": e, "base": f"examples/{e}", "files": [f"{e}.ino"]} for e in EXAMPLES],
    }
    return json.dumps(doc, indent=2) + "\n"


def render_audio_header(audio: np.ndarray, source: str) -> str:
    rows = []
    for start in range(0, audio.size, 16):
        rows.append("    " + ", ".join(str(int(v)) for v in audio[start:start + 16]) + ",")
    return "\n".join([
        f"// {audio.size} samples of 16 kHz mono int16 audio ({source}); replace them with your own.",
        "#pragma once",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        "static const int16_t kAudio[] = {",
        *rows,
        "};",
        "static const size_t kAudioSamples = sizeof kAudio / sizeof kAudio[0];",
        "",
    ])


def default_example_audio() -> np.ndarray:
    """One second of faint noise: something to run on, never a keyword."""
    rng = np.random.default_rng(0)
    return np.clip(rng.normal(0, 20, 16000), -32768, 32767).astype(np.int16)


def render_readme(name: str, version: str, labels: list[str], digest: str, streaming: bool) -> str:
    keywords = ", ".join(f"`{x}`" for x in labels if not x.startswith("_"))
    form = ("streaming form: each inference computes only the new time rows" if streaming
            else "the whole 49-frame window per inference")
    return f"""# {name} {version}

Keyword spotting for Arduino, exported by `nanokws export --arduino-library` from the model
`{name}` (sha256[:16] `{digest}`; {form}). It hears {keywords}; labels starting with `_` never
fire.

## Install

- Arduino IDE: *Sketch > Include Library > Add .ZIP Library...* and pick this zip.
- PlatformIO: unzip it into a folder named in `lib_extra_dirs` (or the project's `lib/`), or
  `lib_deps = file:///path/to/{name}.zip`.

## Use it in your own sketch

```cpp
#include <{name}.h>
NanoKws kws;
void heard(const NanoKws::Detection &d) {{ Serial.println(d.label); }}
void setup() {{ Serial.begin(115200); kws.begin(); kws.onDetection(heard); }}
void loop() {{ /* samples: 16 kHz mono int16 from your microphone */ kws.push(samples, count); }}
```

`push()` takes any number of samples; every 20 ms of audio is one frontend frame, and every
`stride` frames (default 2) one inference, after which the recognizer (smoothing over 4
inferences, per-label thresholds 180/255, 750 ms suppression) may fire. Detections arrive in the
callback inside `push()`, or poll them with `kws.poll(d)`.

| call | what |
|---|---|
| `begin()` / `end()` / `reset()` | start (one started object per model), stop, forget the audio |
| `push(samples, n)` | 16 kHz mono int16, any n |
| `onDetection(fn)` / `poll(d)` | detections: `d.label`, `d.label_index`, `d.score` (0..255), `d.time_ms` |
| `lastScores(out, cap)`, `probability(i)` | the last inference's int8 scores; smoothed 0..255 per label |
| `setThreshold("yes", 200)`, `setAllThresholds`, `setSmoothing`, `setSuppressionMs`, `setStride` | settings |
| `numLabels()`, `label(i)`, `NanoKws::kRamBytes`, `stats()`, `cyclesPerInference()` | model and cost |

Every call returns a status (`NK_KWS_OK`, `NK_KWS_ERR_ARGUMENT`, ...; `NanoKws::statusName()`).
There is no heap: all the RAM it needs but the stack is `NanoKws::kRamBytes` (the object, static
when declared globally, plus the model's own static buffers), known when the sketch compiles.
The same API in C is `nk_kws.h` (`nk_kws_begin`, `nk_kws_push`, `nk_kws_poll`, ...), with
`nk_kws_begin_in()` to place the state in a memory block of `NK_KWS_MEMORY_BYTES`.

## Examples

- **LiveKeywords**: the Nano 33 BLE Sense's PDM microphone; prints each keyword and lights the LED.
- **SerialHarness**: the binary protocol device that `nanokws hil --port PORT --data DIR` drives, to
  check that the board computes what the PC computes (bit-exact int8 scores, latency).
- **FromBuffer**: audio from an array (`audio.h`), for any board; prints the detections and the
  last scores, which must equal the host reference's.

## What it needs

A 32-bit board (a compile-time check says so otherwise). Cycle counts come from the DWT counter
on Cortex-M3/M4/M7 and are microseconds (`micros()`) elsewhere. Two exported models install side
by side (each is its own library) but one sketch links one: the C symbols are the same.
The sources are C11 and C++ (gnu++14); the Cortex-M4 kernels use the DSP instructions through
inline assembly, so they build with the Nano 33 BLE's GCC 7 as well as newer compilers.
"""


def _read_example(name: str) -> dict[str, bytes]:
    folder = FIRMWARE_LIB_DIR / "kws" / "examples" / name
    files = {f.name: f.read_bytes() for f in sorted(folder.iterdir()) if f.is_file()}
    if f"{name}.ino" not in files:
        raise NanokwsError(f"{folder}/{name}.ino missing")
    return files


def library_files(
    name: str,
    version: str,
    tflite: bytes,
    compiled: Path,
    labels: list[str],
    url: str,
    example_audio: np.ndarray,
    audio_source: str,
) -> dict[str, bytes]:
    """Every file of the library, path inside the zip -> bytes."""
    digest = model_hash(tflite)
    streaming = (compiled / "nk_model_stream.h").is_file()
    src = {**core_sources(), **model_sources(compiled)}
    header = f"{name}.h"
    if header in src:
        raise NanokwsError(
            f"library name {name!r} clashes with the core's {header}; choose another --library-name"
        )
    src[header] = render_header(name, version, labels, digest).encode()
    files: dict[str, bytes] = {f"{name}/src/{k}": v for k, v in src.items()}
    files[f"{name}/library.properties"] = render_properties(name, version, labels, digest, url).encode()
    files[f"{name}/library.json"] = render_library_json(name, version, labels, digest, url).encode()
    files[f"{name}/README.md"] = render_readme(name, version, labels, digest, streaming).encode()
    for example in EXAMPLES:
        for fname, data in _read_example(example).items():
            text = data.decode().replace("@LIBRARY_HEADER@", header)
            files[f"{name}/examples/{example}/{fname}"] = text.encode()
    # Live audio capture is the firmware's own (firmware/src/live_audio.*), switched on for the sketch.
    live = FIRMWARE_DIR / "src"
    files[f"{name}/examples/LiveKeywords/live_audio.h"] = (live / "live_audio.h").read_bytes()
    files[f"{name}/examples/LiveKeywords/live_audio.cpp"] = (
        b"#define NK_LIVE_MODE 1  // this sketch listens: compile the capture below\n"
        + (live / "live_audio.cpp").read_bytes()
    )
    files[f"{name}/examples/FromBuffer/audio.h"] = render_audio_header(example_audio, audio_source).encode()
    return files


def export_arduino_library(
    tflite_path: str | os.PathLike[str],
    out_zip: str | os.PathLike[str],
    name: str | None = None,
    version: str = DEFAULT_VERSION,
    url: str = DEFAULT_URL,
    example_wav: str | os.PathLike[str] | None = None,
) -> LibraryInfo:
    """Compile the model and write the library zip atomically; return what went in."""
    from ..compiler import compile_model

    if not _VERSION_OK.match(version):
        raise NanokwsError(f"library version {version!r} must be MAJOR.MINOR.PATCH, e.g. 1.0.0")
    if not str(out_zip).endswith(".zip"):
        raise NanokwsError(f"--arduino-library wants a .zip path, not {out_zip}")
    tflite = read_model_bytes(tflite_path)
    meta = read_metadata(tflite, source=str(tflite_path))
    labels = [str(x) for x in meta.get("labels", [])]
    lib = _check_name(name if name else library_name(str(meta.get("model", "model"))))
    if example_wav is not None:
        from ..data import read_wav

        audio = read_wav(example_wav)
        source = Path(example_wav).name
    else:
        audio, source = default_example_audio(), "faint noise, no keyword"
    with tempfile.TemporaryDirectory(prefix="nanokws-arduino-") as tmp:
        compiled = Path(tmp)
        compile_model(tflite, compiled, source=Path(tflite_path).name, measure_tflm=False)
        streaming = (compiled / "nk_model_stream.h").is_file()
        files = library_files(lib, version, tflite, compiled, labels, url, audio, source)
    with atomic_path(out_zip) as tmp_zip:
        with zipfile.ZipFile(tmp_zip, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(files):
                info = zipfile.ZipInfo(path, date_time=_ZIP_TIME)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, files[path])
    return LibraryInfo(lib, version, labels, model_hash(tflite), streaming, sorted(files))
