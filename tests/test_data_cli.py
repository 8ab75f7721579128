"""`nanokws data` through its own argument parser: summary table, synth, one-line errors, fast import."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from nanokws.data import cli, wav_bytes
from nanokws.errors import NanokwsError


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nanokws data")
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(argv))


def test_summary_shows_counts_and_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(8):
        for word in ("yes", "no"):
            (tmp_path / word).mkdir(exist_ok=True)
            (tmp_path / word / f"{i:08x}_nohash_0.wav").write_bytes(wav_bytes(np.full(100, i, np.int16)))
    (tmp_path / "no" / "broken.wav").write_bytes(b"RIFF")
    assert _run(["--data", str(tmp_path), "--keywords", "yes", "no"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()}
    assert rows["yes"][-1] == "8" and rows["no"][-1] == "8"  # the "all" column
    assert f"{tmp_path / 'no' / 'broken.wav'}: not a WAV file (no RIFF/WAVE header)" in out


def test_no_arguments_is_a_clear_error() -> None:
    with pytest.raises(NanokwsError, match="give --data DIR"):
        _run([])


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_synth_command(tmp_path: Path) -> None:
    argv = ["synth", "--out", str(tmp_path / "s"), "--words", "yes", "no", "--per-word", "2"]
    argv += ["--unknown-words", "cat", "--unknown-per-word", "1", "--speakers", "3", "--noise-files", "1"]
    assert _run(argv) == 0
    assert len(list((tmp_path / "s").glob("*/*.wav"))) == 2 + 2 + 1 + 1
    assert _run([*argv, "--force", "--seed", "5"]) == 0  # --force replaces the folder


def test_import_does_not_pull_in_tensorflow() -> None:
    code = "import sys, nanokws.data.cli; print('tensorflow' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(root / "tools"), "PATH": "/usr/bin:/bin"},
    ).stdout
    assert out.strip() == "False"
