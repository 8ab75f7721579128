"""`nanokws demo`: the main job end to end on the embedded default data.

synthesize a dataset (espeak-ng) -> train `tiny` -> export the TFLite Micro array -> evaluate in
LiteRT and TFLite Micro -> compile to C -> verify bit-exactness -> run the clip harness against the
firmware host build. Every step is the same subcommand a user would type; the demo prints each one
so it doubles as a tutorial.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path

from .argtypes import SEED, int_in
from .errors import NanokwsError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", help="folder for every artifact (default: %(default)s)")
    parser.add_argument(
        "--data",
        default=None,
        help="use this Speech-Commands-layout folder instead of synthesizing one "
        "(e.g. ../shared/data/speech_commands)",
    )
    parser.add_argument("--model", default="tiny", help="architecture to train (default: %(default)s)")
    parser.add_argument("--epochs", type=int_in(1, 100_000), default=None,
                        help="training epochs (default: the trainer's)")
    parser.add_argument("--seed", type=SEED, default=0, help="seed for synthesis and training (default: 0)")
    parser.add_argument(
        "--target",
        choices=["host", "qemu"],
        default="host",
        help="where to verify the compiled model and run the harness (default: %(default)s; qemu boots "
        "the emulated Cortex-M4)",
    )
    parser.add_argument(
        "--skip-device", action="store_true", help="stop after evaluation (no compile/verify/hil)"
    )


def _step(title: str, argv: list[str]) -> None:
    from .cli import main

    print(f"\n=== {title}\n$ nanokws {shlex.join(argv)}", flush=True)
    start = time.monotonic()
    code = main(argv)
    if code != 0:
        raise NanokwsError(f"step '{title}' failed (exit code {code}); its message is above")
    print(f"--- {title}: done in {time.monotonic() - start:.1f} s", flush=True)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seed = str(args.seed)
    if args.data:
        data = Path(args.data)
        if not data.is_dir():
            raise NanokwsError(f"{data}: no such dataset folder")
    else:
        data = out / "synth"
        if (data / "_background_noise_").is_dir():
            print(f"=== using the synthetic dataset already in {data}")
        else:
            _step(
                "synthesize a dataset with espeak-ng", ["data", "synth", "--out", str(data), "--seed", seed]
            )
    model_dir = out / args.model
    train = ["train", "--data", str(data), "--model", args.model, "--out", str(model_dir), "--seed", seed]
    if args.epochs is not None:
        train += ["--epochs", str(args.epochs)]
    _step(f"train '{args.model}'", train)
    tflite = model_dir / "model.tflite"
    _step(
        "export the TFLite Micro C array",
        ["export", "--model", str(tflite), "--out", str(model_dir / "export")],
    )
    eval_json = model_dir / "eval.json"
    _step(
        "evaluate on held-out speakers (LiteRT and TFLite Micro)",
        ["eval", "--model", str(tflite), "--data", str(data), "--split", "test", "--json", str(eval_json)],
    )
    if not args.skip_device:
        _step("compile to C", ["compile", "--model", str(tflite), "--out", str(model_dir / "compiled")])
        _step(
            f"verify bit-exactness on {args.target}",
            [
                "verify",
                "--model",
                str(tflite),
                "--target",
                args.target,
                "--n",
                "20",
                "--json",
                str(model_dir / f"verify_{args.target}.json"),
            ],
        )
        device = "--emulate" if args.target == "qemu" else "--host"
        _step(
            "run the clip harness against the firmware",
            [
                "hil",
                device,
                "--model",
                str(tflite),
                "--data",
                str(data),
                "--split",
                "test",
                "--limit",
                "40",
                "--mode",
                "clip",
                "--report",
                str(model_dir / "hil.json"),
            ],
        )
    summary = json.loads(eval_json.read_text())
    lines = [f"\nnanokws demo: '{args.model}' reached {summary['accuracy']:.1%} int8 accuracy on "
             f"{summary['n']} held-out clips."]
    if not args.skip_device:
        verify = json.loads((model_dir / f"verify_{args.target}.json").read_text())
        hil = json.loads((model_dir / "hil.json").read_text())
        lines.append(f"  compiled C on {args.target}: {'equal to' if verify['ok'] else 'DIFFERENT from'} "
                     f"TFLite Micro on all {verify['n']} inputs, element by element")
        lines.append(f"  firmware over the harness: {hil['accuracy']:.1%} on {hil['n']} clips, "
                     f"{hil['bit_exact_fraction']:.0%} of scores bit-exact with the host reference")
    # LiteRT (TensorFlow's runtime) is not what the device runs; TFLite Micro is the reference.
    lines.append(f"  LiteRT vs TFLite Micro: {summary['tflm_mismatches']} of {summary['n']} clips differ "
                 "(different runtimes may round a softmax tie 1 LSB apart; the device follows TFLite Micro)")
    lines.append(f"Artifacts in {out}/")
    print("\n".join(lines))
    return 0
