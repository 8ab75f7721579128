"""Shared test set-up: the tools package on the path, quiet TensorFlow, the shared data location,
and what NANOKWS_REQUIRE turns from a skip into a failure (tests/fixtures/capabilities.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Generator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from fixtures import capabilities  # noqa: E402
from nanokws.paths import SHARED_GSC_LOGMEL, SHARED_SPEECH_COMMANDS  # noqa: E402

# Words in a skip reason that say which capability is absent: a test that keeps its own
# `skipif(not HAVE_QEMU, ...)` (tests/test_compiler.py, tests/test_streaming.py) fails through
# pytest_runtest_makereport below as well when NANOKWS_REQUIRE names the capability.
SKIP_REASON_WORDS = {"qemu": ("qemu-system-arm", "arm-none-eabi"), "shared-data": ("../shared",)}


def pytest_configure(config: pytest.Config) -> None:
    try:
        capabilities.required()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked `qemu` need qemu-system-arm and arm-none-eabi-gcc: skip, or fail if required."""
    if item.get_closest_marker("qemu") is not None:
        capabilities.require_qemu()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        for capability in sorted(capabilities.required()):
            if any(word in reason for word in SKIP_REASON_WORDS[capability]):
                report.outcome = "failed"
                report.longrepr = (
                    f"{reason.removeprefix('Skipped: ')}, and {capabilities.REQUIRE_ENV}="
                    f"{os.environ[capabilities.REQUIRE_ENV]} requires '{capability}'"
                )
                break
    return report


@pytest.fixture(scope="session")
def shared_speech_commands() -> Path:
    """Real Speech Commands clips beside the checkout; tests skip (with the reason) without them,
    or fail when NANOKWS_REQUIRE names shared-data."""
    return capabilities.require_shared(SHARED_SPEECH_COMMANDS, "real clips")


@pytest.fixture(scope="session")
def shared_gsc_logmel() -> Path:
    return capabilities.require_shared(SHARED_GSC_LOGMEL, "feature-form data")
