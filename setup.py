"""Build the Python extension from the same frontend C sources the firmware compiles."""

import os
from glob import glob

from setuptools import Extension, setup

FRONTEND_DIR = "firmware/lib/frontend"

frontend = Extension(
    "nanokws._frontend",
    sources=sorted(glob(f"{FRONTEND_DIR}/*.c")) + ["tools/nanokws/features/_frontend_module.c"],
    include_dirs=[FRONTEND_DIR],
    # Same arithmetic everywhere: no fused multiply-add, strict C11. Warnings are errors only in our
    # own builds (`make setup` and CI set NANOKWS_WERROR=1): a user's newer compiler may warn about
    # something new, and that must not stop `pip install`.
    extra_compile_args=["-std=c11", "-O2", "-ffp-contract=off", "-Wall", "-Wextra"]
    + (["-Werror"] if os.environ.get("NANOKWS_WERROR") == "1" else []),
)

setup(ext_modules=[frontend])
