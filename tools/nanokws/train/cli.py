"""`nanokws train`: train a model and write model.keras, full-int8 model.tflite and metrics."""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from pathlib import Path

from ..argtypes import SEED, float_in, int_in
from ..errors import NanokwsError
from .trainer import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_LR, DEFAULT_PATIENCE

EPILOG = """\
examples:
  nanokws train --data runs/synth --model tiny --out runs/tiny
  nanokws train --data ../shared/data/speech_commands --model ds_cnn_s --out runs/dscnn --specaugment
  nanokws train --data ../shared/data/gsc_v2_logmel/gsc_v2_logmel_49x40_u8.npz \\
                --data ../shared/data/speech_commands --model ds_cnn_s --out runs/dscnn_big

--data takes Speech-Commands-layout folders (audio: augmented every epoch with time shift, background
noise and gain, then run through the device's C frontend) and/or the shared feature-form .npz
(augmented in the feature domain). Validation uses the speaker-disjoint validation split, un-augmented.
The int8 model's input is the frontend's int8 output verbatim (scale 1, zero point 0).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..train.models import MODELS

    parser.epilog = EPILOG
    parser.add_argument("--data", action="append", required=True, metavar="PATH",
                        help="dataset folder or feature-form .npz; repeat to combine several")
    parser.add_argument("--model", default="tiny", choices=list(MODELS),
                        help="architecture (default: %(default)s)")
    parser.add_argument("--out", required=True, help="output folder for model.keras, model.tflite, "
                        "metrics.json, training_curves.png")
    parser.add_argument("--epochs", type=int_in(1, 100_000), default=DEFAULT_EPOCHS,
                        help="maximum epochs (default: %(default)s)")
    parser.add_argument("--seed", type=SEED, default=0, help="random seed for splits, augmentation, weights "
                        "(default: %(default)s)")
    parser.add_argument("--keywords", nargs="+", default=None, metavar="WORD",
                        help="keywords to recognise (default: yes no up down left right on off stop go)")
    parser.add_argument("--batch-size", type=int_in(1, 1 << 20), default=DEFAULT_BATCH_SIZE,
                        help="default: %(default)s")
    parser.add_argument("--lr", type=float_in(0.0, 100.0, lo_open=True), default=DEFAULT_LR,
                        help="peak learning rate, cosine-decayed over the epochs (default: %(default)s)")
    parser.add_argument("--specaugment", action="store_true",
                        help="also apply SpecAugment time/frequency masks to feature-form examples")
    parser.add_argument("--speed-pitch", action="store_true",
                        help="speed perturbation: audio resampled x0.9-1.1, feature-form frames "
                        "time-stretched x0.9-1.1 and mel channels shifted by up to one")
    parser.add_argument("--level-db", type=float_in(0.0, 60.0), default=0.0, metavar="DB",
                        help="level augmentation: half the training examples made a random 0..DB dB quieter, "
                        "their noise too (a distant talker, a low microphone gain; e.g. 30; default: "
                        "%(default)s = off)")
    parser.add_argument("--snr-db", type=float_in(-30.0, 60.0), nargs=2, default=None, metavar=("LO", "HI"),
                        help="background noise at a true signal-to-noise ratio drawn from LO..HI dB, for "
                        "audio and feature-form examples alike (e.g. 0 20; feature form: in-band mel power "
                        "of the example over the noise's). Default: audio at 0..20 dB, feature-form noise at "
                        "its own level minus 0..20 dB, which rarely goes below 10 dB SNR")
    parser.add_argument("--unknown-shift-ms", type=int_in(0, 1000), default=0, metavar="MS",
                        help="feature-form _unknown_ examples shifted by up to +-MS ms instead of 100, "
                        "partly out of the window: other words as a stream's sliding windows see them (e.g. "
                        "400; default: %(default)s = off)")
    parser.add_argument("--unknown-share", type=_share, default=None, metavar="S",
                        help="feature-form _unknown_ training examples: S times the mean keyword count, or "
                        "'all' (the shared npz has about 3.5x); more other words, fewer false accepts in a "
                        "stream. Validation stays balanced (default: 1, as many as a keyword)")
    parser.add_argument("--neighbours", type=float_in(0.0, 1.0), default=0.0, metavar="P",
                        help="share of feature-form words that get another word beside them, cut by the "
                        "window's edge, label unchanged: the words before and after as a stream's windows "
                        "show them (e.g. 0.5; default: %(default)s = off)")
    parser.add_argument("--window-frames", type=int_in(1, 1000), default=None, metavar="N",
                        help="the model's window in frontend frames, longer than a clip's 49 (e.g. 86, "
                        "1.72 s); "
                        "only for models VALID in time (ds_cnn_stream*), which then pool over more rows. "
                        "Each 1 s example is centred in it, padded with its own minimum, and augmented "
                        "over the whole window (default: one clip)")
    parser.add_argument("--label-smoothing", type=float_in(0.0, 0.999), default=0.0, metavar="EPS",
                        help="label smoothing: EPS of each target spread over all classes (e.g. 0.1; "
                        "default: %(default)s)")
    parser.add_argument("--mixup", type=float_in(0.0, 1000.0), default=0.0, metavar="ALPHA",
                        help="mixup: blend each example with another, weight ~ Beta(ALPHA, ALPHA) (e.g. 0.2; "
                        "default: %(default)s = off)")
    parser.add_argument("--weight-decay", type=float_in(0.0, 1.0), default=0.0,
                        help="AdamW decoupled weight decay (e.g. 1e-4; default: %(default)s = plain Adam)")
    parser.add_argument("--ema", type=float_in(0.0, 0.99999), default=0.0, metavar="M",
                        help="keep an exponential moving average of the weights with momentum M (e.g. 0.999: "
                        "about the last 1000 steps) and validate, keep and convert it instead of the last "
                        "step's weights (default: %(default)s = off)")
    parser.add_argument("--patience", type=int_in(1, 100_000), default=DEFAULT_PATIENCE,
                        help="stop after this many epochs without a better validation accuracy; the best "
                        "weights are kept (default: %(default)s)")
    parser.add_argument("--teacher", default=None, metavar="MODEL.tflite",
                        help="distil from this trained int8 model (same labels, same window: --window-frames "
                        "as the student's): each batch's targets blend the one-hot label with the teacher's "
                        "probabilities on the same augmented input")
    parser.add_argument("--teacher-weight", type=float_in(0.0, 1.0, lo_open=True), default=0.5, metavar="W",
                        help="share of the teacher in the targets (default: %(default)s)")


def _share(text: str) -> float:
    """--unknown-share: a positive number, or 'all'."""
    if text.strip().lower() == "all":
        return math.inf
    return float_in(0.0, 1000.0, lo_open=True)(text)


def run(args: argparse.Namespace) -> int:
    from ..errors import check_output_dir
    from .trainer import train_model

    for data in args.data:  # the cheap input check first, so a typo leaves no empty --out behind
        if not Path(data).exists():
            raise NanokwsError(f"--data {data}: not found (a dataset folder or a feature-form .npz file)")
    if args.teacher is not None and not Path(args.teacher).is_file():
        raise NanokwsError(f"--teacher {args.teacher}: not found (a trained int8 .tflite)")
    check_output_dir(args.out, "--out")  # before the training run, not after it

    train_model(args.data, args.model, args.out, epochs=args.epochs, seed=args.seed, keywords=args.keywords,
                batch_size=args.batch_size, lr=args.lr, specaugment=args.specaugment,
                speed_pitch=args.speed_pitch, level_db=args.level_db,
                snr_db=None if args.snr_db is None else (args.snr_db[0], args.snr_db[1]),
                unknown_shift_ms=args.unknown_shift_ms, unknown_share=args.unknown_share,
                neighbours=args.neighbours, window_frames=args.window_frames,
                label_smoothing=args.label_smoothing, mixup=args.mixup, weight_decay=args.weight_decay,
                ema=args.ema, patience=args.patience, teacher=args.teacher,
                teacher_weight=args.teacher_weight,
                command=shlex.join(["nanokws", *sys.argv[1:]]))
    return 0
