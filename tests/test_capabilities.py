"""NANOKWS_REQUIRE: a missing capability skips a test, or fails it when CI names the capability."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures import capabilities
from fixtures.capabilities import REQUIRE_ENV, require_qemu, require_shared, required, shared_or_none

TESTS = Path(__file__).resolve().parent


def test_required_reads_the_comma_separated_names() -> None:
    assert required({}) == frozenset()
    assert required({REQUIRE_ENV: ""}) == frozenset()
    assert required({REQUIRE_ENV: " qemu , shared-data,"}) == {"qemu", "shared-data"}
    with pytest.raises(ValueError, match="unknown capability qmeu"):
        required({REQUIRE_ENV: "qmeu"})


def test_missing_shared_data_skips_unless_required(tmp_path: Path) -> None:
    absent = tmp_path / "shared" / "data" / "speech_commands"
    with pytest.raises(pytest.skip.Exception, match="real clips not present at"):
        require_shared(absent, "real clips", {})
    with pytest.raises(pytest.skip.Exception):
        require_shared(absent, "real clips", {REQUIRE_ENV: "qemu"})  # another capability required
    with pytest.raises(pytest.fail.Exception, match="NANOKWS_REQUIRE=shared-data requires 'shared-data'"):
        require_shared(absent, "real clips", {REQUIRE_ENV: "shared-data"})
    # Tests that fall back to synthetic audio without the data get None, unless it is required.
    assert shared_or_none(absent, "real clips", {}) is None
    with pytest.raises(pytest.fail.Exception, match=re.escape(str(absent))):
        shared_or_none(absent, "real clips", {REQUIRE_ENV: "qemu,shared-data"})
    absent.mkdir(parents=True)
    assert require_shared(absent, "real clips", {REQUIRE_ENV: "shared-data"}) == absent
    assert shared_or_none(absent, "real clips", {REQUIRE_ENV: "shared-data"}) == absent


def test_missing_qemu_skips_unless_required(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither qemu-system-arm nor arm-none-eabi-gcc
    assert not capabilities.have_qemu()
    with pytest.raises(pytest.skip.Exception, match="qemu-system-arm / arm-none-eabi-gcc not installed"):
        require_qemu({})
    with pytest.raises(pytest.fail.Exception, match="requires 'qemu': qemu-system-arm and arm-none-eabi-gcc"):
        require_qemu({REQUIRE_ENV: "qemu"})


SAMPLE_TESTS = '''
import pytest

@pytest.mark.qemu
def test_marked_qemu():
    pass

@pytest.mark.skipif(True, reason="qemu-system-arm / arm-none-eabi-gcc not installed")
def test_own_skipif_on_qemu():
    pass

def test_real_clips(shared_speech_commands):
    pass

def test_feature_form(shared_gsc_logmel):
    pass

@pytest.mark.skipif(True, reason="espeak-ng not installed")
def test_other_skip():
    pass
'''

SAMPLE_CONFTEST = """
import importlib.util
import sys

sys.path.insert(0, {tests!r})
spec = importlib.util.spec_from_file_location("suite_conftest", {tests!r} + "/conftest.py")
suite = importlib.util.module_from_spec(spec)
spec.loader.exec_module(suite)
pytest_configure = suite.pytest_configure
pytest_runtest_setup = suite.pytest_runtest_setup
pytest_runtest_makereport = suite.pytest_runtest_makereport
shared_speech_commands = suite.shared_speech_commands
shared_gsc_logmel = suite.shared_gsc_logmel
"""


def _run_sample(tmp_path: Path, require: str | None) -> subprocess.CompletedProcess[str]:
    """pytest on SAMPLE_TESTS with this suite's conftest, no QEMU on PATH and no ../shared data."""
    (tmp_path / "conftest.py").write_text(SAMPLE_CONFTEST.format(tests=str(TESTS)))
    (tmp_path / "test_sample.py").write_text(SAMPLE_TESTS)
    empty = tmp_path / "bin"
    empty.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != REQUIRE_ENV}
    env.update(PATH=str(empty), NANOKWS_SHARED_DATA=str(tmp_path / "no-shared"))
    if require is not None:
        env[REQUIRE_ENV] = require
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider", "test_sample.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_conftest_fails_required_capabilities_and_skips_the_rest(tmp_path: Path) -> None:
    fresh = _run_sample(tmp_path, None)  # a fresh clone: everything missing skips
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "5 skipped" in fresh.stdout, fresh.stdout

    ci = _run_sample(tmp_path, "qemu,shared-data")
    assert ci.returncode == 1, ci.stdout + ci.stderr
    # Set-up errors (the test never ran); espeak-ng is no capability CI names, so it still skips.
    assert "1 skipped" in ci.stdout and "4 errors" in ci.stdout, ci.stdout
    want = "qemu-system-arm / arm-none-eabi-gcc not installed, and NANOKWS_REQUIRE=qemu,shared-data requires"
    assert want in ci.stdout, ci.stdout
    assert "real clips not present at" in ci.stdout and "feature-form data not present at" in ci.stdout

    only_qemu = _run_sample(tmp_path, "qemu")
    assert "3 skipped" in only_qemu.stdout and "2 errors" in only_qemu.stdout, only_qemu.stdout

    typo = _run_sample(tmp_path, "qemu,shared")
    assert typo.returncode == 4, typo.stdout + typo.stderr  # a usage error, before any test runs
    assert "unknown capability shared" in typo.stderr, typo.stderr
