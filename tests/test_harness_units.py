"""Harness pieces that need no device: requantisation, stream layout, matching, summaries, JUnit,
and the Device's own timeout / error handling over pyserial's loop:// (which echoes requests)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from nanokws.harness import protocol as P
from nanokws.harness.device import Device, DeviceTimeout, SerialTransport
from nanokws.harness.reference import requantize_input
from nanokws.harness.summary import Check, distribution, write_junit
from nanokws.modelmeta import model_hash, model_sha256


def test_requantize_identity_and_rounding() -> None:
    x = np.arange(-128, 128, dtype=np.int8)
    assert np.array_equal(requantize_input(x, 1.0, 0), x)
    # scale 2: halves round away from zero (C lroundf), not to even.
    q = requantize_input(np.array([1, 3, 5, -1, -3, -5], np.int8), 2.0, 0)
    assert q.tolist() == [1, 2, 3, -1, -2, -3]
    q = requantize_input(np.array([-128, 127, 0], np.int8), 0.5, 10)
    assert q.tolist() == [-128, 127, 10]  # saturates


def test_model_hash_is_sha256_prefix() -> None:
    import hashlib

    assert model_hash(b"abc") == hashlib.sha256(b"abc").hexdigest()[:16]
    assert model_sha256(b"abc") == hashlib.sha256(b"abc").hexdigest()
    assert len(model_hash(b"")) == 16


def test_distribution_and_checks() -> None:
    d = distribution(list(range(1, 101)), "ms")
    assert d["unit"] == "ms" and d["n"] == 100 and d["max"] == 100 and d["p50"] == pytest.approx(50.5)
    assert distribution([], "ms") == {"unit": "ms", "n": 0}
    assert Check("acc", 0.9, 0.8, "min").passed and not Check("acc", 0.7, 0.8, "min").passed
    assert Check("lat", 5.0, 6.0, "max").passed and not Check("lat", 7.0, 6.0, "max").passed
    assert not Check("acc", None, 0.1, "min").passed


def test_junit_is_valid_xml(tmp_path: Path) -> None:
    out = tmp_path / "j.xml"
    write_junit(
        out,
        "suite",
        [{"name": "a", "time": 0.1}, {"name": "b<&>", "failure": 'bad "x"'}, {"name": "c", "error": "boom"}],
    )
    root = ET.parse(out).getroot()
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and suite.get("failures") == "1"
    assert suite.get("errors") == "1"
    cases = suite.findall("testcase")
    assert cases[1].get("name") == "b<&>" and cases[1].find("failure") is not None


def test_device_times_out_on_silent_loopback() -> None:
    # loop:// echoes our request back: a request type is not a valid reply, so the device sees
    # a bad frame and then no reply at all -> DeviceTimeout, quickly and with a clear message.
    dev = Device(SerialTransport("loop://"), timeout=0.3)
    with pytest.raises(DeviceTimeout, match="no reply"):
        dev.request(P.req_stats, P.StatsReply)
    assert dev.bad_frames >= 1
    with pytest.raises(DeviceTimeout, match="no INFO reply"):
        dev.connect(attempts=2)
    dev.close()


def test_device_matches_replies_by_seq_over_loopback() -> None:
    # Replies written into the loop arrive in the "wrong" order and with garbage around them;
    # the device must hand each waiter its own seq and keep events aside.
    dev = Device(SerialTransport("loop://"), timeout=1.0)
    seq_a, seq_b = dev.next_seq(), dev.next_seq()
    dev.transport.write(b"\x13\x37garbage\x00")
    dev.transport.write(P.encode_message(P.StatsReply(seq_b, *range(8))))
    dev.transport.write(P.encode_message(P.Detection(0, 100, 2, 200)))
    dev.transport.write(P.encode_message(P.Ok(seq_a)))
    assert dev.wait_reply(seq_a, P.Ok) == P.Ok(seq_a)
    assert dev.wait_reply(seq_b, P.StatsReply).inferences == 2
    assert dev.take_events() == [P.Detection(0, 100, 2, 200)]
    assert dev.bad_frames == 1
    dev.transport.write(P.encode_message(P.Error(seq_a, 7, 6, "bad key")))
    with pytest.raises(Exception, match="BAD_ARGUMENT for SET_CONFIG: bad key"):
        dev.wait_reply(seq_a, P.Ok)
    dev.close()


def test_clip_run_records_mismatch_and_accuracy() -> None:
    from nanokws.harness.clipmode import ClipRun

    report: dict = {}
    run = ClipRun(report, ["_silence_", "_unknown_", "yes"], cycle_hz=1000.0, cycle_unit="ticks")
    same = np.array([1, 2, 3], np.int8)
    run.add("a.wav", 2, 2, same, same.copy(), fe=10, inf=20, rt_ms=5.0)
    run.add("b.wav", 1, 2, np.array([1, 2, 3], np.int8), np.array([1, -2, 3], np.int8), 30, 40, 6.0)
    assert report["n"] == 2 and report["accuracy"] == 0.5 and report["bit_exact_fraction"] == 0.5
    (mm,) = report["mismatches"]
    assert mm["clip"] == "b.wav" and mm["max_abs_diff"] == 4 and mm["elements_differing"] == 1
    assert report["per_class"]["yes"] == {"n": 1, "correct": 1, "accuracy": 1.0}
    lat = report["latency"]
    assert lat["device_total_ms"]["max"] == 70.0  # (30 + 40) ticks at 1 kHz
    assert "ticks at 1000 Hz" in lat["device_total_ms"]["source"]
    assert [c["failure"] is None for c in run.junit] == [True, False]


def test_hil_compile_stamp_redoes_folders_of_another_compiler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`compile_model` skips a folder compiled from the same model by the same compiler, and compiles
    again when the compiler's sources changed or the stamp predates the compiler hash."""
    import nanokws.cli
    from nanokws.harness import launch

    model = tmp_path / "m.tflite"
    model.write_bytes(b"not really a model")
    out = tmp_path / "out"
    calls: list[list[str]] = []

    def fake_compile(argv: list[str]) -> int:
        calls.append(argv)
        out.mkdir(parents=True, exist_ok=True)
        (out / "model_config.h").write_text("/* compiled */\n")
        return 0

    monkeypatch.setattr(nanokws.cli, "main", fake_compile)
    launch.compile_model(model, out)
    launch.compile_model(model, out)
    assert len(calls) == 1  # up to date: skipped
    stamp = (out / ".hil_model_hash").read_text().strip()
    assert model_hash(model.read_bytes()) in stamp and launch.compiler_source_hash() in stamp
    monkeypatch.setattr(launch, "compiler_source_hash", lambda: "0123456789abcdef")
    launch.compile_model(model, out)
    assert len(calls) == 2  # another compiler: compiled again
    launch.compile_model(model, out)
    assert len(calls) == 2
    # A stamp written before the stamp named the compiler (the model hash alone) is stale too.
    (out / ".hil_model_hash").write_text(model_hash(model.read_bytes()) + "\n")
    launch.compile_model(model, out)
    assert len(calls) == 3


def test_compiler_hash_follows_the_kernels_packing_c(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The weight layouts live in the kernels' C (nk_*_pack.c, nk_kernels*.h): a change there must
    recompile hil's cached model folders, as a change to the compiler's Python does."""
    import shutil

    import nanokws.paths as paths
    from nanokws.harness import launch

    kernels = tmp_path / "lib" / "kernels"
    shutil.copytree(paths.FIRMWARE_DIR / "lib" / "kernels", kernels)
    monkeypatch.setattr(paths, "FIRMWARE_DIR", tmp_path)
    before = launch.compiler_source_hash()
    packs = sorted(kernels.glob("*_pack.c"))
    assert packs, "no packing C in firmware/lib/kernels"
    packs[0].write_text(packs[0].read_text() + "\n/* changed */\n")
    after_pack = launch.compiler_source_hash()
    assert after_pack != before
    (kernels / "nk_gemm.c").write_text("/* a runtime kernel: not part of the layouts */\n")
    assert launch.compiler_source_hash() == after_pack
