"""`nanokws export`: the TFLite Micro C array and the firmware's model_config.h."""

from __future__ import annotations

import argparse

EPILOG = """\
example:
  nanokws export --model runs/tiny/model.tflite --out runs/tiny/export

writes DIR/model_data.cc and DIR/model_data.h (`alignas(16) const unsigned char g_model_data[]`,
`g_model_data_len`, for tflite::GetModel) and DIR/model_config.h (labels, quantisation,
frontend parameters checked against nk_frontend_config.h, model hash).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("--model", required=True, help="int8 .tflite written by `nanokws train`")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")


def run(args: argparse.Namespace) -> int:
    from .export import export_model

    paths = export_model(args.model, args.out)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
