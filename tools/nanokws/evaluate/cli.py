"""`nanokws eval`: evaluate an int8 .tflite in LiteRT and TFLite Micro."""

from __future__ import annotations

import argparse

from ..argtypes import float_in, int_in

EPILOG = """\
examples:
  nanokws eval --model runs/tiny/model.tflite --data runs/synth
  nanokws eval --model runs/dscnn/model.tflite --data ../shared/data/speech_commands \\
               --split test --json runs/dscnn/eval.json --plot runs/dscnn/confusion.png
  nanokws eval --model m.tflite --data speech_commands_test_set_v0.02 --split all
  nanokws eval --model firmware/model/model.tflite --data ../shared/data/speech_commands \\
               --snr 20 10 5 0 --quieter-db 20 30 --conditions-plot runs/robustness.png

Features come from the device's C frontend; labels and keywords from the model's metadata.
--split all evaluates every clip in the folder (the official test set's _silence_/_unknown_ layout).
The JSON has accuracy, balanced_accuracy (mean per-class recall), n, labels, confusion
[true][predicted], per_class precision/recall/f1/support, tflm_agrees (TFLite Micro's int8 outputs
identical to LiteRT's on every clip) and tflm_mismatches. With --snr/--quieter-db/--shift-ms it also
has "conditions": int8 accuracy (LiteRT) per condition, clean first. SNR is the clip's power over the
added noise's; noise comes only from the evaluated split's part of each _background_noise_
recording, so a model is never tested on the noise it was trained with.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("--model", required=True, help="int8 .tflite written by `nanokws train`")
    parser.add_argument("--data", action="append", required=True, metavar="PATH",
                        help="dataset folder (or feature-form .npz with --split validation); repeatable")
    parser.add_argument("--split", default="test", choices=["test", "validation", "all"],
                        help="which clips (default: %(default)s)")
    parser.add_argument("--json", default=None, metavar="OUT.json", help="write the full report here")
    parser.add_argument("--plot", default=None, metavar="OUT.png", help="write a confusion-matrix image here")
    parser.add_argument("--snr", type=float_in(-30.0, 100.0), nargs="+", default=[], metavar="DB",
                        help="also evaluate with the dataset's background noise (this split's part) "
                        "mixed in at these SNRs, e.g. --snr 20 10 5 0")
    parser.add_argument("--quieter-db", type=float_in(0.0, 90.0), nargs="+", default=[], metavar="DB",
                        help="also evaluate the clips played this many dB quieter (a distant talker, a low "
                        "microphone gain), e.g. --quieter-db 20 30")
    parser.add_argument("--shift-ms", type=float_in(-900.0, 900.0), nargs="+", default=[], metavar="MS",
                        help="also evaluate the clips moved this many ms later in their window (earlier if "
                        "negative; digital silence moved in): how much a model depends on where the word "
                        "sits, e.g. --shift-ms -240 -120 120 240")
    parser.add_argument("--conditions-plot", default=None, metavar="OUT.png",
                        help="bar chart of accuracy per condition (with --snr/--quieter-db/--shift-ms)")
    parser.add_argument("--limit", type=int_in(1), default=None, metavar="N",
                        help="evaluate a seeded random subset of N clips (default: all)")


def run(args: argparse.Namespace) -> int:
    from ..errors import check_output_file

    if args.conditions_plot and not (args.snr or args.quieter_db or args.shift_ms):
        from ..errors import NanokwsError

        raise NanokwsError("--conditions-plot needs --snr, --quieter-db or --shift-ms")
    outputs = (("--json", args.json), ("--plot", args.plot), ("--conditions-plot", args.conditions_plot))
    for flag, path in outputs:
        if path:
            check_output_file(path, flag)
    from .evaluate import evaluate_model

    evaluate_model(args.model, args.data, split=args.split, limit=args.limit, json_path=args.json,
                   plot_path=args.plot, snrs=args.snr, quieter_db=args.quieter_db,
                   shifts_ms=args.shift_ms, conditions_plot=args.conditions_plot)
    return 0
