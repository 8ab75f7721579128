"""Bring a device up for `nanokws hil`: a real port, the host build, or the firmware under QEMU.

Each launcher is a context manager that yields a connected `Device` and always tears down what
it started (the firmware process, QEMU) on the way out: normal end, error or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

from ..errors import NanokwsError
from ..modelmeta import model_hash
from ..paths import BUILD_DIR
from .device import Device, DeviceGone, ProcessTransport, SerialTransport

FIRMWARE_PROGRAM = "nanokws_fw"


def compiler_source_hash() -> str:
    """A hash of what decides the compiler's output: its Python and C sources
    (tools/nanokws/compiler/*.py, *.c) and the kernels' headers and packing C, which define the weight
    layouts it writes (firmware/lib/kernels/nk_kernels*.h, *_pack.c). It changes whenever the
    compiler does, so a model folder compiled by an older compiler is compiled again."""
    from .. import compiler
    from ..paths import FIRMWARE_DIR

    kernels = FIRMWARE_DIR / "lib" / "kernels"
    here = Path(compiler.__file__).parent
    sources = [
        *here.glob("*.py"),
        *here.glob("*.c"),
        *kernels.glob("nk_kernels*.h"),
        *kernels.glob("*_pack.c"),
    ]
    h = hashlib.sha256()
    for src in sorted(sources, key=lambda p: (p.parent.name, p.name)):
        h.update(src.name.encode() + b"\0" + src.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def compile_stamp(model_bytes: bytes) -> str:
    """What `compile_model` writes beside a compiled folder: the model's hash and the compiler's."""
    return f"model {model_hash(model_bytes)} compiler {compiler_source_hash()}"


def compile_model(model: Path, out_dir: Path) -> Path:
    """Run `nanokws compile` for `model` into `out_dir`, skipped when the folder was compiled from
    the same model by the same compiler (`compile_stamp`)."""
    stamp = out_dir / ".hil_model_hash"
    want = compile_stamp(model.read_bytes())
    if stamp.is_file() and stamp.read_text().strip() == want and (out_dir / "model_config.h").is_file():
        return out_dir
    from ..cli import main as nanokws_main

    log = io.StringIO()  # keep compile's chatter out of the hil output; quote it on failure
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            code = nanokws_main(["compile", "--model", str(model), "--out", str(out_dir)])
        except SystemExit as exc:  # argparse: the compile command is missing or changed
            code = int(exc.code or 2)
    if code != 0:
        tail = " | ".join(log.getvalue().strip().splitlines()[-3:])
        raise NanokwsError(f"compiling {model} for the device failed (exit {code}): {tail}")
    stamp.write_text(want + "\n")
    return out_dir


def build_firmware(model: Path, target: str, build_root: Path | None = None) -> Path:
    """Compile `model` and build the firmware program for `target`; return the executable."""
    from ..cbuild import build_programs

    digest = model_hash(model.read_bytes())
    root = (build_root or BUILD_DIR / "hil") / digest
    model_dir = compile_model(model, root / "model")
    return build_programs(target, [FIRMWARE_PROGRAM], model_dir=model_dir, out_dir=root / target)[
        FIRMWARE_PROGRAM
    ]


@contextlib.contextmanager
def serial_device(url: str, baudrate: int, timeout: float) -> Iterator[Device]:
    dev = Device(SerialTransport(url, baudrate), timeout=timeout)
    try:
        yield dev
    finally:
        dev.close()


@contextlib.contextmanager
def host_device(exe: Path, timeout: float) -> Iterator[Device]:
    """The host build of the firmware, speaking the protocol over stdin/stdout."""
    dev = Device(ProcessTransport([str(exe)]), timeout=timeout)
    try:
        yield dev
    finally:
        dev.close()


@contextlib.contextmanager
def qemu_device(elf: Path, timeout: float, boot_timeout: float = 20.0) -> Iterator[Device]:
    """Boot `elf` under QEMU (UART0 on a free TCP port), connect, and stop QEMU afterwards."""
    from ..qemu import Qemu

    with Qemu(elf, serial="tcp") as emu:
        try:
            transport = SerialTransport(f"socket://127.0.0.1:{emu.port}", open_timeout=boot_timeout)
        except DeviceGone as exc:
            raise DeviceGone(f"{exc}; QEMU said: {emu.stderr_text()[-300:] or '(nothing)'}") from exc
        dev = Device(transport, timeout=timeout)
        try:
            yield dev
        finally:
            dev.close()
