"""The cross-compiler and the flags a TFLite Micro build uses.

TFLite Micro keeps its own defines (what its Makefile sets for a release build with logs); code
generation (-O, -mcpu, -mfpu, -mfloat-abi) is firmware/Makefile's qemu target's, read from that
Makefile, so that TFLite Micro and the compiled model are built alike.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from ...cbuild import makefile_flags, require_tool
from ...errors import NanokwsError

APT_HINT = (
    "install it with: sudo apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi "
    "libstdc++-arm-none-eabi-newlib qemu-system-arm"
)
# TFLite Micro's own build settings that this build keeps (Makefile BUILD_TYPE=release_with_logs,
# cortex_m_generic_makefile.inc, OPTIMIZE_KERNELS_FOR=KERNELS_OPTIMIZED_FOR_SPEED); code generation
# (-O, -mcpu, -mfpu, -mfloat-abi) is ours instead, as firmware/Makefile's qemu target has it.
TFLM_DEFINES = (
    "-DTF_LITE_STATIC_MEMORY",
    "-DTF_LITE_DISABLE_X86_NEON",
    "-DTF_LITE_MCU_DEBUG_LOG",
    "-DKERNELS_OPTIMIZED_FOR_SPEED",
    "-DNDEBUG",
)
CMSIS_NN_DEFINES = ("-DCMSIS_NN", "-DARM_NN_ENABLE_F16=0", "-DARM_NN_ENABLE_F32=0")
TFLM_CXX = ("-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics")
TFLM_C = ("-std=c17",)
CODEGEN = (
    "-ffunction-sections",
    "-fdata-sections",
    "-fno-unwind-tables",
    "-fno-asynchronous-unwind-tables",
    "-fmessage-length=0",
)
THIRD_PARTY_WARNINGS = ("-w",)  # their code, their warnings: not ours to police
RUNNER_WARNINGS = ("-Wall", "-Wextra", "-Werror", "-Wshadow")


def platform_c_flags() -> list[str]:
    """firmware/Makefile's flags for our QEMU platform C: its CSTD and WARN, and the qemu target's define."""
    return [*makefile_flags("CSTD"), *makefile_flags("WARN"), "-DNK_TARGET_QEMU=1"]


def firmware_arch(float_abi: str) -> list[str]:
    """firmware/Makefile's qemu ARCH flags, with `float_abi`."""
    flags = [f for f in makefile_flags("ARCH") if not f.startswith("-mfloat-abi=")]
    return [*flags, f"-mfloat-abi={float_abi}"]


@dataclass
class Flags:
    """The command-line flags of one build (-`opt`, `float_abi`, firmware/Makefile's `arch`), for
    each kind of file it compiles: TFLite Micro's and CMSIS-NN's own (their warnings off), our
    runner (the same code generation, our warnings), our QEMU platform C (as firmware/Makefile
    builds it) and the link. `as_dict` is part of the cache key: the same flags, the same objects."""

    opt: str
    float_abi: str
    arch: list[str]

    def tflm(self, variant: str, c: bool) -> list[str]:
        defines = [*TFLM_DEFINES, *(CMSIS_NN_DEFINES if variant == "cmsis_nn" else ())]
        return [
            *(TFLM_C if c else TFLM_CXX),
            f"-{self.opt}",
            *self.arch,
            *CODEGEN,
            *defines,
            *THIRD_PARTY_WARNINGS,
        ]

    def runner(self, variant: str) -> list[str]:
        return [*self.tflm(variant, c=False)[: -len(THIRD_PARTY_WARNINGS)], *RUNNER_WARNINGS]

    def platform(self) -> list[str]:
        return [*platform_c_flags(), f"-{self.opt}", *self.arch, "-ffunction-sections", "-fdata-sections"]

    def link(self, ld_script: Path, map_file: Path) -> list[str]:
        return [
            *self.arch,
            "-nostartfiles",
            "--specs=nano.specs",
            "--specs=nosys.specs",
            "-Wl,--gc-sections",
            f"-T{ld_script}",
            f"-Wl,-Map={map_file}",
        ]

    def as_dict(self) -> dict[str, str]:
        return {
            "opt": f"-{self.opt}",
            "float_abi": self.float_abi,
            "tflm_cxx": " ".join(self.tflm("reference", c=False)),
            "tflm_c": " ".join(self.tflm("reference", c=True)),
            "cmsis_nn_extra": " ".join(CMSIS_NN_DEFINES),
            "runner_cxx": " ".join(self.runner("reference")),
            "platform_c": " ".join(self.platform()),
            "link": " ".join(self.link(Path("firmware/targets/qemu/mps2_an386.ld"), Path("tflm_runner.map"))),
        }


def compiler_version(cxx: str) -> str:
    """The first line of `cxx --version`: the cache key and the report name the compiler by it."""
    out = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0].strip() if out else cxx


def require_cxx(float_abi: str) -> str:
    """arm-none-eabi-g++ with its newlib C++ library, or a NanokwsError saying how to get them."""
    require_tool("arm-none-eabi-gcc", APT_HINT)
    cxx = require_tool("arm-none-eabi-g++", APT_HINT)
    lib = subprocess.run(
        [cxx, *firmware_arch(float_abi), "--specs=nano.specs", "-print-file-name=libstdc++_nano.a"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not lib or not Path(lib).is_file():
        raise NanokwsError(f"arm-none-eabi-g++ has no C++ library for newlib (libstdc++_nano.a); {APT_HINT}")
    return cxx


def gcc_beside(cxx: str) -> str:
    """The C compiler of the same toolchain as `cxx` (arm-none-eabi-g++ -> arm-none-eabi-gcc)."""
    return str(Path(cxx).with_name(Path(cxx).name.replace("g++", "gcc")))
