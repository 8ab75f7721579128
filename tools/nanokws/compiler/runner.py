"""Drive the `model_runner` firmware program (host/asan executable or QEMU ELF) over its byte protocol.

See firmware/programs/model_runner.c for the protocol. One process (one emulator boot) serves any
number of inferences.
"""

from __future__ import annotations

import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

import numpy as np

from ..errors import NanokwsError


@dataclass
class Inference:
    output: np.ndarray  # int8 [output_len]
    total_cycles: int
    layer_cycles: list[int]
    layer_outputs: dict[int, np.ndarray] = field(default_factory=dict)  # when dumping


class ModelRunner:
    """Start `model_runner` for `target` ("host", "asan" or "qemu") and run inferences on it."""

    def __init__(self, program: str | Path, target: str) -> None:
        self.qemu = None
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
        magic = self._read(4)
        if magic != b"NKRH":
            raise NanokwsError(f"model_runner did not say hello (got {magic!r})")
        self.input_len, self.output_len, self.num_layers, self.cycle_hz = struct.unpack("<4I", self._read(16))
        self.cycle_unit = self._read(self._read(1)[0]).decode()

    def _read(self, n: int) -> bytes:
        data = self._out.read(n)
        if data is None or len(data) != n:
            err = b""
            if self.proc.poll() is not None and self.proc.stderr is not None:
                err = self.proc.stderr.read()
            raise NanokwsError(
                f"model_runner stopped (exit {self.proc.poll()}): "
                f"{err.decode(errors='replace').strip()[-500:]}"
            )
        return data

    def infer(self, x: np.ndarray, dump: bool = False) -> Inference:
        data = np.asarray(x, dtype=np.int8).reshape(-1)
        if data.size != self.input_len:
            raise NanokwsError(f"input has {data.size} values, the model takes {self.input_len}")
        self._in.write(b"NKRI" + bytes([1 if dump else 0]) + data.tobytes())
        self._in.flush()
        dumps: dict[int, np.ndarray] = {}
        while True:
            tag = self._read(1)
            if tag == b"L":
                layer, n = struct.unpack("<2I", self._read(8))
                dumps[layer] = np.frombuffer(self._read(n), dtype=np.int8).copy()
            elif tag == b"O":
                break
            else:
                raise NanokwsError(f"model_runner protocol error (tag {tag!r})")
        out = np.frombuffer(self._read(self.output_len), dtype=np.int8).copy()
        total = struct.unpack("<I", self._read(4))[0]
        layers = list(struct.unpack(f"<{self.num_layers}I", self._read(4 * self.num_layers)))
        status = struct.unpack("<i", self._read(4))[0]
        if status != 0:
            raise NanokwsError(f"nk_model_invoke returned {status}")
        return Inference(out, total, layers, dumps)

    def close(self) -> int:
        """Ask the program to quit; return its exit status."""
        try:
            self._in.write(b"NKRQ")
            self._in.flush()
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

    def __enter__(self) -> ModelRunner:
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
