"""Cut patches centred on the annotated virus particles (TEM virus benchmark).

Rows need 'path' and 'annotation'. One patch per centre point, one per vertex of a centre line,
one at the midpoint of a two-point line; patches reaching past the border are mirror-padded.
Each patch is written to OUTDIR as '<image id>_o<object>_v<vertex>.tif' (or '_mid'), and gets a
row with 'group' = the image's id, 'object', 'vertex', 'center_x', 'center_y' (pixels of the
source image), 'patch_x0', 'patch_y0' and the image's 'label', 'split', 'source', 'pixel_size_nm'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from covtool.cli.common import Force, OutDir, OutManifest, ShardOpt, SkipBad
from covtool.core import console
from covtool.core.atomic import check_writable
from covtool.core.errors import CovtoolError, OutputExistsError, UsageError
from covtool.core.manifest import (
    STDIO,
    check_output,
    order_columns,
    read_manifest,
    row_error,
    write_manifest,
)
from covtool.core.naming import safe_id
from covtool.core.progress import make_progress
from covtool.core.shard import parse_shard
from covtool.em.items import failed_rows, image_ids, remove_files, source_name
from covtool.em.patches import DEFAULT_SIZE, MIRROR_MODES, PatchCentre
from covtool.em.pipeline import crop_file, patch_plan

PATCH_COLUMNS = ["id", "path", "label", "group", "split", "source", "object", "vertex", "center_kind",
                 "center_x", "center_y", "patch_x0", "patch_y0", "pixel_size_nm"]
#: Image-level columns that do not describe a patch (its files, its own count).
DROPPED = ("annotation", "mask", "width", "height", "error")
FORMATS = {"tiff": ".tif", "png": ".png"}


def patch_id(image_id: str, c: PatchCentre) -> str:
    """``<image>_o<object>_v<vertex>``, ``_mid`` for a two-point line's midpoint (0-based, 3 digits)."""
    tail = "mid" if c.kind == "midpoint" else f"v{int(c.vertex):03d}"
    return safe_id(image_id, f"o{c.object:03d}", tail)


def crop_command(
    manifest: Annotated[str, typer.Argument(metavar="MANIFEST", help="Image manifest ('-' for stdin).")],
    outdir: OutDir = ...,
    output: OutManifest = ...,
    size: Annotated[int, typer.Option("--size", min=1, help="Patch width and height in pixels (256 = 256 nm at 1 nm/px).")] = DEFAULT_SIZE,
    fmt: Annotated[str, typer.Option("--format", metavar="tiff|png",
                                     help="Patch files: TIFF keeps any dtype; PNG holds 8/16-bit.")] = "tiff",
    mirror: Annotated[str, typer.Option("--mirror", metavar="symmetric|reflect",
                                        help="Mirror padding past the border: 'symmetric' repeats the edge pixel, 'reflect' does not.")] = "symmetric",
    skip_bad: SkipBad = False,
    shard: ShardOpt = None,
    force: Force = False,
) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if mirror not in MIRROR_MODES:
        raise UsageError(f"--mirror must be one of {', '.join(MIRROR_MODES)}, got {mirror!r}")
    check_output(output, force)
    df = read_manifest(manifest, required=["path"])
    if "annotation" not in df.columns:
        raise UsageError("rows need an 'annotation' column (the particle centres)", df.attrs.get("manifest"))
    ids = image_ids(df)
    todo = list(range(len(df)))
    shard_ = parse_shard(shard)
    if shard_ is not None:
        todo = shard_.select(todo)
    df = df.iloc[todo].copy()
    ids = [ids[i] for i in todo]
    failed = failed_rows(df)
    outdir = Path(outdir)
    suffix = FORMATS[fmt]

    # read every annotation first (small): malformed ones and existing outputs stop before any work
    plans: dict[object, list[PatchCentre]] = {}
    errors: dict[object, str] = {}
    for idx, iid in zip(df.index, ids):
        if failed[idx]:
            errors[idx] = str(df.at[idx, "error"])
            continue
        ann = str(df.at[idx, "annotation"]).strip()
        try:
            if not ann or ann == "nan":
                raise row_error(df, idx, "no annotation for this image (empty 'annotation')")
            plans[idx] = patch_plan(Path(ann))
            for c in plans[idx]:
                check_writable(outdir / f"{patch_id(iid, c)}{suffix}", force)
        except CovtoolError as exc:
            if not skip_bad or isinstance(exc, OutputExistsError):
                raise
            errors[idx] = str(exc)

    rows: list[dict] = []
    written: list[Path] = []
    keep_cols = [c for c in df.columns if c not in DROPPED and c not in PATCH_COLUMNS]
    with make_progress() as prog:
        task = prog.add_task("crop", total=sum(len(p) for p in plans.values()))
        for idx, iid in zip(df.index, ids):
            base = {c: df.at[idx, c] for c in keep_cols}
            image_row = {"label": df.at[idx, "label"] if "label" in df.columns else "",
                         "group": iid,
                         "split": df.at[idx, "split"] if "split" in df.columns else "",
                         "source": source_name(df, idx),
                         "pixel_size_nm": df.at[idx, "pixel_size_nm"] if "pixel_size_nm" in df.columns else ""}
            if idx not in errors:
                try:
                    made = crop_file(Path(str(df.at[idx, "path"])), Path(str(df.at[idx, "annotation"])),
                                     lambda c, iid=iid: outdir / f"{patch_id(iid, c)}{suffix}",
                                     size, mirror, force, on_patch=lambda: prog.advance(task))
                except CovtoolError as exc:
                    if not skip_bad:
                        remove_files(written)
                        raise
                    errors[idx] = str(exc)
                else:
                    for c, dest, (x0, y0) in made:
                        written.append(dest)
                        rows.append({"id": patch_id(iid, c), "path": str(dest), **image_row,
                                     "object": c.object, "vertex": c.vertex, "center_kind": c.kind,
                                     "center_x": round(c.x, 4), "center_y": round(c.y, 4),
                                     "patch_x0": x0, "patch_y0": y0, **base, "error": ""})
                    continue
            rows.append({"id": iid, "path": str(df.at[idx, "path"]), **image_row, **base,
                         "error": errors[idx]})
    out = pd.DataFrame(rows, columns=PATCH_COLUMNS + keep_cols + ["error"])
    if not skip_bad and "error" not in df.columns:
        out = out.drop(columns=["error"])
    write_manifest(order_columns(out), output, force)
    if not console.state.quiet:
        console.stderr.print(_summary(out))
        dest = "stdout" if output == STDIO else output
        n_img = len(df) - len(errors)
        console.info(f"{len(written)} patches of {size}x{size} from {n_img} images in {outdir} -> {dest}")


def _summary(out: pd.DataFrame):
    from rich.table import Table

    ok = out[out["error"].fillna("").astype(str).eq("")] if "error" in out.columns else out
    table = Table(title="patches per class and split", title_justify="left")
    table.add_column("label")
    splits = sorted({str(s) for s in ok["split"]}) if len(ok) else []
    for s in splits:
        table.add_column(s or "(no split)", justify="right")
    table.add_column("images", justify="right")
    for label, g in ok.groupby(ok["label"].astype(str)):
        counts = g["split"].astype(str).value_counts()
        table.add_row(label or "(no label)", *[str(int(counts.get(s, 0))) for s in splits],
                      str(g["group"].nunique()))
    return table
