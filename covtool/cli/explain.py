"""Grad-CAM heatmaps of a trained run on chosen images: overlay PNGs (and .npy arrays).

The heatmap is taken at the last convolutional layer (found automatically, nested backbones
included) or at --layer, for the predicted class or --class. Writes OUTDIR/<id>.png and a
manifest OUTDIR/explain.csv (id, path of the overlay, heatmap, source image, label, pred, prob).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from covtool.cli.common import Force, OutDir, ShardOpt, SkipBad, done_line, load_tensorflow
from covtool.core.manifest import check_output, read_table
from covtool.core.shard import parse_shard
from covtool.core.stage import check_done, run_stage, with_ids, write_result


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
    skip_bad: SkipBad = False,
    force: Force = False,
) -> None:
    from covtool.explain.stage import ExplainStage

    stage = ExplainStage(run, outdir, layer, class_name, npy, alpha, batch_size, force)
    shard_ = parse_shard(shard)
    out_manifest = outdir / "explain.csv"
    check_output(out_manifest, force)
    table = read_table(manifest, required=["path"])
    rows = table.rows
    if split is not None:
        table.require("split")
        rows = [r for r in rows if r.text("split") == split]
    rows = with_ids(rows[:limit] if limit is not None else rows)
    load_tensorflow()
    result = run_stage(stage, rows, skip_bad=skip_bad, force=force, shard=shard_, output=out_manifest)
    write_result(result, out_manifest, force)
    layer_name = getattr(stage, "target", layer or "-")
    done_line(f"{result.done} Grad-CAM overlays at layer {layer_name} in {outdir}", out_manifest)
    check_done(result, out_manifest)
