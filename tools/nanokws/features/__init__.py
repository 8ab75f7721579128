"""Features from the firmware's own C frontend (the `nanokws._frontend` extension).

    from nanokws.features import FRONTEND_CONFIG, compute_features, compute_features_batch
    feats = compute_features(audio_int16)            # int8 [frames, 40]
    batch = compute_features_batch(clips_int16)      # int8 [n, 49, 40] for [n, 16000]

The bits are those the device computes. The extension is built from firmware/lib/frontend by
setup.py (`pip install .`, or `python setup.py build_ext --inplace` in a checkout).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import NanokwsError

__all__ = ["FRONTEND_CONFIG", "compute_features", "compute_features_batch", "compute_features_stream"]


def _ext() -> ModuleType:
    try:
        from .. import _frontend
    except ImportError as exc:
        raise NanokwsError(
            "the C frontend extension nanokws._frontend is not built: run `pip install .` "
            "or `python setup.py build_ext --inplace` in the repository"
        ) from exc
    return _frontend


def __getattr__(name: str) -> Any:
    # Loaded on first use, so `nanokws --help` works before the extension is built.
    if name == "FRONTEND_CONFIG":
        config: dict[str, int] = _ext().config()
        globals()["FRONTEND_CONFIG"] = config
        return config
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _as_int16(audio: Any, ndim: int, what: str) -> np.ndarray:
    arr = np.asarray(audio)
    if arr.dtype != np.int16:
        raise NanokwsError(
            f"{what} must be int16 PCM, got dtype {arr.dtype} (convert with .astype(np.int16))"
        )
    if arr.ndim != ndim:
        raise NanokwsError(f"{what} must have {ndim} dimension(s), got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def compute_features(audio: np.ndarray) -> np.ndarray:
    """int8 [frames, channels] of 1-D int16 `audio`; frame k covers samples [hop*k, hop*k + window)."""
    ext = _ext()
    x = _as_int16(audio, 1, "audio")
    channels = ext.config()["NK_FE_NUM_CHANNELS"]
    return np.frombuffer(ext.compute(x), dtype=np.int8).reshape(-1, channels)


def compute_features_stream(audio: np.ndarray) -> np.ndarray:
    """The same as `compute_features` but through the streaming API, hop by hop (whole hops only)."""
    ext = _ext()
    x = _as_int16(audio, 1, "audio")
    channels = ext.config()["NK_FE_NUM_CHANNELS"]
    return np.frombuffer(ext.compute_stream(x), dtype=np.int8).reshape(-1, channels)


def compute_features_batch(audio: np.ndarray, workers: int | None = None) -> np.ndarray:
    """int8 [n, frames, channels] of int16 clips [n, samples] (a clip of 16000 gives 49 frames).

    The C code releases the GIL, so `workers` threads (default: all cores) share the clips.
    """
    ext = _ext()
    cfg = ext.config()
    x = _as_int16(audio, 2, "audio batch")
    samples = x.shape[1]
    if samples < cfg["NK_FE_WINDOW_SAMPLES"]:
        raise NanokwsError(
            f"clips of {samples} samples are shorter than one window ({cfg['NK_FE_WINDOW_SAMPLES']})"
        )
    frames = (samples - cfg["NK_FE_WINDOW_SAMPLES"]) // cfg["NK_FE_HOP_SAMPLES"] + 1
    out = np.empty((x.shape[0], frames, cfg["NK_FE_NUM_CHANNELS"]), dtype=np.int8)
    workers = max(1, min(workers or os.cpu_count() or 1, len(x)))
    if workers == 1:
        ext.compute_batch(x, out)
        return out
    bounds = np.linspace(0, len(x), workers + 1).astype(int)
    with ThreadPoolExecutor(workers) as pool:
        jobs = [
            pool.submit(ext.compute_batch, x[a:b], out[a:b])
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        for job in jobs:
            job.result()
    return out
