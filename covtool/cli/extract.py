"""Figures and captions from PDF papers (COVID-CT's PyMuPDF mining, automated).

PDF_OR_DIR is a PDF, a folder (searched recursively for *.pdf) or a manifest (CSV) whose 'path'
column lists PDFs. Every figure (or, with --split-panels, every panel) becomes an image under
OUTDIR and a row of the output manifest with its page, figure number, caption, bbox and the
paper's DOI and title. A rerun skips the PDFs already done (see docs/extract.md).
"""

from __future__ import annotations

import re
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Annotated

import typer

from covtool.cli.common import Force, OutDir, OutManifest, ShardOpt, SkipBad
from covtool.core import console
from covtool.core.errors import CovtoolError, UsageError
from covtool.core.manifest import STDIO, check_output, new_manifest, read_manifest, write_manifest
from covtool.core.naming import natural_key
from covtool.core.progress import make_progress
from covtool.core.shard import parse_shard
from covtool.pdf.document import FLATE_MODES
from covtool.pdf.figures import DEFAULT_GAP, DEFAULT_MIN_SIZE, DEFAULT_REPEAT, FigureOptions
from covtool.pdf.pipeline import (
    DEFAULT_DPI,
    ROW_COLUMNS,
    ExtractOptions,
    PdfResult,
    caption_filter,
    extract_pdf,
)


def is_manifest_arg(arg: str) -> bool:
    return arg == STDIO or (Path(arg).suffix.lower() in {".csv", ".tsv"} and not Path(arg).is_dir())


def collect_pdfs(inputs: list[str]) -> list[str]:
    """The PDFs named by files, folders (recursive, natural order) and manifests, in order, once each."""
    out: list[str] = []
    for arg in inputs:
        if is_manifest_arg(arg):
            df = read_manifest(arg, required=["path"], unique_ids=False)
            out.extend(str(p) for p in df["path"])
        elif Path(arg).is_dir():
            found = [p for p in Path(arg).rglob("*") if p.suffix.lower() == ".pdf" and p.is_file()
                     and not p.name.startswith(".")]
            out.extend(str(p) for p in sorted(found, key=lambda p: natural_key(str(p))))
        elif Path(arg).exists():
            out.append(arg)
        else:
            raise UsageError(f"no such file or folder: {arg}")
    seen: set[str] = set()
    unique = []
    for p in out:
        key = str(Path(p).resolve())
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def run_batch(pdfs: list[str], outdir: Path, options: ExtractOptions, jobs: int, force: bool,
              skip_bad: bool) -> list[PdfResult]:
    """Extract every PDF (in worker processes when jobs > 1); results in input order.

    Without ``skip_bad`` the first failure stops the batch: pending PDFs are cancelled and a
    :class:`CovtoolError` names the PDF and the reason.
    """
    results: dict[int, PdfResult] = {}

    def check(r: PdfResult) -> None:
        if r.error and not skip_bad:
            raise CovtoolError(r.error, r.source)

    with make_progress() as prog:
        task = prog.add_task("extract", total=len(pdfs))
        if jobs <= 1:
            for i, p in enumerate(pdfs):
                results[i] = extract_pdf(p, str(outdir), options, force)
                prog.advance(task)
                check(results[i])
        else:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                futures = {pool.submit(extract_pdf, p, str(outdir), options, force): i
                           for i, p in enumerate(pdfs)}
                try:
                    for fut in as_completed(futures):
                        i = futures[fut]
                        results[i] = fut.result()
                        prog.advance(task)
                        check(results[i])
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
    return [results[i] for i in range(len(pdfs))]


def summary_table(results: list[PdfResult], rows: list[dict]):
    from rich.table import Table

    table = Table(title="figures per PDF", title_justify="left")
    for col in ("PDF", "pages", "figures", "captioned", "rows", "status"):
        table.add_column(col, justify="left" if col in ("PDF", "status") else "right")
    by_src: dict[str, list[dict]] = {}
    for r in rows:
        by_src.setdefault(r["source"], []).append(r)
    for res in results:
        rs = by_src.get(res.source, [])
        figs = {(r["page"], r["figure"], r["bbox"] if not r["figure"] else "") for r in rs if not r.get("panel")}
        figs |= {(r["page"], r["figure"], "") for r in rs if r.get("panel")}
        captioned = len({f for f in figs if f[1]})
        status = res.error or ("reused" if res.reused else "ok")
        table.add_row(Path(res.source).name, str(res.pages), str(len(figs)), str(captioned), str(len(rs)), status)
    return table


def extract_command(
    inputs: Annotated[list[str], typer.Argument(metavar="PDF_OR_DIR...", help="PDF files, folders (recursive) or manifests with a 'path' column of PDFs ('-' for stdin).")],
    outdir: OutDir = ...,
    output: OutManifest = ...,
    caption_match: Annotated[str | None, typer.Option("--caption-match", metavar="REGEX", help="Keep only figures whose caption matches (Python regex, case-sensitive; '(?i)' for any case), e.g. 'CT|computed tomography'.")] = None,
    split_panels: Annotated[bool, typer.Option("--split-panels", help="One row per panel of a compound figure (its embedded images, or cuts along white/black gutters).")] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Worker processes (each PDF is independent).")] = 1,
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
    check_output(output, force)
    if uncaptioned not in ("raster", "all", "none"):
        raise UsageError(f"--uncaptioned must be raster, all or none, got {uncaptioned!r}")
    if flate not in FLATE_MODES:
        raise UsageError(f"--flate must be keep or png, got {flate!r}")
    if caption_match:
        try:
            re.compile(caption_match)
        except re.error as exc:
            raise UsageError(f"--caption-match {caption_match!r} is not a valid regex: {exc}") from None
    if outdir.exists() and not outdir.is_dir():
        raise UsageError(f"-d {outdir}: exists and is not a folder")
    pdfs = collect_pdfs(inputs)
    shard_ = parse_shard(shard)
    if shard_ is not None:
        pdfs = shard_.select(pdfs)
    if not pdfs:
        console.warn("no PDF found in the inputs")
    options = ExtractOptions(dpi=dpi, split_panels=split_panels, uncaptioned=uncaptioned, flate=flate,
                             figures=FigureOptions(min_size=min_size, gap=gap, repeat=repeat))
    outdir.mkdir(parents=True, exist_ok=True)
    results = run_batch(pdfs, outdir, options, jobs, force, skip_bad)
    rows: list[dict] = []
    for res in results:
        if res.error:
            rows.append({"source": res.source, "error": res.error})
        else:
            rows.extend({**r, "error": ""} for r in res.rows)
    kept = caption_filter(rows, caption_match)
    columns = ROW_COLUMNS + (["error"] if skip_bad else [])
    write_manifest(new_manifest(kept, columns), output, force)
    if not console.state.quiet:
        console.stderr.print(summary_table(results, [r for r in rows if not r.get("error")]))
        failed = sum(1 for r in results if r.error)
        pages = sum(r.pages for r in results)
        dest = "stdout" if output == STDIO else output
        what = f"{len(kept) - failed} rows" + (f" (caption matches {caption_match!r})" if caption_match else "")
        console.info(f"{what} from {len(results)} PDFs ({pages} pages, {failed} failed) -> {dest}")
