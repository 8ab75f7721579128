"""Write starting inputs for the libFuzzer targets (`make fuzz` and the pytest smoke run do this
when a corpus folder is empty): valid frames and request chunks, so the fuzzers start deep in the
code rather than at the CRC check.

    python firmware/fuzz/seeds.py OUT_DIR TARGET     (TARGET: fuzz_protocol, fuzz_app, fuzz_frontend)
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np
from nanokws.harness import protocol as P


def _chunk(req_type: int, body: bytes, repeat: int = 1) -> bytes:
    """fuzz_app's chunk format: tag (request type, repeat count in bits 4..6), length, body."""
    assert 0 < repeat <= 8 and len(body) <= 255
    return bytes([req_type | ((repeat - 1) << 4), len(body)]) + body


def seeds(target: str) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    pcm = rng.integers(-3000, 3000, 1600).astype("<i2").tobytes()
    if target == "fuzz_protocol":
        return {
            "info": P.req_info(1),
            "audio": P.req_audio(2, np.frombuffer(pcm[:1024], "<i2")),
            "clip_load": P.req_clip_load(3, 100, np.frombuffer(pcm[:200], "<i2")),
            "two_frames": P.req_stats(4) + P.req_set_config(5, P.ConfigKey.THRESHOLD, 2, 200),
            "garbage_then_frame": b"\x13\x37\x00" + P.req_reset(6),
        }
    if target == "fuzz_app":
        audio = pcm[:254]
        return {
            "info_stats": _chunk(P.MsgType.INFO, b"") + _chunk(P.MsgType.STATS, b""),
            "audio_stream": b"".join(_chunk(P.MsgType.AUDIO, audio, 4) for _ in range(12)),
            "clip": _chunk(P.MsgType.CLIP_LOAD, struct.pack("<H", 0) + pcm[:252], 2)
            + _chunk(P.MsgType.CLIP_RUN, b""),
            "config": _chunk(P.MsgType.SET_CONFIG, bytes([1, 1]))
            + _chunk(P.MsgType.SET_CONFIG, bytes([5, 1]))
            + _chunk(P.MsgType.AUDIO, audio, 8) * 4,
            "raw": bytes([0x80, 6]) + b"\x01\x02\x03\x00\x05\x06",
        }
    if target == "fuzz_frontend":
        return {"noise": pcm[: 2 * 960], "tone": (np.sin(np.arange(1280) / 5) * 9000).astype("<i2").tobytes()}
    raise SystemExit(f"unknown target {target}")


def main() -> int:
    out, target = Path(sys.argv[1]), sys.argv[2]
    out.mkdir(parents=True, exist_ok=True)
    for name, data in seeds(target).items():
        (out / f"seed_{name}").write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
