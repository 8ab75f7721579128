"""Accuracy, confusion matrix and per-class precision/recall/F1, plus their text and PNG forms."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..atomic import atomic_path


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """[true, predicted] counts."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def per_class(cm: np.ndarray, labels: list[str]) -> dict[str, dict[str, float]]:
    """label -> precision, recall, f1, support (0.0 where undefined)."""
    out = {}
    for i, label in enumerate(labels):
        tp = float(cm[i, i])
        predicted, actual = float(cm[:, i].sum()), float(cm[i, :].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = {"precision": precision, "recall": recall, "f1": f1, "support": int(actual)}
    return out


def format_report(cm: np.ndarray, labels: list[str], stats: dict[str, dict[str, float]]) -> str:
    width = max(9, max(len(x) for x in labels) + 1)
    lines = ["label".ljust(width) + f"{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"]
    for label in labels:
        s = stats[label]
        lines.append(label.ljust(width) + f"{s['precision']:>10.3f}{s['recall']:>10.3f}{s['f1']:>10.3f}"
                     f"{s['support']:>9d}")
    cell = max(5, len(str(int(cm.max(initial=0)))) + 1)
    short = [x[:cell - 1] for x in labels]
    lines += ["", "confusion (rows: true, columns: predicted)",
              "".ljust(width) + "".join(s.rjust(cell) for s in short)]
    for label, row in zip(labels, cm, strict=True):
        lines.append(label.ljust(width) + "".join(str(int(v)).rjust(cell) for v in row))
    return "\n".join(lines)


def plot_confusion(cm: np.ndarray, labels: list[str], path: str | os.PathLike[str], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = 3 + 0.5 * len(labels)
    fig, ax = plt.subplots(figsize=(size, size))
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _balanced(cm: np.ndarray) -> float:
    support = cm.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(cm)[present] / support[present])) if present.any() else 0.0


def summarize(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict[str, Any]:
    cm = confusion_matrix(y_true, y_pred, len(labels))
    n = int(len(y_true))
    return {
        "accuracy": float(np.trace(cm) / n) if n else 0.0,
        # Mean per-class recall over the classes present: removes the effect of a different class mix
        # (e.g. the feature-form validation's silence/unknown shares against the real test's).
        "balanced_accuracy": _balanced(cm),
        "n": n,
        "labels": labels,
        "confusion": cm.tolist(),
        "per_class": per_class(cm, labels),
    }
