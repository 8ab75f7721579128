"""argparse types that range-check numbers, so a bad option fails at parse time with a usage line
(exit 2) instead of a traceback or a silently odd run.

    parser.add_argument("--runs", type=int_in(1, 1000), ...)
    parser.add_argument("--speed", type=float_in(0.0, 1000.0), ...)
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def _bounds(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"{_num(lo)}..{_num(hi)}"
    if lo is not None:
        return f">= {_num(lo)}"
    if hi is not None:
        return f"<= {_num(hi)}"
    return "any"


def int_in(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """An int in [lo, hi] (either bound may be None: open on that side)."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number ({_bounds(lo, hi)})") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{value} is out of range, need {_bounds(lo, hi)}")
        return value

    parse.__name__ = "int"
    return parse


def float_in(
    lo: float | None = None, hi: float | None = None, *, lo_open: bool = False
) -> Callable[[str], float]:
    """A finite float in [lo, hi] ((lo, hi] with lo_open); NaN and infinities are refused."""

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number ({_bounds(lo, hi)})") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        below = lo is not None and (value <= lo if lo_open else value < lo)
        if below or (hi is not None and value > hi):
            need = f"> {lo:g}" + (f" and <= {hi:g}" if hi is not None else "") if lo_open else _bounds(lo, hi)
            raise argparse.ArgumentTypeError(f"{value:g} is out of range, need {need}")
        return value

    parse.__name__ = "float"
    return parse


SEED = int_in(0, 2**32 - 1)
"""A random seed: numpy's generators take 0 .. 2**32 - 1."""
