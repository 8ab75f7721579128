"""The DSP kernels build on toolchains whose <arm_acle.h> has no SIMD32 intrinsics and still take
the DSP path.

The Nano 33 BLE's PlatformIO toolchain is GCC 7.2.1, whose <arm_acle.h> lacks int16x2_t, __smlad,
__sxtb16, ... (they arrived in GCC 10). These tests simulate it as the board-check kit does: a stub
arm_acle.h (tests/fixtures/acle_stub/) first on the include path of today's arm-none-eabi-gcc. Every
firmware/lib/kernels/*.c must compile for the Cortex-M4F (hard and soft float ABI, -O2 and the
board's -Os) with the firmware's warnings as errors, and the disassembly of each DSP kernel must
hold its DSP instructions (SMLAD, SXTB16, SXTAB16, SMLABB, SMLATT), so a fallback to the portable
C loops fails too. The same runs under clang (--target=armv7em-none-eabi[hf]) where it is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from fixtures.capabilities import missing
from nanokws.cbuild import makefile_flags

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
KERNELS = FIRMWARE / "lib" / "kernels"
STUB = ROOT / "tests" / "fixtures" / "acle_stub"

GCC = shutil.which("arm-none-eabi-gcc")
OBJDUMP = shutil.which("arm-none-eabi-objdump")
CLANG = shutil.which("clang")

# firmware/Makefile's CSTD and WARN, and its Cortex-M4F ARCH with either float ABI (read from it).
CFLAGS = [*makefile_flags("CSTD"), *makefile_flags("WARN"), "-ffunction-sections"]
ARCH = [f for f in makefile_flags("ARCH") if not f.startswith("-mfloat-abi=")]
CLANG_TARGET = {"hard": "armv7em-none-eabihf", "soft": "armv7em-none-eabi"}

# What each kernel's DSP path must contain: (mnemonic, operand text it must include). The portable
# path has none of these sets complete (GCC does turn its int8 MACs into SMLABB, so SMLABB alone
# would prove nothing); the ROR #8 forms are the folded rotates the inner loops are counted with.
DSP_INSNS = {
    "nk_dot": [("smlad", ""), ("sxtb16", ""), ("sxtab16", ""), ("sxtab16", "ror #8")],
    "nk_gemm": [("smlad", ""), ("sxtb16", ""), ("sxtb16", "ror #8")],
    "nk_dwconv2d": [("smlad", "")],
    "nk_dwconv2d_fast": [("smlabb", ""), ("smlatt", ""), ("sxtb16", ""), ("sxtb16", "ror #8")],
}

INSN_RE = re.compile(r"^\s*[0-9a-f]+:\s+([a-z][a-z0-9.]*)\s*(.*)$")  # objdump -d --no-show-raw-insn


def _kernel_sources() -> list[Path]:
    sources = sorted(KERNELS.glob("*.c"))
    missing = set(DSP_INSNS) - {s.stem for s in sources}
    assert not missing, f"DSP kernels not found in {KERNELS}: {sorted(missing)}"
    return sources


def _include_flags() -> list[str]:
    # The stub first, so it shadows the toolchain's own <arm_acle.h>; then the firmware's lib dirs.
    libs = sorted(p for p in (FIRMWARE / "lib").iterdir() if p.is_dir())
    return [f"-I{STUB}", *(f"-I{p}" for p in libs)]


def _newlib_include_dirs() -> list[str]:
    """arm-none-eabi-gcc's system include dirs that hold the C library (<string.h>), for clang."""
    if GCC is None:
        return []
    out = subprocess.run([GCC, "-xc", "-E", "-v", "-"], input="", capture_output=True, text=True).stderr
    dirs, inside = [], False
    for line in out.splitlines():
        if line.startswith("#include <...> search starts here:"):
            inside = True
        elif line.startswith("End of search list."):
            break
        elif inside and (Path(line.strip()) / "string.h").is_file():
            dirs.append(line.strip())
    return dirs


def _compiler_cmd(compiler: str, abi: str, opt: str) -> list[str]:
    if compiler == "gcc":
        if GCC is None:
            missing("qemu", "arm-none-eabi-gcc not installed")
        return [GCC, *ARCH, f"-mfloat-abi={abi}", opt, *CFLAGS]
    if CLANG is None:
        pytest.skip("clang not installed")
    libc = _newlib_include_dirs()
    if not libc:
        pytest.skip("no arm-none-eabi C library headers for clang (they come with arm-none-eabi-gcc)")
    cmd = [CLANG, f"--target={CLANG_TARGET[abi]}", *ARCH, f"-mfloat-abi={abi}", opt, *CFLAGS]
    cmd += [f"-isystem{d}" for d in libc]
    probe = subprocess.run(
        [*cmd, "-xc", "-c", "-", "-o", "/dev/null"], input="int nk_probe;\n", capture_output=True, text=True
    )
    if probe.returncode != 0:
        pytest.skip(f"clang cannot build for {CLANG_TARGET[abi]}: {probe.stderr.strip()[:200]}")
    return cmd


def _compile(cmd: list[str], src: Path, obj: Path, extra: tuple[str, ...] = ()) -> None:
    res = subprocess.run(
        [*cmd, *extra, *_include_flags(), "-c", str(src), "-o", str(obj)], capture_output=True, text=True
    )
    assert res.returncode == 0, f"{src.name} failed to compile:\n{' '.join(res.args)}\n{res.stderr}"


def _instructions(obj: Path) -> list[tuple[str, str]]:
    """(mnemonic, operands) of every instruction in obj's code, as arm-none-eabi-objdump -d prints."""
    if OBJDUMP is None:
        missing("qemu", "arm-none-eabi-objdump not installed")
    text = subprocess.run(
        [OBJDUMP, "-d", "--no-show-raw-insn", str(obj)], capture_output=True, text=True, check=True
    ).stdout
    insns = []
    for line in text.splitlines():
        m = INSN_RE.match(line)
        if m:
            insns.append((m.group(1).split(".")[0], m.group(2).split(";")[0].split("@")[0].strip()))
    return insns


def _missing_dsp(insns: list[tuple[str, str]], want: list[tuple[str, str]]) -> list[str]:
    return [f"{mn} {ops}".strip() for mn, ops in want if not any(m == mn and ops in o for m, o in insns)]


def test_stub_hides_simd32_intrinsics(tmp_path):
    """The stub really is a GCC 7 <arm_acle.h>: code that needs the intrinsics does not build."""
    cmd = _compiler_cmd("gcc", "hard", "-O2")
    src = tmp_path / "uses_acle.c"
    src.write_text(
        "#include <arm_acle.h>\n"
        "int16x2_t nk_t(int16x2_t a, int16x2_t b, int32_t c) { return __smlad(a, b, c); }\n"
    )
    res = subprocess.run(
        [*cmd, f"-I{STUB}", "-c", str(src), "-o", str(tmp_path / "uses_acle.o")],
        capture_output=True,
        text=True,
    )
    assert res.returncode != 0, "the stub arm_acle.h did not hide the SIMD32 intrinsics"
    assert "int16x2_t" in res.stderr


@pytest.mark.parametrize("opt", ["-O2", "-Os"])
@pytest.mark.parametrize("abi", ["hard", "soft"])
@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_kernels_build_without_acle_and_use_dsp(tmp_path, compiler, abi, opt):
    cmd = _compiler_cmd(compiler, abi, opt)
    failures = []
    for src in _kernel_sources():
        obj = tmp_path / f"{src.stem}.o"
        _compile(cmd, src, obj)
        if src.stem in DSP_INSNS:
            insns = _instructions(obj)
            assert insns, f"no instructions disassembled from {obj.name}"
            missing = _missing_dsp(insns, DSP_INSNS[src.stem])
            if missing:
                failures.append(f"{src.name}: no {', '.join(missing)}")
    assert not failures, f"DSP path not taken ({compiler} {abi} {opt}): " + "; ".join(failures)


def test_dsp_check_fails_on_portable_path(tmp_path):
    """The instruction check tells the paths apart: with NK_KERNELS_NO_DSP every kernel fails it."""
    cmd = _compiler_cmd("gcc", "hard", "-O2")
    for stem, want in DSP_INSNS.items():
        obj = tmp_path / f"{stem}.o"
        _compile(cmd, KERNELS / f"{stem}.c", obj, ("-DNK_KERNELS_NO_DSP",))
        insns = _instructions(obj)
        assert insns, f"no instructions disassembled from {obj.name}"
        assert _missing_dsp(insns, want), f"{stem}.c's portable path passed the DSP check"
