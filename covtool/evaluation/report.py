"""eval's outputs: predictions.csv, metrics.json, confusion.csv/png, and a rich summary table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from covtool.core.atomic import atomic_open, atomic_path
from covtool.core.manifest import order_columns

PREDICTIONS = "predictions.csv"
METRICS = "metrics.json"
CONFUSION_CSV = "confusion.csv"
CONFUSION_PNG = "confusion.png"
OUTPUTS = (PREDICTIONS, METRICS, CONFUSION_CSV, CONFUSION_PNG)


def predictions_frame(df: pd.DataFrame, probs: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """The input rows (every column kept) with ``pred`` and ``prob_<class>`` added."""
    out = df.copy()
    out["pred"] = [classes[i] for i in probs.argmax(axis=1)] if len(out) else []
    for j, name in enumerate(classes):
        out[f"prob_{name}"] = [f"{p:.6f}" for p in probs[:, j]]
    return order_columns(out)


def confusion_frame(cm: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """Rows: true class; columns: predicted class."""
    frame = pd.DataFrame(np.asarray(cm, dtype=np.int64), index=classes, columns=classes)
    frame.index.name = "true\\pred"
    return frame


def write_metrics(path: Path, metrics: dict, force: bool) -> None:
    with atomic_open(path, "w", force=force) as fh:
        json.dump(metrics, fh, indent=2)
        fh.write("\n")


def write_confusion_csv(path: Path, cm: np.ndarray, classes: list[str], force: bool) -> None:
    with atomic_open(path, "w", force=force, newline="") as fh:
        confusion_frame(cm, classes).to_csv(fh, lineterminator="\n")


def plot_confusion(path: Path, cm: np.ndarray, classes: list[str], force: bool,
                   title: str = "") -> None:
    """Counts, coloured by the fraction of each true class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    size = max(4.0, 0.6 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if frac[i, j] > 0.5 else "black")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path, force=force) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
