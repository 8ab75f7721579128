"""Which TFLite Micro and CMSIS-NN files a build compiles, and which operators its runner
registers, read from the TFLite Micro tree as its own Makefile reads them.

TFLite Micro's Makefile lists its library in `sources.inc` (MICROLITE_CC_SRCS,
MICROLITE_CC_KERNEL_SRCS), swaps in a target's files of the same name (`specialize_files.py`:
cortex_m_generic's debug_log.cc; kernels/cmsis_nn/*.cc for OPTIMIZED_KERNEL_DIR=cmsis_nn) and adds
CMSIS-NN's int8 sources (`ext_libs/cmsis_nn.inc`). The model's operators come from
`micro_mutable_op_resolver.h`, so that only their kernels are compiled.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from ...errors import NanokwsError
from .trees import MAKE_DIR

# ----------------------------------------------------------------------------------------------
# TFLite Micro's library, as its Makefile lists it


def _make_list(text: str, var: str) -> list[str]:
    """The `$(TENSORFLOW_ROOT)`-relative paths of a `VAR := \\` block in a TFLM makefile."""
    m = re.search(rf"^{var}\s*:=\s*\\\n((?:.*\\\n)*.*)$", text, re.MULTILINE)
    if not m:
        return []
    return [
        p.replace("$(TENSORFLOW_ROOT)", "") for p in re.findall(r"\$\(TENSORFLOW_ROOT\)(\S+)", m.group(1))
    ]


def tflm_sources(tflm: Path, variant: str, cmsis_nn: Path) -> list[Path]:
    """TFLite Micro's library sources for `variant` ("reference" or "cmsis_nn"), as its Makefile's
    MICROLITE_CC_SRCS + MICROLITE_CC_KERNEL_SRCS (without the signal kernels), specialised for
    cortex_m_generic's debug_log.cc (its log callback) and, for cmsis_nn, by kernels/cmsis_nn/ and
    with CMSIS-NN's int8 sources."""
    sources_inc = tflm / MAKE_DIR / "sources.inc"
    if not sources_inc.is_file():
        raise NanokwsError(
            f"--compare-tflm: {sources_inc} is missing: not a TFLite Micro tree this build knows"
        )
    text = sources_inc.read_text()
    micro = tflm / "tensorflow" / "lite" / "micro"
    base = [
        p
        for d in ("", "arena_allocator", "memory_planner", "tflite_bridge")
        for p in sorted((micro / d).glob("*.cc"))
    ]
    for p in sorted((tflm / "tensorflow").rglob("*")):
        rel = p.relative_to(tflm).as_posix()
        if p.suffix in (".cc", ".c") and not rel.startswith(
            ("tensorflow/lite/experimental/", "tensorflow/lite/micro/")
        ):
            base.append(p)
    excluded = {tflm / r for r in _make_list(text, "MICROLITE_TEST_SRCS")} | {
        tflm / "tensorflow/lite/array.cc"
    }
    core = [p for p in base if p not in excluded and not p.name.endswith(("_test.cc", "benchmark.cc"))]
    generic = micro / "cortex_m_generic" / "debug_log.cc"
    core = [generic if p == micro / "debug_log.cc" and generic.is_file() else p for p in core]
    kernels = [tflm / r for r in _make_list(text, "MICROLITE_CC_KERNEL_SRCS")]
    if not kernels:
        raise NanokwsError(f"--compare-tflm: no MICROLITE_CC_KERNEL_SRCS in {sources_inc}")
    if variant == "cmsis_nn":
        special = micro / "kernels" / "cmsis_nn"
        names = {p.name for p in special.glob("*.cc")}
        if not names:
            raise NanokwsError(f"--compare-tflm: {special} has no kernels")
        kernels = [special / p.name if p.name in names else p for p in kernels]
        cmsis = sorted(
            p
            for p in (cmsis_nn / "Source").rglob("*.c")
            if not p.name.endswith(("_f16.c", "_f32.c")) and p.name != "arm_nntables_flt.c"
        )
        kernels += cmsis
    return core + kernels


# ----------------------------------------------------------------------------------------------
# The model's operators


def op_resolver_map(tflm: Path) -> dict[str, tuple[str, list[str]]]:
    """BuiltinOperator name -> (MicroMutableOpResolver method, the Register_* functions it calls by
    default), read from micro_mutable_op_resolver.h."""
    header = tflm / "tensorflow" / "lite" / "micro" / "micro_mutable_op_resolver.h"
    text = header.read_text() if header.is_file() else ""
    found: dict[str, tuple[str, list[str]]] = {}
    for m in re.finditer(r"TfLiteStatus\s+(Add\w+)\s*\(([^{]*)\{(.*?)\n\s*\}", text, re.DOTALL):
        op = re.search(r"AddBuiltin\(\s*BuiltinOperator_(\w+)", m.group(3))
        if op:
            found[op.group(1)] = (
                m.group(1),
                sorted(set(re.findall(r"\b(Register_\w+)\s*\(", m.group(2) + m.group(3)))),
            )
    return found


def ops_header(opcodes: Sequence[str], resolver: dict[str, tuple[str, list[str]]]) -> str:
    """tflm_ops.h for the runner: the resolver's size and its Add calls, in a stable order."""
    ops = sorted(set(opcodes))
    missing = [op for op in ops if op not in resolver]
    if missing:
        raise NanokwsError(
            f"TFLite Micro's MicroMutableOpResolver has no Add method for {', '.join(missing)}"
        )
    calls = "".join(
        f"        if ((status) == kTfLiteOk) {{ (status) = (resolver).{resolver[op][0]}(); }} \\\n"
        for op in ops
    )
    return (
        "/* Generated by nanokws bench --compare-tflm: the model's builtin operators. */\n"
        "#ifndef NK_TFLM_OPS_H\n#define NK_TFLM_OPS_H\n"
        f"#define NK_TFLM_NUM_OPS {len(ops)}\n"
        f"#define NK_TFLM_ADD_OPS(resolver, status) \\\n    do {{ \\\n{calls}    }} while (0)\n"
        "#endif\n"
    )


_REGISTRATION = re.compile(r"TFLMRegistration\s*\*?\s*(Register_\w+)\s*\(\s*\)\s*\{")


def select_kernels(srcs: Sequence[Path], registrations: set[str]) -> list[Path]:
    """Of TFLite Micro's sources, skip the kernel files that only register operators the model does
    not use (each takes seconds to compile and the linker would drop it anyway): a kernel file stays
    when it defines one of `registrations`, or defines none (a helper), except `<op>_common.cc`
    when `<op>.cc` is skipped. A link that still misses a symbol falls back to every file."""
    kernels_dir = ("tensorflow", "lite", "micro", "kernels")
    defined: dict[Path, set[str]] = {}
    for p in srcs:
        if (
            p.suffix == ".cc"
            and kernels_dir == p.parts[-5:-1]
            or p.parent.name == "cmsis_nn"
            and p.suffix == ".cc"
        ):
            defined[p] = set(_REGISTRATION.findall(p.read_text(errors="replace")))
    keep_names = {p.name for p, regs in defined.items() if regs & registrations}
    out = []
    for p in srcs:
        regs = defined.get(p)
        if regs is None or regs & registrations:
            out.append(p)
        elif not regs:
            stem = p.name.removesuffix("_common.cc")
            if (
                p.name == stem
                or f"{stem}.cc" in keep_names
                or not any(q.name == f"{stem}.cc" for q in defined)
            ):
                out.append(p)
    return out
