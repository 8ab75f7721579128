"""The `--recognizer recognizer.json` option of `nanokws compile` and `nanokws export`: the
recognizer's start-up settings written into model_config.h (NK_MODEL_REC_*)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_recognizer_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--recognizer",
        metavar="JSON",
        type=Path,
        help="recognizer.json: thresholds, smoothing, suppression, release the firmware starts with "
        "(model_config.h's NK_MODEL_REC_*; default: the library's)",
    )


def recognizer_from_args(path: Path | None) -> Any:
    """The loaded recognizer.json (streams.replay.RecognizerFile), or None for the library's."""
    if path is None:
        return None
    from .streams.replay import load_recognizer_json

    return load_recognizer_json(path)
