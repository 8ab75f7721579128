"""`nanokws verify`: the compiled model must compute every tensor TFLite Micro computes, bit for bit."""

from __future__ import annotations

import argparse
import os
import shlex
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..argtypes import SEED, int_in
from ..modelmeta import model_sha256
from ..window import pad_to_input

DEFAULT_N = 200
TARGETS = ("host", "asan", "qemu")
KINDS = ("edge", "features", "random")

EPILOG = f"""\
examples:
  nanokws verify --model runs/tiny/model.tflite                 # host build, {DEFAULT_N} inputs
  nanokws verify --model runs/tiny/model.tflite --target qemu --n 50 --json runs/tiny/verify.json
  nanokws verify --model firmware/model/model.tflite --target asan --target qemu \\
      --json firmware/model/verify.json

Every input runs through the compiled C (model_runner, which dumps each layer's output tensor)
and through TFLite Micro with every tensor preserved; every layer's output tensor and the model
output must be identical, element by element, for every input (tensors the compiler folds away,
such as a PAD absorbed by the next convolution, are listed as not compared). A model with a
streaming form (nk_model_stream.h) also runs it on every input (reset, then the window's frames
one push at a time): its scores must equal TFLite Micro's output.

Inputs (--n, default {DEFAULT_N}): edge cases (all -128, all 127, alternating -128/127 and
127/-128, all 0, alternating rows, a step, rising and falling ramps, all the input zero point when
it is none of those; at most a third of --n), real features from the device frontend
(nanokws.features) on WAVs of --data (a Speech Commands folder; default
../shared/data/speech_commands when present) when the model takes 49x40 features (centred in a
longer window, window.py) (half of the rest), and seeded random int8 tensors (the rest). The report
counts the inputs and the differing ones per kind and per tensor, per target; --target repeats (one
compile and one TFLite Micro run serve all of them), and each target runs --jobs copies of its
program side by side (the QEMU build's time goes into sending every layer output over its emulated
UART). --json also records the targets, the input kinds, the tensors compared, the TFLite Micro
version and the model's sha256.

Exit 0 when every tensor matches on every target, 1 on a mismatch, 2 on a usage error.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("--model", required=True, type=Path, help="full-int8 .tflite file")
    parser.add_argument(
        "--target",
        choices=TARGETS,
        action="append",
        default=None,
        help="where the compiled model runs; repeat for several (default: host)",
    )
    parser.add_argument(
        "--n", type=int_in(1, 100_000), default=DEFAULT_N, help=f"number of inputs (default: {DEFAULT_N})"
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="Speech Commands folder for real features (default: the shared data if present)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the result as JSON here")
    parser.add_argument("--seed", type=SEED, default=0, help="random input seed (default: 0)")
    parser.add_argument(
        "--jobs",
        type=int_in(1, 64),
        default=None,
        help=f"copies of each program run side by side (default: the CPUs, at most 4; here {default_jobs()})",
    )
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=None,
        help="where to put the compiled C and the build (default: build/verify/<model hash>)",
    )


# ---- inputs ----------------------------------------------------------------------------------------


def edge_inputs(shape: Sequence[int], zero_point: int = 0) -> list[tuple[str, np.ndarray]]:
    """Named edge-case inputs of the model's input `shape` (batch first; rows = axis 1, the time
    frames of a 49x40 feature input), most revealing first: saturated values, the largest steps
    between neighbours, steps in time, ramps through every int8 value, the input zero point."""
    size = int(np.prod(shape))
    i = np.arange(size)
    rows = int(shape[1]) if len(shape) >= 3 else 1
    row = i // max(1, size // rows)
    cases: list[tuple[str, np.ndarray]] = [
        ("min", np.full(size, -128)),
        ("max", np.full(size, 127)),
        ("alternating", np.where(i % 2 == 0, -128, 127)),
        ("alternating_inverse", np.where(i % 2 == 0, 127, -128)),
        ("zero", np.zeros(size)),
    ]
    if rows > 1:
        cases.append(("rows_alternating", np.where(row % 2 == 0, -128, 127)))
    cases += [
        ("step", np.where(i < size // 2, -128, 127)),
        ("ramp_up", i % 256 - 128),
        ("ramp_down", 127 - i % 256),
    ]
    if zero_point not in (-128, 0, 127):
        cases.append(("zero_point", np.full(size, zero_point)))
    return [(name, v.astype(np.int8)) for name, v in cases]


def real_features(data: Path | None, count: int, input_len: int, notes: list[str]) -> np.ndarray:
    """Up to `count` feature tensors computed from WAVs with the device frontend, or an empty array."""
    from ..paths import SHARED_SPEECH_COMMANDS

    root = data if data is not None else SHARED_SPEECH_COMMANDS
    empty = np.zeros((0, input_len), dtype=np.int8)
    if count <= 0:
        return empty
    if input_len % 40 or input_len < 49 * 40:
        notes.append(f"model input has {input_len} values, not a window of 40-channel frames holding 49x40 "
                     "features: no real features")
        return empty
    if not root.is_dir():
        notes.append(f"no data folder at {root}: no real features")
        return empty
    try:
        from ..data.wav import fit_clip, read_wav
        from ..features import compute_features_batch
    except ImportError as exc:
        notes.append(f"nanokws.features unavailable ({exc}): no real features")
        return empty
    wavs = sorted(p for p in root.glob("*/*.wav") if not p.parent.name.startswith("_"))
    if not wavs:
        notes.append(f"no WAV files under {root}: no real features")
        return empty
    pick = np.random.default_rng(1).choice(len(wavs), size=min(count, len(wavs)), replace=False)
    audio = np.stack([fit_clip(read_wav(wavs[i])) for i in pick])
    clips = np.asarray(compute_features_batch(audio), np.int8)  # centred in a longer window (window.py)
    return pad_to_input(clips, [input_len]).reshape(len(pick), -1)


@dataclass
class Inputs:
    values: np.ndarray  # int8 [n, input_len]
    kinds: list[str]  # "edge", "features" or "random" per input
    labels: list[str]  # e.g. "edge:max", "features:3", "random:17"


def make_inputs(
    shape: Sequence[int],
    zero_point: int,
    n: int,
    seed: int,
    data: Path | None,
    features: np.ndarray | None,
    notes: list[str],
) -> Inputs:
    """`n` inputs: edge cases (at most a third of n, at least one), real features (half of the rest,
    as many as there are: `features` when given, else computed from `data`), seeded random int8."""
    input_len = int(np.prod(shape))
    edges = edge_inputs(shape, zero_point)[: min(n, max(1, n // 3))]
    want = (n - len(edges)) // 2
    if features is not None:
        feats = np.asarray(features)
        if feats.ndim == 3 and len(feats) and input_len % feats.shape[2] == 0 \
                and input_len // feats.shape[2] >= feats.shape[1]:  # clips centred in a longer window
            feats = pad_to_input(feats, [input_len])
        feats = feats.reshape(len(feats), -1) if len(feats) else np.zeros((0, input_len), np.int8)
        if feats.shape[1] != input_len:
            notes.append(f"the given features have {feats.shape[1]} values, the model takes {input_len}")
            real = np.zeros((0, input_len), dtype=np.int8)
        else:
            pick = np.sort(np.random.default_rng(1).permutation(len(feats))[:want])
            real = feats[pick].astype(np.int8)
    else:
        real = real_features(data, want, input_len, notes)
    if 0 < want and len(real) < want:
        notes.append(f"{len(real)} real feature inputs instead of {want}: the rest are random")
    rand = np.random.default_rng(seed).integers(
        -128, 128, size=(n - len(edges) - len(real), input_len), dtype=np.int8
    )
    values = np.concatenate([np.stack([v for _, v in edges]), real, rand])
    kinds = ["edge"] * len(edges) + ["features"] * len(real) + ["random"] * len(rand)
    labels = [f"edge:{name}" for name, _ in edges]
    labels += [f"features:{k}" for k in range(len(real))] + [f"random:{k}" for k in range(len(rand))]
    return Inputs(values, kinds, labels)


# ---- what is compared --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorInfo:
    """One tensor the compiled C materialises: the output of compiled layer `layer`."""

    layer: int
    op_index: int
    op: str
    tensor: int
    name: str
    shape: tuple[int, ...]

    @property
    def elements(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    def as_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "op_index": self.op_index, "op": self.op, "tensor": self.tensor,
                "name": self.name, "shape": list(self.shape), "elements": self.elements}


def compared_tensors(graph: Any, layers: list[Any]) -> tuple[list[TensorInfo], list[dict[str, Any]]]:
    """The layer output tensors (compared) and the operator outputs the compiled C never holds
    (folded into the layer that reads them; not compared)."""
    infos = [
        TensorInfo(n, layer.op_index, layer.opcode, layer.output, graph.tensors[layer.output].name,
                   tuple(int(d) for d in graph.tensors[layer.output].shape))
        for n, layer in enumerate(layers)
    ]
    held = {info.tensor for info in infos}
    folded = [
        {"tensor": ti, "name": graph.tensors[ti].name, "op_index": op.index, "op": op.opcode,
         "why": "folded away by the compiler (no C tensor holds it)"}
        for op in graph.operators for ti in op.outputs if ti >= 0 and ti not in held
    ]
    return infos, folded


def differing(tensors: list[TensorInfo], ref: dict[int, np.ndarray], got: dict[int, np.ndarray]) -> list[int]:
    """Positions in `tensors` whose compiled values differ from TFLite Micro's, element by element
    (a missing or differently sized tensor differs)."""
    bad = []
    for k, info in enumerate(tensors):
        a, b = ref[info.tensor], got.get(info.tensor)
        if b is None or a.shape != b.shape or not np.array_equal(a, b):
            bad.append(k)
    return bad


def first_difference(info: TensorInfo, a: np.ndarray, b: np.ndarray | None) -> dict[str, Any]:
    """Where one tensor differs: its first differing element and how many differ."""
    where = {"layer": info.layer, "op_index": info.op_index, "op": info.op, "tensor": info.tensor,
             "name": info.name}
    if b is None or a.shape != b.shape:
        return {**where, "element": None, "expected": None, "got": None, "differing_elements": None,
                "note": f"{0 if b is None else b.size} values instead of {a.size}"}
    diff = np.nonzero(a != b)[0]
    j = int(diff[0])
    return {**where, "element": j, "expected": int(a[j]), "got": int(b[j]),
            "differing_elements": int(diff.size)}


# ---- results ---------------------------------------------------------------------------------------


@dataclass
class TargetResult:
    """One target's comparison: per input kind [inputs, inputs with any difference], per compared
    tensor the inputs where it differs, the model output and the streaming form's scores."""

    target: str
    kinds: dict[str, list[int]] = field(default_factory=dict)
    tensor_bad: list[int] = field(default_factory=list)
    output_bad: int = 0
    stream_bad: int | None = None
    first: dict[str, Any] | None = None
    seconds: float = 0.0

    @property
    def bad_inputs(self) -> int:
        return sum(bad for _, bad in self.kinds.values())

    @property
    def ok(self) -> bool:
        return self.bad_inputs == 0

    def as_dict(self, tensors: list[TensorInfo]) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "mismatched_inputs": self.bad_inputs,
            "by_kind": {k: {"inputs": n, "mismatched": bad} for k, (n, bad) in self.kinds.items()},
            "by_tensor": [{"layer": t.layer, "tensor": t.tensor, "mismatched_inputs": bad}
                          for t, bad in zip(tensors, self.tensor_bad, strict=True)],
            "output_mismatched_inputs": self.output_bad,
            "stream_mismatched_inputs": self.stream_bad,
            "first_mismatch": self.first,
            "seconds": round(self.seconds, 2),
        }


@dataclass
class VerifyResult:
    ok: bool
    n: int
    sources: list[str]  # the kind of each input
    mismatch: dict[str, Any] | None  # the first mismatch (target, input, tensor, element)
    notes: list[str]
    targets: list[str]
    results: list[TargetResult] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    tensors: list[TensorInfo] = field(default_factory=list)
    not_compared: list[dict[str, Any]] = field(default_factory=list)
    streaming: bool = False
    tflm_version: str | None = None
    model_sha256: str = ""
    source: str = ""
    seed: int = 0
    seconds: float = 0.0

    @property
    def target(self) -> str:
        return ", ".join(self.targets)

    def kind_counts(self) -> dict[str, int]:
        return {k: self.sources.count(k) for k in KINDS if k in self.sources}

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "targets": self.targets,
            "n": self.n,
            "inputs": self.kind_counts(),
            "edge_cases": [lab.split(":", 1)[1] for lab in self.labels if lab.startswith("edge:")],
            "seed": self.seed,
            "model": self.source,
            "model_sha256": self.model_sha256,
            "tflm_version": self.tflm_version,
            "tensors_compared": [t.as_dict() for t in self.tensors],
            "values_compared_per_input": sum(t.elements for t in self.tensors),
            "tensors_not_compared": self.not_compared,
            "streaming_form_compared": self.streaming,
            "results": {r.target: r.as_dict(self.tensors) for r in self.results},
            "mismatch": self.mismatch,
            "notes": self.notes,
            "seconds": round(self.seconds, 2),
        }


CHUNK = 64  # inputs whose TFLite Micro tensors are held at once


def default_jobs() -> int:
    """Copies of each program verify runs side by side: the CPUs, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


@dataclass
class _Outcome:
    """One input on one program: the compared tensors that differ (positions), the output, the
    streaming form's scores, and where the first differing tensor differs."""

    bad: list[int]
    output_bad: bool
    stream_bad: bool
    where: dict[str, Any] | None


@dataclass
class _Worker:
    target: str
    model: Any  # ModelRunner
    stream: Any  # StreamRunner or None

    def check(
        self, tensors: list[TensorInfo], values: np.ndarray,
        refs: dict[int, tuple[dict[int, np.ndarray], np.ndarray]], shard: Sequence[int],
    ) -> tuple[float, list[tuple[int, _Outcome]]]:
        """Run the inputs `shard` (indices into `values`); (seconds, the inputs that differ)."""
        t0 = time.perf_counter()
        found = []
        for i in shard:
            ref, ref_out = refs[i]
            inf = self.model.infer(values[i], dump=True)
            got = {t.tensor: inf.layer_outputs[t.layer] for t in tensors if t.layer in inf.layer_outputs}
            bad = differing(tensors, ref, got)
            out_bad = not np.array_equal(inf.output, ref_out)
            stream_bad = False
            if self.stream is not None:
                scores = _stream_scores(self.stream, values[i])
                stream_bad = scores is None or not np.array_equal(scores, ref_out)
            if bad or out_bad or stream_bad:
                first = tensors[bad[0]] if bad else None
                where = first_difference(first, ref[first.tensor], got.get(first.tensor)) if first else None
                found.append((i, _Outcome(bad, out_bad, stream_bad, where)))
        return time.perf_counter() - t0, found


def _record(res: TargetResult, tensors: list[TensorInfo], inputs: Inputs, i: int, o: _Outcome,
            streaming: bool) -> None:
    """Count input `i`'s differences on `res`'s target (inputs in order, so `first` is the first)."""
    for k in o.bad:
        res.tensor_bad[k] += 1
    res.output_bad += o.output_bad
    if res.stream_bad is not None:
        res.stream_bad += o.stream_bad
    res.kinds[inputs.kinds[i]][1] += 1
    if res.first is None:
        res.first = {"target": res.target, "input": i, "kind": inputs.kinds[i], "case": inputs.labels[i],
                     **(o.where or {"layer": None}), "output_differs": o.output_bad,
                     "stream_differs": o.stream_bad if streaming else None}


def _stream_scores(runner: Any, x: np.ndarray) -> np.ndarray | None:
    """The streaming form's scores for one input pushed frame by frame after a reset: exactly one
    inference, at the window's last frame, or None."""
    runner.reset()
    batch = runner.push(np.asarray(x, dtype=np.int8).reshape(runner.window_frames, -1))
    if len(batch.scores) != 1 or batch.scores[0].frames != runner.window_frames:
        return None
    return np.asarray(batch.scores[0].scores)


def verify(
    tflite: bytes,
    target: str | Sequence[str],
    n: int = DEFAULT_N,
    data: Path | None = None,
    seed: int = 0,
    build_dir: Path | None = None,
    source: str = "model.tflite",
    progress: bool = True,
    fast: bool = True,
    extra_make_args: tuple[str, ...] = (),
    features: np.ndarray | None = None,
    jobs: int | None = None,
) -> VerifyResult:
    """Compile `tflite`, build model_runner (and stream_runner for a streaming form) for each target
    and compare every compiled tensor with TFLite Micro's on `n` inputs (see EPILOG). `features`:
    real feature inputs to draw from instead of computing them from `data`. `jobs`: copies of each
    program run side by side (default: default_jobs())."""
    from tqdm import tqdm

    from ..cbuild import build_programs
    from ..errors import NanokwsError
    from ..paths import BUILD_DIR
    from ..versions import tool_versions
    from .compile import compile_model
    from .runner import ModelRunner
    from .stream_runner import StreamRunner
    from .tflite_reader import read_graph

    targets = list(dict.fromkeys([target] if isinstance(target, str) else target))
    if not targets or any(t not in TARGETS for t in targets):
        raise NanokwsError(f"targets must be among {', '.join(TARGETS)} (got {', '.join(targets) or 'none'})")
    if n < 1:
        raise NanokwsError("--n must be at least 1")
    start = time.perf_counter()
    sha = model_sha256(tflite)
    base = build_dir or BUILD_DIR / "verify" / sha[:12]
    result = compile_model(tflite, base / "model", source=source, measure_tflm=False, fast=fast)
    streaming = bool((result.report.get("streaming") or {}).get("generated"))
    programs = ["model_runner", *(["stream_runner"] if streaming else [])]
    exes = {t: build_programs(t, programs, base / "model", base / t, extra_make_args) for t in targets}
    graph = read_graph(tflite)
    inp = graph.tensors[graph.inputs[0]]
    zero_point = int(inp.zero_points[0]) if len(inp.zero_points) else 0
    notes: list[str] = []
    inputs = make_inputs(inp.shape, zero_point, n, seed, data, features, notes)
    tensors, not_compared = compared_tensors(graph, result.layers)
    from .tflm import AllTensors

    reference = AllTensors(tflite, [t.tensor for t in tensors])
    results = {t: TargetResult(t, {k: [inputs.kinds.count(k), 0] for k in KINDS if k in inputs.kinds},
                               [0] * len(tensors), stream_bad=0 if streaming else None) for t in targets}
    jobs = max(1, min(jobs or default_jobs(), len(inputs.values)))
    with ExitStack() as stack:
        # `jobs` copies of each program, each checking every jobs-th input of a chunk in its own
        # thread (the QEMU build's time is its UART: ~60 KB of layer outputs per input of the
        # shipped model, a byte at a time).
        workers = [
            _Worker(t, stack.enter_context(ModelRunner(exes[t]["model_runner"], t)),
                    stack.enter_context(StreamRunner(exes[t]["stream_runner"], t)) if streaming else None)
            for t in targets for _ in range(jobs)
        ]
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=len(workers)))
        bar = stack.enter_context(tqdm(total=len(inputs.values), desc=f"verify on {', '.join(targets)}",
                                       unit="input", disable=not progress))
        for begin in range(0, len(inputs.values), CHUNK):
            chunk = range(begin, min(begin + CHUNK, len(inputs.values)))
            refs = {i: reference.run(inputs.values[i]) for i in chunk}
            done = [pool.submit(w.check, tensors, inputs.values, refs, chunk[k % jobs :: jobs])
                    for k, w in enumerate(workers)]
            outcomes = list(zip(workers, (f.result() for f in done), strict=True))
            for t in targets:
                results[t].seconds += max(sec for w, (sec, _) in outcomes if w.target == t)
            found = [(i, w.target, o) for w, (_, bad) in outcomes for i, o in bad]
            for i, t, o in sorted(found, key=lambda r: r[0]):
                _record(results[t], tensors, inputs, i, o, streaming)
            bar.update(len(chunk))
    firsts = [results[t].first for t in targets if results[t].first is not None]
    return VerifyResult(
        ok=not firsts,
        n=len(inputs.values),
        sources=inputs.kinds,
        mismatch=firsts[0] if firsts else None,
        notes=notes,
        targets=targets,
        results=[results[t] for t in targets],
        labels=inputs.labels,
        tensors=tensors,
        not_compared=not_compared,
        streaming=streaming,
        tflm_version=tool_versions().get("tflite-micro"),
        model_sha256=sha,
        source=source,
        seed=seed,
        seconds=time.perf_counter() - start,
    )


# ---- report ----------------------------------------------------------------------------------------


def _kinds_text(kinds: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in kinds.items())


def report_lines(res: VerifyResult) -> list[str]:
    """The human-readable report: what was compared, then one line per target (and, on a mismatch,
    which tensors differ and the first differing element)."""
    values = sum(t.elements for t in res.tensors)
    stream = "; the streaming form's scores too" if res.streaming else ""
    lines = [
        f"{res.source} (sha256 {res.model_sha256[:16]}) against TFLite Micro {res.tflm_version}: "
        f"{res.n} inputs ({_kinds_text(res.kind_counts())}); {len(res.tensors)} tensors per input "
        f"(every layer output, {values} values){stream}"
    ]
    for t in res.not_compared:
        lines.append(f"  not compared: tensor {t['tensor']} '{t['name']}' (op {t['op_index']} {t['op']}): "
                     f"{t['why']}")
    for r in res.results:
        per_kind = ", ".join(f"{k} {n - bad}/{n}" for k, (n, bad) in r.kinds.items())
        if r.ok:
            lines.append(f"  {r.target}: every tensor equal on all {res.n} inputs ({per_kind}) "
                         f"[{r.seconds:.1f} s]")
            continue
        lines.append(f"  {r.target}: MISMATCH on {r.bad_inputs} of {res.n} inputs (equal: {per_kind}) "
                     f"[{r.seconds:.1f} s]")
        for t, bad in zip(res.tensors, r.tensor_bad, strict=True):
            if bad:
                lines.append(f"    layer {t.layer} (op {t.op_index} {t.op}, tensor {t.tensor} '{t.name}'): "
                             f"differs on {bad} inputs")
        if r.output_bad:
            lines.append(f"    model output: differs on {r.output_bad} inputs")
        if r.stream_bad:
            lines.append(f"    streaming form's scores: differ on {r.stream_bad} inputs")
        m = r.first or {}
        at = f"    first: input {m.get('input')} ({m.get('case')})"
        if m.get("element") is not None:
            lines.append(f"{at}, layer {m['layer']} (op {m['op_index']} {m['op']}), element {m['element']}: "
                         f"expected {m['expected']}, got {m['got']} "
                         f"({m['differing_elements']} elements differ)")
        elif m.get("layer") is not None:
            lines.append(f"{at}, layer {m['layer']} (op {m['op_index']} {m['op']}): {m.get('note')}")
        else:
            what = "the model output" if m.get("output_differs") else "the streaming form's scores"
            lines.append(f"{at}: every layer output equal, {what} differ")
    return lines


def run(args: argparse.Namespace) -> int:
    from ..errors import check_output_file

    if args.json:
        check_output_file(args.json, "--json")
    from .. import atomic
    from ..modelmeta import read_model_bytes

    tflite = read_model_bytes(args.model)
    targets = args.target or ["host"]
    res = verify(tflite, targets, args.n, args.data, args.seed, args.build_dir, source=args.model.name,
                 jobs=args.jobs)
    for note in res.notes:
        print(f"note: {note}")
    for line in report_lines(res):
        print(line)
    if args.json:
        command = ["nanokws", "verify", "--model", str(args.model)]
        command += [a for t in targets for a in ("--target", t)]
        command += ["--n", str(args.n), "--seed", str(args.seed)]
        command += ["--data", str(args.data)] if args.data else []
        atomic.write_json(args.json, {**res.as_dict(), "command": shlex.join(command)})
    kinds = _kinds_text(res.kind_counts())
    if res.ok:
        print(f"OK: {res.n} inputs ({kinds}), every tensor bit-exact with TFLite Micro on {res.target} "
              f"[{res.seconds:.1f} s]")
        return 0
    bad = ", ".join(f"{r.target} {r.bad_inputs}" for r in res.results if not r.ok)
    print(f"MISMATCH: inputs with a differing tensor: {bad} (of {res.n})")
    return 1
