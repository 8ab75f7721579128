"""Compiling objects the way make would: each one only when it is stale by its `-MMD` dependency
file, two at a time (the machine's two cores), into temporary names renamed into place only on
success, so that an interrupted build never leaves an object that looks finished."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ...cbuild import require_tool
from ...errors import NanokwsError
from .toolchain import APT_HINT

JOBS = 2  # compiles at a time


@dataclass
class Job:
    """Compile `src` into `obj` with the compiler and flags `argv` (the output options are added)."""

    src: Path
    obj: Path
    argv: list[str]


def dependencies(dep_file: Path) -> list[str]:
    """The files a `-MMD` dependency file says its object was compiled from (its first rule)."""
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
    for d in dependencies(dep):
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


def archive(objs: Sequence[Path], lib: Path) -> None:
    """`lib` of `objs`, remade only when the member list changed or an object is newer."""
    rsp = lib.with_suffix(".rsp")
    members = "\n".join(shlex.quote(str(o)) for o in objs) + "\n"
    same = rsp.is_file() and rsp.read_text() == members
    if same and lib.is_file() and all(o.stat().st_mtime <= lib.stat().st_mtime for o in objs):
        return
    rsp.write_text(members)
    tmp = lib.with_name(lib.name + ".tmp")
    tmp.unlink(missing_ok=True)
    proc = subprocess.run(
        [require_tool("arm-none-eabi-ar", APT_HINT), "rcs", str(tmp), f"@{rsp}"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise NanokwsError(f"arm-none-eabi-ar {lib.name} failed: {proc.stderr.strip()}")
    os.replace(tmp, lib)
