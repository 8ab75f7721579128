"""The comparison from start to end, and its two hooks in `nanokws bench`: check the trees and the
cross-compiler before the long bench (`check`), then build, run and report (`run`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...errors import NanokwsError
from ...modelmeta import model_sha256
from ...qemu import QEMU_CYCLE_UNIT
from ..tflite_reader import read_graph
from .build import VARIANT_LABELS, VARIANTS, build_runners
from .measure import Measured, bench_inputs, measure_nanokws, measure_tflm
from .report import comparison_report, format_table
from .toolchain import Flags, compiler_version, firmware_arch, require_cxx
from .trees import Source, find_trees, prepare_sources


def compare(
    tflite: bytes,
    tflm_sources_dir: Path,
    runs: int = 3,
    opt: str = "O2",
    float_abi: str = "hard",
    fast: bool = True,
    source: str = "model.tflite",
    progress: bool = True,
    prepared: dict[str, Source] | None = None,
) -> dict[str, Any]:
    """Build TFLite Micro (reference and CMSIS-NN) from the trees in `tflm_sources_dir`, run both and
    the compiled model under QEMU on the same inputs; the `tflm_compare` report."""
    if opt not in ("O2", "Os") or float_abi not in ("hard", "soft"):
        raise NanokwsError(f"unsupported build -{opt} -mfloat-abi={float_abi}")
    cxx = require_cxx(float_abi)
    sources = prepared if prepared is not None else prepare_sources(tflm_sources_dir)
    flags = Flags(opt, float_abi, firmware_arch(float_abi))
    graph = read_graph(tflite)
    built = build_runners(sources, flags, cxx, tflite, [op.opcode for op in graph.operators], progress)

    notes: list[str] = []
    input_len = int(np.prod(graph.tensors[graph.inputs[0]].shape))
    inputs, kinds = bench_inputs(runs, input_len, notes)
    ours, compiled = measure_nanokws(
        tflite,
        inputs,
        built.folder / "models" / model_sha256(tflite)[:12] / "nanokws",
        opt,
        float_abi,
        fast,
        progress,
    )
    measured: dict[str, Measured] = {}
    for variant in VARIANTS:
        measured[variant] = measure_tflm(built.elfs[variant], inputs, VARIANT_LABELS[variant], progress)
        unit = measured[variant].extra["cycle_unit"]
        if unit != QEMU_CYCLE_UNIT or ours.extra["cycle_unit"] != QEMU_CYCLE_UNIT:
            raise NanokwsError(
                f"tflm_runner counts {unit}, model_runner {ours.extra['cycle_unit']}: not comparable"
            )
    return comparison_report(
        tflite=tflite,
        source=source,
        sources=sources,
        compiler=compiler_version(cxx),
        flags=flags,
        built=built,
        kinds=kinds,
        notes=notes,
        measured=measured,
        ours=ours,
        compiled=compiled,
        fast=fast,
    )


def _build_flags(args: Any) -> tuple[str, str]:
    """(opt, float ABI) of `nanokws bench`'s options, as bench itself reads them."""
    return ("Os", "soft") if args.board_flags else (args.opt, args.float_abi)


def check(args: Any) -> None:
    """Fail fast, before the long bench, when PATH, a tree or the C++ cross-compiler is missing."""
    find_trees(args.compare_tflm)
    require_cxx(_build_flags(args)[1])


def run(args: Any, tflite: bytes, result: dict[str, Any]) -> None:
    """`nanokws bench --compare-tflm`: add the comparison to the bench result `result` and print it."""
    opt, float_abi = _build_flags(args)
    c = compare(
        tflite,
        args.compare_tflm,
        runs=args.runs,
        opt=opt,
        float_abi=float_abi,
        fast=not args.reference_kernels,
        source=args.model.name,
    )
    ours, bench_said = (
        c["runtimes"]["nanokws"]["instructions_per_inference"],
        result.get("instructions_per_inference"),
    )
    if bench_said not in (None, ours):
        c["inputs"]["notes"].append(f"bench above measured {bench_said} instructions, this comparison {ours}")
    result["tflm_compare"] = c
    print()
    print(format_table(c))
