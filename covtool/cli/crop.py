"""Cut patches centred on the annotated virus particles (TEM virus benchmark).

Rows need 'path' and 'annotation'. One patch per centre point, one per vertex of a centre line,
one at the midpoint of a two-point line; patches reaching past the border are mirror-padded.
Each patch is written to OUTDIR as '<image id>_o<object>_v<vertex>.tif' (or '_mid'), and gets a
row with 'group' = the image's id, 'object', 'vertex', 'center_x', 'center_y' (pixels of the
source image), 'patch_x0', 'patch_y0'; the image row's other columns are carried ('label',
'split', 'pixel_size_nm', ...), except its 'annotation', 'mask', 'width' and 'height'.
"""

from __future__ import annotations

from typing import Annotated

import typer

from covtool.cli.common import Force, OutDir, OutManifest, ShardOpt, SkipBad, done_line
from covtool.core.shard import parse_shard
from covtool.core.stage import check_done, run_manifest
from covtool.em.patches import DEFAULT_SIZE


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
    from covtool.em.stages import CropStage

    stage = CropStage(outdir, size, fmt, mirror, force)
    result = run_manifest(stage, manifest, output, skip_bad=skip_bad, force=force, shard=parse_shard(shard))
    _print_counts(result.rows)
    patches = sum(1 for r in result.rows if not r.get("error"))
    done_line(f"{patches} patches of {size}x{size} from {result.done} images in {outdir}", output)
    check_done(result, output)


def _print_counts(rows: list[dict]) -> None:
    from covtool.core import console

    if console.state.quiet:
        return
    from rich.table import Table

    from covtool.em.stages import patch_counts

    splits, per_label = patch_counts(rows)
    table = Table(title="patches per class and split", title_justify="left")
    table.add_column("label")
    for s in splits:
        table.add_column(s or "(no split)", justify="right")
    table.add_column("images", justify="right")
    for label, counts, images in per_label:
        table.add_row(label or "(no label)", *map(str, counts), str(images))
    console.stderr.print(table)
