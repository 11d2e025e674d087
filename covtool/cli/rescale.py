"""Resample TEM images to one pixel size (Lanczos-3, antialiased) with their annotations.

Rows need 'path' and 'pixel_size_nm' (or --default-pixel-size), and optionally 'annotation'
and 'mask'. Every image is written to OUTDIR as '<id>.tif' (dtype kept), its annotation as
'<id>.txt' and its particle mask as '<id>_mask.png'; the row's 'pixel_size_nm' becomes the
target and 'source_pixel_size_nm', 'scale', 'width', 'height' are added.
"""

from __future__ import annotations

from typing import Annotated

import typer

from covtool.cli.common import (
    DefaultPixelSize,
    Force,
    OutDir,
    OutManifest,
    ShardOpt,
    SkipBad,
    done_line,
    old_option,
    renamed,
)
from covtool.core.shard import parse_shard
from covtool.core.stage import check_done, run_manifest


def rescale_command(
    manifest: Annotated[str, typer.Argument(metavar="MANIFEST", help="Image manifest ('-' for stdin).")],
    outdir: OutDir = ...,
    output: OutManifest = ...,
    pixel_size_nm: Annotated[float, typer.Option("--pixel-size", metavar="NM",
                                                 help="Target pixel size in nm (the paper: 1 nm).")] = 1.0,
    default_pixel_size: DefaultPixelSize = None,
    source_pixel_size: old_option("--source-pixel-size") = None,
    skip_bad: SkipBad = False,
    shard: ShardOpt = None,
    force: Force = False,
) -> None:
    from covtool.em.stages import RescaleStage

    default_pixel_size = renamed(default_pixel_size, source_pixel_size, "--default-pixel-size",
                                 "--source-pixel-size")
    stage = RescaleStage(outdir, pixel_size_nm, default_pixel_size, force)
    result = run_manifest(stage, manifest, output, skip_bad=skip_bad, force=force, shard=parse_shard(shard))
    scales = [float(r["scale"]) for r in result.rows if r.get("scale") not in (None, "")]
    done_line(f"{result.done} images rescaled to {pixel_size_nm:g} nm/px in {outdir}", output,
              table={"images": result.done, "failed": result.failed,
                     "scale min": f"{min(scales):.4g}" if scales else "-",
                     "scale max": f"{max(scales):.4g}" if scales else "-"}, title="rescale")
    check_done(result, output)
