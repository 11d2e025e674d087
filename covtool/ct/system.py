"""COVID-CTset's fully automated system: select slices, classify them, decide per patient.

The orchestration is independent of the classifier: it takes ``classify(paths) -> probs`` (the
CLI wires a trained run into it), so it is tested with a fake classifier. While the classifier
works on one patient, the next patient's slices are read and selected in a background thread
(reading and selection are numpy/tifffile work that releases the GIL), so inference is not left
waiting on I/O.

Slices of DICOM series and NIfTI volumes reach the classifier as the selection saw them: on
COVID-CTset's stored scale (HU + 1024, ``uint16``), in the radiologist's view. As each streams
past the selection it is written to a 16-bit TIFF in ``stage_dir`` (the classifier reads files, as
in training); those of the slices not selected are removed once the series is selected.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from covtool.core.errors import CovtoolError
from covtool.core.imageio import read_image, write_image
from covtool.core.naming import safe_id
from covtool.core.scale import STORED, manifest_scale, scale_of_dtype
from covtool.ct.pipeline import SelectOptions, SeriesResult, SliceResult, select_series
from covtool.ct.series import Series

#: ``classify(paths) -> (N, K) probabilities`` in the run's class order.
Classifier = Callable[[list[Path]], np.ndarray]


@dataclass
class PatientResult:
    group: str
    series: list[SeriesResult]
    probs: np.ndarray                       # (n_selected, K), rows in selected-slice order
    selected_paths: list[Path] = field(default_factory=list)   # the files the classifier read
    selected_slices: list[SliceResult] = field(default_factory=list)
    select_seconds: float = 0.0
    infer_seconds: float = 0.0
    error: str = ""

    @property
    def n_slices(self) -> int:
        return sum(len(s.slices) for s in self.series)

    @property
    def n_selected(self) -> int:
        return len(self.selected_paths)

    @property
    def seconds(self) -> float:
        return self.select_seconds + self.infer_seconds


def input_scale(series: Sequence[Series], source: pd.DataFrame | None = None) -> str | None:
    """The value scale of the slices patient-diagnose is given (:mod:`covtool.core.scale`).

    A manifest's ``value_scale`` column where it has one; DICOM series and NIfTI volumes are read
    on the stored scale; image files are on the scale their sample type says (the first readable
    slice's: 16-bit stored values, float the per-image maximum); None where nothing tells.
    """
    if source is not None:
        given = manifest_scale(source)
        if given is not None:
            return given
    known = {s.value_scale for s in series if s.kind != "images"}
    if known:
        return STORED if known == {STORED} else None
    for s in series:
        for path in s.slices:
            try:
                return scale_of_dtype(read_image(path).dtype)
            except CovtoolError:
                continue  # the selection names an unreadable slice
    return None


def group_by_patient(series: Sequence[Series]) -> list[tuple[str, list[Series]]]:
    """Series grouped by patient, patients in first-seen order."""
    out: dict[str, list[Series]] = {}
    for s in series:
        out.setdefault(s.group, []).append(s)
    return list(out.items())


def _stager(series: Series, stage_dir: Path | None):
    """``keep`` for :func:`select_series`: a DICOM or NIfTI slice written as a TIFF of its own."""
    if series.kind == "images":
        return None
    if stage_dir is None:
        raise ValueError(f"{series.kind} series need a stage_dir for the classifier's slice files")
    folder = Path(stage_dir) / safe_id(series.group, series.series)
    folder.mkdir(parents=True, exist_ok=True)

    def keep(item: SliceResult, img: np.ndarray) -> None:
        item.image = write_image(folder / f"{item.index:05d}.tif", img, force=True)

    return keep


def _select_patient(group: str, series: list[Series], options: SelectOptions,
                    on_slice: Callable[[], None] | None,
                    stage_dir: Path | None = None) -> tuple[list[SeriesResult], float]:
    t0 = time.perf_counter()
    results = []
    for s in series:
        r = select_series(s, options, on_slice=on_slice, keep=_stager(s, stage_dir))
        for sl in r.slices:
            if sl.image is not None and not sl.selected:
                sl.image.unlink(missing_ok=True)
                sl.image = None
        results.append(r)
    return results, time.perf_counter() - t0


def diagnose_patients(patients: Sequence[tuple[str, list[Series]]], classify: Classifier,
                      n_classes: int, options: SelectOptions = SelectOptions(),
                      on_slice: Callable[[], None] | None = None,
                      prefetch: bool = True, stage_dir: Path | None = None) -> Iterator[PatientResult]:
    """Select and classify patient by patient; yields one :class:`PatientResult` each.

    With ``prefetch`` the selection of patient i+1 runs in a background thread during the
    inference of patient i. Selection errors follow ``options.skip_bad`` (see
    :func:`covtool.ct.pipeline.select_series`). ``stage_dir`` (needed for DICOM and NIfTI
    series) receives their selected slices as TIFF files for the classifier; a patient's files
    are removed once it is classified.
    """
    if not patients:
        return
    pool = ThreadPoolExecutor(max_workers=1) if prefetch else None
    try:
        def submit(i):
            g, s = patients[i]
            if pool is None:
                return _select_patient(g, s, options, on_slice, stage_dir)
            return pool.submit(_select_patient, g, s, options, on_slice, stage_dir)

        pending = submit(0)
        for i, (group, _) in enumerate(patients):
            series_results, t_sel = pending.result() if pool is not None else pending
            if i + 1 < len(patients):
                pending = submit(i + 1)
            chosen = [sl for r in series_results for sl in r.slices if sl.selected]
            paths = [sl.image if sl.image is not None else sl.path for sl in chosen]
            t0 = time.perf_counter()
            probs = np.asarray(classify(paths), np.float32) if paths else np.zeros((0, n_classes), np.float32)
            t_inf = time.perf_counter() - t0
            for sl in chosen:
                if sl.image is not None:
                    sl.image.unlink(missing_ok=True)
            if probs.shape != (len(paths), n_classes):
                raise ValueError(f"classifier returned shape {probs.shape} for {len(paths)} slices")
            errors = [r.error for r in series_results if r.error]
            yield PatientResult(group, series_results, probs, paths, chosen, t_sel, t_inf, "; ".join(errors))
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
