"""Drive the `stream_runner` firmware program (host/asan executable or QEMU ELF) over its byte protocol.

See firmware/programs/stream_runner.c for the protocol: frames go in, the scores of every inference
the streaming form completes come back, with the cycle count of each push.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import NanokwsError
from .program_io import ProgramIO


@dataclass
class StreamScores:
    frames: int  # frames pushed since the reset when these scores came (the window ends there)
    scores: np.ndarray  # int8 [output_len]
    cycles: int  # cycles of the push that completed the window (its rows + the head)


@dataclass
class StreamBatch:
    scores: list[StreamScores]
    frames: int
    total_cycles: int  # all pushes of the batch
    max_cycles: int  # the most expensive single push
    layer_cycles: list[int]  # per layer of the model: its row work and head work over the batch


class StreamRunner(ProgramIO):
    """Start `stream_runner` for `target` ("host", "asan" or "qemu")."""

    NAME = "stream_runner"
    QUIT = b"NKSQ"

    def __init__(self, program: str | Path, target: str) -> None:
        super().__init__(program, target)
        magic = self._read(4)
        if magic == b"NKSN":
            raise NanokwsError("the model folder has no streaming form (compile with --streaming)")
        if magic != b"NKSH":
            raise NanokwsError(f"stream_runner did not say hello (got {magic!r})")
        (
            self.frame_len,
            self.window_frames,
            self.output_len,
            self.stride,
            self.align,
            self.state_bytes,
            self.work_bytes,
            self.input_len,
            self.cycle_hz,
        ) = self._read_u32s(9)
        self.cycle_unit = self._read_unit()

    def push(self, frames: np.ndarray) -> StreamBatch:
        """Push frames [n, frame_len] (int8) in order; the scores of every window they complete."""
        data = np.asarray(frames, dtype=np.int8).reshape(-1)
        if data.size % self.frame_len:
            raise NanokwsError(f"{data.size} values are not whole frames of {self.frame_len}")
        n = data.size // self.frame_len
        self._send(b"NKSF" + struct.pack("<I", n) + data.tobytes())
        out: list[StreamScores] = []
        while True:
            tag = self._read(1)
            if tag == b"S":
                (count,) = self._read_u32s(1)
                scores = np.frombuffer(self._read(self.output_len), dtype=np.int8).copy()
                out.append(StreamScores(count, scores, *self._read_u32s(1)))
            elif tag == b"D":
                done, total, most, num_layers = self._read_u32s(4)
                if done != n:
                    raise NanokwsError(f"stream_runner pushed {done} frames, not {n}")
                layers = list(self._read_u32s(num_layers)) if num_layers else []
                return StreamBatch(out, n, total, most, layers)
            else:
                raise NanokwsError(f"stream_runner protocol error (tag {tag!r})")

    def reset(self) -> None:
        self._send(b"NKSR")
        if self._read(1) != b"R":
            raise NanokwsError("stream_runner did not acknowledge the reset")

    def set_stride(self, frames: int) -> int:
        """nk_model_stream_set_stride's return value (0 accepted, -1 refused)."""
        self._send(b"NKSS" + struct.pack("<I", frames))
        if self._read(1) != b"C":
            raise NanokwsError("stream_runner protocol error (stride)")
        return int(struct.unpack("<i", self._read(4))[0])

    def invoke(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """The clip model (nk_model_invoke) on one whole input: (output, cycles)."""
        data = np.asarray(x, dtype=np.int8).reshape(-1)
        if data.size != self.input_len:
            raise NanokwsError(f"input has {data.size} values, the model takes {self.input_len}")
        self._send(b"NKSI" + data.tobytes())
        if self._read(1) != b"O":
            raise NanokwsError("stream_runner protocol error (clip)")
        out = np.frombuffer(self._read(self.output_len), dtype=np.int8).copy()
        cycles, status = struct.unpack("<Ii", self._read(8))
        if status != 0:
            raise NanokwsError(f"nk_model_invoke returned {status}")
        return out, int(cycles)
