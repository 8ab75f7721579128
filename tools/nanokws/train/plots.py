"""Training curves as a PNG (matplotlib, headless)."""

from __future__ import annotations

import os

from ..atomic import atomic_path


def plot_history(history: dict[str, list[float]], path: str | os.PathLike[str], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = range(1, len(history.get("loss", [])) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, ax in (("loss", ax_loss), ("accuracy", ax_acc)):
        for prefix, style in (("", "-"), ("val_", "--")):
            if prefix + key in history:
                label = ("validation " if prefix else "train ") + key
                ax.plot(epochs, history[prefix + key], style, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
