"""The comparison's report: the `tflm_compare` JSON section (every count, size, source and flag it
rests on) and the ratio table `nanokws bench --compare-tflm` prints from it.

Counts are QEMU guest instructions, never Cortex-M4 cycles; the board figure is the 64 MHz lower
bound (one instruction per cycle), and QEMU's virtual clock is never shown as board time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...modelmeta import model_sha256
from ...qemu import BOARD_CPU_HZ, BOARD_LOWER_BOUND, INSTRUCTIONS_PER_TICK, board_lower_bound_ms
from ..bench import elf_sections, flash_bytes
from .build import VARIANTS, Built
from .compile_jobs import JOBS
from .folders import shown
from .measure import Measured, median_instructions
from .toolchain import Flags
from .trees import Source

RUNTIME_KEYS = {"reference": "tflm_reference", "cmsis_nn": "tflm_cmsis_nn"}


def _runtime(m: Measured, kinds: list[str], elf: Path, excluded: int, excluded_what: str) -> dict[str, Any]:
    """The counts and sizes every runtime reports alike; flash also without the model's own bytes
    (the .tflite for TFLite Micro, the compiled weights for ours), which is what the runtimes cost."""
    instr = median_instructions(m.ticks, kinds, "random") or 0
    sec = elf_sections(elf)
    return {
        "instructions_per_inference": instr,
        "instructions_per_inference_features": median_instructions(m.ticks, kinds, "features"),
        "instructions_each_input": [t * INSTRUCTIONS_PER_TICK for t in m.ticks],
        "board_ms_lower_bound": round(board_lower_bound_ms(instr), 3),
        "flash_bytes": flash_bytes(sec),
        "flash_bytes_without_model": flash_bytes(sec) - excluded,
        "flash_excludes": excluded_what,
        "sections": sec,
    }


def comparison_report(
    *,
    tflite: bytes,
    source: str,
    sources: dict[str, Source],
    compiler: str,
    flags: Flags,
    built: Built,
    kinds: list[str],
    notes: list[str],
    measured: dict[str, Measured],
    ours: Measured,
    compiled: dict[str, Any],
    fast: bool,
) -> dict[str, Any]:
    """The `tflm_compare` section: TFLite Micro's two builds (`measured`) and the compiled model
    (`ours`, with its compile report `compiled`) on the same inputs (`kinds`), and what they rest on."""
    runtimes: dict[str, dict[str, Any]] = {}
    for variant in VARIANTS:
        m = measured[variant]
        row = _runtime(
            m, kinds, built.elfs[variant], len(tflite), f"the .tflite flatbuffer ({len(tflite)} B)"
        )
        diff = m.outputs != ours.outputs
        row.update(
            {
                "arena_used_bytes": m.extra["arena_used_bytes"],
                "arena_size_bytes": m.extra["arena_size_bytes"],
                "init_instructions": m.extra["init_ticks"] * INSTRUCTIONS_PER_TICK,
                "outputs_equal_to_nanokws": bool(not diff.any()),
                "mismatched_inputs": int(diff.any(axis=1).sum()),
                "mismatched_elements": int(diff.sum()),
                "elf": shown(built.elfs[variant]),
            }
        )
        runtimes[RUNTIME_KEYS[variant]] = row
    nk = _runtime(
        ours,
        kinds,
        ours.extra["elf"],
        int(compiled["weights_flash_bytes"]),
        f"the compiled weights ({compiled['weights_flash_bytes']} B)",
    )
    nk["arena_bytes"] = compiled["arena_bytes"]
    nk["kernels"] = "fast" if fast else "reference"
    nk["elf"] = shown(ours.extra["elf"])
    runtimes["nanokws"] = nk
    ref_i = runtimes["tflm_reference"]["instructions_per_inference"]
    cmsis_i = runtimes["tflm_cmsis_nn"]["instructions_per_inference"]
    ours_i = nk["instructions_per_inference"]
    return {
        "unit": "QEMU guest instructions per inference (-icount shift=0, SysTick ticks x 40, median over the "
        "random inputs, as nanokws bench); NOT Cortex-M4 cycles",
        "model": source,
        "model_sha256": model_sha256(tflite),
        "sources": {n: s.as_dict() for n, s in sources.items()},
        "compiler": compiler,
        "flags": flags.as_dict(),
        "build": {
            "cache": shown(built.folder),
            "key": built.key,
            "objects_compiled": built.objects_compiled,
            "library_sources": built.kernel_selection,
            "seconds": round(built.seconds, 1),
            "jobs": JOBS,
        },
        "inputs": {
            "random": kinds.count("random"),
            "features": kinds.count("features"),
            "random_from": "numpy default_rng(0), one int8 input at a time (as nanokws bench)",
            "features_from": "the shared Speech Commands clips through the device frontend (as nanokws "
            "verify)",
            "notes": notes,
        },
        "runtimes": runtimes,
        "ratios": {
            "nanokws_vs_tflm_cmsis_nn": round(ours_i / cmsis_i, 4) if cmsis_i else None,
            "nanokws_vs_tflm_reference": round(ours_i / ref_i, 4) if ref_i else None,
            "tflm_cmsis_nn_vs_reference": round(cmsis_i / ref_i, 4) if ref_i else None,
        },
        "outputs_equal": all(runtimes[k]["outputs_equal_to_nanokws"] for k in RUNTIME_KEYS.values()),
        "board": {
            "cpu_hz": BOARD_CPU_HZ,
            "means": f"Nano 33 BLE at 64 MHz, {BOARD_LOWER_BOUND}: instructions / 64e6 (real cycles per "
            "instruction are >= 1); QEMU's virtual clock is not board time",
        },
        "arena_note": "TFLite Micro: interpreter.arena_used_bytes() on the 32-bit target (tensors, scratch "
        "and its own structures); nanokws: the compiled model's static arena (NK_MODEL_ARENA_BYTES)",
    }


def _n(v: int | None) -> str:
    """A count for the table: thousands separated, "-" when there is none."""
    return "-" if v is None else f"{v:,}"


def _source_line(name: str, s: dict[str, Any]) -> str:
    """One tree for the "sources:" line: its commit, whether that is TFLite Micro's pin, and notes."""
    commit = (s.get("commit") or "no git")[:12]
    pin = s.get("pin")
    text = f"{name} {commit}"
    if pin and s.get("pinned"):
        text += f" (= pin {pin})" if not str(commit).startswith(pin[:12]) else " (pinned)"
    if s.get("tflm_patch"):
        text += f", {s['tflm_patch'].split(': ', 1)[-1]} TFLM patch"
    if s.get("note"):
        text += f" [{s['note']}]"
    return text


def format_table(c: dict[str, Any]) -> str:
    """The ratio table and what it rests on."""
    rt = c["runtimes"]
    ref, cm, nk = rt["tflm_reference"], rt["tflm_cmsis_nn"], rt["nanokws"]
    ratio = c["ratios"]["nanokws_vs_tflm_cmsis_nn"]
    inputs = c["inputs"]
    count = [_n(r["instructions_per_inference"]) for r in (ref, cm, nk)]
    ms = [f"{r['board_ms_lower_bound']:.1f}" for r in (ref, cm, nk)]
    lines = [
        "TFLite Micro side by side: QEMU mps2-an386 guest instructions per inference (median of "
        f"{inputs['random']} random inputs, as nanokws bench; not Cortex-M4 cycles)",
        "| model | TFLM reference | TFLM + CMSIS-NN | nanokws today | nanokws / CMSIS-NN |",
        "|---|---|---|---|---|",
        f"| {c['model']} | {' | '.join(count)} | {'-' if ratio is None else f'{ratio:.3f}'} |",
        f"Nano 33 BLE at 64 MHz, at least (1 instruction/cycle): TFLM reference >= {ms[0]} ms, "
        f"TFLM + CMSIS-NN >= {ms[1]} ms, nanokws >= {ms[2]} ms per inference",
    ]
    if inputs["features"]:
        feats = [_n(r["instructions_per_inference_features"]) for r in (ref, cm, nk)]
        lines.append(
            f"real features ({inputs['features']} inputs, median): TFLM reference {feats[0]}, "
            f"TFLM + CMSIS-NN {feats[1]}, nanokws {feats[2]}"
        )
    total = inputs["random"] + inputs["features"]
    for r, label in ((ref, "TFLM reference"), (cm, "TFLM + CMSIS-NN")):
        verdict = (
            "equal element by element"
            if r["outputs_equal_to_nanokws"]
            else f"DIFFER on {r['mismatched_inputs']} inputs ({r['mismatched_elements']} elements)"
        )
        lines.append(f"outputs, {label} vs nanokws on {total} inputs: {verdict}")
    build, flags = c["build"], c["flags"]
    lines += [
        f"arena: TFLM reference {_n(ref['arena_used_bytes'])} B, TFLM + CMSIS-NN "
        f"{_n(cm['arena_used_bytes'])} B (arena_used_bytes(), 32-bit target); nanokws "
        f"{_n(nk['arena_bytes'])} B",
        f"flash without the model: TFLM reference {_n(ref['flash_bytes_without_model'])} B, TFLM + CMSIS-NN "
        f"{_n(cm['flash_bytes_without_model'])} B (ELF .text+.rodata+.data minus the .tflite); nanokws "
        f"{_n(nk['flash_bytes_without_model'])} B (minus the compiled weights)",
        "TFLM set-up (interpreter + AllocateTensors, once at boot): reference "
        f"{_n(ref['init_instructions'])}, "
        f"CMSIS-NN {_n(cm['init_instructions'])} instructions",
        "sources: " + "; ".join(_source_line(n, s) for n, s in c["sources"].items()),
        f"built with {c['compiler']}, {flags['opt']} -mfloat-abi={flags['float_abi']} (firmware/Makefile's "
        "qemu "
        f"CPU flags); cache {build['cache']} ({build['objects_compiled']} objects compiled, "
        f"{build['seconds']:.0f} s)",
    ]
    lines += [f"note: {note}" for note in inputs["notes"]]
    return "\n".join(lines)
