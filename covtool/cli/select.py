"""Keep the CT slices where the lungs are open (COVID-CTset's dark-pixel selection).

INPUT is a folder of patients (patient/series/slices or patient/slices), one series folder (TIFF/PNG
slices or a DICOM series), a NIfTI volume (.nii, .nii.gz), or a manifest with 'path' and 'group'
(and optionally 'series'). DICOM and NIfTI slices are put in anatomical order and brought to
COVID-CTset's stored scale (HU + 1024). Every slice gets a row with 'dark_pixels', the series'
'threshold' and 'selected'.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from covtool.cli.common import Force, OutManifest, ShardOpt, SkipBad
from covtool.core import console
from covtool.core.atomic import check_writable
from covtool.core.errors import UsageError
from covtool.core.manifest import (
    STDIO,
    check_output,
    order_columns,
    write_manifest,
    write_records,
)
from covtool.core.progress import make_progress
from covtool.core.scale import check_selectable
from covtool.core.shard import parse_shard
from covtool.ct.pipeline import SelectOptions, SeriesResult, result_rows, select_series
from covtool.ct.selection import DEFAULT_DARK_LEVEL, DEFAULT_DIVISOR, DEFAULT_REGION
from covtool.ct.series import collect_series

if TYPE_CHECKING:
    import pandas as pd

SELECT_COLUMNS = ["id", "path", "group", "series", "slice", "dark_pixels", "threshold", "selected"]


def parse_region(text: str) -> tuple[int, int, int, int]:
    parts = [p.strip() for p in text.split(",")]
    try:
        x0, y0, x1, y1 = (int(p) for p in parts)
    except ValueError:
        raise UsageError(f"--region expects four whole numbers X0,Y0,X1,Y1, got {text!r}") from None
    if not (0 <= x0 < x1 and 0 <= y0 < y1):
        raise UsageError(f"--region {text}: need 0 <= X0 < X1 and 0 <= Y0 < Y1")
    return x0, y0, x1, y1


def plot_path(series, folder: Path) -> Path:
    """The PNG ``--plot`` writes for a series."""
    from covtool.core.naming import safe_id

    return folder / f"{safe_id(series.group, series.series)}.png"


def write_plot(result: SeriesResult, folder: Path, force: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from covtool.core.atomic import atomic_path

    good = [s for s in result.slices if s.dark_pixels is not None]
    if not good:
        return
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
    x = [s.slice for s in good]
    y = [s.dark_pixels for s in good]
    ax.plot(x, y, "-", color="0.6", lw=1)
    sel = [s for s in good if s.selected]
    ax.plot([s.slice for s in sel], [s.dark_pixels for s in sel], "o", ms=3, color="tab:green", label="selected")
    rej = [s for s in good if not s.selected]
    ax.plot([s.slice for s in rej], [s.dark_pixels for s in rej], "o", ms=3, color="tab:red", label="discarded")
    ax.axhline(result.threshold, color="k", ls="--", lw=1, label=f"threshold {result.threshold:.0f}")
    ax.set_xlabel("position along the slice normal (mm)" if result.series.positions is not None
                  else "slice")
    ax.set_ylabel("dark pixels")
    ax.set_title(f"{result.series.group} / {result.series.series}")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    with atomic_path(plot_path(result.series, folder), force=force) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def summary_table(results: list[SeriesResult]):
    from rich.table import Table

    per: dict[str, dict] = {}
    for r in results:
        d = per.setdefault(r.series.group, {"series": 0, "slices": 0, "selected": 0, "errors": 0,
                                            "left out": 0})
        d["series"] += 1
        d["slices"] += len(r.slices)   # every row, unreadable files included (as the manifest)
        d["left out"] += sum(r.series.left_out.values())
        d["selected"] += r.n_selected
        d["errors"] += sum(1 for s in r.slices if s.error) + (1 if r.error and not r.slices else 0)
    table = Table(title="slice selection per patient", title_justify="left")
    for col in ("patient", "series", "slices", "selected", "kept %", "errors", "left out"):
        table.add_column(col, justify="left" if col == "patient" else "right")
    for g, d in per.items():
        pct = f"{100 * d['selected'] / d['slices']:.0f}" if d["slices"] else "-"
        table.add_row(g, str(d["series"]), str(d["slices"]), str(d["selected"]), pct, str(d["errors"]),
                      str(d["left out"]))
    return table


def left_out_line(series) -> str:
    """``P001/P001: 2 images left out (1 localizer, 1 not axial)``."""
    n = sum(series.left_out.values())
    why = ", ".join(f"{k} {v}" for k, v in sorted(series.left_out.items()))
    return f"{series.group}/{series.series}: {n} image{'s' if n != 1 else ''} left out ({why})"


def pass_through(out: pd.DataFrame, source: pd.DataFrame) -> pd.DataFrame:
    """Carry every column of the input manifest along; covtool's own columns take precedence.

    An input ``id`` is kept (ids are stable across stages) where its row gives one slice (a row
    naming a whole NIfTI volume gives many, each with its own id); the rows of folder inputs get
    NaN in the manifest-only columns.
    """
    import pandas as pd

    extra_cols = [c for c in source.columns
                  if c not in SELECT_COLUMNS and c not in ("error", "_src", "slice_index")]
    src = source.set_index("_src")
    uses = out["_row"].value_counts(dropna=True)
    records = []
    for row, own_id in zip(out["_row"], out["id"]):
        rec = {}
        if pd.notna(row):
            rec = {c: src.at[int(row), c] for c in extra_cols}
            if "id" in src.columns and src.at[int(row), "id"] != "" and uses.get(row, 0) == 1:
                own_id = src.at[int(row), "id"]
        rec["id"] = own_id
        records.append(rec)
    extra = pd.DataFrame(records, columns=["id"] + extra_cols)
    out = out.drop(columns=["id"]).reset_index(drop=True)
    return pd.concat([extra[["id"]], out, extra[extra_cols]], axis=1)


def output_columns(rows: list[dict], skip_bad: bool) -> list[str]:
    """SELECT_COLUMNS, then ``error`` (with --skip-bad), ``slice_index`` (NIfTI rows) and
    ``value_scale`` (DICOM and NIfTI rows read on COVID-CTset's stored scale) where they apply."""
    cols = list(SELECT_COLUMNS) + (["error"] if skip_bad else [])
    if any(r.get("slice_index") is not None for r in rows):
        cols.append("slice_index")
    if any(r.get("_scale") for r in rows):
        cols.append("value_scale")
    return cols


def folder_output(rows: list[dict], skip_bad: bool, only_selected: bool) -> tuple[list[str], list[dict]]:
    """The manifest of folder and volume inputs as plain rows (no pandas: select starts faster)."""
    columns = output_columns(rows, skip_bad)
    out = [{**r, "value_scale": r.get("_scale")} for r in rows]
    return columns, [r for r in out if r["selected"]] if only_selected else out


def manifest_output(rows: list[dict], source, skip_bad: bool, only_selected: bool):
    """The manifest of manifest inputs: every input column carried along (:func:`pass_through`);
    a manifest's own ``value_scale`` kept where the slice's file does not set it."""
    import pandas as pd

    out = pd.DataFrame(rows, columns=SELECT_COLUMNS + ["error", "_row", "slice_index"])
    own_scale = [r.get("_scale") for r in rows]
    out = pass_through(out, source)
    if any(own_scale):
        given = out["value_scale"] if "value_scale" in out.columns else pd.Series([None] * len(out))
        out["value_scale"] = [o if o is not None else g for o, g in zip(own_scale, given)]
    out = out.drop(columns=["_row"])
    if out["slice_index"].isna().all():
        out = out.drop(columns=["slice_index"])
    else:
        out["slice_index"] = out["slice_index"].astype("Int64")
    if not skip_bad:
        out = out.drop(columns=["error"])
    if only_selected:
        out = out[out["selected"].astype(bool)]
    return order_columns(out)


def select_command(
    inputs: Annotated[list[str], typer.Argument(metavar="INPUT...", help="Patients folder, series folder (TIFF/PNG slices or DICOM), NIfTI volume (.nii, .nii.gz), or manifest ('-' for stdin).")],
    output: OutManifest = ...,
    only_selected: Annotated[bool, typer.Option("--only-selected", help="Write only the selected slices.")] = False,
    region: Annotated[str, typer.Option("--region", metavar="X0,Y0,X1,Y1",
                                        help="Region in the 512x512 frame (half-open); scaled for other sizes.")] = ",".join(map(str, DEFAULT_REGION)),
    dark_level: Annotated[float, typer.Option("--dark-level", help="Pixels below this value on COVID-CTset's stored scale (HU + 1024; DICOM and NIfTI slices are converted to it) are dark: 300 is -724 HU.")] = DEFAULT_DARK_LEVEL,
    divisor: Annotated[float, typer.Option("--divisor", min=1e-9, help="threshold = (max - min) / divisor per series.")] = DEFAULT_DIVISOR,
    group: Annotated[str | None, typer.Option("--group", help="Patient id for every series found (when INPUT is one patient's folder).")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", metavar="DIR", help="Write a PNG per series: dark pixels along the series and the threshold.")] = None,
    skip_bad: SkipBad = False,
    shard: ShardOpt = None,
    force: Force = False,
) -> None:
    check_output(output, force)
    options = SelectOptions(parse_region(region), dark_level, divisor, skip_bad)
    series, source = collect_series(inputs, group)
    check_selectable(source)
    shard_ = parse_shard(shard)
    if shard_ is not None:
        series = shard_.select(series)
    total = sum(len(s.slices) for s in series)
    if plot is not None:  # every output checked before any work; plots written once all succeeded
        for s in series:
            check_writable(plot_path(s, plot), force)
    results: list[SeriesResult] = []
    rows: list[dict] = []
    with make_progress() as prog:
        task = prog.add_task("select", total=total)
        for s in series:
            r = select_series(s, options, on_slice=lambda: prog.advance(task))
            for w in r.warnings:
                console.warn(w)
            if s.left_out:
                console.info(left_out_line(s))
            results.append(r)
            rows.extend(result_rows(r))
    if source is None:
        columns, records = folder_output(rows, skip_bad, only_selected)
        write_records(records, columns, output, force)
    else:
        write_manifest(manifest_output(rows, source, skip_bad, only_selected), output, force)
    if plot is not None:
        for r in results:
            write_plot(r, plot, force)
    if not console.state.quiet:
        console.stderr.print(summary_table(results))
        n_sel = sum(r.n_selected for r in results)
        n_rows = sum(len(r.slices) for r in results)
        dest = "stdout" if output == STDIO else output
        console.info(f"{n_sel} of {n_rows} slices selected in {len(series)} series -> {dest}")
