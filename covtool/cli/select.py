"""Keep the CT slices where the lungs are open (COVID-CTset's dark-pixel selection).

INPUT is a folder of patients (patient/series/slices or patient/slices), one series folder (TIFF/PNG
slices or a DICOM series), a NIfTI volume (.nii, .nii.gz), or a manifest with 'path' and 'group'
(and optionally 'series'). DICOM and NIfTI slices are put in anatomical order and brought to
COVID-CTset's stored scale (HU + 1024). Every slice gets a row with 'dark_pixels', the series'
'threshold' and 'selected'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from covtool.cli.common import Force, OutManifest, ShardOpt, SkipBad, done_line
from covtool.core import console
from covtool.ct.selection import DEFAULT_DARK_LEVEL, DEFAULT_DIVISOR, DEFAULT_REGION


def show_series(result) -> None:
    """A series' warnings, and the images its DICOM files left out, as the series is done."""
    from covtool.ct.select import left_out_line

    for w in result.warnings:
        console.warn(w)
    if result.series.left_out:
        console.info(left_out_line(result.series))


def summary_table(counts):
    """The per-patient table on stderr (:func:`covtool.ct.select.per_patient`)."""
    from rich.table import Table

    from covtool.ct.select import per_patient

    table = Table(title="slice selection per patient", title_justify="left")
    for col in ("patient", "series", "slices", "selected", "kept %", "errors", "left out"):
        table.add_column(col, justify="left" if col == "patient" else "right")
    for g, d in per_patient(counts).items():
        pct = f"{100 * d['selected'] / d['slices']:.0f}" if d["slices"] else "-"
        table.add_row(g, str(d["series"]), str(d["slices"]), str(d["selected"]), pct, str(d["errors"]),
                      str(d["left out"]))
    return table


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
    from covtool.core.manifest import check_output
    from covtool.core.scale import check_selectable
    from covtool.core.shard import parse_shard
    from covtool.core.stage import check_done, run_stage, write_result
    from covtool.ct.pipeline import SelectOptions
    from covtool.ct.select import SelectStage
    from covtool.ct.selection import parse_region
    from covtool.ct.series import collect_series

    shard_ = parse_shard(shard)
    check_output(output, force)
    stage = SelectStage(SelectOptions(parse_region(region), dark_level, divisor, skip_bad), plot,
                        force, only_selected, on_series=show_series)
    series, source = collect_series(inputs, group)
    check_selectable(source)
    result = run_stage(stage, series, skip_bad=skip_bad, force=force, shard=shard_, output=output)
    write_result(result, output, force)
    counts = result.notes
    if not console.state.quiet:
        console.stderr.print(summary_table(counts))
    n_sel = sum(c.selected for c in counts if c is not None)
    n_rows = sum(c.slices for c in counts if c is not None)
    done_line(f"{n_sel} of {n_rows} slices selected in {result.items} series", output)
    check_done(result, output)
