"""``select --plot``: one PNG per series, its dark-pixel counts along the series and the threshold."""

from __future__ import annotations

from pathlib import Path

from covtool.core.naming import safe_id
from covtool.ct.pipeline import SeriesResult
from covtool.ct.seriesdata import Series


def plot_path(series: Series, folder: Path) -> Path:
    """The PNG written for a series: ``<folder>/<group>_<series>.png``."""
    return Path(folder) / f"{safe_id(series.group, series.series)}.png"


def write_plot(result: SeriesResult, folder: Path, force: bool = False) -> Path | None:
    """Plot one series' counts (selected slices green, discarded red) and its threshold.

    Returns the PNG written, or None where no slice of the series could be counted.
    """
    good = [s for s in result.slices if s.dark_pixels is not None]
    if not good:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from covtool.core.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
    ax.plot([s.slice for s in good], [s.dark_pixels for s in good], "-", color="0.6", lw=1)
    for keep, colour, label in ((True, "tab:green", "selected"), (False, "tab:red", "discarded")):
        part = [s for s in good if s.selected == keep]
        ax.plot([s.slice for s in part], [s.dark_pixels for s in part], "o", ms=3, color=colour,
                label=label)
    ax.axhline(result.threshold, color="k", ls="--", lw=1, label=f"threshold {result.threshold:.0f}")
    ax.set_xlabel("position along the slice normal (mm)" if result.series.positions is not None
                  else "slice")
    ax.set_ylabel("dark pixels")
    ax.set_title(f"{result.series.group} / {result.series.series}")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    dest = plot_path(result.series, folder)
    with atomic_path(dest, force=force) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return dest
