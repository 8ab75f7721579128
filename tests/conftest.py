"""Shared test set-up: the tools package on the path, quiet TensorFlow, the shared data location."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from nanokws.paths import SHARED_GSC_LOGMEL, SHARED_SPEECH_COMMANDS  # noqa: E402


@pytest.fixture(scope="session")
def shared_speech_commands() -> Path:
    """Real Speech Commands clips beside the checkout; tests skip (with the reason) without them."""
    if not SHARED_SPEECH_COMMANDS.is_dir():
        pytest.skip(
            f"real clips not present at {SHARED_SPEECH_COMMANDS} (../shared/data); synthetic tests still run"
        )
    return SHARED_SPEECH_COMMANDS


@pytest.fixture(scope="session")
def shared_gsc_logmel() -> Path:
    if not SHARED_GSC_LOGMEL.is_file():
        pytest.skip(f"feature-form data not present at {SHARED_GSC_LOGMEL}")
    return SHARED_GSC_LOGMEL
