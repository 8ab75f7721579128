"""`nanokws hil` against the real firmware: the host build over a pipe (and a TCP bridge standing
in for a serial port), and the QEMU build through --emulate.

The model is a small random-weight Keras model converted to full int8 with nanokws metadata; the
dataset is a few synthetic clips written in the Speech Commands layout. The harness checks the
device's int8 scores element by element against the host reference, so a frontend, kernel or
protocol bug anywhere shows up here.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from nanokws.cli import main as nanokws_main
from nanokws.paths import FIRMWARE_DIR

KEYWORDS = ["yes", "no"]


def _convert(model: object, labels: list[str]) -> bytes:
    """The project's own full-int8 conversion (input scale 1 / zero point 0, nanokws metadata)."""
    from nanokws.features import FRONTEND_CONFIG
    from nanokws.train.convert import convert_int8

    calibration = np.random.default_rng(0).integers(-128, 128, (8, 49, 40)).astype(np.int8)
    meta = {"labels": labels, "frontend": dict(FRONTEND_CONFIG), "model": "test"}
    return convert_int8(model, calibration, meta)


@pytest.fixture(scope="session")
def hil_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import keras
    from nanokws.data import labels_for

    labels = labels_for(KEYWORDS)
    keras.utils.set_random_seed(3)
    inp = keras.Input((49, 40, 1), batch_size=1)
    x = keras.layers.Rescaling(1.0 / 64.0)(inp)
    x = keras.layers.Conv2D(4, (5, 4), strides=(2, 2), padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D((2, 2), padding="same")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(len(labels))(x)
    out = keras.layers.Softmax()(x)
    path = tmp_path_factory.mktemp("hil_model") / "model.tflite"
    path.write_bytes(_convert(keras.Model(inp, out), labels))
    return path


@pytest.fixture(scope="session")
def hil_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Speech Commands layout: tones and noise bursts varied enough to spread the scores."""
    from nanokws.data import wav_bytes

    root = tmp_path_factory.mktemp("hil_data")
    rng = np.random.default_rng(5)
    t = np.arange(16000) / 16000.0
    for w, word in enumerate([*KEYWORDS, "cat"]):
        (root / word).mkdir()
        for i in range(4):
            f = 200.0 * (w + 1) + 150.0 * i
            env = np.exp(-((t - 0.5) ** 2) / 0.02)
            audio = 8000 * env * np.sin(2 * np.pi * f * t) + rng.normal(0, 300 * (i + 1), 16000)
            (root / word / f"spk{w}{i}_nohash_{i}.wav").write_bytes(
                wav_bytes(np.clip(audio, -32768, 32767).astype(np.int16))
            )
    (root / "_background_noise_").mkdir()
    noise = rng.normal(0, 1500, 16000 * 6).astype(np.int16)
    (root / "_background_noise_" / "white.wav").write_bytes(wav_bytes(noise))
    return root


@pytest.fixture(scope="session")
def host_fw(hil_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nanokws.harness.launch import build_firmware

    return build_firmware(hil_model, "host", tmp_path_factory.mktemp("hil_build"))


def _hil(opts: str, model: Path, data: Path, report: Path) -> tuple[int, str, str]:
    """Run `nanokws hil` in-process on every clip of `data`; returns (exit code, stdout, stderr)."""
    argv = ["hil", *opts.split(), "--data", str(data), "--model", str(model), "--split", "all"]
    argv += ["--report", str(report), "--no-progress"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = nanokws_main(argv)
    return code, out.getvalue(), err.getvalue()


def test_clip_mode_host_bit_exact(hil_model: Path, hil_data: Path, host_fw: Path, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    junit = tmp_path / "r.xml"
    code, out, err = _hil(
        f"--host --build-dir {host_fw.parents[2]} --junit {junit} --min-bit-exact 1.0",
        hil_model,
        hil_data,
        report,
    )
    rep = json.loads(report.read_text())
    assert code == 0, (out, err, rep.get("mismatches"))
    assert rep["status"] == "passed" and rep["n"] == 12
    assert rep["bit_exact_fraction"] == 1.0 and rep["mismatches"] == []
    assert rep["device"]["target"] == "host"
    assert rep["latency"]["device_inference_ms"]["unit"] == "ms"
    assert rep["latency"]["device_inference_ms"]["n"] == 12
    assert sum(pc["n"] for pc in rep["per_class"].values()) == 12
    assert 0.0 <= rep["accuracy"] <= 1.0
    assert "junit" not in rep and junit.is_file() and "testcase" in junit.read_text()


def test_device_scores_equal_reference(hil_model: Path, hil_data: Path, host_fw: Path) -> None:
    # Direct API check: the device result for a clip vs our own reference computation.
    from nanokws.data import read_wav
    from nanokws.harness.device import open_process
    from nanokws.harness.reference import Reference, clip_features

    clip = read_wav(next((hil_data / "yes").glob("*.wav")))
    ref = Reference(hil_model.read_bytes()).scores_from_features(clip_features(clip[None])[0])
    with open_process([str(host_fw)]) as dev:
        info = dev.connect()
        assert info.labels == ["_silence_", "_unknown_", *KEYWORDS]
        res = dev.classify(clip)
    assert res.scores.dtype == np.int8 and np.array_equal(res.scores, ref)
    assert res.top == int(np.argmax(ref))


def test_threshold_failure_exit_code(hil_model: Path, hil_data: Path, host_fw: Path, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    code, out, _ = _hil(
        f"--host --build-dir {host_fw.parents[2]} --limit 3 --min-accuracy 1 --max-latency-ms 100000",
        hil_model,
        hil_data,
        report,
    )
    rep = json.loads(report.read_text())
    assert code == 1 and rep["status"] == "failed" and rep["n"] == 3
    checks = {c["name"]: c for c in rep["checks"]}
    assert checks["accuracy"]["passed"] is False and checks["device_total_ms_p95"]["passed"] is True
    assert "FAIL  accuracy" in out


class _Bridge:
    """A TCP 'serial port' in front of the host firmware; optionally dies after N device frames."""

    def __init__(self, exe: Path, die_after_frames: int | None = None) -> None:
        self.exe = exe
        self.die_after = die_after_frames
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        proc = subprocess.Popen([str(self.exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        assert proc.stdin is not None and proc.stdout is not None

        def upstream() -> None:
            with contextlib.suppress(OSError):
                while data := conn.recv(65536):
                    proc.stdin.write(data)
                proc.stdin.close()  # the harness hung up: end the firmware's input so it exits

        threading.Thread(target=upstream, daemon=True).start()
        frames = 0
        try:
            while data := os.read(proc.stdout.fileno(), 65536):
                if self.die_after is not None and frames + data.count(0) >= self.die_after:
                    cut = [i for i, b in enumerate(data) if b == 0][self.die_after - frames - 1]
                    conn.sendall(data[: cut + 1])
                    break  # the "board" vanishes: firmware killed, port closed
                frames += data.count(0)
                conn.sendall(data)
        finally:
            proc.kill()
            proc.wait()
            conn.close()
            self.server.close()


def test_port_vanishing_mid_run_keeps_partial_report(
    hil_model: Path, hil_data: Path, host_fw: Path, tmp_path: Path
) -> None:
    # INFO + RESET replies, then 32 OKs + 1 RESULT per clip: die after 3 whole clips.
    bridge = _Bridge(host_fw, die_after_frames=2 + 33 * 3)
    report, junit = tmp_path / "r.json", tmp_path / "r.xml"
    code, _, err = _hil(
        f"--port socket://127.0.0.1:{bridge.port} --junit {junit} --timeout 3", hil_model, hil_data, report
    )
    rep = json.loads(report.read_text())
    assert code == 3
    assert err.count("\n") == 1 and "error:" in err and "Traceback" not in err
    assert rep["status"] == "fault" and ("gone" in rep["fault"] or "disconnected" in rep["fault"])
    assert rep["n"] == 3 and rep["planned"] == 12 and len(rep["clips"]) == 3
    xml = junit.read_text()
    assert "<error" in xml and xml.count('classname="hil.clip"') == 3


def test_process_killed_mid_run_is_a_clear_error(hil_data: Path, host_fw: Path) -> None:
    from nanokws.data import read_wav
    from nanokws.harness.device import DeviceGone, open_process

    clip = read_wav(next((hil_data / "no").glob("*.wav")))
    dev = open_process([str(host_fw)], timeout=3)
    dev.connect()
    dev.classify(clip)
    dev.transport.proc.kill()  # type: ignore[attr-defined]
    with pytest.raises(DeviceGone, match="exited with code -9"):
        dev.classify(clip)
    dev.close()


def test_reset_mid_stream_detected(host_fw: Path) -> None:
    from nanokws.harness import protocol as P
    from nanokws.harness.device import DeviceReset, open_process

    with open_process([str(host_fw)], timeout=3) as dev:
        dev.connect()
        dev.audio(np.zeros(512, np.int16))
        dev.request(P.req_reset, P.Ok)  # behind the harness's back, as a reboot would
        with pytest.raises(DeviceReset, match="restarted"):
            dev.audio(np.zeros(512, np.int16))


def test_model_hash_mismatch_stops(hil_model: Path, hil_data: Path, host_fw: Path, tmp_path: Path) -> None:
    from nanokws.modelmeta import add_metadata, read_metadata

    other = tmp_path / "other.tflite"
    data = hil_model.read_bytes()
    other.write_bytes(add_metadata(data, {**read_metadata(data), "model": "other"}))
    bridge = _Bridge(host_fw)
    report = tmp_path / "r.json"
    code, _, err = _hil(f"--port socket://127.0.0.1:{bridge.port}", other, hil_data, report)
    assert code == 2 and "device runs model" in err and err.count("\n") == 1
    assert json.loads(report.read_text())["status"] == "fault"


def test_timeout_on_silent_port(hil_model: Path, hil_data: Path, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    code, _, err = _hil("--port loop:// --timeout 0.6", hil_model, hil_data, report)
    assert code == 3 and "no INFO reply" in err
    assert json.loads(report.read_text())["status"] == "fault"


@pytest.mark.slow
def test_stream_and_bench_host(hil_model: Path, hil_data: Path, host_fw: Path, tmp_path: Path) -> None:
    build_dir = str(host_fw.parents[2])
    report = tmp_path / "s.json"
    code, _, err = _hil(
        f"--host --build-dir {build_dir} --mode stream --duration 12 --speed 0 --threshold 0",
        hil_model,
        hil_data,
        report,
    )
    rep = json.loads(report.read_text())
    assert code == 0, err
    assert rep["keywords_placed"] >= 3 and rep["hits"] + rep["misses"] == rep["keywords_judged"]
    assert rep["keywords_judged"] >= rep["keywords_placed"] - 1  # the last may end past the stream
    # Threshold 0: the device detects as often as its suppression time lets it; every one of
    # its detections (its own STATS count) must reach us and be a hit or a false accept.
    assert rep["detections"] == rep["device_stats"]["detections"] > 0
    # (The model's start-up suppression time is 750 ms or more: at most one detection per 0.75 s.)
    assert rep["hits"] + rep["false_accepts"] == rep["detections"] <= 12 / 0.75 + 1
    assert rep["device_counters"]["samples"] == 12 * 16000
    assert rep["device_counters"]["frames"] == (12 * 16000 - 480) // 320 + 1
    assert rep["scores_events"] == rep["device_counters"]["inferences"] > 0
    assert Path(rep["timeline_png"]).read_bytes()[:4] == b"\x89PNG"
    report = tmp_path / "b.json"
    code, _, err = _hil(
        f"--host --build-dir {build_dir} --mode bench --duration 5", hil_model, hil_data, report
    )
    rep = json.loads(report.read_text())
    assert code == 0, err
    assert rep["latency"]["inference_per_call_ms"]["n"] == rep["n"] > 0
    assert rep["real_time_factor"] is not None and rep["real_time_factor"] > 0
    # Bench sends the stream builder's recording (words over silence/noise), as stream mode does.
    assert rep["stream_options"]["seed"] == 0 and rep["words_placed"] >= 2
    assert Path(rep["histogram_png"]).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
@pytest.mark.qemu
def test_emulate_end_to_end(hil_model: Path, hil_data: Path, tmp_path: Path) -> None:
    report = tmp_path / "q.json"
    code, out, err = _hil(
        f"--emulate --build-dir {tmp_path / 'build'} --limit 3 --min-bit-exact 1.0",
        hil_model,
        hil_data,
        report,
    )
    rep = json.loads(report.read_text())
    assert code == 0, (out, err, rep.get("fault"), rep.get("mismatches"))
    assert rep["device"]["target"] == "qemu" and rep["n"] == 3 and rep["bit_exact_fraction"] == 1.0
    assert rep["latency"]["device_inference_cycles"]["unit"] == rep["device"]["cycle_unit"]


def _running(exe: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if Path(os.readlink(proc / "exe")) == exe.resolve():
                    pids.append(int(proc.name))
    return pids


@pytest.mark.slow
def test_ctrl_c_stops_device_and_keeps_report(
    hil_model: Path, hil_data: Path, host_fw: Path, tmp_path: Path
) -> None:
    import signal
    import sys
    import time

    report = tmp_path / "s.json"
    env = {**os.environ, "PYTHONPATH": str(FIRMWARE_DIR.parent / "tools")}
    cmd = [
        sys.executable,
        "-m",
        "nanokws",
        "hil",
        "--host",
        "--build-dir",
        str(host_fw.parents[2]),
        "--mode",
        "stream",
        "--duration",
        "60",
        "--data",
        str(hil_data),
        "--model",
        str(hil_model),
        "--split",
        "all",
        "--report",
        str(report),
        "--no-progress",
    ]
    # A terminal's Ctrl-C reaches a process whose SIGINT has its default action. A test run started
    # in the background of a non-interactive shell (`.ci/run &`) ignores SIGINT, and children inherit
    # that, so give the child the default back.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not _running(host_fw) and time.monotonic() < deadline:  # wait until the device is up
        time.sleep(0.1)
    assert _running(host_fw), "firmware never started"
    time.sleep(1.5)  # real-time pace: about a second and a half of audio sent
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and b"interrupted" in err and b"Traceback" not in err
    rep = json.loads(report.read_text())
    assert rep["status"] == "fault" and rep["fault"] == "interrupted"
    assert 0 < rep["sent_seconds"] < 60
    assert _running(host_fw) == []


@pytest.mark.slow
def test_hil_stream_equals_the_offline_scorer(
    hil_model: Path, hil_data: Path, host_fw: Path, tmp_path: Path
) -> None:
    """The device's detections on a stream (hil --save-stream) are exactly what `nanokws stream
    score` computes offline from the same recording: same hops, labels and scores."""
    from nanokws.streams.builder import read_stream
    from nanokws.streams.scorer import KwsConfig, score_audio

    report, saved = tmp_path / "s.json", tmp_path / "sent"
    code, _, err = _hil(
        f"--host --build-dir {host_fw.parents[2]} --mode stream --duration 20 --speed 0 --threshold 60 "
        f"--save-stream {saved}",
        hil_model,
        hil_data,
        report,
    )
    assert code == 0, err
    rep = json.loads(report.read_text())
    device = [(d["hop"], d["label"], d["score"]) for d in rep["detection_list"]]
    assert len(device) == rep["detections"] >= 3
    audio, truth = read_stream(saved)
    assert audio.size == 20 * 16000 and truth.words
    cfg = KwsConfig(thresholds=tuple(60 if not name.startswith("_") else 180 for name in rep["labels"]))
    offline = score_audio(hil_model, audio, cfg, build_root=tmp_path / "b")
    assert [(d.hop, d.label, d.score) for d in offline.detections] == device
