"""The board budget: QEMU instruction counts become Nano 33 BLE lower bounds at 64 MHz (never QEMU's
virtual clock), the live-mode budget adds the frontend per hop to the inferences per second, and the
model card's speed section comes from a bench report of the same model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import test_harness
import test_streaming
from fixtures.firmware_io import FW_MODEL, build_fw, talk
from fixtures.full_window_model import full_window_tiny
from fixtures.shipped import shipped_model_streams
from nanokws.compiler import budget
from nanokws.errors import NanokwsError
from nanokws.harness import protocol as P
from nanokws.harness.summary import time_base, work_rate
from nanokws.paths import FIRMWARE_MODEL_DIR
from nanokws.qemu import BOARD_CPU_HZ, INSTRUCTIONS_PER_TICK, QEMU_CYCLE_UNIT, board_lower_bound_ms

# Fixtures shared with test_harness.py: a tiny model and tone clips in the Speech Commands layout.
hil_model = test_harness.hil_model
hil_data = test_harness.hil_data

needs_qemu = pytest.mark.qemu  # skips, or fails under NANOKWS_REQUIRE=qemu (conftest)


def test_lower_bound_is_instructions_over_64_mhz() -> None:
    assert BOARD_CPU_HZ == 64_000_000
    # README's old "5.1 M instructions ~ 8 ms at 64 MHz" was 10x too fast: it is at least 80 ms.
    assert board_lower_bound_ms(5_120_000) == pytest.approx(80.0)
    assert board_lower_bound_ms(64_000, cpu_hz=32e6) == pytest.approx(2.0)


def test_header_define_parses_suffixes_and_parentheses(tmp_path: Path) -> None:
    h = tmp_path / "x.h"
    h.write_text("#define A 2u\n#define B (50U) /* max */\n  # define C 7\n#define AB 9\n")
    assert [budget.header_define(h, n) for n in ("A", "B", "C", "AB")] == [2, 50, 7, 9]
    with pytest.raises(NanokwsError, match="no integer #define D"):
        budget.header_define(h, "D")


def test_default_stride_is_what_the_firmware_compiles() -> None:
    """The stride read from nk_app.h is the one the built firmware reports in INFO."""
    (info,) = talk(build_fw("host", FW_MODEL), P.req_info(1))
    assert isinstance(info, P.Info)
    assert info.data["config"]["inference_stride"] == budget.default_stride()
    assert 1 <= budget.default_stride() <= budget.max_stride()


def test_live_budget_adds_frontend_hops_and_inferences() -> None:
    live = budget.live_budget(96_000, 5_000_000, 16000, 320, 2, 64e6, stride_limit=50)
    assert live["hops_per_second"] == 50 and live["inferences_per_second"] == 25
    assert live["frontend_instructions_per_second"] == 4_800_000
    assert live["inference_instructions_per_second"] == 125_000_000
    assert live["instructions_per_second_of_audio"] == 129_800_000
    assert live["core_percent_lower_bound"] == pytest.approx(202.8)
    # 4.8 M + 250 M / s <= 64 M needs s >= 4.22: stride 5 is the first that fits, 4 does not.
    assert live["min_stride_within_core"] == 5
    at5 = budget.live_budget(96_000, 5_000_000, 16000, 320, 5, 64e6)
    at4 = budget.live_budget(96_000, 5_000_000, 16000, 320, 4, 64e6)
    assert at5["core_percent_lower_bound"] <= 100 < at4["core_percent_lower_bound"]
    assert (
        budget.live_budget(96_000, 5_000_000, 16000, 320, 2, 64e6, stride_limit=4)["min_stride_within_core"]
        is None
    )
    assert budget.live_budget(2_000_000, 1, 16000, 320, 1, 64e6)["min_stride_within_core"] is None
    with pytest.raises(NanokwsError):
        budget.live_budget(1, 1, 16000, 320, 0, 64e6)


def test_qemu_ticks_become_board_lower_bound_not_virtual_time() -> None:
    tb = time_base(QEMU_CYCLE_UNIT, 25e6)
    assert tb.emulated and tb.instructions_per_tick == INSTRUCTIONS_PER_TICK == 40
    assert tb.instructions([1600]) == [64_000.0]
    assert tb.ms([1600]) == [pytest.approx(1.0)]  # 64 k instructions at 64 MHz; virtual time says 0.064
    assert "lower bound" in tb.source and "64 MHz" in tb.source
    board = time_base("cpu_cycles", 64e6)
    assert not board.emulated and board.ms([64_000]) == [pytest.approx(1.0)] and board.instructions([1]) == []
    assert "cpu_cycles at 6.4e+07 Hz" in board.source


def test_work_rate_names_its_kind() -> None:
    # 2 s of audio, 100 hops at 2400 ticks (96 k instructions), 50 inferences at 125 k ticks (5 M).
    q = work_rate([2400] * 50, [125_000] * 50, 100, 2.0, time_base(QEMU_CYCLE_UNIT, 25e6))
    work = 96_000 * 100 + 5_000_000 * 50
    assert q["real_time_factor_kind"] == "board_lower_bound"
    assert q["work_instructions_per_second_of_audio"] == work / 2
    assert q["real_time_factor"] == pytest.approx(work / 64e6 / 2.0, rel=1e-6)
    assert q["core_percent_lower_bound"] == pytest.approx(100 * work / 2 / 64e6, abs=0.05)
    b = work_rate([96_000] * 50, [5_000_000] * 50, 100, 2.0, time_base("cpu_cycles", 64e6))
    assert b["real_time_factor_kind"] == "measured" and "work_instructions_per_second_of_audio" not in b
    assert b["real_time_factor"] == pytest.approx(q["real_time_factor"], rel=1e-6)
    assert work_rate([], [], 0, 2.0, time_base("cpu_cycles", 64e6))["real_time_factor"] is None


def test_clip_latency_under_qemu_is_the_board_lower_bound() -> None:
    from nanokws.harness.clipmode import ClipRun

    report: dict[str, Any] = {}
    run = ClipRun(report, ["_silence_", "_unknown_", "yes"], cycle_hz=25e6, cycle_unit=QEMU_CYCLE_UNIT)
    same = np.array([1, 2, 3], np.int8)
    run.add("a.wav", 2, 2, same, same.copy(), fe=16_000, inf=160_000, rt_ms=5.0)
    lat = report["latency"]
    assert lat["device_total_ms"]["max"] == pytest.approx(176_000 * 40 / 64e3)  # 110 ms, not 7.04
    assert lat["device_inference_instructions"]["max"] == 6_400_000
    assert lat["device_inference_cycles"] == {**lat["device_inference_cycles"], "unit": QEMU_CYCLE_UNIT}


def test_frontend_bench_host_matches_the_python_frontend() -> None:
    """frontend_bench's hello carries the compiled frontend config; its frames are the frontend's."""
    from nanokws.cbuild import build_programs
    from nanokws.features import compute_features_stream
    from nanokws.features.config_header import read_config

    exe = build_programs("host", ["frontend_bench"])["frontend_bench"]
    cfg = read_config()
    audio = budget.bench_audio(cfg["NK_FE_HOP_SAMPLES"] * 12, cfg["NK_FE_SAMPLE_RATE"])
    with budget.FrontendRunner(exe, "host") as fe:
        assert (fe.sample_rate, fe.hop_samples, fe.num_channels) == (
            cfg["NK_FE_SAMPLE_RATE"],
            cfg["NK_FE_HOP_SAMPLES"],
            cfg["NK_FE_NUM_CHANNELS"],
        )
        assert fe.cycle_unit == "host_ns"
        frames = [fe.push_hop(audio[k * fe.hop_samples : (k + 1) * fe.hop_samples])[0] for k in range(12)]
        fe.reset()
        assert fe.push_hop(audio[: fe.hop_samples])[0] is None  # a fresh frontend: no frame yet
    got = np.stack([f for f in frames if f is not None])
    assert frames[0] is None and np.array_equal(got, compute_features_stream(audio).reshape(got.shape))


def _card_dir(tmp_path: Path) -> Path:
    out = tmp_path / "card"
    out.mkdir()
    shutil.copy(FIRMWARE_MODEL_DIR / "model_card.json", out / "model_card.json")
    return out


def _fake_bench(sha: str) -> dict[str, Any]:
    live = budget.live_budget(96_000, 5_000_000, 16000, 320, 2, 64e6, stride_limit=50)
    return {
        "model_sha256": sha,
        "command": "nanokws bench --test",
        "unit": "QEMU guest instructions",
        "build": {"opt": "-O2", "float_abi": "hard"},
        "instructions_per_inference": 5_000_000,
        "board": {"cpu_hz": 64_000_000, "inference_ms_lower_bound": 78.125},
        "frontend": {"instructions_per_hop": {"mean": 96_000}, "hops_timed": 50},
        "live_budget": live,
    }


def test_refresh_bench_replaces_only_the_speed_section(tmp_path: Path) -> None:
    from nanokws.ship import refresh_bench, render_card_md

    out = _card_dir(tmp_path)
    before = json.loads((out / "model_card.json").read_text())
    card = refresh_bench(out, _fake_bench(before["sha256"]))
    after = json.loads((out / "model_card.json").read_text())
    assert after == card and after["performance"]["instructions_per_inference"] == 5_000_000
    assert {k: v for k, v in after.items() if k != "performance"} == {
        k: v for k, v in before.items() if k != "performance"
    }
    md = (out / "model_card.md").read_text()
    assert md == render_card_md(after)
    assert "| 5000000 |" in md and ">= 78.1 ms" in md and ">= 202.8%" in md and "129800000" in md
    assert "`nanokws bench --test`" in md and "smallest stride whose lower bound fits the core | 5 |" in md
    with pytest.raises(NanokwsError, match="not this one"):
        refresh_bench(out, _fake_bench("0" * 64))
    broken = _fake_bench(before["sha256"])
    del broken["live_budget"]
    with pytest.raises(NanokwsError, match="no live_budget"):
        refresh_bench(out, broken)


def test_shipped_card_speed_matches_its_own_numbers() -> None:
    """The shipped card's speed section is self-consistent (it was written from a bench report)."""
    card = json.loads((FIRMWARE_MODEL_DIR / "model_card.json").read_text())
    perf = card["performance"]
    instr, live = perf["instructions_per_inference"], perf["live_budget"]
    assert perf["board"]["inference_ms_lower_bound"] == pytest.approx(board_lower_bound_ms(instr), abs=1e-3)
    if live.get("kind") == "streaming":
        # Live mode runs the streaming form: one inference step (the new rows + the head) per stride,
        # far cheaper than the whole window, which the card keeps beside it.
        step = perf["streaming"]["instructions_per_inference_step"]
        assert live["inference_instructions"] == step < instr
        assert perf["live_budget_full_window"]["inference_instructions"] == instr
    else:
        assert live["inference_instructions"] == instr
    assert live["hops_per_second"] == live["sample_rate_hz"] / live["hop_samples"]
    want = (
        live["frontend_instructions_per_hop"] * live["hops_per_second"]
        + live["inference_instructions"] * live["inferences_per_second"]
    )
    assert live["instructions_per_second_of_audio"] == pytest.approx(want, abs=live["hops_per_second"])


@pytest.mark.slow
@pytest.mark.qemu
@needs_qemu
def test_board_flags_build_links_soft_float(tmp_path: Path) -> None:
    from nanokws.cbuild import build_programs

    soft = build_programs("qemu", ["frontend_bench"], None, tmp_path / "s", budget.board_make_args())
    hard = build_programs("qemu", ["frontend_bench"], None, tmp_path / "h")
    assert budget.elf_float_abi(soft["frontend_bench"]) == "soft"
    assert budget.elf_float_abi(hard["frontend_bench"]) == "hard"


@pytest.mark.slow
@pytest.mark.qemu
@needs_qemu
def test_bench_reports_lower_bound_and_live_budget(tmp_path: Path) -> None:
    from nanokws.compiler.bench import bench, format_table

    # The full-window path: the shipped model when it cannot stream, else an untrained SAME one.
    shipped_streams = shipped_model_streams()
    tflite = full_window_tiny() if shipped_streams else (FIRMWARE_MODEL_DIR / "model.tflite").read_bytes()
    r = bench(tflite, runs=1, build_dir=tmp_path, measure_tflm=False, stride=3)
    instr = r["instructions_per_inference"]
    assert r["board"]["inference_ms_lower_bound"] == pytest.approx(instr / 64e3, abs=1e-3)
    fe = r["frontend"]["instructions_per_hop"]
    assert 0 < fe["median"] <= fe["max"] and r["frontend"]["hops_timed"] >= 50
    live = r["live_budget"]
    assert live["stride"] == 3 and live["stride_source"] == "--stride"
    assert live["hops_per_second"] == 50 and live["inferences_per_second"] == pytest.approx(50 / 3)
    want = fe["mean"] * 50 + instr * 50 / 3
    assert live["instructions_per_second_of_audio"] == pytest.approx(want, abs=1)
    assert live["core_percent_lower_bound"] == pytest.approx(100 * want / 64e6, abs=0.05)
    assert r["build"]["opt"] == "-O2" and r["build"]["float_abi"] == "hard"
    # A model that cannot stream (SAME in time): the firmware runs the whole window.
    assert live["kind"] == "full_window" and live["model_streams"] is False
    assert "streaming" not in r and "live_budget_full_window" not in r
    text = format_table(r)
    assert (
        "lower bound, 1 instruction/cycle" in text and f"{live['instructions_per_second_of_audio']}" in text
    )


def test_streaming_live_budget_is_steps_per_second_and_splits_rows_from_head() -> None:
    # 50 hops/s, stride 4: 12.5 steps/s of 1 M = 12.5 M + 50 x 100 k frontend = 17.5 M.
    live = budget.streaming_live_budget(100_000, 1_000_000, 16000, 320, 4, 64e6)
    assert live["kind"] == "streaming" and live["inference_instructions_per_step"] == 1_000_000
    assert live["instructions_per_frame"] == 250_000
    assert live["instructions_per_second_of_audio"] == 17_500_000
    assert live["core_percent_lower_bound"] == pytest.approx(27.3)
    assert live["min_stride_within_core"] is None  # no rows/head split given
    # rows 200 k per frame (10 M/s) + frontend 5 M/s leave 49 M/s for heads of 2 M x 50 / s: s >= 2.04,
    # so 3, rounded up to the alignment 2: 4. With alignment 1: 3.
    kw: dict[str, Any] = {"rows_per_frame": 200_000, "head_instructions": 2_000_000, "stride_limit": 50}
    assert (
        budget.streaming_live_budget(100_000, 2_800_000, 16000, 320, 4, 64e6, align=2, **kw)[
            "min_stride_within_core"
        ]
        == 4
    )
    assert (
        budget.streaming_live_budget(100_000, 2_800_000, 16000, 320, 4, 64e6, **kw)["min_stride_within_core"]
        == 3
    )
    with pytest.raises(NanokwsError, match="not a multiple"):
        budget.streaming_live_budget(100_000, 1, 16000, 320, 3, 64e6, align=2)


@needs_qemu
def test_bench_measures_the_streaming_form(tmp_path: Path) -> None:
    """A streamable model (random weights, VALID in time): bench times the streaming form's steady
    state under QEMU and the live budget uses it, with the whole-window budget beside it."""
    from nanokws.compiler.bench import bench, format_table

    tflite = test_streaming._convert("avgpool", test_streaming.SMALL["avgpool"], seed=len("avgpool"))
    r = bench(tflite, runs=1, build_dir=tmp_path, measure_tflm=False)
    instr = r["instructions_per_inference"]
    st, live, full = r["streaming"], r["live_budget"], r["live_budget_full_window"]
    stride = live["stride"]
    assert stride == st["stride_frames"] == budget.default_stride() and stride % st["align_frames"] == 0
    step = st["instructions_per_inference_step"]
    assert st["inferences_timed"] >= 20 and st["frames_timed"] == st["inferences_timed"] * stride
    assert 0 < step < instr and st["step_vs_full_window"] == pytest.approx(step / instr, abs=1e-4)
    assert st["instructions_per_frame"] == pytest.approx(step / stride, abs=1)
    # The step is stride x rows + head, solved from two strides.
    assert st["rows_instructions_per_frame"] > 0 and st["head_instructions"] >= 0
    assert stride * st["rows_instructions_per_frame"] + st["head_instructions"] == pytest.approx(step, abs=2)
    # The live budget is the streaming one: frontend per hop x hops/s + step x hops/s / stride.
    fe = r["frontend"]["instructions_per_hop"]["mean"]
    want = fe * 50 + step * 50 / stride
    assert live["kind"] == "streaming" and live["model_streams"] is True
    assert live["inference_instructions"] == live["inference_instructions_per_step"] == step
    assert live["instructions_per_second_of_audio"] == pytest.approx(want, abs=1)
    assert live["core_percent_lower_bound"] == pytest.approx(100 * want / 64e6, abs=0.05)
    # The whole-window figure is kept beside it, and costs more.
    assert full["kind"] == "full_window" and full["inference_instructions"] == instr
    assert full["instructions_per_second_of_audio"] == pytest.approx(fe * 50 + instr * 50 / stride, abs=1)
    assert live["full_window_instructions_per_second_of_audio"] == full["instructions_per_second_of_audio"]
    # Layer by layer (the layer hook around each layer's row and head work): every layer that runs
    # is there, and together they are most of the step (the rest: the push's own bookkeeping).
    layers = st["layers"]
    ops = [row["op"] for row in r["layers"]]
    assert [x["op"] for x in layers] == [ops[x["layer"]] for x in layers] and len(layers) >= len(ops) - 1
    assert all(x["instructions_per_step"] > 0 for x in layers)
    assert 0.8 * step < sum(x["instructions_per_step"] for x in layers) <= step
    assert live["instructions_per_second_of_audio"] < full["instructions_per_second_of_audio"]
    text = format_table(r)
    assert f"{step} instructions per inference step" in text
    assert f"{live['instructions_per_second_of_audio']} instructions per second of audio" in text
    assert f"{full['instructions_per_second_of_audio']} instructions per second of audio" in text
    assert f"| {live['instructions_per_second_of_audio']} ({stride}, streaming) |" in budget.compare_table(
        [r]
    )


@pytest.mark.slow
@pytest.mark.qemu
@needs_qemu
def test_hil_bench_under_qemu_reports_the_board_lower_bound(
    hil_model: Path, hil_data: Path, tmp_path: Path
) -> None:
    from nanokws.cli import main as nanokws_main

    report = tmp_path / "b.json"
    argv = ["hil", "--emulate", "--build-dir", str(tmp_path / "build"), "--mode", "bench", "--duration", "3"]
    argv += ["--data", str(hil_data), "--model", str(hil_model), "--split", "all", "--report", str(report)]
    assert nanokws_main([*argv, "--no-progress"]) == 0
    rep = json.loads(report.read_text())
    assert rep["device"]["cycle_unit"] == QEMU_CYCLE_UNIT
    assert rep["real_time_factor_kind"] == "board_lower_bound"
    lat = rep["latency"]
    inf_i, inf_ms = lat["inference_per_call_instructions"], lat["inference_per_call_ms"]
    assert inf_ms["p50"] == pytest.approx(inf_i["p50"] / 64e3, rel=1e-3)
    assert lat["inference_per_call_cycles"]["p50"] * 40 == pytest.approx(inf_i["p50"])
    assert rep["real_time_factor"] == pytest.approx(
        rep["work_instructions_per_second_of_audio"] / 64e6, rel=1e-4
    )


def test_fill_tables_regenerates_marked_blocks_from_bench_json(tmp_path: Path) -> None:
    report = _fake_bench("ab" * 32)
    report.update({"flash_bytes": 1234, "total_macs": 10, "macs_per_instruction": 0.5})
    report["build"]["float_abi"] = "soft"
    report["layers"] = [
        {"layer": 0, "op": "CONV_2D", "macs": 10, "instructions": 20, "macs_per_instruction": 0.5},
        {"layer": 1, "op": "SOFTMAX", "macs": 0, "instructions": 7, "macs_per_instruction": None},
    ]
    (tmp_path / "b.json").write_text(json.dumps(report))
    doc = (
        "intro\n<!-- bench-table: compare b.json -->\n| stale |\n<!-- /bench-table -->\nmiddle\n"
        "<!-- bench-table: layers b.json -->\n<!-- /bench-table -->\nend\n"
    )
    out = budget.fill_tables(doc, tmp_path)
    assert "stale" not in out and out.startswith("intro\n") and "\nmiddle\n" in out and out.endswith("end\n")
    assert (
        "| -O2 -mfloat-abi=soft | 5000000 | >= 78.1 ms | 96000 | 129800000 (2) | >= 202.8% | 5 | 1234 B |"
        in out
    )
    assert "| 1 | SOFTMAX | 0 | 7 | - |" in out and "| **total** | | 10 | 5000000 | 0.5 |" in out
    assert budget.fill_tables(out, tmp_path) == out
    # The streaming form's layers (bench's streaming.layers), and a clear error without them.
    report["streaming"] = {"stride_frames": 2, "instructions_per_inference_step": 31,
                           "layers": [{"layer": 0, "op": "CONV_2D", "instructions_per_step": 24,
                                       "full_window_instructions_per_row": 20}]}
    (tmp_path / "s.json").write_text(json.dumps(report))
    out = budget.fill_tables("<!-- bench-table: stream-layers s.json -->\n<!-- /bench-table -->\n", tmp_path)
    assert "| 0 | CONV_2D | 24 | 20 |" in out and "| **step** (stride 2, all pushes) | | 31 | |" in out
    with pytest.raises(NanokwsError, match="no streaming layers"):
        budget.fill_tables("<!-- bench-table: stream-layers b.json -->\n<!-- /bench-table -->\n", tmp_path)
