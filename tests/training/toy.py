"""A separable toy problem on disk: 16-bit images of two classes (a bright square vs stripes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from covtool.core.imageio import write_image

SPLITS = ("train", "train", "val", "test", "train")

#: A tiny custom CNN that learns the toy problem in a few epochs on a CPU.
TINY = ["--model", "custom", "--filters", "8,8,16,16", "--final-filters", "8",
        "--head-units", "32,32", "--dropout", "0.1", "--block-dropout", "0",
        "--optimizer", "adam", "--lr", "3e-3", "--batch-size", "8"]


def toy_image(label: int, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    img = rng.normal(1000, 50, (size, size))
    if label:
        q = size // 4
        img[q:3 * q, q:3 * q] += 400
    else:
        img[:, ::4] += 300
    return img.astype(np.uint16)


def write_toy(folder: Path, n: int = 60, size: int = 32, suffix: str = ".tif",
              classes=("normal", "covid"), seed: int = 0) -> Path:
    """Write ``n`` images and ``manifest.csv`` (id, path, label, split) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = i % 2
        write_image(folder / f"img{i}{suffix}", toy_image(label, rng, size))
        rows.append({"id": f"img{i}", "path": f"img{i}{suffix}", "label": classes[label],
                     "split": SPLITS[i % len(SPLITS)]})
    path = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def write_truncated_toy(folder: Path, bad: str, n: int = 10) -> Path:
    """:func:`write_toy` (``n`` images) with the image ``bad`` cut in half; the manifest."""
    manifest = write_toy(folder, n=n)
    path = folder / bad
    raw = path.read_bytes()
    path.write_bytes(raw[:len(raw) // 2])
    return manifest


def write_untrained_run(manifest: Path, run: Path) -> Path:
    """A run folder for ``manifest``'s classes and images with an untrained tiny model (what
    eval and explain need, without the seconds of training)."""
    from covtool.core.manifest import read_manifest
    from covtool.models.build import ModelConfig, build_model
    from covtool.training import rundir
    from covtool.training.config import PipelineConfig, TrainConfig
    from covtool.training.train import resolve

    model = ModelConfig(name="custom", filters=[8, 8, 8, 8], final_filters=8, head_units=[8, 8])
    cfg = resolve(TrainConfig(model=model, pipeline=PipelineConfig((32, 32)), batch_size=2),
                  read_manifest(manifest))
    run.mkdir()
    rundir.write_json(run / rundir.CONFIG, cfg.to_dict())
    rundir.save_model(build_model(cfg.model), run / rundir.MODEL)
    return run
