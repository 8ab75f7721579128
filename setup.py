"""Build the Python extension from the same C sources the firmware compiles, and package the
firmware sources with nanokws so that an installed package (`pip install .`, a wheel) builds
firmware programs without a checkout (nanokws/paths.py finds them)."""

import os
import shutil
from glob import glob
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

FRONTEND_DIR = "firmware/lib/frontend"
KERNELS_DIR = "firmware/lib/kernels"

# What the tools build and read from firmware/ (cbuild, export --arduino, compile, verify, bench,
# ship): copied to nanokws/_firmware in a wheel. Not build/ (outputs) nor fuzz/ (libFuzzer, a
# developer's `make fuzz`).
FIRMWARE_PARTS = ("Makefile", "README.md", "lib", "model", "programs", "src", "targets")
FIRMWARE_SUFFIXES = {".c", ".h", ".cpp", ".cc", ".mk", ".ld", ".ino", ".md", ".json", ".tflite", ".txt"}


def firmware_files(root: Path) -> list[Path]:
    """The files of firmware/ that go into the package, relative to `root` (firmware/)."""
    files: list[Path] = []
    for part in FIRMWARE_PARTS:
        path = root / part
        if path.is_file():
            files.append(Path(part))
            continue
        for f in sorted(path.rglob("*")):
            rel = f.relative_to(root)
            hidden = any(x.startswith(".") or x in ("build", "__pycache__") for x in rel.parts)
            if f.is_file() and not hidden and (f.suffix in FIRMWARE_SUFFIXES or f.name == "Makefile"):
                files.append(rel)
    return files


class BuildPyWithFirmware(build_py):
    """build_py, then firmware/ -> nanokws/_firmware (not for editable installs: a checkout's
    nanokws uses the checkout's firmware/)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        src = Path("firmware")
        if not (src / "Makefile").is_file():
            raise SystemExit("setup.py: firmware/Makefile not found: build from the nanokws source tree")
        dest = Path(self.build_lib) / "nanokws" / "_firmware"
        if dest.exists():
            shutil.rmtree(dest)  # no stale files from an earlier build
        for rel in firmware_files(src):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / rel, dest / rel)


extension = Extension(
    "nanokws._frontend",
    # The frontend, the kernels' compile-time packing (nk_*_pack.c: empty unless NK_KERNELS_PACK, so
    # the board never carries them) and the glue; the scratch sizes are inline in nk_kernels.h.
    sources=sorted(glob(f"{FRONTEND_DIR}/*.c"))
    + sorted(glob(f"{KERNELS_DIR}/*_pack.c"))
    + ["tools/nanokws/features/_frontend_module.c", "tools/nanokws/compiler/_kernels_module.c"],
    include_dirs=[FRONTEND_DIR, KERNELS_DIR],
    define_macros=[("NK_KERNELS_PACK", "1")],
    # Same arithmetic everywhere: no fused multiply-add, strict C11. Warnings are errors only in our
    # own builds (`make setup` and CI set NANOKWS_WERROR=1): a user's newer compiler may warn about
    # something new, and that must not stop `pip install`.
    extra_compile_args=["-std=c11", "-O2", "-ffp-contract=off", "-Wall", "-Wextra"]
    + (["-Werror"] if os.environ.get("NANOKWS_WERROR") == "1" else []),
)

if __name__ == "__main__":  # pip's build backend runs this file as __main__; tests import firmware_files
    setup(ext_modules=[extension], cmdclass={"build_py": BuildPyWithFirmware})
