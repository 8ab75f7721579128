"""Read the NK_FE_* integer parameters straight from firmware/lib/frontend/nk_frontend_config.h.

The extension exposes the same values (compiled from the header) as FRONTEND_CONFIG; this parser
serves the table generator and the float reference, which must work before the extension is built.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import NanokwsError
from ..paths import FIRMWARE_LIB_DIR

CONFIG_HEADER = FIRMWARE_LIB_DIR / "frontend" / "nk_frontend_config.h"
_DEFINE = re.compile(r"^#define\s+(NK_FE_\w+)\s+\(?(-?\d+)\)?", re.MULTILINE)


def read_config(path: Path = CONFIG_HEADER) -> dict[str, int]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise NanokwsError(f"{path}: cannot read the frontend config header ({exc.strerror})") from exc
    return {name: int(value) for name, value in _DEFINE.findall(text)}
