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

The pins are read from the TFLite Micro tree, never retyped here. A git tree that has the pinned
commit is exported at that commit (`git archive`) into build/tflm_compare/src/; one that has not
is used as it is (a bare mirror: its HEAD), and the report says so. Objects are cached in
build/tflm_compare/<key>/, the key naming the commits, the compiler and the flags.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tarfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NanokwsError

# name -> (owner/repository on GitHub, the fetch-mirror folder name)
TREES: dict[str, str] = {
    "tflite-micro": "tensorflow/tflite-micro",
    "CMSIS-NN": "ARM-software/CMSIS-NN",
    "flatbuffers": "google/flatbuffers",
    "gemmlowp": "google/gemmlowp",
    "ruy": "google/ruy",
}
# What a build needs of each tree (git archive paths).
EXPORT_PATHS: dict[str, tuple[str, ...]] = {
    "tflite-micro": ("tensorflow", "signal"),
    "CMSIS-NN": ("Include", "Source"),
    "flatbuffers": ("include",),
    "gemmlowp": ("fixedpoint", "internal"),
    "ruy": ("ruy",),
}
MAKE_DIR = "tensorflow/lite/micro/tools/make"
TFLM_MARKER = "tensorflow/lite/micro/micro_interpreter.h"
FLATBUFFERS_PATCH = f"{MAKE_DIR}/flatbuffers.patch"
# Where TFLite Micro pins each dependency: (file in the TFLM tree, regex whose group 1 is the pin).
PIN_SOURCES: dict[str, tuple[str, str]] = {
    "CMSIS-NN": (f"{MAKE_DIR}/ext_libs/cmsis_nn_download.sh", r'^\s*ZIP_PREFIX_NN="?([0-9A-Za-z._-]+)"?'),
    "flatbuffers": (f"{MAKE_DIR}/flatbuffers_download.sh", r'^\s*ZIP_PREFIX="?([0-9A-Za-z._-]+)"?'),
    "gemmlowp": (
        f"{MAKE_DIR}/third_party_downloads.inc",
        r'^\s*GEMMLOWP_URL\s*:?=\s*"?\S*/archive/([0-9A-Za-z._-]+?)\.zip',
    ),
    "ruy": (
        f"{MAKE_DIR}/third_party_downloads.inc",
        r'^\s*RUY_URL\s*:?=\s*"?\S*/archive/([0-9A-Za-z._-]+?)\.zip',
    ),
}
VARIANTS = ("reference", "cmsis_nn")
VARIANT_LABELS = {"reference": "TFLM reference", "cmsis_nn": "TFLM + CMSIS-NN", "nanokws": "nanokws today"}
RUNTIME_KEYS = {"reference": "tflm_reference", "cmsis_nn": "tflm_cmsis_nn"}
RUNNER_SOURCE = Path("programs") / "tflm_bench" / "tflm_runner.cc"
SOURCES_ENV = "NANOKWS_TFLM_SOURCES"
JOBS = 2
_APT = (
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
PLATFORM_C = (
    "-std=c11",
    "-ffp-contract=off",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wshadow",
    "-Wstrict-prototypes",
    "-Wno-unused-parameter",
    "-DNK_TARGET_QEMU=1",
)


# ----------------------------------------------------------------------------------------------
# Finding the trees


@dataclass
class Tree:
    """One source tree as found under PATH."""

    name: str
    path: Path
    bare: bool  # a bare git repository (a fetch mirror): files come out of git
    git: bool  # has git history (bare, or a work tree with .git)


def _is_bare_repo(p: Path) -> bool:
    return (p / "HEAD").is_file() and (p / "objects").is_dir() and (p / "refs").is_dir()


def _clone_hint(root: Path, name: str) -> str:
    repo = TREES[name]
    return f"git clone https://github.com/{repo} {root / name}"


def _candidates(root: Path, name: str) -> list[Path]:
    return [root / name, root / f"{name}.git", root / TREES[name].replace("/", "+") / "repo"]


def find_trees(root: Path) -> dict[str, Tree]:
    """The five trees under `root` (work trees by name, or fetch mirrors `<owner>+<name>/repo`);
    one NanokwsError naming every missing tree and how to get it."""
    if not root.exists():
        raise NanokwsError(
            f"--compare-tflm {root}: no such folder (a folder holding the TFLite Micro, CMSIS-NN, "
            "flatbuffers, gemmlowp and ruy source trees)"
        )
    if not root.is_dir():
        raise NanokwsError(f"--compare-tflm {root}: not a folder")
    found: dict[str, Tree] = {}
    missing: list[str] = []
    for name in TREES:
        for cand in _candidates(root, name):
            if _is_bare_repo(cand):
                found[name] = Tree(name, cand, bare=True, git=True)
                break
            if cand.is_dir() and any(cand.iterdir()):
                found[name] = Tree(name, cand, bare=False, git=(cand / ".git").exists())
                break
        else:
            missing.append(name)
    if missing:
        urls = "; ".join(
            [_clone_hint(root, missing[0])] + [f"https://github.com/{TREES[n]}" for n in missing[1:]]
        )
        raise NanokwsError(
            f"--compare-tflm {root}: missing {', '.join(missing)}: clone each as {root}/<name> ({urls}) "
            f"or put a bare mirror at {root}/<owner>+<name>/repo"
        )
    tflm = found["tflite-micro"]
    if not _tree_has(tflm, TFLM_MARKER):
        raise NanokwsError(
            f"--compare-tflm: {tflm.path} is not a TFLite Micro tree (no {TFLM_MARKER}); "
            f"{_clone_hint(root, 'tflite-micro')}"
        )
    return found


def _git(tree: Tree, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    git = shutil.which("git")
    if git is None:
        raise NanokwsError(
            f"'git' not found on PATH, needed to read {tree.path}; install it with: sudo apt-get install git"
        )
    flag = [f"--git-dir={tree.path}"] if tree.bare else ["-C", str(tree.path)]
    proc = subprocess.run([git, *flag, *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise NanokwsError(f"git {' '.join(args)} in {tree.path} failed: {proc.stderr.strip()}")
    return proc


def _tree_has(tree: Tree, rel: str) -> bool:
    if tree.bare:
        return _git(tree, "cat-file", "-e", f"HEAD:{rel}", check=False).returncode == 0
    return (tree.path / rel).is_file()


def _resolve(tree: Tree, ref: str) -> str | None:
    """The commit `ref` names in `tree` (a tag, a branch or a commit hash), or None."""
    proc = _git(tree, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


# ----------------------------------------------------------------------------------------------
# Pins


def read_pins(tflm_root: Path) -> dict[str, str | None]:
    """The CMSIS-NN commit, flatbuffers tag, gemmlowp and ruy commits that the TFLite Micro tree at
    `tflm_root` downloads (None where its script or line is absent)."""
    pins: dict[str, str | None] = {}
    for name, (rel, pattern) in PIN_SOURCES.items():
        path = tflm_root / rel
        text = path.read_text(errors="replace") if path.is_file() else ""
        m = re.search(pattern, text, re.MULTILINE)
        pins[name] = m.group(1) if m else None
    return pins


# ----------------------------------------------------------------------------------------------
# Materialising the trees


@dataclass
class Source:
    """Where one tree's files are for the build, and what they are."""

    name: str
    root: Path
    commit: str | None  # None: not a git tree
    pin: str | None
    pinned: bool  # the files are the pinned commit
    origin: str
    note: str = ""
    dirty: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "pin": self.pin,
            "pinned": self.pinned,
            "origin": self.origin,
            "files": _shown(self.root),
            "dirty": self.dirty,
            "note": self.note,
            **self.extra,
        }

    def identity(self) -> str:
        """What the cache key records: the commit, or the folder for a tree used as it is."""
        if self.commit and self.root.is_relative_to(_src_dir()):  # exported from git: immutable
            return self.commit
        return f"{self.commit or 'no-git'}@{self.root}"


def _shown(p: Path | str) -> str:
    """`p` relative to the repository when it is inside (reports stay free of the checkout's path)."""
    from ..paths import REPO_ROOT

    try:
        return str(Path(p).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(p)


def _src_dir() -> Path:
    from ..paths import BUILD_DIR

    return BUILD_DIR / "tflm_compare" / "src"


def _publish(staging: Path, dest: Path) -> None:
    """Rename a finished staging folder to `dest` (another run may have just done the same)."""
    try:
        os.replace(staging, dest)
    except OSError:
        if not dest.is_dir():
            raise


def _export(tree: Tree, commit: str, paths: Sequence[str], dest: Path) -> None:
    """`git archive` `paths` of `commit` into `dest` (through a staging folder, renamed at the end,
    so an interrupted export never looks complete)."""
    if dest.is_dir():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        present = [
            p for p in paths if _git(tree, "cat-file", "-e", f"{commit}:{p}", check=False).returncode == 0
        ]
        flag = [f"--git-dir={tree.path}"] if tree.bare else ["-C", str(tree.path)]
        proc = subprocess.Popen(
            [shutil.which("git") or "git", *flag, "archive", "--format=tar", commit, *present],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            tar.extractall(staging, filter="data")
        err = proc.stderr.read().decode(errors="replace")
        if proc.wait() != 0:
            raise NanokwsError(f"git archive {commit} in {tree.path} failed: {err.strip()}")
        _publish(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _apply_patch(folder: Path, patch: Path) -> str:
    """Apply TFLite Micro's flatbuffers.patch to `folder` (a copy, never the user's tree); "applied"
    or "already applied"."""
    # GIT_CEILING_DIRECTORIES keeps git from taking the repository the build folder sits in for the
    # patch's base: `git apply` then patches `folder` as a plain directory.
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(folder.parent)}

    def git_apply(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [shutil.which("git") or "git", "apply", "--include=include/*", *args, str(patch)]
        return subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True)

    if git_apply("--check").returncode == 0:
        proc = git_apply()
        if proc.returncode != 0:
            raise NanokwsError(f"applying {patch} to {folder} failed: {proc.stderr.strip()}")
        return "applied"
    if git_apply("--check", "-R").returncode == 0:
        return "already applied"
    raise NanokwsError(f"TFLite Micro's {patch.name} does not apply to the flatbuffers headers in {folder}")


def _content_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def materialize(tree: Tree, pin: str | None) -> Source:
    """Files of `tree` for the build: the pinned commit exported from git when it is there; else the
    tree as it is (a bare mirror's HEAD), with a note."""
    name = tree.name
    where = f"{'bare git mirror' if tree.bare else 'work tree'} {tree.path}"
    pin_text = f"pin {pin}" if pin else "no pin found in the TFLite Micro tree"
    if tree.git:
        commit = _resolve(tree, pin) if pin else None
        if commit:
            dest = _src_dir() / f"{name}-{commit[:12]}"
            _export(tree, commit, EXPORT_PATHS[name], dest)
            return Source(name, dest, commit, pin, True, where)
        head = _resolve(tree, "HEAD")
        if head is None:
            raise NanokwsError(f"--compare-tflm: {tree.path} has no commit at HEAD")
        absent = f"{pin_text} is not in {tree.path}" if pin else pin_text
        if tree.bare:
            dest = _src_dir() / f"{name}-{head[:12]}"
            _export(tree, head, EXPORT_PATHS[name], dest)
            note = "" if name == "tflite-micro" else f"{absent}: used its HEAD {head[:12]}"
            return Source(name, dest, head, pin, False, where, note)
        dirty = bool(_git(tree, "status", "--porcelain", "--untracked-files=no", check=False).stdout.strip())
        note = "" if name == "tflite-micro" else f"{absent}: used the work tree as it is (HEAD {head[:12]})"
        if dirty:
            note = (note + "; " if note else "") + "the work tree has uncommitted changes"
        return Source(name, tree.path, head, pin, False, where, note, dirty)
    note = "not a git tree: used as it is" + ("" if name == "tflite-micro" else f" ({pin_text} not checked)")
    return Source(name, tree.path, None, pin, False, where, note)


def prepare_flatbuffers(src: Source, tflm_root: Path) -> Source:
    """A copy of the flatbuffers headers with TFLite Micro's flatbuffers.patch applied, as its
    flatbuffers_download.sh leaves them."""
    patch = tflm_root / FLATBUFFERS_PATCH
    patch_id = hashlib.sha256(patch.read_bytes()).hexdigest()[:8] if patch.is_file() else "none"
    include = src.root / "include"
    if not (include / "flatbuffers" / "flatbuffers.h").is_file():
        raise NanokwsError(
            f"--compare-tflm: {src.root} has no include/flatbuffers/flatbuffers.h (not a flatbuffers tree)"
        )
    ident = (
        src.commit[:12]
        if src.commit and not src.dirty and src.root.is_relative_to(_src_dir())
        else _content_hash(include)[:12]
    )
    dest = _src_dir() / f"flatbuffers-{ident}-tflm-patch-{patch_id}"
    if not dest.is_dir():
        staging = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            shutil.copytree(include, staging / "include")
            status = (
                _apply_patch(staging, patch)
                if patch.is_file()
                else f"no {FLATBUFFERS_PATCH} in the TFLite Micro tree: unpatched"
            )
            (staging / ".tflm_patch").write_text(status + "\n")
            _publish(staging, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    patched = (dest / ".tflm_patch").read_text().strip()
    extra = {"tflm_patch": f"{FLATBUFFERS_PATCH}: {patched}"}
    return Source(src.name, dest, src.commit, src.pin, src.pinned, src.origin, src.note, src.dirty, extra)


def prepare_sources(root: Path) -> dict[str, Source]:
    """Find the trees under `root`, read TFLite Micro's pins and put every tree's files in place."""
    trees = find_trees(root)
    sources = {"tflite-micro": materialize(trees["tflite-micro"], None)}
    pins = read_pins(sources["tflite-micro"].root)
    for name in ("CMSIS-NN", "flatbuffers", "gemmlowp", "ruy"):
        sources[name] = materialize(trees[name], pins[name])
    sources["flatbuffers"] = prepare_flatbuffers(sources["flatbuffers"], sources["tflite-micro"].root)
    if not (sources["CMSIS-NN"].root / "Include" / "arm_nnfunctions.h").is_file():
        raise NanokwsError(
            f"--compare-tflm: {sources['CMSIS-NN'].root} has no Include/arm_nnfunctions.h (not CMSIS-NN)"
        )
    return sources


# ----------------------------------------------------------------------------------------------
# Source lists (as TFLite Micro's Makefile computes them)


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
# The build


def _firmware_arch(float_abi: str) -> list[str]:
    """firmware/Makefile's qemu ARCH flags, with `float_abi`."""
    from ..paths import FIRMWARE_DIR

    text = (FIRMWARE_DIR / "Makefile").read_text()
    m = re.search(r"^\s*ARCH\s*:=\s*(.+)$", text, re.MULTILINE)
    if not m:
        raise NanokwsError("firmware/Makefile has no ARCH := line for the qemu target")
    flags = [f for f in m.group(1).split() if not f.startswith("-mfloat-abi=")]
    return [*flags, f"-mfloat-abi={float_abi}"]


@dataclass
class Flags:
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
        return [*PLATFORM_C, f"-{self.opt}", *self.arch, "-ffunction-sections", "-fdata-sections"]

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
    out = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0].strip() if out else cxx


def require_cxx(float_abi: str) -> str:
    """arm-none-eabi-g++ with its newlib C++ library, or a NanokwsError saying how to get them."""
    from ..cbuild import require_tool

    require_tool("arm-none-eabi-gcc", _APT)
    cxx = require_tool("arm-none-eabi-g++", _APT)
    lib = subprocess.run(
        [
            cxx,
            "-mcpu=cortex-m4",
            "-mthumb",
            f"-mfloat-abi={float_abi}",
            "-mfpu=fpv4-sp-d16",
            "--specs=nano.specs",
            "-print-file-name=libstdc++_nano.a",
        ],
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not lib or not Path(lib).is_file():
        raise NanokwsError(f"arm-none-eabi-g++ has no C++ library for newlib (libstdc++_nano.a); {_APT}")
    return cxx


@dataclass
class Job:
    src: Path
    obj: Path
    argv: list[str]


def _deps(dep_file: Path) -> list[str]:
    text = dep_file.read_text(errors="replace").replace("\\\n", " ").replace("\\ ", "\0")
    head, _, rest = text.partition(": ")
    first = rest.split("\n\n", 1)[0].split("\n", 1)[0]
    return [d.replace("\0", " ") for d in first.split()]


def stale(obj: Path) -> bool:
    """True when `obj` must be (re)compiled: it or its dependency file is missing, or a dependency
    it lists is missing or newer."""
    dep = obj.with_suffix(".d")
    if not obj.is_file() or not dep.is_file():
        return True
    when = obj.stat().st_mtime
    for d in _deps(dep):
        try:
            if os.stat(d).st_mtime > when:
                return True
        except OSError:
            return True
    return False


def _compile(job: Job) -> str:
    """Run one compile into temporary names, renamed into place only when it succeeds."""
    job.obj.parent.mkdir(parents=True, exist_ok=True)
    tmp_o = job.obj.with_name(job.obj.name + ".tmp")
    tmp_d = job.obj.with_suffix(".d.tmp")
    argv = [*job.argv, "-MMD", "-MT", str(job.obj), "-MF", str(tmp_d), "-c", str(job.src), "-o", str(tmp_o)]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        for t in (tmp_o, tmp_d):
            t.unlink(missing_ok=True)
        return f"$ {shlex.join(argv)}\n{proc.stdout}{proc.stderr}"
    os.replace(tmp_o, job.obj)
    os.replace(tmp_d, job.obj.with_suffix(".d"))
    return ""


def run_jobs(jobs: Sequence[Job], desc: str, log: Path, progress: bool = True, workers: int = JOBS) -> int:
    """Compile the stale ones of `jobs`, `workers` at a time, with a progress bar; the number built.
    The first failure stops the build with the compiler's message (all of it in `log`)."""
    from tqdm import tqdm

    todo = [j for j in jobs if stale(j.obj)]
    if not todo:
        return 0
    with (
        ThreadPoolExecutor(max_workers=workers) as pool,
        tqdm(total=len(todo), desc=desc, unit="file", disable=not progress, leave=False) as bar,
    ):
        futures = [pool.submit(_compile, j) for j in todo]
        errors: list[str] = []
        for fut in futures:
            err = fut.result()
            bar.update(1)
            if err:
                errors.append(err)
                for f in futures:
                    f.cancel()
                break
    if errors:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(errors[0])
        tail = "\n".join(errors[0].strip().splitlines()[1:][:12])
        raise NanokwsError(f"{desc}: compile failed (full command and output in {log}):\n{tail}")
    return len(todo)


def _archive(objs: Sequence[Path], lib: Path) -> None:
    from ..cbuild import require_tool

    rsp = lib.with_suffix(".rsp")
    members = "\n".join(shlex.quote(str(o)) for o in objs) + "\n"
    same = rsp.is_file() and rsp.read_text() == members
    if same and lib.is_file() and all(o.stat().st_mtime <= lib.stat().st_mtime for o in objs):
        return
    rsp.write_text(members)
    tmp = lib.with_name(lib.name + ".tmp")
    tmp.unlink(missing_ok=True)
    proc = subprocess.run(
        [require_tool("arm-none-eabi-ar", _APT), "rcs", str(tmp), f"@{rsp}"], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise NanokwsError(f"arm-none-eabi-ar {lib.name} failed: {proc.stderr.strip()}")
    os.replace(tmp, lib)


def _obj_path(out: Path, src: Path, roots: dict[str, Path]) -> Path:
    for name, root in roots.items():
        if src.is_relative_to(root):
            rel = src.relative_to(root)
            return out / name / rel.with_suffix(rel.suffix + ".o")
    return out / "other" / (src.name + ".o")


def _includes(sources: dict[str, Source], variant: str) -> list[str]:
    inc = [
        sources["tflite-micro"].root,
        sources["flatbuffers"].root / "include",
        sources["gemmlowp"].root,
        sources["ruy"].root,
    ]
    if variant == "cmsis_nn":
        inc += [sources["CMSIS-NN"].root, sources["CMSIS-NN"].root / "Include"]
    return [f"-I{p}" for p in inc]


@dataclass
class Built:
    """The two tflm_runner ELFs for one model, and what building them took."""

    key: str
    folder: Path
    elfs: dict[str, Path]
    objects_compiled: int
    kernel_selection: dict[str, str]
    seconds: float


def cache_key(sources: dict[str, Source], flags: Flags, compiler: str) -> str:
    """build/tflm_compare/<key>: the commits (or folders) of the trees, the compiler and the flags."""
    ident = {
        "sources": {n: s.identity() for n, s in sources.items()},
        "compiler": compiler,
        "flags": flags.as_dict(),
    }
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:10]
    tflm = (sources["tflite-micro"].commit or "tree")[:8]
    cmsis = (sources["CMSIS-NN"].commit or "tree")[:8]
    return f"tflm-{tflm}-cmsisnn-{cmsis}-{flags.opt}-{flags.float_abi}-{digest}"


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


_CMSIS_WORDS = (b"CMSIS_NN", b"ARM_NN_ENABLE")


def _variant_neutral(obj: Path, cache: dict[str, bool]) -> bool:
    """True when nothing `obj` was compiled from tests CMSIS_NN (or CMSIS-NN's own switches): the
    reference object is then the CMSIS-NN build's too, byte for byte."""
    for d in _deps(obj.with_suffix(".d")):
        if d not in cache:
            try:
                data = Path(d).read_bytes()
            except OSError:
                return False
            cache[d] = not any(w in data for w in _CMSIS_WORDS)
        if not cache[d]:
            return False
    return True


def _write_if_changed(path: Path, data: bytes) -> None:
    from .. import atomic

    if not path.is_file() or path.read_bytes() != data:
        atomic.write_bytes(path, data)


MODEL_ASM = """\
/* Generated by nanokws bench --compare-tflm: the .tflite in flash, 16-byte aligned. */
    .section .rodata.nk_tflm_model,"a",%progbits
    .balign 16
    .global nk_tflm_model
nk_tflm_model:
    .incbin "model.tflite"
nk_tflm_model_end:
    .balign 4
    .global nk_tflm_model_len
nk_tflm_model_len:
    .word nk_tflm_model_end - nk_tflm_model
"""


def _gcc(cxx: str) -> str:
    return str(Path(cxx).with_name(Path(cxx).name.replace("g++", "gcc")))


def build(
    sources: dict[str, Source],
    flags: Flags,
    cxx: str,
    tflite: bytes,
    opcodes: Sequence[str],
    progress: bool = True,
) -> Built:
    """The tflm_runner ELF of each variant for this model. Objects are cached per source file in
    build/tflm_compare/<key>/ (the reference build's object is reused by the CMSIS-NN build when no
    file it was compiled from mentions CMSIS_NN); each model gets its own folder under models/."""
    from .. import atomic
    from ..modelmeta import model_sha256
    from ..paths import BUILD_DIR, FIRMWARE_DIR

    t0 = time.monotonic()
    compiler = compiler_version(cxx)
    key = cache_key(sources, flags, compiler)
    folder = BUILD_DIR / "tflm_compare" / key
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "key.json").is_file():
        atomic.write_json(
            folder / "key.json",
            {
                "sources": {n: s.as_dict() for n, s in sources.items()},
                "compiler": compiler,
                "flags": flags.as_dict(),
            },
        )
    gcc = _gcc(cxx)
    tflm = sources["tflite-micro"].root
    roots = {n: s.root for n, s in sources.items()}
    resolver = op_resolver_map(tflm)
    model_dir = folder / "models" / model_sha256(tflite)[:12]
    model_dir.mkdir(parents=True, exist_ok=True)
    _write_if_changed(model_dir / "model.tflite", tflite)
    _write_if_changed(model_dir / "tflm_model_data.S", MODEL_ASM.encode())
    _write_if_changed(model_dir / "tflm_ops.h", ops_header(opcodes, resolver).encode())
    registrations = {r for op in set(opcodes) for r in resolver[op][1]}

    compiled = 0
    platform_srcs = sorted((FIRMWARE_DIR / "targets" / "qemu").glob("*.c")) + [
        FIRMWARE_DIR / "programs" / "program_io.c"
    ]
    fw_inc = [f"-I{FIRMWARE_DIR / 'lib' / 'platform'}", f"-I{FIRMWARE_DIR / 'programs'}"]
    platform = [
        Job(s, folder / "platform" / (s.name + ".o"), [gcc, *flags.platform(), *fw_inc])
        for s in platform_srcs
    ]
    data = Job(
        model_dir / "tflm_model_data.S", model_dir / "tflm_model_data.o", [gcc, *flags.arch, f"-I{model_dir}"]
    )
    compiled += run_jobs(
        [*platform, data], "QEMU platform and model data", folder / "platform" / "build_error.log", progress
    )

    elfs: dict[str, Path] = {}
    selection: dict[str, str] = {}
    neutral_cache: dict[str, bool] = {}
    ref_objs: dict[Path, Path] = {}
    for variant in VARIANTS:
        out = folder / variant
        every = tflm_sources(tflm, variant, sources["CMSIS-NN"].root)
        for attempt, srcs in enumerate((select_kernels(every, registrations), every)):
            jobs, objs = [], []
            for src in srcs:
                c = src.suffix == ".c"
                job = Job(
                    src,
                    _obj_path(out / "obj", src, roots),
                    [gcc if c else cxx, *flags.tflm(variant, c), *_includes(sources, variant)],
                )
                ref = ref_objs.get(src)
                if (
                    variant == "cmsis_nn"
                    and ref is not None
                    and not stale(ref)
                    and _variant_neutral(ref, neutral_cache)
                ):
                    objs.append(ref)
                else:
                    jobs.append(job)
                    objs.append(job.obj)
            label = VARIANT_LABELS[variant].removeprefix("TFLM ").removeprefix("+ ")
            compiled += run_jobs(jobs, f"TFLite Micro ({label})", out / "build_error.log", progress)
            if variant == "reference":
                ref_objs = {j.src: j.obj for j in jobs}
            vdir = model_dir / variant
            vdir.mkdir(exist_ok=True)
            _archive(objs, vdir / "libtflm.a")
            runner = Job(
                FIRMWARE_DIR / RUNNER_SOURCE,
                vdir / "tflm_runner.o",
                [
                    cxx,
                    *flags.runner(variant),
                    f"-I{model_dir}",
                    *fw_inc,
                    *(f"-isystem{p[2:]}" for p in _includes(sources, variant)),
                ],
            )
            compiled += run_jobs([runner], f"tflm_runner ({variant})", vdir / "build_error.log", progress)
            elf = vdir / "tflm_runner.elf"
            missing = _link(
                elf, [runner.obj, data.obj, *(j.obj for j in platform)], vdir / "libtflm.a", flags, cxx
            )
            if not missing:
                selection[variant] = f"{len(srcs)} of {len(every)} TFLite Micro/CMSIS-NN sources" + (
                    " (all: the selection missed a symbol)"
                    if attempt
                    else " (kernels of the model's operators)"
                )
                break
            if attempt:
                raise NanokwsError(f"linking tflm_runner ({variant}) failed: {missing}")
        _check_no_constructors(elf)
        elfs[variant] = elf
    return Built(key, folder, elfs, compiled, selection, time.monotonic() - t0)


def _link(elf: Path, objs: Sequence[Path], lib: Path, flags: Flags, cxx: str) -> str:
    """Link `elf` unless it is newer than its inputs; "" when done, the undefined-symbol lines when
    the library lacks something (the caller retries with every source); other failures raise."""
    from ..paths import FIRMWARE_DIR

    inputs = [*objs, lib]
    if elf.is_file() and all(p.stat().st_mtime <= elf.stat().st_mtime for p in inputs):
        return ""
    tmp = elf.with_name(elf.name + ".tmp")
    ld = FIRMWARE_DIR / "targets" / "qemu" / "mps2_an386.ld"
    argv = [cxx, *flags.link(ld, elf.with_suffix(".map")), *map(str, objs), str(lib), "-lm", "-o", str(tmp)]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode == 0:
        os.replace(tmp, elf)
        return ""
    tmp.unlink(missing_ok=True)
    text = proc.stdout + proc.stderr
    log = elf.with_name("link_error.log")
    log.write_text(f"$ {shlex.join(argv)}\n{text}")
    undefined = [line for line in text.splitlines() if "undefined reference" in line]
    if undefined:
        return "; ".join(undefined[:5])
    tail = "\n".join(text.strip().splitlines()[-12:])
    raise NanokwsError(f"linking {elf.name} failed (details in {log}):\n{tail}")


def _check_no_constructors(elf: Path) -> None:
    """Our QEMU startup (nk_startup.c) runs no static constructors: refuse an ELF that has some."""
    from .bench import elf_sections

    sec = elf_sections(elf)
    ctor = {s: n for s, n in sec.items() if s in (".init_array", ".preinit_array", ".ctors") and n}
    if ctor:
        raise NanokwsError(
            f"{elf}: has static constructors ({ctor}) that firmware/targets/qemu/nk_startup.c does not run"
        )


# ----------------------------------------------------------------------------------------------
# Running


class TflmRunner:
    """tflm_runner under QEMU (protocol in firmware/programs/tflm_bench/tflm_runner.cc)."""

    HELLO_ERRORS = {
        1: "schema version",
        2: "op resolver",
        3: "AllocateTensors",
        4: "input/output not one int8 tensor each",
    }

    def __init__(self, elf: Path) -> None:
        from .program_io import ProgramIO

        class _IO(ProgramIO):
            NAME = "tflm_runner"
            QUIT = b"NKTQ"

        self.io = _IO(elf, "qemu")
        try:
            self.io._expect_hello(b"NKTH")
            (status,) = self.io._read_u32s(1)
            if status:
                what = self.HELLO_ERRORS.get(status, f"status {status}")
                raise NanokwsError(
                    f"TFLite Micro could not set the model up ({what}): {self._log() or 'no log line'}"
                )
            (
                self.input_len,
                self.output_len,
                self.arena_used_bytes,
                self.arena_size,
                self.init_cycles,
                self.cycle_hz,
            ) = self.io._read_u32s(6)
            self.cycle_unit = self.io._read_unit()
        except BaseException:
            self.io.__exit__(NanokwsError, None, None)
            raise

    def _log(self) -> str:
        (n,) = self.io._read_u32s(1)
        return self.io._read(n).decode(errors="replace").strip() if n else ""

    def infer(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        data = np.asarray(x, dtype=np.int8).reshape(-1)
        if data.size != self.input_len:
            raise NanokwsError(f"input has {data.size} values, TFLite Micro's input tensor {self.input_len}")
        self.io._send(b"NKTI" + data.tobytes())
        tag = self.io._read(1)
        if tag != b"O":
            raise NanokwsError(f"tflm_runner protocol error (tag {tag!r})")
        out = np.frombuffer(self.io._read(self.output_len), dtype=np.int8).copy()
        cycles, status = self.io._read_u32s(2)
        log = self._log()
        if status != 0:
            raise NanokwsError(f"TFLite Micro's Invoke() failed (status {status}): {log or 'no log line'}")
        return out, cycles

    def __enter__(self) -> TflmRunner:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.io.__exit__(*exc)


@dataclass
class Measured:
    outputs: np.ndarray  # int8 [inputs, output_len]
    ticks: list[int]
    extra: dict[str, Any] = field(default_factory=dict)


def bench_inputs(runs: int, input_len: int, notes: list[str]) -> tuple[np.ndarray, list[str]]:
    """`runs` seeded random int8 inputs drawn as `nanokws bench` draws them (numpy default_rng(0),
    one input at a time), then up to `runs` real feature tensors when the model takes 49x40
    features and the shared Speech Commands clips are there (as `nanokws verify` makes them)."""
    from .verify import real_features

    rng = np.random.default_rng(0)
    rand = [rng.integers(-128, 128, size=input_len, dtype=np.int8) for _ in range(runs)]
    real = real_features(None, runs, input_len, notes)
    inputs = np.stack(rand + list(real))
    return inputs, ["random"] * len(rand) + ["features"] * len(real)


def _measure_tflm(elf: Path, inputs: np.ndarray, desc: str, progress: bool) -> Measured:
    from tqdm import tqdm

    with TflmRunner(elf) as r:
        outs, ticks = [], []
        for x in tqdm(inputs, desc=desc, unit="inference", disable=not progress, leave=False):
            o, t = r.infer(x)
            outs.append(o)
            ticks.append(t)
        extra = {
            "arena_used_bytes": r.arena_used_bytes,
            "arena_size_bytes": r.arena_size,
            "init_ticks": r.init_cycles,
            "cycle_unit": r.cycle_unit,
        }
    return Measured(np.stack(outs), ticks, extra)


def _measure_nanokws(
    tflite: bytes, inputs: np.ndarray, folder: Path, opt: str, float_abi: str, fast: bool, progress: bool
) -> tuple[Measured, dict[str, Any]]:
    from tqdm import tqdm

    from ..cbuild import build_programs
    from . import budget
    from .compile import compile_model
    from .runner import ModelRunner

    comp = compile_model(tflite, folder / "model", measure_tflm=False, fast=fast)
    make_args = [] if (opt, float_abi) == ("O2", "hard") else budget.board_make_args(f"-{opt}", float_abi)
    elf = build_programs(
        "qemu", ["model_runner"], folder / "model", folder / f"qemu-{opt}-{float_abi}", make_args
    )["model_runner"]
    outs, ticks = [], []
    with ModelRunner(elf, "qemu") as r:
        unit = r.cycle_unit
        for x in tqdm(inputs, desc="nanokws", unit="inference", disable=not progress, leave=False):
            inf = r.infer(x)
            outs.append(inf.output)
            ticks.append(inf.total_cycles)
    return Measured(np.stack(outs), ticks, {"cycle_unit": unit, "elf": elf}), comp.report


def _median_instr(ticks: Sequence[int], kinds: Sequence[str], kind: str) -> int | None:
    from ..qemu import INSTRUCTIONS_PER_TICK

    sel = [t for t, k in zip(ticks, kinds, strict=True) if k == kind]
    return int(np.median(sel)) * INSTRUCTIONS_PER_TICK if sel else None


def _flash(sections: dict[str, int]) -> int:
    return sum(sections.get(s, 0) for s in (".text", ".rodata", ".data", ".ARM.exidx"))


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
    from ..modelmeta import model_sha256
    from ..qemu import (
        BOARD_CPU_HZ,
        BOARD_LOWER_BOUND,
        INSTRUCTIONS_PER_TICK,
        QEMU_CYCLE_UNIT,
        board_lower_bound_ms,
    )
    from .bench import elf_sections
    from .tflite_reader import read_graph

    if opt not in ("O2", "Os") or float_abi not in ("hard", "soft"):
        raise NanokwsError(f"unsupported build -{opt} -mfloat-abi={float_abi}")
    cxx = require_cxx(float_abi)
    sources = prepared if prepared is not None else prepare_sources(tflm_sources_dir)
    flags = Flags(opt, float_abi, _firmware_arch(float_abi))
    graph = read_graph(tflite)
    built = build(sources, flags, cxx, tflite, [op.opcode for op in graph.operators], progress)
    elfs = built.elfs

    notes: list[str] = []
    input_len = int(np.prod(graph.tensors[graph.inputs[0]].shape))
    inputs, kinds = bench_inputs(runs, input_len, notes)
    ours, report = _measure_nanokws(
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
        measured[variant] = _measure_tflm(elfs[variant], inputs, VARIANT_LABELS[variant], progress)
        unit = measured[variant].extra["cycle_unit"]
        if unit != QEMU_CYCLE_UNIT or ours.extra["cycle_unit"] != QEMU_CYCLE_UNIT:
            raise NanokwsError(
                f"tflm_runner counts {unit}, model_runner {ours.extra['cycle_unit']}: not comparable"
            )

    def runtime(m: Measured, elf: Path, excluded: int, excluded_what: str) -> dict[str, Any]:
        instr = _median_instr(m.ticks, kinds, "random") or 0
        sec = elf_sections(elf)
        return {
            "instructions_per_inference": instr,
            "instructions_per_inference_features": _median_instr(m.ticks, kinds, "features"),
            "instructions_each_input": [t * INSTRUCTIONS_PER_TICK for t in m.ticks],
            "board_ms_lower_bound": round(board_lower_bound_ms(instr), 3),
            "flash_bytes": _flash(sec),
            "flash_bytes_without_model": _flash(sec) - excluded,
            "flash_excludes": excluded_what,
            "sections": sec,
        }

    runtimes: dict[str, dict[str, Any]] = {}
    for variant in VARIANTS:
        m = measured[variant]
        row = runtime(m, elfs[variant], len(tflite), f"the .tflite flatbuffer ({len(tflite)} B)")
        diff = m.outputs != ours.outputs
        row.update(
            {
                "arena_used_bytes": m.extra["arena_used_bytes"],
                "arena_size_bytes": m.extra["arena_size_bytes"],
                "init_instructions": m.extra["init_ticks"] * INSTRUCTIONS_PER_TICK,
                "outputs_equal_to_nanokws": bool(not diff.any()),
                "mismatched_inputs": int(diff.any(axis=1).sum()),
                "mismatched_elements": int(diff.sum()),
                "elf": _shown(elfs[variant]),
            }
        )
        runtimes[RUNTIME_KEYS[variant]] = row
    nk = runtime(
        ours,
        ours.extra["elf"],
        int(report["weights_flash_bytes"]),
        f"the compiled weights ({report['weights_flash_bytes']} B)",
    )
    nk["arena_bytes"] = report["arena_bytes"]
    nk["kernels"] = "fast" if fast else "reference"
    nk["elf"] = _shown(ours.extra["elf"])
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
        "compiler": compiler_version(cxx),
        "flags": flags.as_dict(),
        "build": {
            "cache": _shown(built.folder),
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


# ----------------------------------------------------------------------------------------------
# Printing


def _n(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def _source_line(name: str, s: dict[str, Any]) -> str:
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
