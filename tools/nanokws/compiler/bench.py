"""`nanokws bench`: the compiled model under QEMU: instructions per inference and per layer, MACs
per instruction, flash and RAM of the firmware ELF, next to TFLite Micro's arena."""

from __future__ import annotations

import argparse
import hashlib
import subprocess
from pathlib import Path
from typing import Any

EPILOG = """\
examples:
  nanokws bench --model runs/tiny/model.tflite --target qemu
  nanokws bench --model runs/ds_cnn/model.tflite --target qemu --runs 5 --json runs/ds_cnn/bench.json
  nanokws bench --model firmware/model/model.tflite --runs 1 --reference-kernels   # the slow baseline

Counts come from QEMU mps2-an386 under `-icount shift=0`: SysTick ticks x 40 = guest instructions
(resolution 40). These are EMULATOR INSTRUCTION COUNTS, not Cortex-M4 cycles: loads, multiplies
and branches take more than one cycle on a real M4 (and flash wait states add more), so measure
cycles on the board. Flash = .text + .rodata + .data (+ .ARM.exidx), RAM = .data + .bss + stack of
the model_runner ELF (program + kernels + model + runtime library).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("--model", required=True, type=Path, help="full-int8 .tflite file")
    parser.add_argument("--target", choices=("qemu",), default="qemu", help="only qemu (default)")
    parser.add_argument(
        "--runs", type=int, default=3, help="inferences to run; the median is reported (default: 3)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument(
        "--reference-kernels",
        action="store_true",
        help="compile with the reference kernels only, to compare with the fast ones (default: fast)",
    )
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=None,
        help="where to put the compiled C and the build (default: build/bench/<model hash>)",
    )


def elf_sections(elf: Path) -> dict[str, int]:
    """Section sizes from `arm-none-eabi-size -A`."""
    from ..cbuild import require_tool

    out = subprocess.run(
        [require_tool("arm-none-eabi-size"), "-A", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    sizes: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sizes


def bench(
    tflite: bytes,
    runs: int = 3,
    build_dir: Path | None = None,
    source: str = "model.tflite",
    fast: bool = True,
    measure_tflm: bool = True,
) -> dict[str, Any]:
    """Instructions per inference and per layer under QEMU. `fast=False` benches the reference
    kernels only (the "before" column of docs/performance.md)."""
    import numpy as np

    from ..cbuild import build_programs
    from ..paths import BUILD_DIR
    from ..qemu import INSTRUCTIONS_PER_TICK
    from .compile import compile_model
    from .runner import ModelRunner

    base = build_dir or BUILD_DIR / "bench" / hashlib.sha256(tflite).hexdigest()[:12]
    comp = compile_model(tflite, base / "model", source=source, measure_tflm=measure_tflm, fast=fast)
    elf = build_programs("qemu", ["model_runner"], base / "model", base / "qemu")["model_runner"]
    rep = comp.report
    rng = np.random.default_rng(0)
    totals, per_layer = [], []
    with ModelRunner(elf, "qemu") as runner:
        for _ in range(max(1, runs)):
            inf = runner.infer(rng.integers(-128, 128, size=rep["input_len"], dtype=np.int8))
            totals.append(inf.total_cycles)
            per_layer.append(inf.layer_cycles)
    ticks = int(np.median(totals))
    layer_ticks = [int(v) for v in np.median(np.array(per_layer), axis=0)]
    sec = elf_sections(elf)
    flash = sum(sec.get(s, 0) for s in (".text", ".rodata", ".data", ".ARM.exidx"))
    ram = sec.get(".data", 0) + sec.get(".bss", 0) + sec.get(".stack", 0)
    instr = ticks * INSTRUCTIONS_PER_TICK
    layers = []
    for row, t in zip(rep["layers"], layer_ticks, strict=True):
        n = t * INSTRUCTIONS_PER_TICK
        layers.append(
            {
                **{k: row[k] for k in ("layer", "op", "output_shape", "macs")},
                "instructions": n,
                "macs_per_instruction": round(row["macs"] / n, 3) if n and row["macs"] else None,
            }
        )
    return {
        "unit": "QEMU guest instructions (-icount shift=0, SysTick ticks x 40); NOT Cortex-M4 cycles",
        "instructions_per_inference": instr,
        "total_macs": rep["total_macs"],
        "macs_per_instruction": round(rep["total_macs"] / instr, 3) if instr else None,
        "layers": layers,
        "flash_bytes": flash,
        "ram_bytes": ram,
        "sections": sec,
        "weights_flash_bytes": rep["weights_flash_bytes"],
        "arena_bytes": rep["arena_bytes"],
        "tflm_arena_total_bytes": rep.get("tflm_arena_total_bytes"),
        "tflm_arena_head_bytes": rep.get("tflm_arena_head_bytes"),
        "runs": len(totals),
    }


def format_table(r: dict[str, Any]) -> str:
    lines = [f"{'layer':>5} {'op':<18} {'MACs':>10} {'instructions':>13} {'MACs/instr':>10}"]
    for row in r["layers"]:
        mpi = f"{row['macs_per_instruction']:.3f}" if row["macs_per_instruction"] else "-"
        lines.append(
            f"{row['layer']:>5} {row['op']:<18} {row['macs']:>10} {row['instructions']:>13} {mpi:>10}"
        )
    lines += [
        f"total: {r['instructions_per_inference']} instructions per inference, {r['total_macs']} MACs, "
        f"{r['macs_per_instruction']} MACs/instruction",
        f"ELF: flash {r['flash_bytes']} B (.text+.rodata+.data), RAM {r['ram_bytes']} B (.data+.bss+stack)",
        f"arena: ours {r['arena_bytes']} B, TFLite Micro {r['tflm_arena_total_bytes']} B total "
        f"({r['tflm_arena_head_bytes']} B tensors/scratch, 64-bit host build)",
        "NOTE: emulator instruction counts (QEMU -icount), not Cortex-M4 cycles; cycles need the real board.",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from .. import atomic
    from ..modelmeta import read_model_bytes

    tflite = read_model_bytes(args.model)
    r = bench(tflite, args.runs, args.build_dir, source=args.model.name, fast=not args.reference_kernels)
    print(format_table(r))
    if args.json:
        atomic.write_json(args.json, r)
    return 0
