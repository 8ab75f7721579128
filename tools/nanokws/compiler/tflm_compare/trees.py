"""The five source trees: finding them under PATH, reading TFLite Micro's pins, putting their files
in place for the build.

PATH holds each tree as a work tree (PATH/<name>) or a bare fetch mirror (PATH/<owner>+<name>/repo).
The pins are read from the TFLite Micro tree's download scripts, never retyped here. A git tree that
has the pinned commit is exported at that commit (`git archive`) into build/tflm_compare/src/; one
that has not is used as it is (a bare mirror: its HEAD), and its `Source.note` says so.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...cbuild import require_tool
from ...errors import NanokwsError
from . import folders

# name -> owner/repository on GitHub (the fetch mirror's folder is that with "+" for "/")
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
# The environment variable naming PATH for the end-to-end test (tests/test_tflm_compare.py).
SOURCES_ENV = "NANOKWS_TFLM_SOURCES"
_GIT_HINT = "install it with: sudo apt-get install git"


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


def _git_argv(tree: Tree, *args: str) -> list[str]:
    """git `args` against `tree`: a bare mirror by --git-dir, a work tree by -C."""
    git = require_tool("git", f"needed to read {tree.path}; {_GIT_HINT}")
    where = [f"--git-dir={tree.path}"] if tree.bare else ["-C", str(tree.path)]
    return [git, *where, *args]


def _git(tree: Tree, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(_git_argv(tree, *args), capture_output=True, text=True)
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
            "files": folders.shown(self.root),
            "dirty": self.dirty,
            "note": self.note,
            **self.extra,
        }

    def identity(self) -> str:
        """What the cache key records: the commit, or the folder for a tree used as it is."""
        if self.commit and self.root.is_relative_to(folders.src_dir()):  # exported from git: immutable
            return self.commit
        return f"{self.commit or 'no-git'}@{self.root}"


@contextmanager
def _staged_as(dest: Path) -> Iterator[Path]:
    """A fresh staging folder beside `dest`, renamed to `dest` when the block succeeds, so that an
    interrupted export never looks complete (`dest` existing is what says "done"). Another run may
    have just published the same `dest`: that is fine, both are the same files."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        try:
            os.replace(staging, dest)
        except OSError:
            if not dest.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _export(tree: Tree, commit: str, paths: Sequence[str], dest: Path) -> None:
    """`git archive` `paths` of `commit` into `dest` (once: an exported commit never changes)."""
    if dest.is_dir():
        return
    with _staged_as(dest) as staging:
        present = [
            p for p in paths if _git(tree, "cat-file", "-e", f"{commit}:{p}", check=False).returncode == 0
        ]
        proc = subprocess.Popen(
            _git_argv(tree, "archive", "--format=tar", commit, *present),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            tar.extractall(staging, filter="data")
        err = proc.stderr.read().decode(errors="replace")
        if proc.wait() != 0:
            raise NanokwsError(f"git archive {commit} in {tree.path} failed: {err.strip()}")


def _apply_patch(folder: Path, patch: Path) -> str:
    """Apply TFLite Micro's flatbuffers.patch to `folder` (a copy, never the user's tree); "applied"
    or "already applied"."""
    git = require_tool("git", f"needed to apply {patch}; {_GIT_HINT}")
    # GIT_CEILING_DIRECTORIES keeps git from taking the repository the build folder sits in for the
    # patch's base: `git apply` then patches `folder` as a plain directory.
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(folder.parent)}

    def git_apply(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [git, "apply", "--include=include/*", *args, str(patch)]
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
            dest = folders.src_dir() / f"{name}-{commit[:12]}"
            _export(tree, commit, EXPORT_PATHS[name], dest)
            return Source(name, dest, commit, pin, True, where)
        head = _resolve(tree, "HEAD")
        if head is None:
            raise NanokwsError(f"--compare-tflm: {tree.path} has no commit at HEAD")
        absent = f"{pin_text} is not in {tree.path}" if pin else pin_text
        if tree.bare:
            dest = folders.src_dir() / f"{name}-{head[:12]}"
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
        if src.commit and not src.dirty and src.root.is_relative_to(folders.src_dir())
        else _content_hash(include)[:12]
    )
    dest = folders.src_dir() / f"flatbuffers-{ident}-tflm-patch-{patch_id}"
    if not dest.is_dir():
        with _staged_as(dest) as staging:
            shutil.copytree(include, staging / "include")
            status = (
                _apply_patch(staging, patch)
                if patch.is_file()
                else f"no {FLATBUFFERS_PATCH} in the TFLite Micro tree: unpatched"
            )
            (staging / ".tflm_patch").write_text(status + "\n")
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
