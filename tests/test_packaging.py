"""`pip wheel` / `pip install .` give an install whose whole CLI works outside the checkout: the wheel
carries the firmware sources (nanokws/_firmware), nanokws.paths uses them when not in a checkout,
and commands that build C (compile, verify, export --arduino-library) run from a folder that is not
the checkout, writing only into their output folders and the build cache, never into the package."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_TFLITE = ROOT / "firmware" / "model" / "model.tflite"
# What a source tree (an sdist, a clone) holds that the build reads; copied so that the wheel is
# built from a clean tree (no in-place .so, no build/ of the checkout) and the checkout's build/
# folder is left alone.
SOURCE_FILES = ("setup.py", "pyproject.toml", "MANIFEST.in", "README.md", "constraints.txt")
SOURCE_DIRS = ("tools", "firmware")


def test_firmware_files_are_what_the_build_needs() -> None:
    """setup.py's list of packaged firmware files: every source the Makefile, the programs and the
    Arduino export read, the shipped model, and nothing from build outputs."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("nanokws_setup", ROOT / "setup.py")
    assert spec is not None and spec.loader is not None
    setup_py = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(setup_py)  # defines, does not build: setup() runs only as __main__
    files = {str(p) for p in setup_py.firmware_files(ROOT / "firmware")}
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "firmware"], capture_output=True, text=True
    ).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    want = {
        t.removeprefix("firmware/")
        for t in tracked
        if not t.startswith(("firmware/fuzz/", "firmware/build/")) and not t.endswith(".png")
    }
    assert want <= files, sorted(want - files)
    assert not any(f.startswith(("build/", "fuzz/")) or f.endswith((".o", ".a")) for f in files)
    assert {"Makefile", "lib/kernels/nk_kernels.h", "programs/model_runner.mk", "model/nk_model.c"} <= files


def test_paths_tell_a_checkout_from_an_installed_package(tmp_path: Path) -> None:
    from nanokws import paths

    assert paths.CHECKOUT_ROOT == ROOT and paths.FIRMWARE_DIR == ROOT / "firmware"
    assert paths.checkout_root(ROOT / "tools" / "nanokws") == ROOT
    site_pkg = tmp_path / "lib" / "python3.11" / "site-packages" / "nanokws"
    site_pkg.mkdir(parents=True)
    assert paths.checkout_root(site_pkg) is None


def _copy_source_tree(dest: Path) -> None:
    ignore = shutil.ignore_patterns("build", "__pycache__", "*.so", "*.egg-info", ".pytest_cache", "*.o")
    dest.mkdir()
    for name in SOURCE_FILES:
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, dest / name)
    for name in SOURCE_DIRS:
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.slow
def test_wheel_installs_and_builds_firmware_outside_the_checkout(tmp_path: Path) -> None:
    """Build a wheel from a clean copy of the source tree, install it (no dependencies: they come
    from this environment through a .pth, without its editable nanokws), then from a folder that is
    not the checkout: --help, compile (C out of the packaged kernels' layouts), verify on the host
    (the packaged Makefile, programs and targets build the runner; bit-exact with TFLite Micro) and an
    Arduino library export (the packaged lib/ and src/). About 40-60 s on two cores."""
    for tool in ("cc", "make"):
        if shutil.which(tool) is None:
            pytest.skip(f"no '{tool}' on PATH")
    src, wheels, venv, work = (tmp_path / n for n in ("src", "wheels", "venv", "work"))
    _copy_source_tree(src)
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NANOKWS_BUILD_DIR", "PIP_CONSTRAINT")
    }
    env.update(NANOKWS_WERROR="1", XDG_CACHE_HOME=str(tmp_path / "cache"), PIP_NO_INDEX="1")
    pip = [sys.executable, "-m", "pip"]
    run = subprocess.run(
        [*pip, "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (wheel,) = wheels.glob("nanokws-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "nanokws/_firmware/Makefile" in names and "nanokws/_firmware/lib/kernels/nk_kernels.h" in names
    assert any(n.startswith("nanokws/_frontend.") and n.endswith(".so") for n in names)

    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True
    )
    py = venv / "bin" / "python"
    run = subprocess.run(
        [*pip, "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    purelib = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp_path,
        ).stdout.strip()
    )
    # This environment's packages (tensorflow, numpy, ...) without processing its .pth files, so its
    # editable nanokws (a .pth naming the checkout's tools/) stays out of the new venv.
    (purelib / "zz_test_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    installed_before = _files(purelib / "nanokws")

    work.mkdir()
    shutil.copy2(SHIPPED_TFLITE, work / "model.tflite")

    def nanokws(*args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(venv / "bin" / "nanokws"), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=work,
            timeout=600,
        )
        assert proc.returncode == 0, (
            f"nanokws {' '.join(args)}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        )
        return proc

    where = subprocess.run(
        [
            str(py),
            "-c",
            "import nanokws, nanokws.paths as p; print(nanokws.__file__); print(p.FIRMWARE_DIR); "
            "print(p.INSTALLED); print(p.BUILD_DIR); print(p.FIRMWARE_MODEL_DIR.resolve())",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
        check=True,
    ).stdout.split("\n")
    assert Path(where[0]).is_relative_to(purelib), where
    assert Path(where[1]) == purelib / "nanokws" / "_firmware" and where[2] == "True"
    assert Path(where[3]) == tmp_path / "cache" / "nanokws" / "build"
    assert Path(where[4]) == work / "firmware" / "model"  # ship's default: the working folder

    assert "compile" in nanokws("--help").stdout
    out = nanokws("compile", "--model", "model.tflite", "--out", "compiled", "--no-tflm").stdout
    assert "nk_model.c" in out
    # The installed package writes the C the checkout's tools write (same lowering and packing).
    from nanokws.compiler.compile import compile_model

    compile_model(
        SHIPPED_TFLITE.read_bytes(), tmp_path / "checkout_compiled", source="model.tflite", measure_tflm=False
    )
    for name in ("nk_model.c", "nk_model.h"):
        assert (work / "compiled" / name).read_bytes() == (tmp_path / "checkout_compiled" / name).read_bytes()
    out = nanokws("verify", "--model", "model.tflite", "--target", "host", "--n", "3").stdout
    assert "OK: 3 inputs" in out
    nanokws("export", "--model", "model.tflite", "--arduino-library", "lib.zip", "--library-name", "KwsTest")
    assert "KwsTest/src/nk_kernels.h" in zipfile.ZipFile(work / "lib.zip").namelist()

    assert _files(purelib / "nanokws") == installed_before  # nothing written into the package
    assert (tmp_path / "cache" / "nanokws" / "build" / "verify").is_dir()
