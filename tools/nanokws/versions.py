"""Versions of the packages that decide a model's bytes and its reference outputs, for reports.

constraints.txt pins them (with everything else) for `make setup`; `tool_versions()` records what
was actually installed when a report was written (compile_report.json "versions").
"""

from __future__ import annotations

import platform
from importlib import metadata

# Report key -> the distributions that provide it, first installed one wins (TensorFlow is
# `tensorflow-cpu` on x86_64, `tensorflow` elsewhere; see pyproject.toml).
RECORDED: dict[str, tuple[str, ...]] = {
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "tflite-micro": ("tflite-micro",),
    "ai-edge-litert": ("ai-edge-litert",),
    "numpy": ("numpy",),
}


def _installed(distributions: tuple[str, ...]) -> str | None:
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def tool_versions() -> dict[str, str | None]:
    """{"python": ..., "tensorflow": ..., "tflite-micro": ..., "ai-edge-litert": ..., "numpy": ...}
    as installed now; None for a package that is not installed."""
    return {"python": platform.python_version(), **{key: _installed(d) for key, d in RECORDED.items()}}
