"""The TEM stages as runner objects (:mod:`covtool.core.stage`): what one image needs and gives.

Each stage is built from its options (validated once, in the constructor) and run over the
manifest's rows by :func:`covtool.core.stage.run_stage`, which shards, checks every output before
any work, records bad items, rolls back and carries the columns a stage does not write.
"""

from __future__ import annotations

import math
from pathlib import Path

from covtool.core.errors import ParameterError
from covtool.core.manifest import Row
from covtool.core.stage import Plan, Stage
from covtool.em.pipeline import rescale_file


def row_pixel_size(row: Row, default: float | None = None, column: str = "pixel_size_nm") -> float:
    """The row's pixel size in nm, or ``default`` where the cell is empty or the column missing.

    Raises a ManifestError naming the row's line where it is missing, not a number, or not
    positive.
    """
    raw = row.text(column)
    if raw == "":
        if default is None:
            raise row.error(f"missing pixel size: no value in '{column}' "
                            "(give the column or a default pixel size)")
        return float(default)
    try:
        value = float(raw)
    except ValueError:
        raise row.error(f"pixel size '{raw}' in '{column}' is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise row.error(f"pixel size {raw} nm in '{column}' must be positive")
    return value


def _scaled(value: object, scale: float) -> object:
    """A ``center_x``/``center_y`` cell mapped like the annotation (pixel centres)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return value
    return value if math.isnan(v) else round((v + 0.5) * scale - 0.5, 4)


class RescaleStage(Stage):
    """Resample each image to ``pixel_size_nm`` per pixel (Lanczos-3) with its annotation and mask.

    Writes ``<id>.tif`` (dtype kept), ``<id>.txt`` (the annotation, where the row has one) and
    ``<id>_mask.png`` (where it has a mask) into ``outdir``; the row's ``pixel_size_nm`` becomes
    the target and ``source_pixel_size_nm``, ``scale``, ``width``, ``height`` are added.

    Parameters
    ----------
    outdir : Path
    pixel_size_nm : float
        The target (the TEM paper: 1 nm).
    default_pixel_size : float, optional
        The pixel size of rows whose ``pixel_size_nm`` is empty.
    force : bool
        Overwrite existing outputs (the runner checks them; the writers replace them).
    """

    name = "rescale"
    columns = ("pixel_size_nm", "source_pixel_size_nm", "scale", "width", "height")

    def __init__(self, outdir: Path, pixel_size_nm: float = 1.0, default_pixel_size: float | None = None,
                 force: bool = False):
        for param, value in (("pixel_size_nm", pixel_size_nm), ("default_pixel_size", default_pixel_size)):
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ParameterError(param, f"must be a positive number of nm, got {value}")
        self.outdir, self.target, self.default, self.force = Path(outdir), pixel_size_nm, default_pixel_size, force

    def check_columns(self, columns: list[str], table) -> None:
        """Refuse a manifest that cannot give any row a pixel size (before any work)."""
        if "pixel_size_nm" not in columns and self.default is None:
            raise ParameterError("default_pixel_size", "needed: the manifest has no 'pixel_size_nm' "
                                 "column", path=table.name)

    def plan(self, row: Row) -> Plan:
        px = row_pixel_size(row, self.default)
        iid = row.text("id")
        ann, mask = row.path("annotation"), row.path("mask")
        outs = {"path": self.outdir / f"{iid}.tif"}
        if ann is not None:
            outs["annotation"] = self.outdir / f"{iid}.txt"
        if mask is not None:
            outs["mask"] = self.outdir / f"{iid}_mask.png"
        inputs = [p for p in (row.path(), ann, mask) if p is not None]
        return Plan(outputs=list(outs.values()), inputs=inputs, data=(px, outs))

    def run(self, row: Row, plan: Plan, loaded, advance):
        px, outs = plan.data
        res = rescale_file(row.path(), row.path("annotation"), px, self.target, outs["path"],
                           outs.get("annotation"), self.force, row.path("mask"), outs.get("mask"))
        values = {"source": row.text("source") or row.path().name,
                  **{k: str(v) for k, v in outs.items()},
                  "pixel_size_nm": self.target, "source_pixel_size_nm": px,
                  "scale": round(res.scale, 10), "width": res.width, "height": res.height}
        for c in ("center_x", "center_y"):
            if c in row:
                values[c] = _scaled(row.raw(c), res.scale)
        return [values]
