"""Where things live in the repository, so no module retypes a path."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = REPO_ROOT / "firmware"
FIRMWARE_LIB_DIR = FIRMWARE_DIR / "lib"
FIRMWARE_MODEL_DIR = FIRMWARE_DIR / "model"
BUILD_DIR = Path(os.environ.get("NANOKWS_BUILD_DIR", REPO_ROOT / "build"))
# Real Speech Commands data beside the checkout (never copied into the repo).
SHARED_DATA_DIR = Path(os.environ.get("NANOKWS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
SHARED_SPEECH_COMMANDS = SHARED_DATA_DIR / "speech_commands"
SHARED_GSC_LOGMEL = SHARED_DATA_DIR / "gsc_v2_logmel" / "gsc_v2_logmel_49x40_u8.npz"
