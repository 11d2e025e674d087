"""Resample TEM images to one pixel size (Lanczos-3, antialiased) with their annotations.

Rows need 'path' and 'pixel_size_nm' (or --source-pixel-size), and optionally 'annotation'.
Every image is written to OUTDIR as '<id>.tif' (dtype kept), its annotation as '<id>.txt'
and its particle 'mask' (if any) as '<id>_mask.png';
the row's 'pixel_size_nm' becomes the target and 'source_pixel_size_nm', 'scale' are added.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from covtool.cli.common import Force, OutDir, OutManifest, ShardOpt, SkipBad
from covtool.core import console
from covtool.core.atomic import check_writable
from covtool.core.errors import CovtoolError, UsageError
from covtool.core.manifest import STDIO, check_output, order_columns, read_manifest, write_manifest
from covtool.core.progress import track
from covtool.core.shard import parse_shard
from covtool.em.items import failed_rows, image_ids, pixel_size, remove_files, source_name
from covtool.em.pipeline import rescale_file

NEW_COLUMNS = ["pixel_size_nm", "source_pixel_size_nm", "scale", "width", "height"]


def _scaled(value, scale: float) -> object:
    """A ``center_x``/``center_y`` cell mapped like the annotation (pixel centres)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return value
    return value if math.isnan(v) else round((v + 0.5) * scale - 0.5, 4)


def _cell(df: pd.DataFrame, idx, column: str) -> str:
    value = str(df.at[idx, column]).strip() if column in df.columns else ""
    return "" if value == "nan" else value


def rescale_command(
    manifest: Annotated[str, typer.Argument(metavar="MANIFEST", help="Image manifest ('-' for stdin).")],
    outdir: OutDir = ...,
    output: OutManifest = ...,
    pixel_size_nm: Annotated[float, typer.Option("--pixel-size", min=1e-9, metavar="NM",
                                                 help="Target pixel size in nm (the paper: 1 nm).")] = 1.0,
    source_pixel_size: Annotated[float | None, typer.Option(
        "--source-pixel-size", min=1e-9, metavar="NM",
        help="Pixel size of rows without a 'pixel_size_nm' value (e.g. a whole folder from one microscope setting).")] = None,
    skip_bad: SkipBad = False,
    shard: ShardOpt = None,
    force: Force = False,
) -> None:
    check_output(output, force)
    df = read_manifest(manifest, required=["path"])
    if "pixel_size_nm" not in df.columns and source_pixel_size is None:
        raise UsageError("rows need a 'pixel_size_nm' column, or give --source-pixel-size",
                         df.attrs.get("manifest"))
    ids = image_ids(df)
    shard_ = parse_shard(shard)
    todo = list(range(len(df)))
    if shard_ is not None:
        todo = shard_.select(todo)
    df = df.iloc[todo].copy()
    ids = [ids[i] for i in todo]
    failed = failed_rows(df)
    outdir = Path(outdir)
    records = {idx: {**df.loc[idx].to_dict(), "id": iid} for idx, iid in zip(df.index, ids)}
    n_ok = n_bad = 0
    # bad pixel sizes and existing outputs are refused before any work
    targets, sizes = {}, {}
    for idx, iid in zip(df.index, ids):
        if failed[idx]:
            continue
        try:
            sizes[idx] = pixel_size(df, idx, source_pixel_size)
        except CovtoolError as exc:
            if not skip_bad:
                raise
            records[idx]["error"] = str(exc)
            n_bad += 1
            continue
        ann = _cell(df, idx, "annotation")
        mask = _cell(df, idx, "mask")
        t_img = outdir / f"{iid}.tif"
        t_ann = outdir / f"{iid}.txt" if ann else None
        t_mask = outdir / f"{iid}_mask.png" if mask else None
        for t in (t_img, t_ann, t_mask):
            if t is not None:
                check_writable(t, force)
        targets[idx] = (Path(str(df.at[idx, "path"])), Path(ann) if ann else None, t_img, t_ann,
                        Path(mask) if mask else None, t_mask)

    written: list[Path] = []
    for idx in track(list(targets), "rescale"):
        image, ann, t_img, t_ann, mask, t_mask = targets[idx]
        px = sizes[idx]
        try:
            res = rescale_file(image, ann, px, pixel_size_nm, t_img, t_ann, force, mask, t_mask)
            written.extend(t for t in (t_img, t_ann, t_mask) if t is not None)
        except CovtoolError as exc:
            if not skip_bad:
                remove_files(written)
                raise
            records[idx]["error"] = str(exc)
            n_bad += 1
            continue
        rec = records[idx]
        rec["source"] = source_name(df, idx)
        rec["path"] = str(t_img)
        if t_ann is not None:
            rec["annotation"] = str(t_ann)
        if t_mask is not None:
            rec["mask"] = str(t_mask)
        rec.update(pixel_size_nm=pixel_size_nm, source_pixel_size_nm=px, scale=round(res.scale, 10),
                   width=res.width, height=res.height)
        for c in ("center_x", "center_y"):
            if c in rec:
                rec[c] = _scaled(rec[c], res.scale)
        n_ok += 1
    cols = list(df.columns) + [c for c in ["id", "source", *NEW_COLUMNS] if c not in df.columns]
    if skip_bad and "error" not in cols:
        cols.append("error")
    out = pd.DataFrame(list(records.values()), columns=cols)
    write_manifest(order_columns(out), output, force)
    if not console.state.quiet:
        console.stderr.print(_summary(out, n_ok, n_bad))
        dest = "stdout" if output == STDIO else output
        console.info(f"{n_ok} images rescaled to {pixel_size_nm:g} nm/px in {outdir} -> {dest}")


def _summary(out: pd.DataFrame, n_ok: int, n_bad: int):
    from rich.table import Table

    table = Table(title="rescale", title_justify="left")
    for col in ("images", "failed", "scale min", "scale max"):
        table.add_column(col, justify="right")
    scales = pd.to_numeric(out["scale"], errors="coerce").dropna()
    table.add_row(str(n_ok), str(n_bad), f"{scales.min():.4g}" if len(scales) else "-",
                  f"{scales.max():.4g}" if len(scales) else "-")
    return table
