"""Figures and captions from PDF papers (COVID-CT's PyMuPDF mining, automated).

PDF_OR_DIR is a PDF, a folder (searched recursively for *.pdf) or a manifest (CSV) whose 'path'
column lists PDFs. Every figure (or, with --split-panels, every panel) becomes an image under
OUTDIR and a row of the output manifest with its page, figure number, caption, bbox and the
paper's DOI and title; the other columns of a manifest's row are carried into the rows of its
PDF. A rerun skips the PDFs already done (see docs/extract.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from covtool.cli.common import Force, OutDir, OutManifest, ShardOpt, SkipBad, done_line
from covtool.core import console
from covtool.core.manifest import check_output
from covtool.core.shard import parse_shard
from covtool.core.stage import StageResult, check_done, default_jobs, run_stage, write_result
from covtool.pdf.figures import DEFAULT_GAP, DEFAULT_MIN_SIZE, DEFAULT_REPEAT, FigureOptions
from covtool.pdf.pipeline import DEFAULT_DPI, ExtractOptions
from covtool.pdf.stage import ExtractStage, collect_pdfs


def summary_table(result: StageResult):
    """One line per PDF: its pages, figures, captioned figures, rows and status."""
    from rich.table import Table

    table = Table(title="figures per PDF", title_justify="left")
    for col in ("PDF", "pages", "figures", "captioned", "rows", "status"):
        table.add_column(col, justify="left" if col in ("PDF", "status") else "right")
    for item, note, error in zip(result.work, result.notes, result.item_errors):
        if note is None:  # a failed PDF (or one an earlier stage marked failed)
            table.add_row(Path(item.text("path")).name, "0", "0", "0", "0", error)
        else:
            table.add_row(Path(note.source).name, str(note.pages), str(note.figures), str(note.captioned),
                          str(note.rows), "reused" if note.reused else "ok")
    return table


def extract_command(
    inputs: Annotated[list[str], typer.Argument(metavar="PDF_OR_DIR...", help="PDF files, folders (recursive) or manifests with a 'path' column of PDFs ('-' for stdin).")],
    outdir: OutDir = ...,
    output: OutManifest = ...,
    caption_match: Annotated[str | None, typer.Option("--caption-match", metavar="REGEX", help="Keep only figures whose caption matches (Python regex, case-sensitive; '(?i)' for any case), e.g. 'CT|computed tomography'.")] = None,
    split_panels: Annotated[bool, typer.Option("--split-panels", help="One row per panel of a compound figure (its embedded images, or cuts along white/black gutters).")] = False,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", min=1, show_default=False, help="Worker processes (each PDF is independent; --jobs 1: all in this process). Default: the CPUs this process may use, at most 8.")] = None,
    dpi: Annotated[int, typer.Option("--dpi", min=36, max=1200, help="Resolution of figures rendered from the page (vector, mixed, multi-image).")] = DEFAULT_DPI,
    min_size: Annotated[float, typer.Option("--min-size", min=0.0, metavar="PT", help="Smallest figure: its shorter side in points (1/72 inch); logos, icons and rules are smaller.")] = DEFAULT_MIN_SIZE,
    repeat: Annotated[int, typer.Option("--repeat", min=2, help="An image or drawing on this many pages is page furniture (logo, banner) and ignored.")] = DEFAULT_REPEAT,
    gap: Annotated[float, typer.Option("--gap", min=0.0, metavar="PT", help="Images and drawings closer than this (points) form one figure.")] = DEFAULT_GAP,
    uncaptioned: Annotated[str, typer.Option("--uncaptioned", metavar="raster|all|none", help="Which figures without a caption to list (vector drawings without one are mostly boxes and ruled tables).")] = "raster",
    flate: Annotated[str, typer.Option("--flate", metavar="keep|png", help="Flate-compressed images: 'keep' their stored stream, unchanged (a PNG when stored with PNG predictors, else a Deflate TIFF); 'png' decodes them (8 bits) and re-encodes them as PNG (slower).")] = "keep",
    skip_bad: SkipBad = False,
    shard: ShardOpt = None,
    force: Force = False,
) -> None:
    options = ExtractOptions(dpi=dpi, split_panels=split_panels, uncaptioned=uncaptioned, flate=flate,
                             figures=FigureOptions(min_size=min_size, gap=gap, repeat=repeat))
    stage = ExtractStage(outdir, options, caption_match, force)
    shard_ = parse_shard(shard)
    check_output(output, force)
    result = run_stage(stage, collect_pdfs(inputs), skip_bad=skip_bad, force=force, shard=shard_,
                       jobs=jobs or default_jobs(), output=output)
    for note in result.notes:
        if note is not None and note.warning:
            console.warn(f"{note.source}: {note.warning}")
    write_result(result, output, force)
    if not console.state.quiet:
        console.stderr.print(summary_table(result))
    pages = sum(n.pages for n in result.notes if n is not None)
    rows = sum(1 for r in result.rows if not r.get("error"))
    what = f"{rows} rows" + (f" (caption matches {caption_match!r})" if caption_match else "")
    done_line(f"{what} from {result.items} PDFs ({pages} pages, {result.failed} failed)", output)
    check_done(result, output)
