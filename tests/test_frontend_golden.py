"""Golden-data regression test of the C frontend (micro_speech style): its int8 output on a fixed,
diverse input set must stay identical, bit for bit, to the outputs recorded in
tests/fixtures/frontend_golden/golden.json (made by make_golden.py there), on every build of the
same C: the Python extension, the host firmware build (ASan/UBSan) and the Cortex-M4F build under
QEMU. Optimisations of firmware/lib/frontend must keep this green without regenerating the file."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from fixtures.frontend_golden import make_golden as G
from nanokws.cbuild import build_programs
from nanokws.features import compute_features, compute_features_stream
from nanokws.paths import FIRMWARE_DIR

GOLDEN = json.loads(G.GOLDEN.read_text(encoding="utf-8"))
CASES = G.all_cases()
CH = 40


def _check(name: str, clip: np.ndarray, stream: np.ndarray | None, where: str) -> None:
    want = GOLDEN[name]
    assert list(clip.shape) == want["clip_shape"], f"{where} {name}: shape"
    if "clip_hex" in want:
        expected = np.frombuffer(bytes.fromhex(want["clip_hex"]), np.int8).reshape(want["clip_shape"])
        bad = np.argwhere(clip != expected)
        assert bad.size == 0, (
            f"{where} {name}: {len(bad)} values differ, first at [frame, channel] {bad[0].tolist()}: "
            f"{int(clip[tuple(bad[0])])} != {int(expected[tuple(bad[0])])}"
        )
    assert G.sha(clip) == want["clip_sha256"], f"{where} {name}: clip-mode output changed"
    if stream is not None:
        assert G.sha(stream) == want["stream_sha256"], f"{where} {name}: streaming output changed"


def test_golden_covers_every_case_and_inputs_are_the_recorded_ones() -> None:
    assert sorted(GOLDEN) == sorted(CASES)
    assert len(CASES) >= 100 and sum("clip_hex" in v for v in GOLDEN.values()) == len(G.FULL)
    for name, audio in CASES.items():
        assert audio.dtype == np.int16 and audio.ndim == 1
        assert len(audio) == GOLDEN[name]["samples"], name
        # A mismatch here means the generator drifted, not the frontend.
        assert G.sha(audio.astype("<i2")) == GOLDEN[name]["input_sha256"], f"input {name} changed"


@pytest.mark.parametrize("name", sorted(CASES))
def test_python_extension_equals_golden(name: str) -> None:
    audio = CASES[name]
    stream = compute_features_stream(audio) if len(audio) % G.HOP == 0 else None
    _check(name, compute_features(audio), stream, "python")


def test_host_firmware_build_equals_golden() -> None:
    exe = build_programs("asan", ["frontend_dump"])["frontend_dump"]
    for name, audio in CASES.items():
        out = []
        for flags in ([], ["--stream"]):
            proc = subprocess.run(
                [str(exe), *flags], input=audio.astype("<i2").tobytes(), capture_output=True, timeout=60
            )
            assert proc.returncode == 0, proc.stderr.decode()
            out.append(np.frombuffer(proc.stdout, np.int8).reshape(-1, CH))
        _check(name, out[0], out[1] if len(audio) % G.HOP == 0 else None, "asan")


# The firmware Makefile's qemu link flags (firmware/Makefile, TARGET=qemu).
ARCH = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]


def build_fe_qemu(out: Path) -> Path:
    """fe_qemu.elf: tests/fixtures/frontend_golden/fe_qemu.c linked with the frontend and QEMU
    platform objects that the firmware Makefile itself compiles for TARGET=qemu."""
    lib_srcs = sorted((FIRMWARE_DIR / "lib" / "frontend").glob("*.c"))
    plat_srcs = sorted((FIRMWARE_DIR / "targets" / "qemu").glob("*.c"))
    objs = [out / "obj" / s.relative_to(FIRMWARE_DIR).with_suffix(".o") for s in lib_srcs + plat_srcs]
    subprocess.run(
        ["make", "-s", "-C", str(FIRMWARE_DIR), "TARGET=qemu", f"OUT={out}", "PROGRAMS=", *map(str, objs)],
        check=True,
        capture_output=True,
    )
    elf = out / "fe_qemu.elf"
    includes = [f"-I{FIRMWARE_DIR / 'lib' / d}" for d in ("frontend", "platform")]
    cmd = ["arm-none-eabi-gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", *ARCH, *includes,
           str(Path(G.__file__).with_name("fe_qemu.c")), *map(str, objs),
           "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections",
           f"-T{FIRMWARE_DIR / 'targets' / 'qemu' / 'mps2_an386.ld'}", "-lm", "-o", str(elf)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    return elf


def _request(op: str, audio: np.ndarray) -> bytes:
    return op.encode() + struct.pack("<I", len(audio)) + audio.astype("<i2").tobytes()


def run_fe_qemu(
    elf: Path,
    requests: list[tuple[str, np.ndarray]],
    workdir: Path,
    split_frames: tuple[tuple[int, np.ndarray], ...] = (),
) -> list[tuple[np.ndarray, int]]:
    """Run ('C' | 'S', audio) requests in one QEMU boot; returns (frames, ticks) per request, then
    one (frame, 0) per (len_a, window) in `split_frames` (nk_frontend_compute_frame)."""
    from nanokws.qemu import qemu_command

    wire = b"".join(_request(op, a) for op, a in requests)
    wire += b"".join(b"F" + struct.pack("<I", len_a) + w.astype("<i2").tobytes() for len_a, w in split_frames)
    (workdir / "fe_in.bin").write_bytes(wire + b"Q")
    proc = subprocess.run(
        qemu_command(elf), cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True, timeout=600
    )
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr.decode()}"
    data, pos, results = (workdir / "fe_out.bin").read_bytes(), 0, []
    for _ in requests:
        (frames,) = struct.unpack_from("<I", data, pos)
        feats = np.frombuffer(data, np.int8, frames * CH, pos + 4).reshape(frames, CH)
        pos += 4 + frames * CH
        (ticks,) = struct.unpack_from("<I", data, pos)
        pos += 4
        results.append((feats, ticks))
    for _ in split_frames:
        results.append((np.frombuffer(data, np.int8, CH, pos).reshape(1, CH), 0))
        pos += CH
    assert pos == len(data)
    return results


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.qemu
def test_cortex_m4_build_under_qemu_equals_golden(tmp_path: Path) -> None:
    elf = build_fe_qemu(tmp_path)
    names = sorted(CASES)
    requests = [("C", CASES[n]) for n in names]
    whole = [n for n in names if len(CASES[n]) % G.HOP == 0]
    requests += [("S", CASES[n]) for n in whole]
    # nk_frontend_compute_frame with the window split after every possible len_a (even and odd):
    # always the clip-mode frame of the same 480 samples.
    split = [(name, frame) for name in G.FULL for frame in (0, 17)]
    split_frames = [
        (len_a, CASES[name][320 * frame : 320 * frame + 480]) for name, frame in split for len_a in range(481)
    ]
    results = run_fe_qemu(elf, requests, tmp_path, tuple(split_frames))
    streams = dict(zip(whole, (f for f, _ in results[len(names) : len(requests)]), strict=True))
    for name, (clip, _) in zip(names, results[: len(names)], strict=True):
        _check(name, clip, streams.get(name), "qemu")
    got = np.concatenate([f for f, _ in results[len(requests) :]]).reshape(len(split), 481, CH)
    for (name, frame), frames in zip(split, got, strict=True):
        want = np.frombuffer(bytes.fromhex(GOLDEN[name]["clip_hex"]), np.int8).reshape(-1, CH)[frame]
        bad = [len_a for len_a in range(481) if not np.array_equal(frames[len_a], want)]
        assert not bad, f"qemu {name} frame {frame}: compute_frame differs for len_a in {bad[:10]}"
