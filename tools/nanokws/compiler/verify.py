"""`nanokws verify`: the compiled model must give the same int8 outputs as TFLite Micro, bit for bit."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..argtypes import SEED, int_in
from ..modelmeta import model_sha256

EPILOG = """\
examples:
  nanokws verify --model runs/tiny/model.tflite                 # host build, 20 inputs
  nanokws verify --model runs/tiny/model.tflite --target qemu --n 50 --json runs/tiny/verify.json
  nanokws verify --model m.tflite --target asan --data ../shared/data/speech_commands

Inputs: random int8 tensors and, when --data (a Speech Commands folder; default
../shared/data/speech_commands when present) is usable and the model takes 49x40 features, real
features from the device frontend (nanokws.features). Every output must be identical
(np.array_equal per input); the first mismatch is localised to a layer by comparing every
intermediate tensor. Exit 0 when all match, 1 on a mismatch, 2 on a usage error.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("--model", required=True, type=Path, help="full-int8 .tflite file")
    parser.add_argument(
        "--target",
        choices=("host", "asan", "qemu"),
        default="host",
        help="where the compiled model runs (default: host)",
    )
    parser.add_argument("--n", type=int_in(1, 100_000), default=20, help="number of inputs (default: 20)")
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="Speech Commands folder for real features (default: the shared data if present)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the result as JSON here")
    parser.add_argument("--seed", type=SEED, default=0, help="random input seed (default: 0)")
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=None,
        help="where to put the compiled C and the build (default: build/verify/<model hash>)",
    )


@dataclass
class VerifyResult:
    ok: bool
    n: int
    sources: list[str]
    mismatch: dict[str, Any] | None
    notes: list[str]
    target: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "target": self.target,
            "n": self.n,
            "inputs": self.sources,
            "mismatch": self.mismatch,
            "notes": self.notes,
        }


def real_features(data: Path | None, count: int, input_len: int, notes: list[str]) -> np.ndarray:
    """Up to `count` feature tensors computed from WAVs with the device frontend, or an empty array."""
    from ..paths import SHARED_SPEECH_COMMANDS

    root = data if data is not None else SHARED_SPEECH_COMMANDS
    empty = np.zeros((0, input_len), dtype=np.int8)
    if count <= 0:
        return empty
    if input_len != 49 * 40:
        notes.append(f"model input has {input_len} values, not 49x40 features: random inputs only")
        return empty
    if not root.is_dir():
        notes.append(f"no data folder at {root}: random inputs only")
        return empty
    try:
        from ..data.wav import fit_clip, read_wav
        from ..features import compute_features_batch
    except ImportError as exc:
        notes.append(f"nanokws.features unavailable ({exc}): random inputs only")
        return empty
    wavs = sorted(p for p in root.glob("*/*.wav") if not p.parent.name.startswith("_"))
    if not wavs:
        notes.append(f"no WAV files under {root}: random inputs only")
        return empty
    pick = np.random.default_rng(1).choice(len(wavs), size=min(count, len(wavs)), replace=False)
    audio = np.stack([fit_clip(read_wav(wavs[i])) for i in pick])
    return compute_features_batch(audio).reshape(len(pick), -1).astype(np.int8)


def localise(tflite: bytes, runner: Any, layers: list[Any], x: np.ndarray) -> dict[str, Any]:
    """Run one input with every layer output dumped and find the first layer that differs."""
    from . import tflm

    ref = tflm.run_with_tensors(tflite, x, [layer.output for layer in layers])
    got = runner.infer(x, dump=True).layer_outputs
    for n, layer in enumerate(layers):
        a, b = ref[layer.output], got.get(n, np.zeros(0, np.int8))
        if a.shape != b.shape or not np.array_equal(a, b):
            idx = int(np.nonzero(a != b)[0][0]) if a.shape == b.shape else 0
            return {
                "layer": n,
                "op_index": layer.op_index,
                "op": layer.opcode,
                "element": idx,
                "expected": int(a[idx]) if a.size else None,
                "got": int(b[idx]) if b.size else None,
                "differing_elements": int(np.sum(a != b)) if a.shape == b.shape else None,
            }
    return {"layer": None, "note": "no intermediate tensor differs"}


def verify(
    tflite: bytes,
    target: str,
    n: int,
    data: Path | None = None,
    seed: int = 0,
    build_dir: Path | None = None,
    source: str = "model.tflite",
    progress: bool = True,
    fast: bool = True,
    extra_make_args: tuple[str, ...] = (),
) -> VerifyResult:
    from tqdm import tqdm

    from ..cbuild import build_programs
    from ..paths import BUILD_DIR
    from . import tflm
    from .compile import compile_model
    from .runner import ModelRunner

    base = build_dir or BUILD_DIR / "verify" / model_sha256(tflite)[:12]
    result = compile_model(tflite, base / "model", source=source, measure_tflm=False, fast=fast)
    exe = build_programs(target, ["model_runner"], base / "model", base / target, extra_make_args)[
        "model_runner"
    ]
    input_len = result.report["input_len"]
    notes: list[str] = []
    real = real_features(data, n // 2, input_len, notes)
    rand = np.random.default_rng(seed).integers(-128, 128, size=(n - len(real), input_len), dtype=np.int8)
    inputs = np.concatenate([rand, real]) if len(real) else rand
    sources = ["random"] * len(rand) + ["features"] * len(real)
    expected = tflm.run(tflite, inputs)
    mismatch = None
    with ModelRunner(exe, target) as runner:
        for i, x in enumerate(tqdm(inputs, desc=f"verify on {target}", unit="input", disable=not progress)):
            got = runner.infer(x).output
            if not np.array_equal(got, expected[i]):
                j = int(np.nonzero(got != expected[i])[0][0])
                mismatch = {
                    "input": i,
                    "source": sources[i],
                    "output_element": j,
                    "expected": int(expected[i][j]),
                    "got": int(got[j]),
                    **{f"first_bad_{k}": v for k, v in localise(tflite, runner, result.layers, x).items()},
                }
                break
    return VerifyResult(mismatch is None, len(inputs), sources, mismatch, notes, target)


def run(args: argparse.Namespace) -> int:
    from ..errors import check_output_file

    if args.json:
        check_output_file(args.json, "--json")
    from .. import atomic
    from ..errors import NanokwsError
    from ..modelmeta import read_model_bytes

    if args.n < 1:
        raise NanokwsError("--n must be at least 1")
    tflite = read_model_bytes(args.model)
    res = verify(tflite, args.target, args.n, args.data, args.seed, args.build_dir, source=args.model.name)
    for note in res.notes:
        print(f"note: {note}")
    if args.json:
        atomic.write_json(args.json, res.as_dict())
    kinds = {k: res.sources.count(k) for k in dict.fromkeys(res.sources)}
    if res.ok:
        print(f"OK: {res.n} inputs ({kinds}) bit-exact with TFLite Micro on {res.target}")
        return 0
    m = res.mismatch or {}
    print(
        f"MISMATCH on {res.target}: input {m.get('input')} ({m.get('source')}), output element "
        f"{m.get('output_element')}: expected {m.get('expected')}, got {m.get('got')}; first differing layer "
        f"{m.get('first_bad_layer')} (op {m.get('first_bad_op_index')} {m.get('first_bad_op')}), element "
        f"{m.get('first_bad_element')}: expected {m.get('first_bad_expected')}, got {m.get('first_bad_got')}"
    )
    return 1
