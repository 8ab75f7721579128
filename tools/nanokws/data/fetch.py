"""Download and safely extract the real Speech Commands v0.02 archives.

Downloads go to `<name>.part` beside the target and resume with an HTTP Range request when the
server allows it (else restart); extraction goes to a staging folder that is renamed into place
only after every member passed the safety checks (no absolute paths, no `..`, no links or
devices) and the layout looks like Speech Commands.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath

from ..errors import NanokwsError
from .labels import BACKGROUND_NOISE

DEFAULT_URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
DEFAULT_TEST_URL = "http://download.tensorflow.org/data/speech_commands_test_set_v0.02.tar.gz"
_CHUNK = 1 << 16


def download(url: str, dest: Path, progress: bool = True) -> Path:
    """Fetch `url` to `dest` (via `dest.part`, resuming it when the server supports ranges)."""
    from tqdm import tqdm

    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            resumed = have > 0 and getattr(resp, "status", 200) == 206
            if not resumed:
                have = 0  # server ignored the range: start over
            length = resp.headers.get("Content-Length")
            total = have + int(length) if length else None
            with (
                open(part, "ab" if resumed else "wb") as f,
                tqdm(
                    total=total, initial=have, unit="B", unit_scale=True, desc=dest.name, disable=not progress
                ) as bar,
            ):
                while chunk := resp.read(_CHUNK):
                    f.write(chunk)
                    bar.update(len(chunk))
            if total is not None and part.stat().st_size != total:
                raise NanokwsError(f"download of {url} stopped early; run the command again to resume")
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # our partial file is already complete (or bogus): restart
            part.unlink()
            return download(url, dest, progress)
        raise NanokwsError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise NanokwsError(f"cannot download {url}: {exc.reason}") from None
    except (OSError, ValueError) as exc:  # timeouts, resets, malformed URLs
        raise NanokwsError(f"cannot download {url}: {exc}") from None
    os.replace(part, dest)
    return dest


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or member.name.startswith(("/", "\\")) or ".." in name.parts:
        raise NanokwsError(f"{archive}: refusing unsafe member path {member.name!r}")
    if member.issym() or member.islnk():
        raise NanokwsError(f"{archive}: refusing link member {member.name!r} -> {member.linkname!r}")
    if not (member.isfile() or member.isdir()):
        raise NanokwsError(f"{archive}: refusing special member {member.name!r} (not a file or folder)")


def safe_extract(archive: Path, out: Path, progress: bool = True) -> Path:
    """Extract a .tar(.gz) into `out` (staged, then renamed), rejecting unsafe members first."""
    from tqdm import tqdm

    staging = out.parent / f".{out.name}.extract-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, archive)
            staging.mkdir(parents=True)
            for member in tqdm(members, desc=f"extracting {archive.name}", unit="file", disable=not progress):
                if hasattr(tarfile, "data_filter"):  # belt and braces where Python has extraction filters
                    tar.extract(member, staging, filter="data")
                else:
                    tar.extract(member, staging)
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise NanokwsError(f"cannot extract {archive}: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def check_layout(root: Path, need_noise: bool) -> dict[str, int]:
    """Word folder -> number of WAVs; raises if it does not look like Speech Commands."""
    counts = {
        d.name: sum(1 for f in d.iterdir() if f.suffix.lower() == ".wav")
        for d in sorted(root.iterdir())
        if d.is_dir()
    }
    words = {k: v for k, v in counts.items() if not k.startswith("_") and v}
    if not words:
        raise NanokwsError(f"{root}: no word folders with WAV files; not a Speech Commands archive?")
    if need_noise and not counts.get(BACKGROUND_NOISE):
        raise NanokwsError(f"{root}: no {BACKGROUND_NOISE}/ folder; not a Speech Commands archive?")
    return counts


def fetch(
    out: Path, url: str = DEFAULT_URL, test_url: str | None = DEFAULT_TEST_URL, progress: bool = True
) -> dict[str, Path]:
    """Download + extract: training archive to OUT/train, official test set to OUT/test."""
    targets = {"train": (url, True)}
    if test_url:
        targets["test"] = (test_url, False)
    done: dict[str, Path] = {}
    for part, (src, need_noise) in targets.items():
        dest = out / part
        if dest.is_dir() and any(dest.iterdir()):
            check_layout(dest, need_noise)
            done[part] = dest
            continue
        name = PurePosixPath(urllib.parse.urlparse(src).path).name or f"{part}.tar.gz"
        archive = download(src, out / ".downloads" / name, progress)
        safe_extract(archive, dest, progress)
        check_layout(dest, need_noise)
        archive.unlink()  # extracted and checked: the archive is no longer needed
        done[part] = dest
    shutil.rmtree(out / ".downloads", ignore_errors=True)
    return done
