"""Drive the `model_runner` firmware program (host/asan executable or QEMU ELF) over its byte protocol.

See firmware/programs/model_runner.c for the protocol. One process (one emulator boot) serves any
number of inferences.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import NanokwsError
from .program_io import ProgramIO


@dataclass
class Inference:
    output: np.ndarray  # int8 [output_len]
    total_cycles: int
    layer_cycles: list[int]
    layer_outputs: dict[int, np.ndarray] = field(default_factory=dict)  # when dumping


class ModelRunner(ProgramIO):
    """Start `model_runner` for `target` ("host", "asan" or "qemu") and run inferences on it."""

    NAME = "model_runner"
    QUIT = b"NKRQ"

    def __init__(self, program: str | Path, target: str) -> None:
        super().__init__(program, target)
        self._expect_hello(b"NKRH")
        self.input_len, self.output_len, self.num_layers, self.cycle_hz = self._read_u32s(4)
        self.cycle_unit = self._read_unit()

    def infer(self, x: np.ndarray, dump: bool = False) -> Inference:
        data = np.asarray(x, dtype=np.int8).reshape(-1)
        if data.size != self.input_len:
            raise NanokwsError(f"input has {data.size} values, the model takes {self.input_len}")
        self._send(b"NKRI" + bytes([1 if dump else 0]) + data.tobytes())
        dumps: dict[int, np.ndarray] = {}
        while True:
            tag = self._read(1)
            if tag == b"L":
                layer, n = self._read_u32s(2)
                dumps[layer] = np.frombuffer(self._read(n), dtype=np.int8).copy()
            elif tag == b"O":
                break
            else:
                raise NanokwsError(f"model_runner protocol error (tag {tag!r})")
        out = np.frombuffer(self._read(self.output_len), dtype=np.int8).copy()
        (total,) = self._read_u32s(1)
        layers = list(self._read_u32s(self.num_layers))
        status = struct.unpack("<i", self._read(4))[0]
        if status != 0:
            raise NanokwsError(f"nk_model_invoke returned {status}")
        return Inference(out, total, layers, dumps)
