"""The request/response byte loop shared by the hosts of the firmware programs (model_runner,
stream_runner, frontend_bench in firmware/programs): start the program on the host (a host or asan
executable on stdin/stdout) or under QEMU (the ELF, UART on stdio, -icount), read its hello, read
exact replies (quoting the program's stderr when it stopped), send requests, and ask it to quit.

Each program's own protocol (its hello fields and requests) stays in its driver: `ModelRunner`
(runner.py), `StreamRunner` (stream_runner.py), `FrontendRunner` (budget.py).
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

from ..errors import NanokwsError

_P = TypeVar("_P", bound="ProgramIO")


class ProgramIO:
    """One running program for `target` ("host", "asan" or "qemu"); subclasses name it (`NAME`)
    and its quit request (`QUIT`), and read their hello after `__init__`."""

    NAME = "program"
    QUIT = b""

    def __init__(self, program: str | Path, target: str) -> None:
        self.qemu: Any = None
        if target == "qemu":
            from ..qemu import Qemu

            self.qemu = Qemu(program, serial="stdio", icount=True)
            self.proc = self.qemu.proc
        else:
            self.proc = subprocess.Popen(
                [str(program)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in: IO[bytes] = self.proc.stdin
        self._out: IO[bytes] = self.proc.stdout
        self.cycle_unit = ""

    def _read(self, n: int) -> bytes:
        data = self._out.read(n)
        if data is None or len(data) != n:
            err = b""
            if self.proc.poll() is not None and self.proc.stderr is not None:
                err = self.proc.stderr.read()
            tail = err.decode(errors="replace").strip()[-500:]
            raise NanokwsError(f"{self.NAME} stopped (exit {self.proc.poll()}): {tail}")
        return data

    def _read_u32s(self, count: int) -> tuple[int, ...]:
        return tuple(struct.unpack(f"<{count}I", self._read(4 * count)))

    def _read_unit(self) -> str:
        """The hello's last field: u8 length, then the cycle unit's name."""
        return self._read(self._read(1)[0]).decode()

    def _expect_hello(self, magic: bytes) -> None:
        got = self._read(len(magic))
        if got != magic:
            raise NanokwsError(f"{self.NAME} did not say hello (got {got!r})")

    def _send(self, data: bytes) -> None:
        self._in.write(data)
        self._in.flush()

    def close(self) -> int:
        """Ask the program to quit; return its exit status."""
        try:
            self._send(self.QUIT)
        except (BrokenPipeError, OSError):
            pass
        if self.qemu is not None:
            self.qemu.close()
            return int(self.proc.returncode)
        try:
            self._in.close()
        except OSError:
            pass
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def __enter__(self: _P) -> _P:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        elif self.qemu is not None:
            self.qemu.close(grace=0.2)
        else:
            self.proc.kill()
            self.proc.wait()
