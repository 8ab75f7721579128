"""The error boundary: one exception type for user-facing failures, and the helpers that keep every
failure to one line.

Exit codes (`nanokws` as a whole):
  0  success
  1  a check failed (thresholds, verify mismatch), or an unexpected internal error (a bug; the
     line says so, and NANOKWS_DEBUG=1 prints the traceback)
  2  NanokwsError: bad input, missing or unwritable file, unsupported model, bad option
  3  a device fault during `nanokws hil` (a HarnessError, harness/device.py)
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

DEBUG_ENV = "NANOKWS_DEBUG"


class NanokwsError(Exception):
    """A user-facing error: bad input, missing file, unsupported model. Message is one line."""

    exit_code = 2


def one_line(text: object, limit: int = 400) -> str:
    """`text` with all whitespace runs (newlines included) collapsed, cut to `limit` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def describe(exc: BaseException) -> str:
    """One line for any exception: an OSError names its file and the system's reason."""
    if isinstance(exc, NanokwsError):
        return one_line(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else ""
        reason = exc.strerror
        if exc.filename2 is not None:
            where = f"{where} -> {exc.filename2}"
        return one_line(f"{where}: {reason}" if where else reason)
    text = one_line(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _probe_dir(folder: Path, what: str) -> None:
    """Create and remove a file in `folder`: the one test that covers permissions, read-only
    filesystems, quotas of zero and the like, since os.access does not for root."""
    try:
        fd, name = tempfile.mkstemp(prefix=".nanokws-probe.", dir=folder)
    except OSError as exc:
        raise NanokwsError(f"{what} {folder}: not writable ({exc.strerror or exc})") from exc
    os.close(fd)
    try:
        os.unlink(name)
    except OSError:
        pass


def _make_dir(folder: Path, what: str) -> None:
    for parent in (folder, *folder.parents):
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise NanokwsError(f"{what} {folder}: {parent} exists and is not a folder")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = "read-only filesystem" if exc.errno == errno.EROFS else (exc.strerror or str(exc))
        raise NanokwsError(f"{what} {folder}: cannot create the folder ({reason})") from exc


def check_output_file(path: str | os.PathLike[str], what: str = "output") -> Path:
    """Fail now, in one line, if `path` cannot be written later: it is a folder, sits under a file,
    or its folder is not writable. Creates the missing parent folders (the artifact will need them)."""
    target = Path(path)
    if target.is_dir():
        raise NanokwsError(f"{what} {target}: is a folder, need a file path")
    if target.exists() and not target.is_file():
        raise NanokwsError(f"{what} {target}: exists and is not a regular file")
    parent = target.parent if str(target.parent) else Path(".")
    _make_dir(parent, what)
    _probe_dir(parent, what)
    return target


def check_output_dir(path: str | os.PathLike[str], what: str = "output folder") -> Path:
    """Fail now, in one line, if the folder `path` cannot be created or written; creates it."""
    target = Path(path)
    _make_dir(target, what)
    _probe_dir(target, what)
    return target
