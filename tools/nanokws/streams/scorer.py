"""Fast exact offline scoring: the firmware's own streaming path (`kws_runner`, firmware/programs/
kws_runner.c: nk_kws with the frontend, the compiled model and the C recognizer) over a recording.

`score_audio` returns every inference's hop and int8 scores and every detection the C recognizer
made, so that any threshold / smoothing / suppression setting can then be replayed in Python
(streams/replay.py) without running inference again. The program is built once per model (a
`nanokws compile` output folder, or a .tflite compiled on the way, cached by its hash).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..compiler.program_io import ProgramIO
from ..errors import NanokwsError
from .replay import CLIP_FRAMES

PROGRAM = "kws_runner"
# Samples per AUDIO request: 10 s, whose replies (250 inferences at stride 2) stay far below a
# pipe's buffer, so writing a request never blocks on unread replies.
CHUNK_SAMPLES = 160_000
STATUS_UNSUPPORTED = -100
NO_RELEASE = 0xFFFFFFFF


@dataclass(frozen=True)
class RunnerDetection:
    """One detection the C recognizer made: after hop `hop`, label index, smoothed score 0..255."""

    hop: int
    label: int
    score: int


@dataclass
class KwsConfig:
    """The nk_kws configuration (None: keep the firmware's default)."""

    thresholds: tuple[int, ...] | None = None  # one per label (labels starting with '_' never fire)
    threshold: int | None = None  # every label's threshold
    window: int | None = None  # smoothing window, inferences
    suppression_ms: int | None = None
    stride: int | None = None  # hops between inferences
    release: int | None = None  # re-arm level (nk_kws_set_release), when the firmware has it


@dataclass
class ScoreRun:
    """What one pass of a recording through kws_runner gave."""

    hops: np.ndarray  # uint32 [n]: the hop after which each inference ran
    scores: np.ndarray  # int8 [n, num_labels]
    detections: list[RunnerDetection]
    labels: list[str]
    output_scale: float
    output_zero_point: int
    sample_rate: int
    hop_samples: int
    streaming: bool
    config: dict[str, Any]  # the configuration the run used (read back from the program)
    model_hash: str
    model_name: str
    audio_seconds: float
    wall_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    window_frames: int = CLIP_FRAMES  # frames per inference (the model's window); one clip's in older files

    def hop_time_s(self, hop: np.ndarray | int) -> np.ndarray | float:
        """Time at the end of hop `hop` (hop k covers samples [k * hop_samples, (k + 1) * hop_samples))."""
        return (np.asarray(hop, dtype=np.float64) + 1.0) * self.hop_samples / self.sample_rate

    def save_npz(self, path: Path) -> None:
        """hops, scores, detections [m, 3] (hop, label, score) and the run's facts, atomically."""
        import io
        import json

        from ..atomic import write_bytes

        det = np.array([(d.hop, d.label, d.score) for d in self.detections], dtype=np.int64).reshape(-1, 3)
        meta = {
            "labels": self.labels,
            "output_scale": self.output_scale,
            "output_zero_point": self.output_zero_point,
            "sample_rate": self.sample_rate,
            "hop_samples": self.hop_samples,
            "streaming": self.streaming,
            "config": self.config,
            "model_hash": self.model_hash,
            "model_name": self.model_name,
            "audio_seconds": self.audio_seconds,
            "wall_seconds": self.wall_seconds,
            "window_frames": self.window_frames,
        }
        buf = io.BytesIO()
        np.savez_compressed(buf, hops=self.hops, scores=self.scores, detections=det, meta=json.dumps(meta))
        write_bytes(path, buf.getvalue())

    @classmethod
    def load_npz(cls, path: Path) -> ScoreRun:
        import json

        try:
            with np.load(path) as z:
                meta = json.loads(str(z["meta"]))
                det = z["detections"]
                return cls(
                    hops=z["hops"].astype(np.uint32),
                    scores=z["scores"].astype(np.int8),
                    detections=[RunnerDetection(int(h), int(lab), int(s)) for h, lab, s in det],
                    labels=list(meta["labels"]),
                    output_scale=float(meta["output_scale"]),
                    output_zero_point=int(meta["output_zero_point"]),
                    sample_rate=int(meta["sample_rate"]),
                    hop_samples=int(meta["hop_samples"]),
                    streaming=bool(meta["streaming"]),
                    config=dict(meta["config"]),
                    model_hash=str(meta["model_hash"]),
                    model_name=str(meta["model_name"]),
                    audio_seconds=float(meta["audio_seconds"]),
                    wall_seconds=float(meta["wall_seconds"]),
                    window_frames=int(meta.get("window_frames", CLIP_FRAMES)),
                )
        except (OSError, KeyError, ValueError) as exc:
            raise NanokwsError(f"{path}: not a scores file of `nanokws stream score` ({exc})") from exc


class KwsRunner(ProgramIO):
    """Start `kws_runner` for `target` ("host", "asan" or "qemu"); see firmware/programs/kws_runner.c."""

    NAME = PROGRAM
    QUIT = b"NKKQ"

    def __init__(self, program: str | Path, target: str = "host") -> None:
        super().__init__(program, target)
        magic = self._read(4)
        if magic != b"NKKH":
            raise NanokwsError(f"kws_runner did not say hello (got {magic!r})")
        (
            self.num_labels,
            self.sample_rate,
            self.hop_samples,
            streaming,
            self.stride_align,
            scale_bits,
            zero_point,
            release,
            self.window_frames,
        ) = self._read_u32s(9)
        self.streaming = bool(streaming)
        self.release_supported = bool(release)
        self.output_scale = float(struct.unpack("<f", struct.pack("<I", scale_bits))[0])
        self.output_zero_point = int(struct.unpack("<i", struct.pack("<I", zero_point))[0])
        self.model_hash = self._read_string()
        self.model_name = self._read_string()
        self.labels = [self._read_string() for _ in range(self.num_labels)]
        (self.cycle_hz,) = self._read_u32s(1)
        self.cycle_unit = self._read_unit()
        self._record = 4 + self.num_labels

    def _read_string(self) -> str:
        return self._read(self._read(1)[0]).decode(errors="replace")

    def push(self, audio: np.ndarray) -> tuple[list[int], list[bytes], list[RunnerDetection], int]:
        """Push int16 samples; (hops, raw score rows, detections, failed status) of what they caused."""
        data = np.ascontiguousarray(np.asarray(audio, dtype="<i2").reshape(-1))
        self._send(b"NKKA" + struct.pack("<I", data.size) + data.tobytes())
        hops: list[int] = []
        rows: list[bytes] = []
        dets: list[RunnerDetection] = []
        record = self._record
        while True:
            tag = self._read(1)
            if tag == b"S":
                raw = self._read(record)
                hops.append(int.from_bytes(raw[:4], "little"))
                rows.append(raw[4:])
            elif tag == b"T":
                raw = self._read(6)
                dets.append(RunnerDetection(int.from_bytes(raw[:4], "little"), raw[4], raw[5]))
            elif tag == b"D":
                n, status = struct.unpack("<Ii", self._read(8))
                if n != data.size:
                    raise NanokwsError(f"kws_runner took {n} samples, not {data.size}")
                return hops, rows, dets, int(status)
            else:
                raise NanokwsError(f"kws_runner protocol error (tag {tag!r})")

    def _set(self, key: bytes, a: int, b: int = 0) -> int:
        self._send(b"NKKC" + key + struct.pack("<II", a & 0xFFFFFFFF, b & 0xFFFFFFFF))
        if self._read(1) != b"C":
            raise NanokwsError("kws_runner protocol error (config)")
        return int(struct.unpack("<i", self._read(4))[0])

    def configure(self, cfg: KwsConfig) -> None:
        """Apply `cfg`; one line naming the setting the firmware refused."""
        steps: list[tuple[str, bytes, int, int]] = []
        if cfg.stride is not None:
            steps.append((f"stride {cfg.stride}", b"S", cfg.stride, 0))
        if cfg.window is not None:
            steps.append((f"smoothing window {cfg.window}", b"W", cfg.window, 0))
        if cfg.suppression_ms is not None:
            steps.append((f"suppression {cfg.suppression_ms} ms", b"P", cfg.suppression_ms, 0))
        if cfg.threshold is not None:
            steps.append((f"threshold {cfg.threshold}", b"A", cfg.threshold, 0))
        if cfg.thresholds is not None:
            if len(cfg.thresholds) != self.num_labels:
                raise NanokwsError(f"{len(cfg.thresholds)} thresholds for {self.num_labels} labels")
            steps += [
                (f"threshold of {self.labels[i]} = {t}", b"T", i, t) for i, t in enumerate(cfg.thresholds)
            ]
        if cfg.release is not None:
            steps.append((f"release level {cfg.release}", b"L", cfg.release, 0))
        for what, key, a, b in steps:
            if a < 0 or b < 0:
                raise NanokwsError(f"{what}: must not be negative")
            status = self._set(key, a, b)
            if status == STATUS_UNSUPPORTED:
                raise NanokwsError(f"{what}: this firmware's recognizer has no release level yet")
            if status != 0:
                raise NanokwsError(f"{what}: refused by the firmware (nk_kws status {status})")

    def get_config(self) -> dict[str, Any]:
        self._send(b"NKKG")
        if self._read(1) != b"G":
            raise NanokwsError("kws_runner protocol error (get config)")
        stride, window, suppression, release = self._read_u32s(4)
        thresholds = list(self._read(self.num_labels))
        return {
            "stride": stride,
            "window": window,
            "suppression_ms": suppression,
            "release": None if release == NO_RELEASE else release,
            "thresholds": thresholds,
        }

    def reset(self) -> None:
        self._send(b"NKKR")
        if self._read(1) != b"R":
            raise NanokwsError("kws_runner did not acknowledge the reset")

    def run(
        self,
        audio: np.ndarray,
        cfg: KwsConfig | None = None,
        progress: Callable[[int], None] | None = None,
        chunk: int = CHUNK_SAMPLES,
    ) -> ScoreRun:
        """Reset, configure, push the whole recording in chunks; everything it produced."""
        t0 = time.monotonic()
        self.reset()
        if cfg is not None:
            self.configure(cfg)
        config = self.get_config()
        audio = np.asarray(audio)
        if audio.dtype != np.int16:
            raise NanokwsError(f"audio must be int16 samples, not {audio.dtype}")
        hops: list[int] = []
        rows: list[bytes] = []
        dets: list[RunnerDetection] = []
        for off in range(0, audio.size, chunk):
            h, r, d, status = self.push(audio[off : off + chunk])
            if status != 0:
                raise NanokwsError(f"nk_kws_push failed (status {status}) near sample {off}")
            hops += h
            rows += r
            dets += d
            if progress is not None:
                progress(min(chunk, audio.size - off))
        scores = np.frombuffer(b"".join(rows), dtype=np.int8).reshape(-1, self.num_labels).copy()
        return ScoreRun(
            hops=np.asarray(hops, dtype=np.uint32),
            scores=scores,
            detections=dets,
            labels=list(self.labels),
            output_scale=self.output_scale,
            output_zero_point=self.output_zero_point,
            sample_rate=self.sample_rate,
            hop_samples=self.hop_samples,
            streaming=self.streaming,
            config=config,
            model_hash=self.model_hash,
            model_name=self.model_name,
            audio_seconds=audio.size / self.sample_rate,
            wall_seconds=time.monotonic() - t0,
            window_frames=self.window_frames,
        )


def model_folder(model: Path, build_root: Path | None = None) -> Path:
    """A compiled model folder for `model`: a folder holding nk_model.h as it is; a .tflite (or a
    folder with model.tflite and no C) compiled by `nanokws compile` into the build cache (skipped
    when already compiled from the same model by the same compiler)."""
    from ..harness.launch import compile_model
    from ..modelmeta import model_hash, read_model_bytes
    from ..paths import BUILD_DIR

    model = Path(model)
    if model.is_dir():
        if (model / "nk_model.h").is_file() and (model / "model_config.h").is_file():
            return model.resolve()
        if (model / "model.tflite").is_file():
            model = model / "model.tflite"
        else:
            raise NanokwsError(
                f"{model}: neither a compiled model folder (nk_model.h) nor one with model.tflite"
            )
    if not model.is_file():
        raise NanokwsError(f"{model}: model not found")
    data = read_model_bytes(model)
    root = (build_root or BUILD_DIR / "streams") / model_hash(data)
    root.mkdir(parents=True, exist_ok=True)
    return compile_model(model, root / "model")


def build_runner(model: Path, target: str = "host", build_root: Path | None = None) -> Path:
    """Build kws_runner for `model` (see `model_folder`) and `target`; return the executable."""
    from ..cbuild import build_programs
    from ..paths import BUILD_DIR

    root = (build_root or BUILD_DIR / "streams").resolve()
    folder = model_folder(model, build_root)
    # A folder this module compiled gets its build beside it; any other folder cbuild's default.
    out = folder.parent / f"kws_runner-{target}" if folder.parent.parent == root else None
    return build_programs(target, [PROGRAM], model_dir=folder, out_dir=out)[PROGRAM]


def score_audio(
    model: Path,
    audio: np.ndarray,
    cfg: KwsConfig | None = None,
    *,
    target: str = "host",
    progress: bool = False,
    build_root: Path | None = None,
) -> ScoreRun:
    """Build kws_runner for `model` and run `audio` (int16, 16 kHz) through it."""
    exe = build_runner(model, target, build_root)
    from tqdm import tqdm

    with KwsRunner(exe, target) as runner:
        sr = runner.sample_rate
        with tqdm(total=round(audio.size / sr), desc="scoring", unit="s audio", disable=not progress) as bar:
            done = [0]

            def step(n: int) -> None:
                done[0] += n
                bar.n = round(done[0] / sr)
                bar.refresh()

            return runner.run(audio, cfg, progress=step)
