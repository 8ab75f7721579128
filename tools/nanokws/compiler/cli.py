"""`nanokws compile`: a full-int8 .tflite -> C with a static arena."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..argtypes import int_in
from ..errors import NanokwsError
from ..recognizer_option import add_recognizer_argument, recognizer_from_args

EPILOG = """\
examples:
  nanokws compile --model runs/tiny/model.tflite --out runs/tiny/compiled
  make -C firmware TARGET=qemu MODEL_DIR=runs/tiny/compiled PROGRAMS=model_runner

writes into --out: nk_model.h, nk_model.c (weights as const arrays, one kernel call per layer,
one static arena), model_config.h (labels, quantisation, frontend; needs nanokws metadata in the
model) and compile_report.json (weights bytes, arena bytes, MACs per layer, TFLite Micro's arena).
Unsupported ops stop the command with one line naming the op and exit code 2.

Streaming form: when the model can run incrementally, compile also writes nk_model_stream.h (its
code goes into nk_model.c, sharing the weights) and says so: push one frame at a time, every layer
computes only its new time rows, and each inference's scores equal nk_model_invoke() on the last
window bit for bit. The firmware (nanokws_fw, the Arduino build) then runs the model that way:
an inference costs the new rows plus the head instead of the whole window, and the full-window
arena is not linked. A model streams when it computes its time axis without padding (VALID in
time) up to its global pool or flatten. Time strides may go beyond --stream-stride: the layers
after such a stride keep one history per phase (e.g. two, for a second stride of 2 at the default
stride of 2 frames), still one new row per layer per inference.
  --streaming     require the streaming form: a model that cannot stream stops the command with
                  one line naming the layer (exit code 2)
  --no-streaming  never generate it (the firmware then runs the full window per inference)
Whether a model can stream, and why not, is in compile_report.json ("streaming") either way.
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
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--streaming",
        dest="streaming",
        action="store_const",
        const=True,
        default=None,
        help="require the streaming form (nk_model_stream.h); fail (exit 2) if the model cannot stream "
        "(default: generate it whenever the model can stream)",
    )
    mode.add_argument(
        "--no-streaming",
        dest="streaming",
        action="store_const",
        const=False,
        help="do not generate the streaming form even if the model can stream",
    )
    add_recognizer_argument(parser)
    parser.add_argument(
        "--stream-stride",
        type=int_in(1, 50),
        default=2,
        metavar="FRAMES",
        help="frames between inferences the streaming form is planned for (default: 2)",
    )


def run(args: argparse.Namespace) -> int:
    from ..errors import check_output_dir
    from ..modelmeta import read_model_bytes
    from .compile import compile_model, format_report

    tflite = read_model_bytes(args.model)
    check_output_dir(args.out, "--out")
    recognizer = recognizer_from_args(args.recognizer)
    try:
        result = compile_model(
            tflite,
            args.out,
            source=args.model.name,
            measure_tflm=not args.no_tflm,
            stream=args.streaming,
            stream_stride=args.stream_stride,
            recognizer=recognizer,
        )
    except NanokwsError as exc:  # the compiler's refusals name the op; the line also names the file
        if str(exc).startswith(str(args.model)):
            raise
        named = NanokwsError(f"{args.model}: {exc}")
        named.exit_code = exc.exit_code
        raise named from exc
    print(format_report(result.report))
    if not result.report["model_config_h"]:
        print(f"note: model_config.h not written: {result.report.get('model_config_note')}")
    extra = ", nk_model_stream.h" if result.report["streaming"]["generated"] else ""
    print(f"wrote {args.out}/nk_model.h, nk_model.c{extra}, compile_report.json")
    return 0
