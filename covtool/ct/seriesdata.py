"""A CT series as covtool holds it: its slices' files, order, positions and reader.

Its own module so that the finders (:mod:`covtool.ct.series` for folders and manifests,
:mod:`covtool.ct.volumes` for DICOM and NIfTI) both build it without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass
class Series:
    """One series of slices, in anatomical order where the files tell it (DICOM, NIfTI).

    ``slices`` holds each slice's file (a TIFF/PNG, a DICOM file, or the NIfTI volume itself);
    ``read(i)`` gives slice ``i`` on the stored scale where the files are not plain images.
    """

    group: str
    series: str
    folder: Path | None
    slices: list[Path] = field(default_factory=list)
    rows: list | None = None  # each slice's manifest row (a Row or a DataFrame index)
    kind: str = "images"      # "images" (TIFF/PNG files), "dicom" or "nifti"
    positions: list[float] | None = None    # mm along the slice normal, per slice
    slice_index: list[int] | None = None    # NIfTI: the slice's index along the file's own axis
    read: Callable[[int], np.ndarray] | None = None
    left_out: dict[str, int] = field(default_factory=dict)     # images left out, by reason
    bad: list[tuple[Path, str]] = field(default_factory=list)  # files that are not usable slices
    problems: dict[int, str] = field(default_factory=dict)     # slice i: a gap before it
    bad_rows: list | None = None                               # manifest rows of ``bad``
    warnings: list[str] = field(default_factory=list)
    value_scale: str | None = None  # the scale ``read`` gives (covtool.core.scale), where known
    patient_id: str | None = None   # DICOM PatientID (the most common of the series' images)
    # what makes two series one patient (DICOM: the PatientID; NIfTI: its volume or folder), and
    # the prefix that tells apart two patients whose folders share a name; None: the name decides
    group_key: tuple | None = None
    group_prefix: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.group, self.series
