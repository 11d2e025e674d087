"""The TEM stages as runner objects (:mod:`covtool.core.stage`): what one image needs and gives.

Each stage is built from its options (validated once, in the constructor) and run over the
manifest's rows by :func:`covtool.core.stage.run_stage`, which shards, checks every output before
any work, records bad items, rolls back and carries the columns a stage does not write.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from covtool.core.errors import ManifestError, ParameterError
from covtool.core.manifest import Row
from covtool.core.naming import safe_id
from covtool.core.stage import Out, Plan, Stage
from covtool.em.patches import DEFAULT_SIZE, MIRROR_MODES, PatchCentre

if TYPE_CHECKING:
    import pandas as pd

    from covtool.em.balance import BalanceResult


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

    def check_table(self, table) -> None:
        """Refuse a manifest that cannot give any row a pixel size (before any work)."""
        if "pixel_size_nm" not in table.columns and self.default is None:
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
        from covtool.em.pipeline import rescale_file

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


#: Patch file formats and their suffixes: TIFF keeps any dtype, PNG holds 8/16-bit.
PATCH_FORMATS = {"tiff": ".tif", "png": ".png"}


def patch_id(image_id: str, c: PatchCentre) -> str:
    """``<image>_o<object>_v<vertex>``, ``_mid`` for a two-point line's midpoint (0-based, 3 digits)."""
    tail = "mid" if c.kind == "midpoint" else f"v{int(c.vertex):03d}"
    return safe_id(image_id, f"o{c.object:03d}", tail)


class CropStage(Stage):
    """Cut a patch around every annotated particle centre of each image (mirror-padded borders).

    One item is one image row and gives one row per patch, written to ``outdir`` as
    ``<patch id>.tif`` (or ``.png``): ``group`` = the image's id, ``source``, ``object``,
    ``vertex``, ``center_kind``, ``center_x``, ``center_y`` (pixels of the source image),
    ``patch_x0``, ``patch_y0``; the image row's other columns are carried, except its image-level
    ones (:attr:`drops`). Planning reads each annotation (small), so a bad annotation or an
    existing patch stops the run before any patch is cut.

    Parameters
    ----------
    outdir : Path
    size : int
        Patch width and height in pixels (the paper: 256 = 256 nm at 1 nm/px).
    fmt : str
        ``tiff`` or ``png`` (:data:`PATCH_FORMATS`).
    mirror : str
        ``symmetric`` (the edge pixel repeats) or ``reflect`` (:data:`MIRROR_MODES`).
    force : bool
        Overwrite existing patches.
    """

    name = "crop"
    columns = ("object", "vertex", "center_kind", "center_x", "center_y", "patch_x0", "patch_y0")
    #: Image-level columns that do not describe a patch (its files, its own size).
    drops = ("annotation", "mask", "width", "height")

    def __init__(self, outdir: Path, size: int = DEFAULT_SIZE, fmt: str = "tiff",
                 mirror: str = "symmetric", force: bool = False):
        if fmt not in PATCH_FORMATS:
            raise ParameterError("fmt", f"must be one of {', '.join(PATCH_FORMATS)}, got {fmt!r}")
        if mirror not in MIRROR_MODES:
            raise ParameterError("mirror", f"must be one of {', '.join(MIRROR_MODES)}, got {mirror!r}")
        if size < 1:
            raise ParameterError("size", f"must be at least 1 pixel, got {size}")
        self.outdir, self.size, self.mirror, self.force = Path(outdir), size, mirror, force
        self.suffix = PATCH_FORMATS[fmt]

    def check_table(self, table) -> None:
        """Refuse a manifest without annotations (before any work)."""
        if "annotation" not in table.columns:
            raise table.error("rows need an 'annotation' column (the particle centres)", 1)

    def _patch_path(self, image_id: str, c: PatchCentre) -> Path:
        return self.outdir / f"{patch_id(image_id, c)}{self.suffix}"

    def plan(self, row: Row) -> Plan:
        ann = row.path("annotation")
        if ann is None:
            raise row.error("no annotation for this image (empty 'annotation')")
        from covtool.em.pipeline import patch_plan

        centres = patch_plan(ann)
        iid = row.text("id")
        return Plan(outputs=[self._patch_path(iid, c) for c in centres], inputs=[row.path(), ann],
                    units=len(centres))

    def error_row(self, row: Row, message: str) -> Out:
        """A bad image's row: its id, its image as ``group`` and ``source``, as its patches have."""
        return Out({"id": row.text("id"), "group": row.text("id"),
                    "source": row.text("source") or (row.path().name if row.path() else ""),
                    "error": message}, row)

    def run(self, row: Row, plan: Plan, loaded, advance):
        from covtool.em.pipeline import crop_file

        iid = row.text("id")
        made = crop_file(row.path(), row.path("annotation"), lambda c: self._patch_path(iid, c),
                         self.size, self.mirror, self.force, on_patch=advance)
        image = {"group": iid, "source": row.text("source") or row.path().name}
        return [{"id": patch_id(iid, c), "path": str(dest), **image,
                 "object": c.object, "vertex": c.vertex, "center_kind": c.kind,
                 "center_x": round(c.x, 4), "center_y": round(c.y, 4), "patch_x0": x0, "patch_y0": y0}
                for c, dest, (x0, y0) in made]


def patch_counts(rows: list[dict]) -> tuple[list[str], list[tuple[str, list[int], int]]]:
    """Patches per class and split of a crop's rows (failed rows left out): the splits, and per
    label its count in each split and its number of images (groups)."""
    ok = [r for r in rows if not r.get("error")]
    splits = sorted({str(r.get("split") or "") for r in ok})
    per: dict[str, tuple[Counter, set]] = {}
    for r in ok:
        counts, groups = per.setdefault(str(r.get("label") or ""), (Counter(), set()))
        counts[str(r.get("split") or "")] += 1
        groups.add(r.get("group"))
    return splits, [(label, [counts[s] for s in splits], len(groups))
                    for label, (counts, groups) in sorted(per.items())]


def balance_table(df: pd.DataFrame, per_class: int, seed: int = 0,
                  split: str = "train") -> tuple[BalanceResult, list[str]]:
    """``covtool balance``'s whole-table stage: :func:`~covtool.em.balance.balance_manifest` on a
    patch manifest that is not balanced yet, with the warnings for the summary (the classes
    whose (patch, transform) pairs must repeat).

    Raises
    ------
    ManifestError
        When the manifest already has a ``transform`` column (it was balanced).
    ParameterError
        ``split``, when no row has that split (a mistyped ``trian`` would balance nothing and
        pass): the message names the splits present.
    """
    from covtool.em.balance import balance_manifest

    name = df.attrs.get("manifest")
    if "transform" in df.columns:
        raise ManifestError("already balanced: the manifest has a 'transform' column", name, 1 if name else None)
    splits = df["split"].astype(str).str.strip()
    if not splits.eq(split).any():
        present = sorted(set(splits) - {""})
        raise ParameterError("split", f"no row has split '{split}' (splits present: "
                                      f"{', '.join(present) if present else 'none'})", path=name)
    warnings = []
    result = balance_manifest(df, per_class=per_class, seed=seed, split=split)
    for label, extra in result.repeated.items():
        warnings.append(f"class '{label}': {result.counts[label][0]} patches x 8 symmetries < {per_class}; "
                        f"{extra} (patch, transform) pairs repeat")
    return result, warnings
