"""SC2-MID visual features of masked objects: shape (nm), texture (HOG, GLCM) and deep (ImageNet CNNs).

Rows need 'path' (the image), 'mask' (its ground truth, foreground non-zero) and 'pixel_size_nm',
unless --default-pixel-size gives it or --scale-bar-nm measures the image's scale bar. Writes one
row per image (or per object with --per-object, with 'image_id' and 'object'): area_nm2,
perimeter_nm, major/minor_axis_nm, eccentricity (major/minor), ellipse_eccentricity, hu_1..7,
hog_1..36, glcm_1..16 and, with --deep, deep_1..N; the image row's other columns are carried.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from covtool.cli.common import (
    DefaultPixelSize,
    Force,
    OutManifest,
    ShardOpt,
    SkipBad,
    done_line,
    old_option,
    renamed,
)
from covtool.core.shard import parse_shard
from covtool.core.stage import check_done, run_manifest


class DeepName(str, Enum):
    vgg16 = "vgg16"
    xception = "xception"
    densenet121 = "densenet121"


class OutFormat(str, Enum):
    csv = "csv"
    parquet = "parquet"


def features_command(
    manifest: Annotated[str, typer.Argument(metavar="MANIFEST", help="Manifest with 'path' and 'mask' ('-' for stdin).")],
    output: OutManifest = ...,
    scale_bar_nm: Annotated[float | None, typer.Option(
        "--scale-bar-nm", min=1e-9, metavar="NM",
        help="Measure each image's scale bar, which stands for NM nanometres (SC2-MID: 100 nm = 206 px); "
             "writes 'scale_bar_px' and the measured 'pixel_size_nm'.")] = None,
    default_pixel_size: DefaultPixelSize = None,
    old_pixel_size: old_option("--pixel-size") = None,
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
    from covtool.features.stage import FeaturesStage, check_parquet, feature_summary, write_parquet

    default_pixel_size = renamed(default_pixel_size, old_pixel_size, "--default-pixel-size", "--pixel-size")
    stage = FeaturesStage(scale_bar_nm, default_pixel_size, per_object, masked_texture,
                          deep.value if deep is not None else None, weights, input_size, batch_size,
                          feature_maps, feature_layer, feature_channels, force)
    if fmt == OutFormat.parquet:
        check_parquet(output)
    parquet = (lambda res, dest, force: write_parquet(res.rows, res.columns, dest, force)) \
        if fmt == OutFormat.parquet else None
    result = run_manifest(stage, manifest, output, skip_bad=skip_bad, force=force, shard=parse_shard(shard),
                          write=parquet)
    summary = feature_summary(result.rows, result.done, result.failed + result.passed)
    done_line(f"features of {result.done} images ({summary['rows']} rows)", output, table=summary,
              title="features")
    check_done(result, output)
