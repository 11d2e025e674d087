"""SC2-MID visual features of masked objects: shape (nm), texture (HOG, GLCM) and deep (ImageNet CNNs).

Rows need 'path' (the image), 'mask' (its ground truth, foreground non-zero) and 'pixel_size_nm',
unless --pixel-size gives it or --scale-bar-nm measures the image's scale bar. Writes one row per
image (or per object with --per-object) that joins to the input manifest by 'id' ('image_id' per
object): area_nm2, perimeter_nm, major/minor_axis_nm, eccentricity (major/minor),
ellipse_eccentricity, hu_1..7, hog_1..36, glcm_1..16 and, with --deep, deep_1..N.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from covtool.cli.common import Force, OutManifest, ShardOpt, SkipBad
from covtool.core import console
from covtool.core.atomic import atomic_path, check_writable
from covtool.core.errors import CovtoolError, UsageError
from covtool.core.manifest import STDIO, check_output, read_manifest, row_error, write_manifest
from covtool.core.progress import make_progress
from covtool.core.shard import parse_shard
from covtool.em.items import failed_rows, image_ids, pixel_size
from covtool.features.pipeline import ObjectFeatures, item_features, load_item, measure_scale
from covtool.features.shape import SHAPE_COLUMNS
from covtool.features.texture import GLCM_COLUMNS, HOG_COLUMNS


class DeepName(str, Enum):
    vgg16 = "vgg16"
    xception = "xception"
    densenet121 = "densenet121"


class OutFormat(str, Enum):
    csv = "csv"
    parquet = "parquet"


def _row_scale(df: pd.DataFrame, idx, default: float | None) -> float:
    raw = str(df.at[idx, "pixel_size_nm"]).strip() if "pixel_size_nm" in df.columns else ""
    if raw in ("", "nan") and default is None:
        raise row_error(df, idx, "no scale: empty 'pixel_size_nm' (give it, --pixel-size or --scale-bar-nm)")
    return pixel_size(df, idx, default)


class _DeepRunner:
    """Batches deep inputs and writes their features into the output rows (and feature maps)."""

    def __init__(self, name: str, weights: str, input_size: int, batch_size: int,
                 maps_dir: Path | None, layer: str | None, channels: int, force: bool):
        from covtool.features.deep import DEEP_MODELS, build_extractor

        self.name, self.input_size, self.batch_size = name, input_size, batch_size
        self.maps_dir, self.channels, self.force = maps_dir, channels, force
        self.n = DEEP_MODELS[name].features
        if maps_dir is not None and layer is None:
            layer = DEEP_MODELS[name].default_layer
        self.model = build_extractor(name, weights, input_size, layer if maps_dir is not None else None)
        self.pending: list[tuple[dict, object]] = []

    def add(self, row: dict, region) -> None:
        self.pending.append((row, region))
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        from covtool.core.imageio import write_image
        from covtool.features.deep import deep_features, feature_map_grid, prepare_batch

        if not self.pending:
            return
        batch = prepare_batch([r for _, r in self.pending], self.name, self.input_size)
        feats, maps = deep_features(self.model, batch)
        for k, (row, _) in enumerate(self.pending):
            row.update({f"deep_{j + 1}": float(v) for j, v in enumerate(feats[k])})
            if maps is not None and self.maps_dir is not None:
                write_image(self.maps_dir / f"{row['id']}.png", feature_map_grid(maps[k], self.channels),
                            force=self.force)
        self.pending = []


def features_command(
    manifest: Annotated[str, typer.Argument(metavar="MANIFEST", help="Manifest with 'path' and 'mask' ('-' for stdin).")],
    output: OutManifest = ...,
    scale_bar_nm: Annotated[float | None, typer.Option(
        "--scale-bar-nm", min=1e-9, metavar="NM",
        help="Measure each image's scale bar, which stands for NM nanometres (SC2-MID: 100 nm = 206 px); "
             "writes 'scale_bar_px' and the measured 'pixel_size_nm'.")] = None,
    pixel_size_nm: Annotated[float | None, typer.Option(
        "--pixel-size", min=1e-9, metavar="NM",
        help="nm per pixel for rows without a 'pixel_size_nm' value.")] = None,
    deep: Annotated[DeepName | None, typer.Option(
        "--deep", help="Also write global-average-pooled features of this ImageNet CNN (deep_1..N).")] = None,
    weights: Annotated[str, typer.Option(
        "--weights", metavar="imagenet|none|PATH", help="Deep model weights (imagenet needs the internet "
        "or keras' cache; PATH: a local no-top weights file).")] = "imagenet",
    input_size: Annotated[int, typer.Option("--input-size", min=32, help="Deep model input side in pixels.")] = 224,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per deep-model batch.")] = 16,
    feature_maps: Annotated[Path | None, typer.Option(
        "--feature-maps", metavar="DIR", help="With --deep: save a PNG grid of --feature-layer's maps per row as DIR/<id>.png.")] = None,
    feature_layer: Annotated[str | None, typer.Option(
        "--feature-layer", help="Layer for --feature-maps (default an early one: vgg16 block1_conv2, "
        "xception block1_conv1_act, densenet121 conv1_relu).")] = None,
    feature_channels: Annotated[int, typer.Option("--feature-channels", min=1, help="Maps per grid (the first N channels).")] = 16,
    per_object: Annotated[bool, typer.Option(
        "--per-object", help="One row per connected component of the mask (id '<id>_<k>', 'image_id', 'object').")] = False,
    masked_texture: Annotated[bool, typer.Option(
        "--texture-mask/--no-texture-mask", help="Zero the pixels outside the mask in the texture region.")] = True,
    fmt: Annotated[OutFormat, typer.Option("--format", help="Output table format (parquet needs pyarrow).")] = OutFormat.csv,
    skip_bad: SkipBad = False,
    shard: ShardOpt = None,
    force: Force = False,
) -> None:
    if fmt == OutFormat.parquet:
        if output == STDIO:
            raise UsageError("--format parquet cannot be written to stdout; give -o FILE.parquet")
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UsageError("--format parquet needs pyarrow (pip install pyarrow); use --format csv") from None
    if feature_maps is not None and deep is None:
        raise UsageError("--feature-maps needs --deep MODEL")
    check_output(output, force)
    df = read_manifest(manifest, required=["path", "mask"])
    if scale_bar_nm is None and pixel_size_nm is None and "pixel_size_nm" not in df.columns:
        raise UsageError("no scale: rows need a 'pixel_size_nm' column, or give --pixel-size or --scale-bar-nm",
                         df.attrs.get("manifest"))
    ids = image_ids(df)
    todo = list(range(len(df)))
    shard_ = parse_shard(shard)
    if shard_ is not None:
        todo = shard_.select(todo)
    failed = failed_rows(df)
    if feature_maps is not None and not per_object:
        for i in todo:
            check_writable(feature_maps / f"{ids[i]}.png", force)
    runner = None
    if deep is not None:
        runner = _DeepRunner(deep.value, weights, input_size, batch_size, feature_maps, feature_layer,
                             feature_channels, force)

    rows: list[dict] = []
    n_ok = n_bad = 0
    with make_progress() as prog:
        task = prog.add_task("features", total=len(todo))
        for i in todo:
            idx, iid = df.index[i], ids[i]
            prog.advance(task)
            if failed[idx]:
                rows.append({"id": iid, "error": str(df.at[idx, "error"])})
                n_bad += 1
                continue
            image_path, mask_path = Path(str(df.at[idx, "path"])), Path(str(df.at[idx, "mask"]))
            try:
                extra: dict = {}
                if scale_bar_nm is None:
                    s = _row_scale(df, idx, pixel_size_nm)
                image, mask = load_item(image_path, mask_path)
                if scale_bar_nm is not None:
                    s, bar = measure_scale(image, scale_bar_nm, image_path)
                    extra["scale_bar_px"] = bar.length_px
                objects: list[ObjectFeatures] = item_features(image, mask, s, per_object, masked_texture)
            except CovtoolError as exc:
                if not skip_bad:
                    raise
                rows.append({"id": iid, "error": str(exc)})
                n_bad += 1
                continue
            for ob in objects:
                head = {"id": iid} if ob.obj is None else {"id": f"{iid}_{ob.obj}", "image_id": iid, "object": ob.obj}
                row = {**head, "pixel_size_nm": s, **extra, **ob.values}
                rows.append(row)
                if runner is not None:
                    runner.add(row, ob.region)
            n_ok += 1
        if runner is not None:
            runner.flush()

    cols = ["id"] + (["image_id", "object"] if per_object else []) + ["pixel_size_nm"]
    cols += (["scale_bar_px"] if scale_bar_nm is not None else []) + SHAPE_COLUMNS + HOG_COLUMNS + GLCM_COLUMNS
    if runner is not None:
        cols += [f"deep_{j}" for j in range(1, runner.n + 1)]
    if skip_bad or any("error" in r for r in rows):
        cols.append("error")
    out = pd.DataFrame(rows, columns=cols)
    if fmt == OutFormat.parquet:
        with atomic_path(output, force=force) as tmp:
            out.to_parquet(tmp, index=False)
    else:
        write_manifest(out, output, force)
    if not console.state.quiet:
        console.stderr.print(_summary(out, n_ok, n_bad))
        dest = "stdout" if output == STDIO else output
        console.info(f"features of {n_ok} images ({len(out) - n_bad} rows) -> {dest}")


def _summary(out: pd.DataFrame, n_ok: int, n_bad: int):
    from rich.table import Table

    table = Table(title="features", title_justify="left")
    for col in ("images", "rows", "failed", "nm/px", "mean area nm²", "mean major nm", "mean eccentricity"):
        table.add_column(col, justify="right")

    def mean(c: str) -> str:
        v = pd.to_numeric(out[c], errors="coerce").dropna() if c in out.columns else pd.Series(dtype=float)
        return f"{v.mean():.4g}" if len(v) else "-"

    table.add_row(str(n_ok), str(len(out) - n_bad), str(n_bad), mean("pixel_size_nm"), mean("area_nm2"),
                  mean("major_axis_nm"), mean("eccentricity"))
    return table
