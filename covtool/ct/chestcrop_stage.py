"""``covtool chest-crop`` as a runner stage (:mod:`covtool.core.stage`): one item is one image row.

:class:`ChestCropStage` finds the chest's box of each image (:func:`covtool.ct.chestcrop.chest_box`)
and writes the cropped image to ``outdir`` as ``<id>.png`` (``<id>.tif`` for TIFF and DICOM
sources, which may hold other dtypes than 8/16 bits), in the layout and dtype it was read in (grey,
grey+alpha, RGB, RGBA; a ``.png`` holding JPEG data becomes a real PNG, losslessly). A row's
lesion ``mask`` is cropped with the same box to ``<id>_mask.png``, after checking it has the
image's size. With ``splits``, only the rows of those splits are cropped (COVID-CT crops its
validation and test images); the other rows pass through unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from covtool.core.errors import ParameterError
from covtool.core.manifest import Row
from covtool.core.stage import Note, Plan, Stage
from covtool.ct.chestcrop import check_options, chest_box

#: source formats whose crops are written as TIFF (any dtype); every other one as PNG
TIFF_SOURCES = ("tiff", "dicom")


def parse_splits(text: str | None) -> tuple[str, ...] | None:
    """``"val,test"`` -> ``("val", "test")``; None or empty -> None (every row)."""
    if text is None:
        return None
    splits = tuple(s.strip() for s in text.split(",") if s.strip())
    if not splits:
        raise ParameterError("splits", f"names no split: {text!r} (e.g. val,test)")
    return splits


class ChestCropStage(Stage):
    """Crop each image to its chest (COVID-CT's threshold segmentation and convex hull).

    Writes ``path`` (the crop), ``mask`` (where the row has one), ``crop_box`` (``x0,y0,x1,y1``
    in source pixels, ``x1``/``y1`` exclusive), ``width``, ``height`` (of the crop) and
    ``source_width``, ``source_height``; rows of other splits keep their cells, ``crop_box``
    empty.

    Parameters
    ----------
    outdir : Path
    splits : tuple of str, optional
        Crop only rows of these splits (None: every row).
    margin : int
        Pixels kept around the hull's box on every side (clipped to the image).
    force : bool
        Overwrite existing outputs.
    """

    name = "chest-crop"
    columns = ("mask", "crop_box", "width", "height", "source_width", "source_height")
    optional = ("mask",)

    def __init__(self, outdir: Path, splits: tuple[str, ...] | None = None, margin: int = 0,
                 force: bool = False):
        check_options(margin)
        if splits is not None and not all(isinstance(s, str) and s for s in splits):
            raise ParameterError("splits", f"must be split names, got {splits!r}")
        self.outdir, self.splits, self.margin, self.force = Path(outdir), splits, margin, force

    def check_table(self, table) -> None:
        """With ``splits``: the manifest has a ``split`` column and a row of one of them."""
        if self.splits is None:
            return
        if "split" not in table.columns:
            raise ParameterError("splits", "the manifest has no 'split' column", path=table.name)
        present = {r.text("split") for r in table.rows}
        if not present & set(self.splits):
            shown = ", ".join(sorted(present - {""})) or "none"
            raise ParameterError("splits", f"no row has split {' or '.join(self.splits)} "
                                 f"(splits present: {shown})", path=table.name)

    def plan(self, row: Row) -> Plan:
        if self.splits is not None and row.text("split") not in self.splits:
            return Plan(data=None)
        from covtool.core.imageio import image_format

        if row.has("annotation"):
            raise row.error("chest-crop does not move annotations: the row has an 'annotation'")
        src = row.path()
        suffix = ".tif" if image_format(src) in TIFF_SOURCES else ".png"
        iid = row.text("id")
        outs = {"path": self.outdir / f"{iid}{suffix}"}
        mask = row.path("mask")
        if mask is not None:
            outs["mask"] = self.outdir / f"{iid}_mask.png"
        return Plan(outputs=list(outs.values()), inputs=[p for p in (src, mask) if p is not None],
                    data=outs)

    def run(self, row: Row, plan: Plan, loaded, advance):
        if plan.data is None:
            return [{}, Note(None)]     # another split: the row as it is
        from covtool.core.imageio import read_image, write_image

        outs = plan.data
        img = read_image(row.path())
        found = chest_box(img, self.margin)
        if found is None:
            raise row.error(f"{row.path()}: no body found (no pixel above the air's threshold)")
        x0, y0, x1, y1 = found.box
        values = {"crop_box": found.text, "width": x1 - x0, "height": y1 - y0,
                  "source_width": img.shape[1], "source_height": img.shape[0]}
        if "mask" in outs:
            mask = read_image(row.path("mask"))
            if mask.shape[:2] != img.shape[:2]:
                raise row.error(f"{row.path('mask')}: mask is {mask.shape[1]}x{mask.shape[0]}, "
                                f"its image {row.path()} is {img.shape[1]}x{img.shape[0]}")
            write_image(outs["mask"], np.ascontiguousarray(mask[y0:y1, x0:x1]), force=self.force)
            values["mask"] = str(outs["mask"])
        write_image(outs["path"], np.ascontiguousarray(img[y0:y1, x0:x1]), force=self.force)
        values["path"] = str(outs["path"])
        area = img.shape[0] * img.shape[1]
        return [values, Note(1 - (x1 - x0) * (y1 - y0) / area if area else 0.0)]
