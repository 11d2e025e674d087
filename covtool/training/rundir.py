"""The run directory of DESIGN.md: config.json, model.keras, history.csv, curves, checkpoints/.

A run folder is all that is needed to use a model: ``config.json`` holds every option (the model,
the input pipeline, the classes in output order) and ``model.keras`` the trained network.
"""

from __future__ import annotations

import json
import platform
import shutil
import zipfile
from pathlib import Path

from covtool.core.atomic import atomic_open, atomic_path
from covtool.core.errors import CovtoolError, OutputExistsError

CONFIG = "config.json"
MODEL = "model.keras"
HISTORY = "history.csv"
CURVE = "training-curve.png"
CHECKPOINTS = "checkpoints"
LAST = "last.npz"        # every variable of the model and its optimizer (write_variables)
BEST = "best.npz"        # the model's variables at the best epoch
OLD_LAST = "last.keras"  # the same, as older covtool versions wrote them (still resumed)
OLD_BEST = "best.weights.h5"
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


def _variables(model, optimizer: bool) -> list:
    out = list(model.variables)
    if optimizer:
        out += list(model.optimizer.variables)
    return out


def snapshot(model, optimizer: bool = True) -> list:
    """The values of the model's variables (and its optimizer's) now, as numpy arrays that later
    training steps do not change (TensorFlow copies a variable's buffer on write while a read of
    it is alive)."""
    import numpy as np

    return [np.asarray(v.numpy()) for v in _variables(model, optimizer)]


def write_snapshot(values: list, path: Path) -> None:
    """What :func:`snapshot` took, written as :func:`write_variables` writes it."""
    import numpy as np

    with atomic_open(Path(path), "wb", force=True) as fh:
        np.savez(fh, *values, shapes=np.array([str(v.shape) for v in values]))


class CheckpointWriter:
    """Writes an epoch's checkpoint files in one background thread while the next epoch trains.

    Each :meth:`submit` first waits for the previous epoch's files (so they are written in epoch
    order and an error is raised at the next epoch at the latest); :meth:`wait` (called before
    anything reads them and when the loop ends, by an interrupt too) waits for the last one.
    Within an epoch the order is the synchronous one: the variables, then ``state.json`` that
    names their epoch, then the history.
    """

    def __init__(self):
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(1, thread_name_prefix="covtool-checkpoint")
        self._pending = None

    def submit(self, job) -> None:
        self.wait()
        self._pending = self._pool.submit(job)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)


def write_variables(model, path: Path, optimizer: bool = True) -> None:
    """The values of the model's variables (and its optimizer's: moments, step count) in their
    order, as an uncompressed ``.npz``, atomically.

    Why not ``model.save``: Keras's HDF5 writer costs about 2 ms per variable, 3.7-6 s for
    DenseNet-169 and Adam (1,864 variables, 145 MB) on two CPU cores, where this takes 0.8 s;
    written after every epoch, that was 67 % of a 16-image epoch (benchmarks/bench_train.py).
    The architecture is rebuilt from ``config.json`` (:func:`covtool.models.build_model` is a
    pure function of it); the shapes stored beside the values are checked on reading.
    """
    write_snapshot(snapshot(model, optimizer), path)


def read_variables(model, path: Path, optimizer: bool = True) -> None:
    """Assign what :func:`write_variables` stored to the model (built, and compiled with its
    optimizer built, when ``optimizer``); one clear line where the file does not fit it."""
    import numpy as np

    path = Path(path)
    variables = _variables(model, optimizer)
    try:
        with np.load(path, allow_pickle=False) as data:
            n = len(data.files) - 1
            if n != len(variables):
                raise CovtoolError(f"holds {n} variables, the model has {len(variables)} "
                                   f"(a checkpoint of another model?)", path)
            values = [data[f"arr_{i}"] for i in range(n)]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise CovtoolError(f"corrupt or unreadable checkpoint ({exc})", path) from None
    for i, (var, value) in enumerate(zip(variables, values, strict=True)):
        if tuple(var.shape) != value.shape:
            raise CovtoolError(f"variable {i} ({var.path}) has shape {value.shape}, the model "
                               f"{tuple(var.shape)} (a checkpoint of another model?)", path)
    for var, value in zip(variables, values, strict=True):
        var.assign(value)


def remove_old(folder: Path, name: str) -> None:
    """Remove an older run's checkpoint file ``name`` once its successor is written (a resumed
    run then never restores from a stale one)."""
    try:
        (Path(folder) / name).unlink()
    except FileNotFoundError:
        pass


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
