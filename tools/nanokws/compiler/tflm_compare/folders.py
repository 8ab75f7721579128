"""Where the comparison keeps its files, and how its reports name a path.

Everything it writes lives under build/tflm_compare/: the trees exported from git in src/, and one
folder per build key (commits, compiler, flags) beside them. Paths are read from nanokws.paths at
call time, so a test that points the build folder elsewhere moves all of it.
"""

from __future__ import annotations

from pathlib import Path

from ... import paths


def cache_dir() -> Path:
    """build/tflm_compare: the exported trees (src/) and one folder per build key."""
    return paths.BUILD_DIR / "tflm_compare"


def src_dir() -> Path:
    """build/tflm_compare/src: trees exported from git at a commit (immutable once there)."""
    return cache_dir() / "src"


def shown(p: Path | str) -> str:
    """`p` relative to the repository when it is inside (reports stay free of the checkout's path)."""
    try:
        return str(Path(p).resolve().relative_to(paths.REPO_ROOT))
    except ValueError:
        return str(p)
