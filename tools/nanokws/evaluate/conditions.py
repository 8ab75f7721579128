"""Robustness conditions for `nanokws eval`: the same held-out clips with background noise mixed in
at a chosen SNR, or played quieter, then through the device's C frontend and the int8 model.

- SNR: the clip's power (mean square over its one second, as training's noise mixing defines it)
  over the added noise's power. The noise comes from the dataset's `_background_noise_`
  recordings, only from the part that belongs to the evaluated split (data.noise_region), so a
  model never hears in evaluation the noise it was trained with. Near-silent clips (digital
  silence) get the noise at its recorded level.
- Quieter: the whole clip, its own noise included, scaled by -N dB (a distant talker, a low
  microphone gain) and rounded back to int16, as a quieter microphone signal would be.
- Shifted: the whole clip moved N ms later (or earlier, N < 0) in its one-second window, the part
  moved in being digital silence: where a word sits in the window, as a stream's windows see it at
  other offsets than the recording's.

Every draw is seeded by (seed, condition, clip), so a condition gives the same audio on every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import NanokwsError
from ..train.augment import noise_gain, shift_time


@dataclass(frozen=True)
class Condition:
    snr_db: float | None = None  # None: no noise added
    quieter_db: float = 0.0
    shift_ms: float = 0.0  # > 0: the clip later in its window

    @property
    def name(self) -> str:
        parts = []
        if self.snr_db is not None:
            parts.append(f"{self.snr_db:g} dB SNR")
        if self.quieter_db:
            parts.append(f"{self.quieter_db:g} dB quieter")
        if self.shift_ms:
            parts.append(f"{abs(self.shift_ms):g} ms {'later' if self.shift_ms > 0 else 'earlier'}")
        return ", ".join(parts) or "clean"

    def to_json(self) -> dict[str, float | None | str]:
        return {"name": self.name, "snr_db": self.snr_db, "quieter_db": self.quieter_db,
                "shift_ms": self.shift_ms}


def conditions_from(snrs: Sequence[float], quieter: Sequence[float],
                    shifts_ms: Sequence[float] = ()) -> list[Condition]:
    """Clean first, then one condition per SNR, per quieter level and per shift (duplicates dropped)."""
    out = [Condition()]
    for c in ([Condition(snr_db=float(s)) for s in snrs] + [Condition(quieter_db=float(q)) for q in quieter]
              + [Condition(shift_ms=float(t)) for t in shifts_ms]):
        if c not in out:
            out.append(c)
    return out


def apply_condition(audio: np.ndarray, noise: Sequence[np.ndarray], cond: Condition, seed: int,
                    index: int) -> np.ndarray:
    """int16 clips [n, samples] under `cond`; `noise` are int16 recordings (this split's parts)."""
    if cond.snr_db is None and not cond.quieter_db and not cond.shift_ms:
        return audio
    if cond.shift_ms:
        from ..features import FRONTEND_CONFIG

        samples = int(round(cond.shift_ms * FRONTEND_CONFIG["NK_FE_SAMPLE_RATE"] / 1000.0))
        if abs(samples) >= audio.shape[1]:
            raise NanokwsError(f"a shift of {cond.shift_ms:g} ms moves the whole clip out of its window")
        audio = shift_time(audio.T, samples, 0).T  # clips are rows: time is axis 1
    x = audio.astype(np.float64)
    n, length = x.shape
    if cond.snr_db is not None:
        if not noise:
            raise NanokwsError("--snr needs background noise: the dataset has no _background_noise_ "
                               "recordings")
        rng = np.random.default_rng([seed, 7, index])
        for i in range(n):
            rec = noise[int(rng.integers(len(noise)))]
            start = int(rng.integers(max(1, len(rec) - length + 1)))
            seg = np.resize(rec[start:start + length], length).astype(np.float64)
            sig_power = float(np.mean(x[i] * x[i]))
            gain = 1.0 if sig_power < 1.0 else noise_gain(sig_power, float(np.mean(seg * seg)), cond.snr_db)
            x[i] += seg * gain
    if cond.quieter_db:
        x *= 10.0 ** (-cond.quieter_db / 20.0)
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def plot_conditions(path: str, rows: Sequence[dict], title: str) -> None:
    """Bar chart of int8 accuracy per condition, with the 95% interval and the clean level dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..atomic import atomic_path

    names = [r["name"] for r in rows]
    acc = np.array([100.0 * r["accuracy"] for r in rows])
    err = np.array([196.0 * np.sqrt(r["accuracy"] * (1 - r["accuracy"]) / max(r["n"], 1)) for r in rows])
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(rows) + 2), 4))
    def color(r: dict) -> str:
        if r["snr_db"] is not None:
            return "tab:blue"
        if r["quieter_db"]:
            return "tab:orange"
        return "tab:purple" if r.get("shift_ms") else "tab:green"

    colors = [color(r) for r in rows]
    ax.bar(range(len(rows)), acc, yerr=err, color=colors, capsize=3)
    ax.axhline(acc[0], color="tab:green", ls="--", lw=1)
    ax.axhline(acc[0] - 5.0, color="tab:red", ls=":", lw=1, label="clean - 5 points")
    for i, a in enumerate(acc):
        ax.text(i, a + err[i] + 0.5, f"{a:.1f}", ha="center", fontsize=8)
    ax.set_xticks(range(len(rows)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("int8 accuracy (%)")
    ax.set_ylim(max(0.0, float(acc.min()) - 15.0), 100.0)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
