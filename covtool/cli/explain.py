"""Grad-CAM heatmaps of a trained run on chosen images: overlay PNGs (and .npy arrays).

The heatmap is taken at the last convolutional layer (found automatically, nested backbones
included) or at --layer, for the predicted class or --class. Writes OUTDIR/<id>.png and a
manifest OUTDIR/explain.csv (id, path of the overlay, heatmap, source image, label, pred, prob).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from covtool.cli.common import Force, OutDir, ShardOpt, load_tensorflow
from covtool.core import console
from covtool.core.atomic import atomic_path
from covtool.core.errors import ManifestError, ParameterError
from covtool.core.imageio import write_image
from covtool.core.manifest import check_output, read_manifest, write_manifest
from covtool.core.naming import safe_id
from covtool.core.progress import make_progress
from covtool.core.shard import parse_shard


def explain_command(
    run: Annotated[Path, typer.Argument(metavar="RUNDIR", help="A trained run folder.")],
    manifest: Annotated[str, typer.Argument(metavar="MANIFEST", help="Images to explain ('-' for stdin).")],
    outdir: OutDir = ...,
    layer: Annotated[str | None, typer.Option("--layer", help="Target layer name or path (default: the last convolutional layer).")] = None,
    class_name: Annotated[str | None, typer.Option("--class", help="Explain this class (default: the predicted one).")] = None,
    split: Annotated[str | None, typer.Option("--split", help="Only rows of this split.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many images.")] = None,
    npy: Annotated[bool, typer.Option("--npy", metavar="", help="Also save each heatmap as a float32 .npy array.")] = False,
    alpha: Annotated[float, typer.Option("--alpha", min=0.0, max=1.0, help="Opacity of the heatmap in the overlay.")] = 0.4,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 8,
    shard: ShardOpt = None,
    force: Force = False,
) -> None:
    load_tensorflow()
    from covtool.evaluation.predict import load_run
    from covtool.explain.gradcam import find_last_conv_layer, gradcam, overlay
    from covtool.training.dataset import make_dataset
    from covtool.training.table import image_table

    out_manifest = outdir / "explain.csv"
    check_output(out_manifest, force)
    df = read_manifest(manifest, required=["path"])
    if split is not None:
        if "split" not in df.columns:
            raise ManifestError(f"missing column split (needed by --split {split})",
                                df.attrs.get("manifest"), 1)
        df = df[df["split"] == split]
    if limit is not None:
        df = df.iloc[:limit]
    shard_ = parse_shard(shard)
    if shard_ is not None:
        df = df.iloc[shard_.select(list(range(len(df))))]
    cfg, model = load_run(run)
    classes = list(cfg.classes)
    if class_name is not None and class_name not in classes:
        raise ParameterError("class_name", f"{class_name!r} is not one of the model's classes "
                                           f"({', '.join(classes)})")
    target = layer or find_last_conv_layer(model)
    table = image_table(df, classes, require_label=False)
    ds = make_dataset(table, replace(cfg.pipeline, cache="none"), batch_size, with_labels=False)
    ids = [safe_id(i) for i in table.ids]
    rows, pos = [], 0
    with make_progress() as prog:
        task = prog.add_task("explain", total=len(table))
        for batch in ds:
            x = np.asarray(batch)
            cls = None if class_name is None else classes.index(class_name)
            heat, probs = gradcam(model, x, cls, target)
            for j in range(len(x)):
                i = pos + j
                pred = int(np.argmax(probs[j]))
                shown = pred if cls is None else cls
                png = outdir / f"{ids[i]}.png"
                write_image(png, overlay(x[j], heat[j], alpha), force=force)
                heat_path = ""
                if npy:
                    heat_path = outdir / f"{ids[i]}.npy"
                    with atomic_path(heat_path, force=force) as tmp:
                        with open(tmp, "wb") as fh:
                            np.save(fh, heat[j].astype(np.float32))
                label = classes[table.labels[i]] if table.labels[i] >= 0 else ""
                rows.append({"id": table.ids[i], "path": str(png), "heatmap": str(heat_path),
                             "source": table.paths[i], "label": label, "pred": classes[pred],
                             "explained_class": classes[shown], "prob": float(probs[j, shown]),
                             "layer": target})
                prog.advance(task)
            pos += len(x)
    write_manifest(pd.DataFrame(rows), out_manifest, force)
    console.info(f"{len(rows)} Grad-CAM overlays at layer {target} -> {outdir}")
