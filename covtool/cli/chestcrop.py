"""Crop CT images to the chest (COVID-CT's threshold segmentation and convex hull), removing the white or black space at their edges.

Rows need 'path'; a row's lesion 'mask' is cropped with the same box (it must have the image's
size). Each crop is written to OUTDIR as '<id>.png' ('<id>.tif' for TIFF and DICOM sources) in
the image's own layout and dtype, its mask as '<id>_mask.png'; 'crop_box' (x0,y0,x1,y1 in source
pixels, x1/y1 exclusive), 'width', 'height', 'source_width' and 'source_height' are added. With
--split, only the rows of those splits are cropped (the paper crops its validation and test
images); the other rows pass through unchanged.
"""

from __future__ import annotations

from typing import Annotated

import typer

from covtool.cli.common import Force, OutDir, OutManifest, ShardOpt, SkipBad, done_line
from covtool.core.shard import parse_shard
from covtool.core.stage import check_done, run_manifest


def chest_crop_command(
    manifest: Annotated[str, typer.Argument(metavar="MANIFEST", help="Image manifest ('-' for stdin).")],
    outdir: OutDir = ...,
    output: OutManifest = ...,
    splits: Annotated[str | None, typer.Option(
        "--split", metavar="SPLIT,...",
        help="Crop only the rows of these splits (comma separated; the paper: val,test); the "
             "others pass through unchanged. Default: every row.")] = None,
    margin: Annotated[int, typer.Option("--margin", metavar="N",
                                        help="Pixels kept around the chest's box on every side.")] = 0,
    skip_bad: SkipBad = False,
    shard: ShardOpt = None,
    force: Force = False,
) -> None:
    from covtool.ct.chestcrop_stage import ChestCropStage, parse_splits

    stage = ChestCropStage(outdir, parse_splits(splits), margin, force)
    result = run_manifest(stage, manifest, output, skip_bad=skip_bad, force=force, shard=parse_shard(shard))
    removed = [n for n in result.notes if isinstance(n, float)]
    done_line(f"{len(removed)} images cropped in {outdir}", output,
              table={"cropped": len(removed), "changed": sum(r > 0 for r in removed),
                     "passed through": sum(n is None for n in result.notes),
                     "failed": result.failed,
                     "area removed": f"{100 * sum(removed) / len(removed):.1f}%" if removed else "-"},
              title="chest-crop")
    check_done(result, output)
