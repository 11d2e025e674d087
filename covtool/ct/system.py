"""COVID-CTset's fully automated system: select slices, classify them, decide per patient.

The orchestration is independent of the classifier: it takes ``classify(paths) -> probs`` (the
CLI wires a trained run into it), so it is tested with a fake classifier. While the classifier
works on one patient, the next patient's slices are read and selected in a background thread
(reading and selection are numpy/tifffile work that releases the GIL), so inference is not left
waiting on I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from covtool.ct.pipeline import SelectOptions, SeriesResult, select_series
from covtool.ct.series import Series

#: ``classify(paths) -> (N, K) probabilities`` in the run's class order.
Classifier = Callable[[list[Path]], np.ndarray]


@dataclass
class PatientResult:
    group: str
    series: list[SeriesResult]
    probs: np.ndarray                       # (n_selected, K), rows in selected-slice order
    selected_paths: list[Path] = field(default_factory=list)
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


def group_by_patient(series: Sequence[Series]) -> list[tuple[str, list[Series]]]:
    """Series grouped by patient, patients in first-seen order."""
    out: dict[str, list[Series]] = {}
    for s in series:
        out.setdefault(s.group, []).append(s)
    return list(out.items())


def _select_patient(group: str, series: list[Series], options: SelectOptions,
                    on_slice: Callable[[], None] | None) -> tuple[list[SeriesResult], float]:
    t0 = time.perf_counter()
    results = [select_series(s, options, on_slice=on_slice) for s in series]
    return results, time.perf_counter() - t0


def diagnose_patients(patients: Sequence[tuple[str, list[Series]]], classify: Classifier,
                      n_classes: int, options: SelectOptions = SelectOptions(),
                      on_slice: Callable[[], None] | None = None,
                      prefetch: bool = True) -> Iterator[PatientResult]:
    """Select and classify patient by patient; yields one :class:`PatientResult` each.

    With ``prefetch`` the selection of patient i+1 runs in a background thread during the
    inference of patient i. Selection errors follow ``options.skip_bad`` (see
    :func:`covtool.ct.pipeline.select_series`).
    """
    if not patients:
        return
    pool = ThreadPoolExecutor(max_workers=1) if prefetch else None
    try:
        def submit(i):
            g, s = patients[i]
            if pool is None:
                return _select_patient(g, s, options, on_slice)
            return pool.submit(_select_patient, g, s, options, on_slice)

        pending = submit(0)
        for i, (group, _) in enumerate(patients):
            series_results, t_sel = pending.result() if pool is not None else pending
            if i + 1 < len(patients):
                pending = submit(i + 1)
            paths = [sl.path for r in series_results for sl in r.slices if sl.selected]
            t0 = time.perf_counter()
            probs = np.asarray(classify(paths), np.float32) if paths else np.zeros((0, n_classes), np.float32)
            t_inf = time.perf_counter() - t0
            if probs.shape != (len(paths), n_classes):
                raise ValueError(f"classifier returned shape {probs.shape} for {len(paths)} slices")
            errors = [r.error for r in series_results if r.error]
            yield PatientResult(group, series_results, probs, paths, t_sel, t_inf, "; ".join(errors))
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
