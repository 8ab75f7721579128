"""`nanokws compile`: a full-int8 .tflite -> C with a static arena."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """\
examples:
  nanokws compile --model runs/tiny/model.tflite --out runs/tiny/compiled
  make -C firmware TARGET=qemu MODEL_DIR=runs/tiny/compiled PROGRAMS=model_runner

writes into --out: nk_model.h, nk_model.c (weights as const arrays, one kernel call per layer,
one static arena), model_config.h (labels, quantisation, frontend; needs nanokws metadata in the
model) and compile_report.json (weights bytes, arena bytes, MACs per layer, TFLite Micro's arena).
Unsupported ops stop the command with one line naming the op and exit code 2.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("--model", required=True, type=Path, help="full-int8 .tflite file")
    parser.add_argument(
        "--out", required=True, type=Path, help="output folder (created; files replaced atomically)"
    )
    parser.add_argument(
        "--no-tflm", action="store_true", help="skip measuring TFLite Micro's arena (default: measure it)"
    )


def run(args: argparse.Namespace) -> int:
    from ..modelmeta import read_model_bytes
    from .compile import compile_model, format_report

    tflite = read_model_bytes(args.model)
    result = compile_model(tflite, args.out, source=args.model.name, measure_tflm=not args.no_tflm)
    print(format_report(result.report))
    if not result.report["model_config_h"]:
        print(f"note: model_config.h not written: {result.report.get('model_config_note')}")
    print(f"wrote {args.out}/nk_model.h, nk_model.c, compile_report.json")
    return 0
