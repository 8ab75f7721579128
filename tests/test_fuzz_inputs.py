"""Seeded mutation fuzzing of everything that parses a user's file (#12): the .tflite reader with
the model validation, the nanokws metadata, and the WAV reader. Thousands of mutated inputs each;
nothing but NanokwsError may escape, every error is one line naming the file, and a model that
passes validation must also lower and get a memory plan without an exception.

Same seeds, same inputs: a failure names its seed and case, and reproduces with `_case()`.
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable

import numpy as np
import pytest
from nanokws.errors import NanokwsError
from nanokws.paths import FIRMWARE_MODEL_DIR

GOOD_MODEL = (FIRMWARE_MODEL_DIR / "model.tflite").read_bytes()
INTERESTING_U32 = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One structural mutation: bit flips, byte sets, an interesting u32, truncation, deletion,
    insertion or a copied span (the mutations that found the 40 crash sites of #12)."""
    b = bytearray(data)
    if not b:
        return bytes([rng.randrange(256)])
    kind = rng.randrange(7)
    if kind == 0:
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif kind == 1:
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif kind == 2 and len(b) >= 4:
        i = rng.randrange(len(b) - 3) & ~3
        value = rng.choice([*INTERESTING_U32, len(b), len(b) - i, rng.randrange(1 << 32)])
        b[i : i + 4] = (value & 0xFFFFFFFF).to_bytes(4, "little")
    elif kind == 3:
        b = b[: rng.randrange(len(b))]
    elif kind == 4:
        i = rng.randrange(len(b))
        del b[i : i + rng.randint(1, 64)]
    elif kind == 5:
        i = rng.randrange(len(b) + 1)
        b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    else:
        i, j, n = rng.randrange(len(b)), rng.randrange(len(b)), rng.randint(1, 64)
        b[i : i + n] = b[j : j + n]
    return bytes(b)


def _case(seed: int, index: int, base: bytes) -> bytes:
    """The input of case `index` of `seed`: one or two mutations of `base`."""
    rng = random.Random(seed * 1_000_003 + index)
    data = mutate(rng, base)
    if rng.random() < 0.3:
        data = mutate(rng, data)
    return data


def _campaign(
    seed: int, cases: int, base: bytes, target: Callable[[bytes], None], source: str
) -> tuple[int, int]:
    """Run `target` on `cases` mutations; (accepted, refused). Anything but NanokwsError fails."""
    accepted = refused = 0
    for index in range(cases):
        data = _case(seed, index, base)
        try:
            target(data)
            accepted += 1
        except NanokwsError as exc:
            refused += 1
            line = str(exc)
            assert "\n" not in line and line.startswith(source), f"seed {seed} case {index}: {line!r}"
        except Exception as exc:  # noqa: BLE001 - the point of the test
            pytest.fail(f"seed {seed} case {index}: {type(exc).__name__} escaped: {exc}")
    return accepted, refused


def _check_and_compile(data: bytes) -> None:
    from nanokws.compiler import lower, planner
    from nanokws.modelcheck import check_model

    checked = check_model(data, "fuzz.tflite")
    try:  # the compiler's own refusals (e.g. asymmetric weights) name the file as `compile` does
        layers = lower.lower(checked.graph)
        planner.plan_arena(checked.graph, layers)
    except NanokwsError as exc:
        raise NanokwsError(f"fuzz.tflite: {exc}") from exc


@pytest.mark.parametrize("seed", range(4))
def test_mutated_tflite_gives_only_nanokws_errors(seed: int) -> None:
    accepted, refused = _campaign(seed, 500, GOOD_MODEL, _check_and_compile, "fuzz.tflite")
    # The mutator must do both: most mutants refused, some (e.g. a changed weight) still valid.
    assert refused > 250 and accepted > 10, (accepted, refused)


def test_random_bytes_with_a_tflite_header_are_refused() -> None:
    from nanokws.modelcheck import check_model

    rng = random.Random(99)
    for _ in range(500):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 600)))
        data = struct.pack("<I", rng.choice([0, 8, 12, 16, rng.randrange(1 << 32)])) + b"TFL3" + body
        with pytest.raises(NanokwsError, match=r"^fuzz\.tflite: "):
            check_model(data, "fuzz.tflite")


def _metadata_region() -> tuple[int, int]:
    from nanokws.modelmeta import find_metadata

    blob = json.dumps(find_metadata(GOOD_MODEL), sort_keys=True).encode()
    start = GOOD_MODEL.index(blob[:40])
    return start, start + len(blob)


@pytest.mark.parametrize("seed", range(2))
def test_mutated_metadata_gives_only_nanokws_errors(seed: int) -> None:
    """Mutations inside the metadata JSON (and the bytes around it): bad UTF-8, bad JSON, wrong
    types, labels that no longer match the output."""
    from nanokws.modelcheck import check_model
    from nanokws.modelmeta import find_metadata

    start, end = _metadata_region()
    blob = GOOD_MODEL[start:end]
    refused = 0
    for index in range(250):
        rng = random.Random(seed * 7919 + index)
        bad = bytearray(blob)
        for _ in range(rng.randint(1, 6)):
            i = rng.randrange(len(bad))
            bad[i] = rng.choice([rng.randrange(256), ord(rng.choice('{}[]",:0123456789-.eE ntfu'))])
        data = GOOD_MODEL[:start] + bytes(bad) + GOOD_MODEL[end:]  # same length: offsets stay valid
        for target in (lambda d: find_metadata(d, "fuzz.tflite"), lambda d: check_model(d, "fuzz.tflite")):
            try:
                target(data)
            except NanokwsError as exc:
                refused += 1
                assert "\n" not in str(exc) and str(exc).startswith("fuzz.tflite: ")
            except Exception as exc:  # noqa: BLE001
                pytest.fail(f"seed {seed} case {index}: {type(exc).__name__} escaped: {exc}")
    assert refused > 150


def _good_wav() -> bytes:
    from nanokws.data import wav_bytes

    audio = np.random.default_rng(3).integers(-3000, 3000, 800).astype(np.int16)
    data = wav_bytes(audio)
    # A LIST chunk before the data, as many recorders write, so chunk skipping is exercised.
    at = data.index(b"data")
    info = b"LIST" + struct.pack("<I", 10) + b"INFOabcdef"
    return data[:4] + struct.pack("<I", len(data) - 8 + len(info)) + data[8:at] + info + data[at:]


@pytest.mark.parametrize("seed", range(4))
def test_mutated_wav_gives_only_wav_format_errors(seed: int) -> None:
    from nanokws.data.wav import WavFormatError, parse_wav

    base = _good_wav()
    assert parse_wav(base, "good.wav").size == 800
    accepted = refused = 0
    for index in range(2000):
        data = _case(seed, index, base)
        try:
            samples = parse_wav(data, "fuzz.wav")
            assert samples.dtype == np.int16
            accepted += 1
        except WavFormatError as exc:
            refused += 1
            assert "\n" not in str(exc) and str(exc).startswith("fuzz.wav: ")
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"seed {seed} case {index}: {type(exc).__name__} escaped: {exc}")
    assert refused > 200 and accepted > 200, (accepted, refused)
