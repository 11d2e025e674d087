"""The run directory of DESIGN.md: config.json, model.keras, history.csv, curves, checkpoints/.

A run folder is all that is needed to use a model: ``config.json`` holds every option (the model,
the input pipeline, the classes in output order) and ``model.keras`` the trained network.
"""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path

from covtool.core.atomic import atomic_open, atomic_path
from covtool.core.errors import CovtoolError, OutputExistsError

CONFIG = "config.json"
MODEL = "model.keras"
HISTORY = "history.csv"
CURVE = "training-curve.png"
CHECKPOINTS = "checkpoints"
LAST = "last.keras"
BEST = "best.weights.h5"
STATE = "state.json"
RUN_FILES = (CONFIG, MODEL, HISTORY, CURVE, CHECKPOINTS)


def versions() -> dict:
    """covtool's and the libraries' versions, for the record."""
    import keras
    import numpy
    import tensorflow as tf

    from covtool import __version__

    return {"covtool": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": numpy.__version__, "python": platform.python_version(),
            "platform": platform.platform()}


def prepare(run_dir: Path, force: bool, resume: bool) -> None:
    """Refuse to overwrite a finished run (unless ``force``); clear it with ``force``."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise CovtoolError("exists and is not a folder", run_dir)
    if resume:
        if not (run_dir / CHECKPOINTS / STATE).is_file():
            raise CovtoolError("nothing to resume (no checkpoints/state.json)", run_dir)
        return
    present = [n for n in RUN_FILES if (run_dir / n).exists()]
    if present and not force:
        raise OutputExistsError(run_dir / present[0])
    _remove(run_dir, present)
    (run_dir / CHECKPOINTS).mkdir(parents=True, exist_ok=True)


def _remove(run_dir: Path, names, quiet: bool = False) -> None:
    """Remove the run's own files and folders ``names``; ``quiet``: ignore what cannot be."""
    for name in names:
        p = run_dir / name
        try:
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
        except OSError:
            if not quiet:
                raise


def discard(run_dir: Path) -> None:
    """Remove a new run that failed before its first checkpoint (and the folder, when empty)."""
    run_dir = Path(run_dir)
    _remove(run_dir, RUN_FILES, quiet=True)      # called while failing: never hide that error
    try:
        run_dir.rmdir()
    except OSError:  # not empty: the user's other files stay
        pass


def write_json(path: Path, data: dict) -> None:
    with atomic_open(path, "w", force=True) as fh:
        json.dump(data, fh, indent=2, sort_keys=False)
        fh.write("\n")


def read_config(run_dir: Path) -> dict:
    path = Path(run_dir) / CONFIG
    if not Path(run_dir).is_dir():
        raise CovtoolError("no such run folder", run_dir)
    if not path.is_file():
        raise CovtoolError("not a run folder (no config.json)", run_dir)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CovtoolError(f"unreadable config ({exc})", path) from None


def save_model(model, path: Path) -> None:
    """``model.save`` to a temporary name, then rename (a crash never leaves half a file)."""
    with atomic_path(path, force=True) as tmp:
        model.save(tmp)


def save_weights(model, path: Path) -> None:
    """``model.save_weights`` atomically (Keras insists on a ``.weights.h5`` ending)."""
    import os

    path = Path(path)
    tmp = path.with_name(f".{path.name[: -len('.weights.h5')]}.tmp.weights.h5")
    try:
        model.save_weights(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_model(path: Path, compile: bool = False):
    """Load a ``.keras`` model, turning every failure into one clear line."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise CovtoolError("no such model file", path)
    try:
        return keras.saving.load_model(path, compile=compile)
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise CovtoolError(f"corrupt or unreadable model file ({reason})", path) from None


def write_history(path: Path, rows: list[dict]) -> None:
    import pandas as pd

    with atomic_open(path, "w", force=True, newline="") as fh:
        pd.DataFrame(rows).to_csv(fh, index=False, lineterminator="\n")


def plot_history(path: Path, rows: list[dict]) -> None:
    """Loss and accuracy per epoch (training and validation) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.DataFrame(rows)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=False):
        for key, style in ((metric, "-"), (f"val_{metric}", "--")):
            if key in df.columns and df[key].notna().any():
                ax.plot(df["epoch"], df[key], style, marker="o", label=key)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic_path(path, force=True) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
