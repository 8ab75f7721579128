"""The Speech Commands split rule: by speaker hash, never by clip.

This is the rule of TensorFlow's speech_commands `which_set`, so our splits agree with the
published dataset's: the file name with `_nohash_.*` removed is hashed with SHA-1, taken
mod 2**27 - 1 (+1), and scaled to a percentage: [0, 10) validation, [10, 20) test, else train.
Every clip of one speaker therefore lands in one split, whatever else is in the folder.
"""

from __future__ import annotations

import hashlib
import re

SPLITS = ("train", "validation", "test")
_MAX_NUM_WAVS_PER_CLASS = 2**27 - 1
_NOHASH = re.compile(r"_nohash_.*$")


def speaker_of(file_name: str) -> str:
    """Speaker id of a clip: the part before `_nohash_`, or the file's stem when absent."""
    if "_nohash_" in file_name:
        return file_name.split("_nohash_", 1)[0]
    return file_name.rsplit(".", 1)[0] if "." in file_name else file_name


def which_split(file_name: str, validation_percent: float = 10.0, test_percent: float = 10.0) -> str:
    """ "train", "validation" or "test" for a clip's base file name (TensorFlow's rule verbatim:
    names without `_nohash_` are hashed whole, extension included)."""
    hash_name = _NOHASH.sub("", file_name)
    digest = int(hashlib.sha1(hash_name.encode("utf-8")).hexdigest(), 16)
    percent = (digest % (_MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / _MAX_NUM_WAVS_PER_CLASS)
    if percent < validation_percent:
        return "validation"
    if percent < validation_percent + test_percent:
        return "test"
    return "train"


def speaker_split(speaker: str, validation_percent: float = 10.0, test_percent: float = 10.0) -> str:
    """A second, independent speaker-level split (SHA-1 of "nanokws:<speaker>").

    For folders whose speakers all fall in one split of the official rule (e.g. a subset made of
    test-set speakers): it still keeps each speaker in one split, but spreads them 80/10/10.
    """
    digest = int(hashlib.sha1(f"nanokws:{speaker}".encode()).hexdigest(), 16)
    percent = (digest % 10000) / 100.0
    if percent < validation_percent:
        return "validation"
    if percent < validation_percent + test_percent:
        return "test"
    return "train"
