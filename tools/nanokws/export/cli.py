"""`nanokws export`: the TFLite Micro C array and the firmware's model_config.h, or an Arduino library."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import NanokwsError
from ..recognizer_option import add_recognizer_argument, recognizer_from_args

EPILOG = """\
examples:
  nanokws export --model runs/tiny/model.tflite --out runs/tiny/export
  nanokws export --model runs/tiny/model.tflite --arduino-library runs/tiny/tiny.zip
  nanokws export --model firmware/model/model.tflite --arduino-library kws.zip \\
      --library-name my_words --library-version 1.2.0 --example-wav yes.wav

--out DIR writes DIR/model_data.cc and DIR/model_data.h (`alignas(16) const unsigned char
g_model_data[]`, `g_model_data_len`, for tflite::GetModel) and DIR/model_config.h (labels,
quantisation, frontend parameters checked against nk_frontend_config.h, model hash).

--arduino-library OUT.zip compiles the model (as `nanokws compile` does, with the streaming form
when the model can stream) and writes an Arduino library named after the model (library.properties,
library.json for PlatformIO, src/ with the portable C core and the compiled model, README.md,
examples LiveKeywords, SerialHarness and FromBuffer). Install it with the Arduino IDE's "Add .ZIP
Library", or unzip it into a PlatformIO lib_extra_dirs folder; in a sketch:
  #include <NAME.h>   NanoKws kws;   kws.begin();   kws.onDetection(fn);   kws.push(samples, n);
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("--model", required=True, type=Path, help="int8 .tflite written by `nanokws train`")
    parser.add_argument(
        "--out", metavar="DIR", help="output folder for the TFLite Micro array and model_config.h"
    )
    parser.add_argument(
        "--arduino-library", metavar="OUT.zip", type=Path, help="write an Arduino/PlatformIO library zip"
    )
    add_recognizer_argument(parser)
    parser.add_argument(
        "--library-name",
        metavar="NAME",
        help="library, folder and header name (default: the model's name from its metadata, e.g. ds_cnn_m12)",
    )
    parser.add_argument(
        "--library-version", metavar="X.Y.Z", default="1.0.0", help="library version (default: 1.0.0)"
    )
    parser.add_argument(
        "--library-url",
        metavar="URL",
        default=None,
        help="url= in library.properties (default: the nanokws project page)",
    )
    parser.add_argument(
        "--example-wav",
        metavar="WAV",
        type=Path,
        help="16 kHz mono WAV for the FromBuffer example's audio.h (default: 1 s of faint noise)",
    )


def run(args: argparse.Namespace) -> int:
    if args.out is None and args.arduino_library is None:
        raise NanokwsError("nothing to write: give --out DIR, --arduino-library OUT.zip, or both")
    recognizer = recognizer_from_args(args.recognizer)
    if args.out is not None:
        from .export import export_model

        paths = export_model(args.model, args.out, recognizer)
        print("wrote " + ", ".join(str(p) for p in paths.values()))
    if args.arduino_library is not None:
        from .arduino_library import DEFAULT_URL, export_arduino_library

        info = export_arduino_library(
            args.model,
            args.arduino_library,
            name=args.library_name,
            version=args.library_version,
            url=args.library_url or DEFAULT_URL,
            example_wav=args.example_wav,
        )
        form = "streaming" if info.streaming else "whole window"
        print(
            f"wrote {args.arduino_library}: Arduino library {info.name} {info.version} "
            f"({len(info.files)} files, model {info.model_hash}, {form}, "
            f"model RAM {info.model_ram_bytes} B); #include <{info.name}.h>"
        )
    return 0
