"""``covtool features`` as a runner stage (:mod:`covtool.core.stage`): one image row and its mask
give one feature row (or one per object), and deep features are batched across images.

:class:`FeaturesStage` is built from its options (validated once, in the constructor, without
TensorFlow), run over the manifest's rows by :func:`covtool.core.stage.run_stage`, which shards,
checks every output before any work, records bad items, rolls back and carries the columns the
stage does not write. The deep model is built in :meth:`FeaturesStage.start` (after every check)
and the last partial batch is run in :meth:`FeaturesStage.finish`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from covtool.core.errors import ParameterError
from covtool.core.manifest import PATH_COLUMNS, Row
from covtool.core.stage import Plan, Stage
from covtool.features.deep import DEEP_MODELS, check_extractor
from covtool.features.shape import SHAPE_COLUMNS
from covtool.features.texture import GLCM_COLUMNS, HOG_COLUMNS


class DeepBatcher:
    """Deep features of rows gathered across images: a batch is run when it is full (and by
    :meth:`flush` at the end), filling each row's ``deep_1..N`` and writing its feature-map grid.

    Parameters
    ----------
    name : str
        A :data:`~covtool.features.deep.DEEP_MODELS` key.
    weights : str
        ``imagenet``, ``none`` or a weights file.
    input_size, batch_size : int
    maps_dir : Path, optional
        Where each row's grid of ``layer``'s maps goes, as ``<id>.png``.
    layer : str, optional
        The layer of the maps (default: the model's early layer).
    channels : int
        Maps per grid.
    force : bool
        Overwrite existing grids.
    """

    def __init__(self, name: str, weights: str = "imagenet", input_size: int = 224, batch_size: int = 16,
                 maps_dir: Path | None = None, layer: str | None = None, channels: int = 16,
                 force: bool = False):
        self.name, self.weights, self.input_size, self.batch_size = name, weights, input_size, batch_size
        self.maps_dir, self.channels, self.force = maps_dir, channels, force
        self.layer = (layer or DEEP_MODELS[name].default_layer) if maps_dir is not None else None
        self.n = DEEP_MODELS[name].features
        self.model = None
        self.pending: list[tuple[dict, object]] = []

    def build(self) -> None:
        """Build the model (imports TensorFlow)."""
        from covtool.features.deep import build_extractor

        self.model = build_extractor(self.name, self.weights, self.input_size, self.layer)

    def add(self, row: dict, region) -> None:
        """Queue ``row`` (filled in place later) with the image region the model sees."""
        self.pending.append((row, region))
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Run the queued rows through the model and fill them."""
        from covtool.core.imageio import write_image
        from covtool.features.deep import deep_features, feature_map_grid, prepare_batch

        if not self.pending:
            return
        if self.model is None:
            self.build()
        pending, self.pending = self.pending, []   # a failed batch is never run again
        batch = prepare_batch([r for _, r in pending], self.name, self.input_size)
        feats, maps = deep_features(self.model, batch)
        for k, (row, _) in enumerate(pending):
            row.update({f"deep_{j + 1}": float(v) for j, v in enumerate(feats[k])})
            if maps is not None and self.maps_dir is not None:
                write_image(self.maps_dir / f"{row['id']}.png", feature_map_grid(maps[k], self.channels),
                            force=self.force)


class FeaturesStage(Stage):
    """SC2-MID features of each image's mask: shape (nm), texture (HOG, GLCM), optionally deep.

    Rows need ``path`` and ``mask``; the scale is the row's ``pixel_size_nm``, else
    ``default_pixel_size``, or, with ``scale_bar_nm``, measured from the image's scale bar
    (``scale_bar_px`` is added). One row per image (its id), or with ``per_object`` one per
    8-connected object (``<id>_<k>``, ``image_id``, ``object``); the image row's other columns are
    carried.

    Parameters
    ----------
    scale_bar_nm : float, optional
        The length the scale bar stands for (SC2-MID: 100 nm).
    default_pixel_size : float, optional
        nm per pixel of rows whose ``pixel_size_nm`` is empty.
    per_object : bool
    masked_texture : bool
        Zero the pixels outside the mask in the texture region.
    deep : str, optional
        An ImageNet CNN (:data:`~covtool.features.deep.DEEP_MODELS`) for ``deep_1..N``.
    weights, input_size, batch_size :
        The deep model's weights (``imagenet``, ``none`` or a file), input side, batch.
    feature_maps : Path, optional
        With ``deep``: a folder for each row's feature-map grid ``<id>.png``.
    feature_layer : str, optional
        With ``feature_maps``: the layer whose maps are drawn.
    feature_channels : int
        Maps per grid.
    force : bool
    """

    name = "features"
    required = ("path", "mask")

    def __init__(self, scale_bar_nm: float | None = None, default_pixel_size: float | None = None,
                 per_object: bool = False, masked_texture: bool = True, deep: str | None = None,
                 weights: str = "imagenet", input_size: int = 224, batch_size: int = 16,
                 feature_maps: Path | None = None, feature_layer: str | None = None,
                 feature_channels: int = 16, force: bool = False):
        for param, value in (("scale_bar_nm", scale_bar_nm), ("default_pixel_size", default_pixel_size)):
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ParameterError(param, f"must be a positive number of nm, got {value}")
        if feature_maps is not None and deep is None:
            raise ParameterError("feature_maps", "needs {deep}", also=("deep",))
        if feature_layer is not None and feature_maps is None:
            raise ParameterError("feature_layer", "needs {feature_maps}", also=("feature_maps",))
        for param, value, least in (("batch_size", batch_size, 1), ("feature_channels", feature_channels, 1)):
            if value < least:
                raise ParameterError(param, f"must be at least {least}, got {value}")
        self.batcher = None
        if deep is not None:
            spec = check_extractor(deep, weights, input_size)
            self.batcher = DeepBatcher(spec.name, weights, input_size, batch_size, feature_maps,
                                       feature_layer, feature_channels, force)
        self.scale_bar_nm, self.default = scale_bar_nm, default_pixel_size
        self.per_object, self.masked_texture, self.feature_maps = per_object, masked_texture, feature_maps
        deep_n = self.batcher.n if self.batcher is not None else 0
        self.columns = (*(("image_id", "object") if per_object else ()), "pixel_size_nm",
                        *(("scale_bar_px",) if scale_bar_nm is not None else ()),
                        *SHAPE_COLUMNS, *HOG_COLUMNS, *GLCM_COLUMNS,
                        *(f"deep_{j}" for j in range(1, deep_n + 1)))

    def check_table(self, table) -> None:
        """Refuse a manifest that cannot give any row a scale (before any work)."""
        if self.scale_bar_nm is None and self.default is None and "pixel_size_nm" not in table.columns:
            raise ParameterError("default_pixel_size", "no scale: the manifest has no 'pixel_size_nm' "
                                 "column (give this, or {scale_bar_nm})", also=("scale_bar_nm",),
                                 path=table.name)

    def plan(self, row: Row) -> Plan:
        from covtool.em.stages import row_pixel_size

        px = None
        if self.scale_bar_nm is None:
            if not row.has("pixel_size_nm") and self.default is None:
                raise row.error("no scale: empty 'pixel_size_nm' (give it, a default pixel size or "
                                "the scale bar's length)")
            px = row_pixel_size(row, self.default)
        outputs = []
        if self.feature_maps is not None and not self.per_object:  # objects are known only in run
            outputs.append(Path(self.feature_maps) / f"{row.text('id')}.png")
        return Plan(outputs=outputs, inputs=[row.path(), row.path("mask")], data=px)

    def start(self) -> None:
        if self.batcher is not None:
            self.batcher.build()

    def run(self, row: Row, plan: Plan, loaded, advance):
        from covtool.features.pipeline import item_features, load_item, measure_scale

        image_path, iid = row.path(), row.text("id")
        image, mask = load_item(image_path, row.path("mask"))
        extra: dict = {}
        px = plan.data
        if self.scale_bar_nm is not None:
            px, bar = measure_scale(image, self.scale_bar_nm, image_path)
            extra["scale_bar_px"] = bar.length_px
        rows = []
        for ob in item_features(image, mask, px, self.per_object, self.masked_texture):
            head = {"id": iid} if ob.obj is None else {"id": f"{iid}_{ob.obj}", "image_id": iid, "object": ob.obj}
            rows.append(({**head, "pixel_size_nm": px, **extra, **ob.values}, ob.region))
        if self.batcher is not None:  # only once the whole item succeeded
            for values, region in rows:
                self.batcher.add(values, region)
        return [values for values, _ in rows]

    def finish(self) -> None:
        if self.batcher is not None:
            self.batcher.flush()


def feature_summary(rows: list[dict], images: int, failed: int) -> dict[str, object]:
    """The summary of a features run: images, rows, failed, mean nm/px, area, major axis, eccentricity."""
    ok = [r for r in rows if not r.get("error")]

    def mean(column: str) -> str:
        values = []
        for r in ok:
            try:
                v = float(r.get(column))
            except (TypeError, ValueError):
                continue
            if math.isfinite(v):
                values.append(v)
        return f"{sum(values) / len(values):.4g}" if values else "-"

    return {"images": images, "rows": len(ok), "failed": failed, "nm/px": mean("pixel_size_nm"),
            "mean area nm²": mean("area_nm2"), "mean major nm": mean("major_axis_nm"),
            "mean eccentricity": mean("eccentricity")}


def check_parquet(dest: str) -> None:
    """Refuse a parquet output that cannot be written (before any work)."""
    if str(dest) == "-":
        raise ParameterError("fmt", "parquet cannot be written to stdout; give an output file")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ParameterError("fmt", "parquet needs pyarrow (pip install pyarrow); or write csv") from None


def write_parquet(rows: list[dict], columns: list[str], dest: str | os.PathLike, force: bool = False) -> None:
    """The rows as a parquet table (atomically), path columns relative to its folder as in a
    CSV manifest; numbers stay numbers."""
    import pandas as pd

    from covtool.core.atomic import atomic_path, check_writable
    from covtool.core.manifest import relative_to

    base = check_writable(dest, force).resolve().parent
    table = pd.DataFrame(rows, columns=columns)
    for c in PATH_COLUMNS:
        if c in table.columns:
            table[c] = [relative_to(base, v) for v in table[c]]
    with atomic_path(dest, force=force) as tmp:
        table.to_parquet(tmp, index=False)
