"""Pinned versions: constraints.txt pins every package exactly, and reports record what ran."""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path

from nanokws.paths import FIRMWARE_MODEL_DIR, REPO_ROOT
from nanokws.versions import RECORDED, tool_versions


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"constraints.txt: {line!r} is not an exact pin (name==version)"
            pins[_canonical(name)] = version
    return pins


def test_constraints_pin_every_dependency_and_the_recorded_packages() -> None:
    wanted = metadata.requires("nanokws") or []  # pyproject.toml's dependencies and extras, as installed
    names = {_canonical(re.split(r"[\s<>=!~;\[(]", d, maxsplit=1)[0]) for d in wanted}
    assert {"numpy", "tflite-micro", "pyserial", "pytest"} <= names
    names |= {_canonical(n) for dists in RECORDED.values() for n in dists}
    pins = _pins()
    assert sorted(names - pins.keys()) == []
    # `make setup` installed exactly these (a stale .venv is reinstalled when constraints.txt changes).
    for name in names:
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # e.g. `tensorflow` on x86_64, where tensorflow-cpu is the one installed
        assert installed == pins[name], f"{name} {installed} installed, constraints.txt pins {pins[name]}"


def test_tool_versions_are_the_installed_ones() -> None:
    versions = tool_versions()
    assert list(versions) == ["python", "tensorflow", "tflite-micro", "ai-edge-litert", "numpy"]
    assert versions["numpy"] == metadata.version("numpy")
    assert versions["tflite-micro"] == metadata.version("tflite-micro")
    assert versions["tensorflow"] is not None and versions["ai-edge-litert"] is not None


def test_compile_report_records_the_versions(tmp_path: Path) -> None:
    from nanokws.compiler import compile_model

    out = tmp_path / "compiled"
    compile_model((FIRMWARE_MODEL_DIR / "model.tflite").read_bytes(), out, measure_tflm=False)
    assert json.loads((out / "compile_report.json").read_text())["versions"] == tool_versions()
