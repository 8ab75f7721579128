"""Class labels: silence, unknown, then the keywords, in this order everywhere."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import NanokwsError

DEFAULT_KEYWORDS: list[str] = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
SILENCE = "_silence_"
UNKNOWN = "_unknown_"
BACKGROUND_NOISE = "_background_noise_"


def labels_for(keywords: Sequence[str]) -> list[str]:
    """[SILENCE, UNKNOWN, *keywords]; rejects empty, duplicate or reserved keywords."""
    words = list(keywords)
    if not words:
        raise NanokwsError("no keywords given")
    for word in words:
        if not word or word.startswith("_") or "/" in word:
            raise NanokwsError(f"invalid keyword {word!r}: must be a folder name not starting with '_'")
    dupes = sorted({w for w in words if words.count(w) > 1})
    if dupes:
        raise NanokwsError(f"duplicate keywords: {', '.join(dupes)}")
    return [SILENCE, UNKNOWN, *words]
