"""``covtool select`` as a runner stage (:mod:`covtool.core.stage`): one item is one series.

:class:`SelectStage` counts the dark pixels of each slice of a series, applies the threshold rule
(:func:`covtool.ct.pipeline.select_series`) and gives a row per slice. Where the series came from
a manifest, each row carries its slice's input row (the runner passes its other columns through);
folder and volume inputs carry nothing. The runner shards the series, checks the ``--plot`` PNGs
before any work and takes them back on a failure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from covtool.core.naming import safe_id
from covtool.core.stage import Note, Out, Plan, Stage
from covtool.ct.pipeline import SelectOptions, SeriesResult, select_series, slice_records
from covtool.ct.plots import plot_path, write_plot
from covtool.ct.seriesdata import Series

#: select's columns, in the order written (after the core ones): ``slice_index`` for NIfTI
#: slices, ``value_scale`` where the series was read on COVID-CTset's stored scale
SELECT_COLUMNS = ("id", "path", "group", "series", "slice", "dark_pixels", "threshold", "selected",
                  "slice_index", "value_scale")


@dataclass(frozen=True)
class SeriesCount:
    """What the summary says of one series (a :class:`~covtool.core.stage.Note`)."""

    group: str
    slices: int      #: its rows, unreadable files included (as the manifest)
    selected: int
    errors: int
    left_out: int


def series_count(result: SeriesResult) -> SeriesCount:
    s = result.series
    errors = sum(1 for sl in result.slices if sl.error) + (1 if result.error and not result.slices else 0)
    return SeriesCount(s.group, len(result.slices), result.n_selected, errors, sum(s.left_out.values()))


def left_out_line(series: Series) -> str:
    """``P001/P001: 2 images left out (1 localizer, 1 not axial)``."""
    n = sum(series.left_out.values())
    why = ", ".join(f"{k} {v}" for k, v in sorted(series.left_out.items()))
    return f"{series.group}/{series.series}: {n} image{'s' if n != 1 else ''} left out ({why})"


def per_patient(counts: list[SeriesCount | None]) -> dict[str, dict[str, int]]:
    """The summary table's rows: per patient its series, slices, selected, errors, left out."""
    per: dict[str, dict[str, int]] = {}
    for c in counts:
        if c is None:
            continue
        d = per.setdefault(c.group, dict.fromkeys(("series", "slices", "selected", "errors", "left out"), 0))
        for key, value in (("series", 1), ("slices", c.slices), ("selected", c.selected),
                           ("errors", c.errors), ("left out", c.left_out)):
            d[key] += value
    return per


class SelectStage(Stage):
    """COVID-CTset's slice selection, series by series.

    Parameters
    ----------
    options : SelectOptions
        Region, dark level, divisor, and ``skip_bad`` (a bad slice is recorded on its row and the
        series goes on with its good slices).
    plot_dir : Path, optional
        Write ``<group>_<series>.png`` per series there (:mod:`covtool.ct.plots`).
    force : bool
        Overwrite existing plots (the runner checks them before any work).
    only_selected : bool
        Give only the selected slices' rows.
    on_series : callable, optional
        Called with each series' :class:`SeriesResult` as it is done (the CLI shows its warnings).
    """

    name = "select"
    columns = SELECT_COLUMNS
    optional = ("slice_index", "value_scale")
    drops = ("slice_index",)   # a NIfTI row's own slice_index is the stage's

    def __init__(self, options: SelectOptions = SelectOptions(), plot_dir: Path | None = None,
                 force: bool = False, only_selected: bool = False,
                 on_series: Callable[[SeriesResult], None] | None = None):
        self.options, self.force, self.only_selected = options, force, only_selected
        self.plot_dir = None if plot_dir is None else Path(plot_dir)
        self.on_series = on_series

    def key(self, series: Series) -> str:
        return safe_id(series.group, series.series)

    def plan(self, series: Series) -> Plan:
        if self.plot_dir is None:
            return Plan(units=len(series.slices))
        return Plan(outputs=[plot_path(series, self.plot_dir)], inputs=list(series.slices),
                    units=len(series.slices))

    def run(self, series: Series, plan: Plan, loaded, advance) -> Iterator[Out | Note]:
        result = select_series(series, self.options, on_slice=lambda: advance(1))
        if self.on_series is not None:
            self.on_series(result)
        if self.plot_dir is not None:
            write_plot(result, self.plot_dir, self.force)
        yield from self.rows(result)
        yield Note(series_count(result))

    def rows(self, result: SeriesResult) -> Iterator[Out]:
        """Each slice's row, carrying its manifest row; a manifest row giving one slice keeps its
        own ``id`` (ids are stable across stages; a row naming a whole NIfTI volume gives many
        slices, each with its own id)."""
        records = slice_records(result)
        uses = Counter(id(item.row) for item, _ in records if item is not None and item.row is not None)
        scale = result.series.value_scale
        for item, values in records:
            if self.only_selected and not values["selected"]:
                continue
            carry = item.row if item is not None else None
            if carry is not None and carry.text("id") and uses[id(carry)] == 1:
                values["id"] = carry.raw("id")
            if scale:   # else a manifest's own value_scale passes through
                values["value_scale"] = scale
            yield Out(values, carry)

    def error_row(self, series: Series, message: str) -> Out:
        return Out({"id": self.key(series), "path": str(series.folder or ""), "group": series.group,
                    "series": series.series, "selected": False, "error": message})
