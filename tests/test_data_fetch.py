"""`nanokws data fetch`: download over http:// and file://, restart partial files, safe extraction."""

from __future__ import annotations

import functools
import http.server
import io
import socket
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from nanokws.data import read_wav, wav_bytes
from nanokws.data.fetch import download, fetch, safe_extract
from nanokws.errors import NanokwsError


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _clip(seed: int, n: int = 16000) -> bytes:
    return wav_bytes(np.random.default_rng(seed).integers(-500, 500, n).astype(np.int16))


def _archive(path: Path, test_set: bool = False) -> dict[str, bytes]:
    files = {f"./yes/aa{i:06x}_nohash_0.wav": _clip(i) for i in range(3)}
    files.update({f"./no/bb{i:06x}_nohash_0.wav": _clip(10 + i) for i in range(3)})
    if test_set:
        files["./_silence_/s_0.wav"] = _clip(20)
        files["./_unknown_/cat_cc000000_nohash_0.wav"] = _clip(21)
    else:
        files["./_background_noise_/hiss.wav"] = _clip(30, 48000)
        files["./validation_list.txt"] = b"yes/aa000000_nohash_0.wav\n"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            _add(tar, name, data)
    return files


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


def _check_tree(out: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        assert (out / name).read_bytes() == data, name


def test_fetch_over_http_extracts_both_archives(tmp_path: Path, server: tuple[str, Path]) -> None:
    url, www = server
    train_files = _archive(www / "sc.tar.gz")
    test_files = _archive(www / "sc_test.tar.gz", test_set=True)
    done = fetch(tmp_path / "out", f"{url}/sc.tar.gz", f"{url}/sc_test.tar.gz", progress=False)
    assert done == {"train": tmp_path / "out" / "train", "test": tmp_path / "out" / "test"}
    _check_tree(done["train"], train_files)
    _check_tree(done["test"], test_files)
    assert not (tmp_path / "out" / ".downloads").exists()
    expect = np.random.default_rng(1).integers(-500, 500, 16000).astype(np.int16)
    assert np.array_equal(read_wav(done["train"] / "yes/aa000001_nohash_0.wav"), expect)


def test_fetch_file_url_and_skip_test_set(tmp_path: Path) -> None:
    files = _archive(tmp_path / "sc.tar.gz")
    done = fetch(tmp_path / "out", (tmp_path / "sc.tar.gz").as_uri(), None, progress=False)
    assert list(done) == ["train"]
    _check_tree(done["train"], files)


def test_partial_download_restarts_when_server_ignores_range(
    tmp_path: Path, server: tuple[str, Path]
) -> None:
    url, www = server
    payload = np.random.default_rng(0).bytes(300_000)
    (www / "blob.bin").write_bytes(payload)
    dest = tmp_path / "dl" / "blob.bin"
    dest.parent.mkdir()
    (dest.parent / "blob.bin.part").write_bytes(b"stale bytes from an older attempt")
    assert download(f"{url}/blob.bin", dest, progress=False) == dest
    assert dest.read_bytes() == payload and not (dest.parent / "blob.bin.part").exists()


def test_network_errors_are_one_line(tmp_path: Path, server: tuple[str, Path]) -> None:
    url, _ = server
    with pytest.raises(NanokwsError, match=r"HTTP 404") as info:
        fetch(tmp_path / "o1", f"{url}/missing.tar.gz", None, progress=False)
    assert "\n" not in str(info.value)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # bound but not listening: connection refused
        with pytest.raises(NanokwsError, match="cannot download"):
            download(f"http://127.0.0.1:{closed}/x.tar.gz", tmp_path / "o2" / "x.tar.gz", progress=False)


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink", "fifo"])
def test_malicious_members_are_rejected(tmp_path: Path, kind: str) -> None:
    archive = tmp_path / "bad.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        _add(tar, "yes/aa_nohash_0.wav", _clip(0))
        if kind == "dotdot":
            _add(tar, "yes/../../escaped.txt", b"pwned")
        elif kind == "absolute":
            _add(tar, str(tmp_path / "escaped.txt"), b"pwned")
        else:
            info = tarfile.TarInfo("yes/link")
            info.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE}[
                kind
            ]
            info.linkname = "/etc/passwd"
            tar.addfile(info)
    with pytest.raises(NanokwsError, match="refusing"):
        safe_extract(archive, tmp_path / "out" / "train", progress=False)
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "out" / "train").exists()
    assert not list((tmp_path / "out").glob(".*"))  # no staging folder left behind


def test_layout_check_rejects_non_speech_commands_archive(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "x.tar.gz", "w:gz") as tar:
        _add(tar, "docs/readme.txt", b"hello")
    with pytest.raises(NanokwsError, match="not a Speech Commands archive"):
        fetch(tmp_path / "out", (tmp_path / "x.tar.gz").as_uri(), None, progress=False)
