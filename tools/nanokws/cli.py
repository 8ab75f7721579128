"""`nanokws` command line: one entry point, one subcommand per job.

Each subcommand lives in its own module exposing `add_arguments(parser)` and `run(args) -> int`.
Those modules import heavy libraries (TensorFlow) inside `run`, so `nanokws --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
import traceback
from collections.abc import Sequence

from . import __version__
from .errors import DEBUG_ENV, NanokwsError, debug_enabled, describe


def invoked_command(*subcommand: str) -> str | None:
    """This process's command line, as `nanokws ...`, when it was started as `nanokws SUBCOMMAND`:
    reports and model cards cite it so that it can be run again. None when the work was called from
    Python (tests, another subcommand), whose command line is not this one."""
    args = sys.argv[1:]
    return shlex.join(["nanokws", *args]) if args[: len(subcommand)] == list(subcommand) else None


# (name, module, one-line help) in the order a user meets them.
COMMANDS: list[tuple[str, str, str]] = [
    ("demo", "nanokws.demo", "run the main job end to end: synthesize, train tiny, export, evaluate"),
    (
        "data",
        "nanokws.data.cli",
        "inspect a Speech-Commands-layout dataset, synthesize one, or fetch the real one",
    ),
    (
        "features",
        "nanokws.features.cli",
        "compute features with the device frontend; compare to the shared log-mel",
    ),
    (
        "train",
        "nanokws.train.cli",
        "train a Keras model and write model.keras, full-int8 model.tflite, metrics",
    ),
    ("export", "nanokws.export.cli", "write the TFLite Micro C array and header, or an Arduino library"),
    (
        "eval",
        "nanokws.evaluate.cli",
        "evaluate an int8 .tflite in LiteRT and TFLite Micro: accuracy, confusion",
    ),
    ("compile", "nanokws.compiler.cli", "compile a full-int8 .tflite to C with a static memory plan"),
    (
        "verify",
        "nanokws.compiler.verify",
        "check the compiled model is bit-exact with TFLite Micro (host or QEMU)",
    ),
    ("bench", "nanokws.compiler.bench", "measure the compiled model under QEMU: instructions, flash, RAM"),
    ("ship", "nanokws.ship", "install a trained model as the firmware default: export, compile, model card"),
    ("hil", "nanokws.harness.cli", "stream test audio to a device (serial port or emulated) and check it"),
    (
        "stream",
        "nanokws.streams.cli",
        "build realistic test streams, score them through the firmware path: false accepts, DET curves",
    ),
    (
        "calibrate",
        "nanokws.streams.calibrate",
        "choose recognizer thresholds/smoothing/suppression from validation speakers for the firmware",
    ),
]

DESCRIPTION = """\
nanokws: keyword spotting for the Arduino Nano 33 BLE.

Typical flow:
  nanokws data synth --out runs/synth          # or point --data at a Speech Commands folder
  nanokws train --data runs/synth --model tiny --out runs/tiny
  nanokws export --model runs/tiny/model.tflite --out runs/tiny/export
  nanokws eval --model runs/tiny/model.tflite --data runs/synth --json runs/tiny/eval.json
  nanokws compile --model runs/tiny/model.tflite --out runs/tiny/compiled
  nanokws verify --model runs/tiny/model.tflite --target qemu
  nanokws hil --emulate --data runs/synth --report runs/tiny/hil.json
Run `nanokws COMMAND --help` for each command's options.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nanokws", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"nanokws {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name, help_text in COMMANDS:
        # Every command ships with the package: one that fails to import is a broken install, and
        # must say so rather than vanish from --help.
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(
            name, help=help_text, description=help_text, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # reproducible float results across runs
    if not sys.stderr.isatty():  # logs (CI, nohup): a progress line every 30 s, not every update
        os.environ.setdefault("TQDM_MININTERVAL", "30")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "_run"):
        parser.print_help()
        return 1
    return run_command(args)


def run_command(args: argparse.Namespace) -> int:
    """The error boundary: whatever a subcommand raises ends as one line on stderr and an exit code.

    NanokwsError: its own code (2; 3 for device faults). An OSError naming a file (a disk filled up,
    a folder removed mid-run): 2. Anything else is a bug: one line saying so, exit 1, and the
    traceback only with NANOKWS_DEBUG=1. A subcommand that writes a report marks it `fault` itself.
    """
    name = f"nanokws {args.command}"
    try:
        return int(args._run(args) or 0)
    except NanokwsError as exc:
        if debug_enabled():
            traceback.print_exc()
        print(f"{name}: error: {describe(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if debug_enabled():
            traceback.print_exc()
        print(f"{name}: error: {describe(exc)}", file=sys.stderr)
        return NanokwsError.exit_code if exc.filename is not None else 1
    except Exception as exc:  # the boundary: a bug must still end in one line, not a traceback
        if debug_enabled():
            traceback.print_exc()
        hint = "" if debug_enabled() else f" (a bug; {DEBUG_ENV}=1 shows the traceback)"
        print(f"{name}: internal error: {describe(exc)}{hint}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
