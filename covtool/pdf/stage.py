"""Extract as a runner stage (:mod:`covtool.core.stage`): which PDFs, and what one PDF gives.

The items are the PDFs that files, folders and manifests name (:func:`collect_pdfs`), each a
:class:`~covtool.core.manifest.Row` whose ``path`` is the PDF: a manifest's own row, whose other
columns every figure row of that PDF carries, or a row of the path alone. One PDF is one item
(:func:`covtool.pdf.pipeline.extract_pdf`, run in worker processes with ``jobs``), its rows the
figures (or panels) whose caption matches the stage's pattern.

Each PDF writes into its own folder ``OUTDIR/<name>-<sha1>/``, whose files only the PDF's reading
names: the plan names the folder (:attr:`~covtool.core.stage.Plan.folders`) and its
``figures.csv`` and ``done.json``, so a failure takes back everything the run wrote there, and
two PDFs of one content and name are refused before any work. A folder with ``done.json`` is
reused as it is (without ``force``). A copy of a PDF (the same name and bytes) would share its
folder: it is that item's error. The stage is :attr:`~covtool.core.stage.Stage.resumable`: an
interrupted run keeps the PDFs it finished for its rerun.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from covtool.core.errors import CovtoolError, ParameterError, describe
from covtool.core.manifest import Row, is_manifest_arg, read_table
from covtool.core.naming import natural_key
from covtool.core.stage import Note, Out, Plan, Stage
from covtool.pdf.pipeline import (
    DONE,
    PARTIAL,
    ROW_COLUMNS,
    ExtractOptions,
    caption_filter,
    caption_pattern,
    extract_pdf,
    pdf_key,
)


def collect_pdfs(inputs: Sequence[str]) -> list[Row]:
    """The PDFs named by files, folders (recursive, natural order) and manifests (their ``path``
    column), in order, once each (by resolved path), as rows with the PDF in ``path``.

    Raises
    ------
    CovtoolError
        For an input that does not exist, a folder holding no PDF, a manifest without rows.
    ManifestError
        For a manifest that cannot be read or lacks ``path`` values.
    """
    found: list[Row] = []
    for arg in inputs:
        if is_manifest_arg(arg):
            rows = read_table(arg, required=["path"], unique_ids=False).rows
            if not rows:
                raise CovtoolError("no PDF listed (the manifest has no row)", arg)
            found.extend(rows)
        elif Path(arg).is_dir():
            pdfs = [p for p in Path(arg).rglob("*") if p.suffix.lower() == ".pdf" and p.is_file()
                    and not p.name.startswith(".")]
            if not pdfs:
                raise CovtoolError("no PDF found in this folder (searched for *.pdf, subfolders "
                                   "too)", arg)
            found.extend(Row({"path": str(p)}) for p in sorted(pdfs, key=lambda p: natural_key(str(p))))
        elif Path(arg).exists():
            found.append(Row({"path": arg}))
        else:
            raise CovtoolError("no such file or folder", arg)
    seen: set[str] = set()
    unique = []
    for row in found:
        key = str(Path(row.text("path")).resolve())
        if key not in seen:
            seen.add(key)
            unique.append(row)
    return unique


@dataclass(frozen=True)
class PdfSummary:
    """What one PDF gave, for the summary: before the caption filter (``rows`` are all its rows)."""

    source: str
    pages: int
    figures: int
    captioned: int
    rows: int
    reused: bool
    warning: str | None = None


def summarize(source: str, rows: Sequence[dict], pages: int, reused: bool,
              warning: str | None = None) -> PdfSummary:
    """Count a PDF's figures (a figure split into panels counts once) and the captioned ones."""
    figs = {(r["page"], r["figure"], r["bbox"] if not r["figure"] else "") for r in rows if not r.get("panel")}
    figs |= {(r["page"], r["figure"], "") for r in rows if r.get("panel")}
    return PdfSummary(source, pages, len(figs), len({f for f in figs if f[1]}), len(rows), reused,
                      warning)


class ExtractStage(Stage):
    """Figures and captions of PDFs into ``outdir``, one row per figure (or panel).

    Parameters
    ----------
    outdir : Path
        The folder of the PDFs' folders (``ParameterError`` ``outdir`` when it is a file).
    options : ExtractOptions
        What is extracted (validated where it is built).
    caption_match : str, optional
        Keep only the figures whose caption matches (``re.search``); every figure is still
        extracted, so a rerun with another pattern reuses the work. ``ParameterError``
        ``caption_match`` when it is no regular expression.
    force : bool
        Re-extract PDFs whose folder is done.
    """

    name = "extract"
    columns = tuple(ROW_COLUMNS)
    resumable = True

    def __init__(self, outdir: str | os.PathLike, options: ExtractOptions | None = None,
                 caption_match: str | None = None, force: bool = False):
        self.outdir = Path(outdir)
        if self.outdir.exists() and not self.outdir.is_dir():
            raise ParameterError("outdir", f"{self.outdir} exists and is not a folder")
        caption_pattern(caption_match)
        self.options = options if options is not None else ExtractOptions()
        self.caption_match, self.force = caption_match, force
        self._folders: dict[Path, str] = {}  # folder -> the PDF planned into it

    def plan(self, row: Row) -> Plan:
        pdf = row.text("path")
        try:
            folder = self.outdir / pdf_key(pdf)
        except FileNotFoundError:
            raise CovtoolError("no such PDF file", pdf) from None
        except IsADirectoryError:
            raise CovtoolError("is a folder, expected a PDF file", pdf) from None
        except OSError as exc:
            raise CovtoolError(describe(exc), pdf) from None
        first = self._folders.setdefault(folder, pdf)
        if Path(first).resolve() != Path(pdf).resolve():
            raise CovtoolError(f"a copy of {first} (the same name and content, so the same "
                               "folder): give one of them", pdf)
        if (folder / DONE).exists() and not self.force:  # reused (or refused: other options)
            return Plan(inputs=[Path(pdf)], folders=[folder])
        return Plan(outputs=[folder / PARTIAL, folder / DONE], inputs=[Path(pdf)], folders=[folder])

    def run(self, row: Row, plan: Plan, loaded, advance) -> list:
        res = extract_pdf(row.text("path"), str(self.outdir), self.options, self.force)
        if res.error:
            raise CovtoolError(res.error, res.source)
        note = Note(summarize(res.source, res.rows, res.pages, res.reused, res.warning))
        return [*caption_filter(res.rows, self.caption_match), note]

    def error_row(self, item: Row, message: str) -> Out:
        """A failed PDF's row: its id, its ``source`` and ``error``, no figure (empty cells)."""
        values = dict.fromkeys(ROW_COLUMNS, "")
        values.update(id=self.key(item), source=item.text("path"), error=message)
        return Out(values, item)
