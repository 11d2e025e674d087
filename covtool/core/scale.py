"""The value scale of CT slices, so that a model is never fed slices on another scale than it
was trained on.

COVID-CTset ships the same slices on two scales (Rahimzadeh et al., sections 2.1 and 2.4):

* ``hu+1024`` (:data:`STORED`): the scanner's stored values, a stored value being HU + 1024 (its
  DICOM headers: slope 1, intercept -1024), 16-bit, 0 to about 5000. The raw part of the release,
  and every DICOM series and NIfTI volume covtool reads (converted to this scale, so that the
  selection's dark level 300 means -724 HU everywhere).
* ``per-image-max`` (:data:`PER_IMAGE_MAX`): 32-bit floats, each image divided by its own maximum
  ("to make these images visible with standard monitors"); the release's training part.

The paper warns that "scaling each image based on the maximum pixel value of itself" loses
information, and a network trained on one scale sees the other as a different image, unless its
input is standardised per image (``--normalize standardize``: zero mean, unit variance), which
removes any per-image factor. The manifest's ``value_scale`` column carries the scale from ingest and
select to train (``config.json``: ``data_scale``), eval and patient-diagnose.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from covtool.core.manifest import Table

from covtool.core.errors import CovtoolError, ManifestError

STORED = "hu+1024"
PER_IMAGE_MAX = "per-image-max"
SCALES = (STORED, PER_IMAGE_MAX)
#: Normalisations that remove any per-image factor, so the two scales give the same input.
SCALE_FREE = ("standardize",)


def scale_of_dtype(dtype: np.dtype | str) -> str | None:
    """The scale a COVID-CTset slice of this dtype is on: integers stored values, floats the
    per-image maximum; None for 8-bit (neither: a rendering, not CT values)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "ui" and dtype.itemsize >= 2:
        return STORED
    if dtype.kind == "f":
        return PER_IMAGE_MAX
    return None


def manifest_scale(df: pd.DataFrame | Table, what: str = "rows") -> str | None:
    """The one scale of a manifest's rows (its ``value_scale`` column), None where it has none.

    ``df`` is a DataFrame or a :class:`~covtool.core.manifest.Table` (read without pandas).
    Rows on two scales are an error: one model, one scale.
    """
    if "value_scale" not in df.columns:
        return None
    if hasattr(df, "rows"):
        cells, name = (r.raw("value_scale") for r in df.rows), df.name
    else:
        cells, name = df["value_scale"], df.attrs.get("manifest")
    values = sorted({str(v) for v in cells if isinstance(v, str) and v.strip()})
    if not values:
        return None
    unknown = [v for v in values if v not in SCALES]
    if unknown:
        raise ManifestError(f"unknown scale '{unknown[0]}' (known: {', '.join(SCALES)})", name)
    if len(values) > 1:
        raise ManifestError(f"the {what} mix two value scales ({' and '.join(values)}): "
                            "use one part of COVID-CTset per manifest", name)
    return values[0]


def per_image_max(img: np.ndarray) -> np.ndarray:
    """Stored values to the release's training scale: float32, divided by the image's maximum
    (an all-zero image stays zero).

    img : ndarray (H, W), any real dtype -> ndarray (H, W), float32
    """
    out = img.astype(np.float32)
    peak = float(out.max()) if out.size else 0.0
    if peak > 0:
        out /= peak
    return out


class ScaleMismatchError(CovtoolError):
    """Slices on another scale than the run was trained on (:func:`check_scale`).

    ``convertible``: the one exact conversion (stored values divided by each slice's maximum)
    would make them the run's; a command that offers it says how.
    """

    def __init__(self, message: str, path=None, convertible: bool = False):
        super().__init__(message, path)
        self.convertible = convertible


def check_scale(trained: str | None, given: str | None, normalize: str, where,
                convert: bool = False) -> str | None:
    """What to do with data on scale ``given`` for a run trained on scale ``trained``.

    Returns None (feed the data as it is) or :data:`PER_IMAGE_MAX` (divide each stored slice by
    its maximum first). Raises :class:`ScaleMismatchError` on a mismatch that changes the model's
    input, unless ``convert`` asks for the one conversion that is exact (stored to per-image
    maximum; the other way round, the maximum is lost).
    """
    if trained is None or given is None or trained == given or normalize in SCALE_FREE:
        return None
    if convert and trained == PER_IMAGE_MAX and given == STORED:
        return PER_IMAGE_MAX
    raise ScaleMismatchError(f"the run was trained on '{trained}' values but these slices are "
                             f"'{given}' (normalisation '{normalize}' keeps the difference): feed "
                             "it the part of the release it was trained on", where,
                             convertible=trained == PER_IMAGE_MAX and given == STORED)


def check_selectable(df: pd.DataFrame | Table | None) -> None:
    """The slice selection counts pixels below a dark level on the stored scale (300 = -724 HU):
    slices divided by their maximum (values 0..1, every pixel "dark") cannot be selected."""
    if df is not None and manifest_scale(df) == PER_IMAGE_MAX:
        raise ManifestError("these slices are divided by their maximum (value_scale per-image-max): "
                            "the dark-pixel selection needs stored values; use the raw part "
                            "(ingest covid-ctset --part raw)",
                            df.name if hasattr(df, "rows") else df.attrs.get("manifest"))


def check_stored_slice(img: np.ndarray, path) -> None:
    """A slice the selection counts must hold stored values: a float slice whose values all lie in
    0..1 is one divided by its maximum (COVID-CTset's training part), on which every pixel is
    "dark" and the threshold 0 (every slice would be selected)."""
    if img.dtype.kind == "f" and img.size and float(np.nanmax(img)) <= 1.0:
        from covtool.core.errors import ImageError

        raise ImageError("values in 0..1 (a slice divided by its maximum, as COVID-CTset's training "
                         "part): the dark-pixel selection needs stored values (HU + 1024); use the "
                         "raw part", path)
