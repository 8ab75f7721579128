"""Build firmware programs through firmware/Makefile, the same build a user runs by hand."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .errors import NanokwsError
from .paths import BUILD_DIR, FIRMWARE_DIR

TARGETS = ("host", "asan", "qemu")
# Programs in C++ (the Arduino layer, src/*.cpp, against the test double in
# firmware/targets/arduino_host/): host and asan only, and they need a C++ compiler.
ARDUINO_HOST_PROGRAMS = ("arduino_fw", "arduino_live_fw")
_APT_HINT = "install it with: sudo apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"


def require_tool(name: str, hint: str = _APT_HINT) -> str:
    """Return the path of an external tool or stop with one line saying how to get it."""
    found = shutil.which(name)
    if not found:
        raise NanokwsError(f"'{name}' not found on PATH; {hint}")
    return found


def makefile_flags(name: str) -> list[str]:
    """The flags of firmware/Makefile's first `NAME := ...` line (CSTD, WARN, the qemu ARCH, ...), so
    that builds beside the Makefile's (bench --compare-tflm, the toolchain tests) never retype them."""
    import re

    text = (FIRMWARE_DIR / "Makefile").read_text()
    m = re.search(rf"^\s*{re.escape(name)}\s*:=\s*(.+)$", text, re.MULTILINE)
    if not m:
        raise NanokwsError(f"firmware/Makefile has no '{name} :=' line")
    return m.group(1).split()


def build_programs(
    target: str,
    programs: Sequence[str],
    model_dir: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    extra_make_args: Sequence[str] = (),
) -> dict[str, Path]:
    """Build `programs` for `target` ("host", "asan" or "qemu"); return name -> executable path.

    The programs are those of firmware/programs/*.mk, e.g. "nanokws_fw", or the Arduino layer
    against its test double: "arduino_fw" (protocol mode) and "arduino_live_fw" (live mode).

    `model_dir` is a `nanokws compile` output folder (its *.c files are linked into programs that
    run a model). Builds for different models go to different `out_dir`s; the default derives one
    from the model folder so that repeated calls are incremental.
    """
    if target not in TARGETS:
        raise NanokwsError(f"unknown target '{target}' (choose from {', '.join(TARGETS)})")
    require_tool("make", "install it with: sudo apt-get install make")
    require_tool("arm-none-eabi-gcc" if target == "qemu" else "cc")
    cxx_programs = [p for p in programs if p in ARDUINO_HOST_PROGRAMS]
    if cxx_programs and target == "qemu":
        raise NanokwsError(f"{', '.join(cxx_programs)}: the Arduino double builds for host and asan only")
    if cxx_programs:
        require_tool(os.environ.get("CXX") or "g++", "install it with: sudo apt-get install g++")
    model = Path(model_dir).resolve() if model_dir else FIRMWARE_DIR / "model"
    if out_dir is None:
        tag = _model_tag(model)
        out_dir = BUILD_DIR / "firmware" / target / tag
    out = Path(out_dir).resolve()
    cmd = [
        "make",
        "-s",
        "-C",
        str(FIRMWARE_DIR),
        f"TARGET={target}",
        f"OUT={out}",
        f"MODEL_DIR={model}",
        f"PROGRAMS={' '.join(programs)}",
        f"-j{os.cpu_count() or 2}",
        *extra_make_args,
        *programs,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise NanokwsError(f"firmware build for {target} failed:\n{tail}")
    suffix = ".elf" if target == "qemu" else ""
    return {p: out / f"{p}{suffix}" for p in programs}


def _model_tag(model: Path) -> str:
    """A short stable folder name for a model folder (its path), so builds never mix models."""
    import hashlib

    return model.name + "-" + hashlib.sha1(str(model).encode()).hexdigest()[:8]
