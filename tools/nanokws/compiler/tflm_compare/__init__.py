"""`nanokws bench --compare-tflm PATH`: TensorFlow Lite Micro beside the compiled model, under QEMU.

TFLite Micro is built twice for the QEMU target (mps2-an386, Cortex-M4F), from source trees the user
points at (never vendored, never downloaded): with its reference kernels, and with the CMSIS-NN
kernels (`tensorflow/lite/micro/kernels/cmsis_nn/*.cc` replacing the reference ones of the same
name, plus CMSIS-NN's int8 sources), as TFLite Micro's own Makefile selects them
(`sources.inc`, `specialize_files.py`, `ext_libs/cmsis_nn.inc`). Both link our startup, linker
script and UART (firmware/targets/qemu) with a small runner (firmware/programs/tflm_bench/
tflm_runner.cc: MicroInterpreter + MicroMutableOpResolver with the model's builtin operators).

Instructions are counted exactly as `nanokws bench` counts them (SysTick around the inference
under `-icount shift=0`, ticks x 40, median over the same seeded random int8 inputs), and every
output is compared element by element with the compiled C's.

PATH holds the five source trees, either as work trees or as bare git mirrors:

    PATH/tflite-micro   or PATH/tensorflow+tflite-micro/repo   (TFLite Micro, any commit)
    PATH/CMSIS-NN       or PATH/ARM-software+CMSIS-NN/repo      (pinned by TFLM's cmsis_nn_download.sh)
    PATH/flatbuffers    or PATH/google+flatbuffers/repo         (pinned by flatbuffers_download.sh)
    PATH/gemmlowp       or PATH/google+gemmlowp/repo            (pinned by third_party_downloads.inc)
    PATH/ruy            or PATH/google+ruy/repo                 (pinned by third_party_downloads.inc)

The modules, one job each:

    trees.py         finding the trees, TFLite Micro's pins, exporting pinned commits into build/
    sources.py       which TFLite Micro / CMSIS-NN files and operators a build takes (its Makefile)
    toolchain.py     the cross-compiler and the flags (TFLM's defines, firmware/Makefile's CPU)
    compile_jobs.py  compiling objects: staleness from dependency files, two at a time
    build.py         the two tflm_runner ELFs for a model, cached in build/tflm_compare/<key>/
    measure.py       running them and the compiled model under QEMU, counting instructions
    report.py        the `tflm_compare` JSON section and the ratio table
    side_by_side.py  compare() from start to end, and `nanokws bench`'s check() and run()
    folders.py       where the files go (build/tflm_compare/) and how reports show a path
"""

from __future__ import annotations

from .compile_jobs import stale
from .report import format_table
from .side_by_side import check, compare, run
from .sources import op_resolver_map, ops_header, select_kernels, tflm_sources
from .toolchain import Flags, firmware_arch, require_cxx
from .trees import (
    FLATBUFFERS_PATCH,
    MAKE_DIR,
    SOURCES_ENV,
    TFLM_MARKER,
    TREES,
    Source,
    Tree,
    find_trees,
    materialize,
    prepare_flatbuffers,
    prepare_sources,
    read_pins,
)

__all__ = [
    "FLATBUFFERS_PATCH",
    "MAKE_DIR",
    "SOURCES_ENV",
    "TFLM_MARKER",
    "TREES",
    "Flags",
    "Source",
    "Tree",
    "check",
    "compare",
    "find_trees",
    "firmware_arch",
    "format_table",
    "materialize",
    "op_resolver_map",
    "ops_header",
    "prepare_flatbuffers",
    "prepare_sources",
    "read_pins",
    "require_cxx",
    "run",
    "select_kernels",
    "stale",
    "tflm_sources",
]
