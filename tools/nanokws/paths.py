"""Where things live, so no module retypes a path.

Two layouts, told apart once here:
- a checkout (`pip install -e .`, or tools/ on sys.path): this file is tools/nanokws/paths.py and
  the firmware sources are the checkout's firmware/; models, builds and data sit beside them as
  before (firmware/model, build/, ../shared/data).
- an installed package (`pip install .`, a wheel): the firmware sources are the copy packaged with
  nanokws (nanokws/_firmware: lib, programs, targets, src, the shipped model, the Makefile; setup.py
  puts it there), read-only. Nothing is ever written inside the package: the model `nanokws ship`
  installs by default goes to ./firmware/model (the working folder's PlatformIO layout), builds to
  $NANOKWS_BUILD_DIR or the user's cache folder, and the shared data defaults to ./data.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# The packaged copy of firmware/ (only in an installed package; see setup.py's build_py).
PACKAGED_FIRMWARE_DIR = PACKAGE_DIR / "_firmware"


def checkout_root(package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The checkout holding this package (tools/nanokws), or None when it is installed elsewhere."""
    root = package_dir.parents[1]
    if package_dir.parent.name == "tools" and (root / "firmware" / "Makefile").is_file():
        return root
    return None


CHECKOUT_ROOT = checkout_root()
INSTALLED = CHECKOUT_ROOT is None


def _user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nanokws"


# The checkout's root; in an installed package the working folder (only documentation tools that
# resolve files relative to a checkout use it: compiler/budget.py --fill).
REPO_ROOT = CHECKOUT_ROOT if CHECKOUT_ROOT is not None else Path.cwd()
# The firmware sources `make -C` builds (read-only in an installed package).
FIRMWARE_DIR = CHECKOUT_ROOT / "firmware" if CHECKOUT_ROOT is not None else PACKAGED_FIRMWARE_DIR
FIRMWARE_LIB_DIR = FIRMWARE_DIR / "lib"
# The firmware's model folder: what `nanokws ship` installs into by default and where `hil` finds the
# shipped model. In a checkout firmware/model; installed, ./firmware/model in the working folder
# (never the packaged copy, FIRMWARE_DIR / "model", which only builds without a model of their own use).
FIRMWARE_MODEL_DIR = FIRMWARE_DIR / "model" if CHECKOUT_ROOT is not None else Path("firmware") / "model"
BUILD_DIR = Path(
    os.environ.get("NANOKWS_BUILD_DIR")
    or (CHECKOUT_ROOT / "build" if CHECKOUT_ROOT is not None else _user_cache_dir() / "build")
)
# Real Speech Commands data beside the checkout (never copied into the repo); installed: ./data, where
# `nanokws data fetch` puts speech_commands by default.
SHARED_DATA_DIR = Path(
    os.environ.get("NANOKWS_SHARED_DATA")
    or (CHECKOUT_ROOT.parent / "shared" / "data" if CHECKOUT_ROOT is not None else Path("data"))
)
SHARED_SPEECH_COMMANDS = SHARED_DATA_DIR / "speech_commands"
SHARED_GSC_LOGMEL = SHARED_DATA_DIR / "gsc_v2_logmel" / "gsc_v2_logmel_49x40_u8.npz"
