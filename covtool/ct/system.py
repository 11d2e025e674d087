"""COVID-CTset's fully automated system: select slices, classify them, decide per patient.

:class:`DiagnoseStage` is the runner stage (:mod:`covtool.core.stage`) of ``covtool
patient-diagnose``, one item per patient. It is independent of the classifier: it takes
``classify(paths) -> probs`` (:func:`make_classifier` wires a trained run into it), so it is
tested with a fake classifier. With the runner's ``prefetch``, while the classifier works on one
patient the next patient's slices are read and selected in a background thread (reading and
selection are numpy/tifffile work that releases the GIL), so inference is not left waiting on I/O.

Slices of DICOM series and NIfTI volumes reach the classifier as the selection saw them: on
COVID-CTset's stored scale (HU + 1024, ``uint16``), in the radiologist's view. As each streams
past the selection it is written to a 16-bit TIFF in ``stage_dir`` (the classifier reads files, as
in training); those of the slices not selected are removed once the series is selected.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from covtool.core.errors import CovtoolError
from covtool.core.imageio import read_image, write_image
from covtool.core.naming import safe_id
from covtool.core.scale import STORED, manifest_scale, scale_of_dtype
from covtool.core.stage import Note, Out, Plan, Stage, output_columns
from covtool.ct.diagnose import Threshold, negative_name, patient_decision, positive_class
from covtool.ct.pipeline import (
    SelectOptions,
    SeriesResult,
    SliceResult,
    load_slice,
    select_series,
    slice_records,
)
from covtool.ct.seriesdata import Series

if TYPE_CHECKING:
    from covtool.core.manifest import Table

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
    def failed_slices(self) -> list[SliceResult]:
        """The slices whose reading or checks failed (``skip_bad``: the patient was diagnosed
        without them, or with a gap before them); their errors are in ``--slices``."""
        return [sl for s in self.series for sl in s.slices if sl.error]

    @property
    def seconds(self) -> float:
        return self.select_seconds + self.infer_seconds


def input_scale(series: Sequence[Series], source: Table | None = None) -> str | None:
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


def patient_labels(source: Table | None, labels_file: str | None = None) -> dict[str, str]:
    """Known patient labels: from ``labels_file`` (a manifest with ``group``, ``label``) or the
    input manifest's ``label`` column. A patient with two labels is an error naming the line."""
    from covtool.core.manifest import read_table

    table = None
    if labels_file is not None:
        table = read_table(labels_file, required=["group", "label"], unique_ids=False)
    elif source is not None and "label" in source.columns:
        table = source
    out: dict[str, str] = {}
    for row in table.rows if table is not None else ():
        g, lab = row.raw("group", ""), row.raw("label", "")
        if lab == "":
            continue
        if out.setdefault(g, lab) != lab:
            raise row.error(f"patient {g} has two labels ({out[g]}, {lab})")
    return out


def make_classifier(run: Path, batch_size: int | None, given_scale=None,
                    convert_scale: bool = False, where=None) -> tuple[Classifier, list[str]]:
    """``(classify, classes)`` for a trained run folder (TensorFlow is imported here, not before).

    The slices' value scale (``given_scale``: the scale, or a function giving it, called only
    where the run records a scale, since finding it may read a slice) is checked against the run's
    (:func:`covtool.core.scale.check_scale`); with ``convert_scale`` stored slices are divided by
    their maximum for a run trained on COVID-CTset's training part.
    """
    from covtool.core.scale import PER_IMAGE_MAX, check_scale, per_image_max
    from covtool.evaluation.predict import load_run, make_array_predictor, make_predictor

    cfg, model = load_run(run)
    if len(model.outputs[0].shape) != 2:
        raise CovtoolError("the run's model is not an image classifier (output is not (N, classes))", run)
    if callable(given_scale):
        given_scale = given_scale() if cfg.data_scale else None
    conversion = check_scale(cfg.data_scale or None, given_scale, cfg.pipeline.normalize,
                             where if where is not None else run, convert=convert_scale)
    if conversion == PER_IMAGE_MAX:
        predict_arrays = make_array_predictor(model, cfg, batch_size)

        def classify(paths: list[Path]) -> np.ndarray:
            return predict_arrays([per_image_max(load_slice(p)) for p in paths])

        return classify, list(cfg.classes)
    predict = make_predictor(model, cfg, batch_size)

    def classify(paths: list[Path]) -> np.ndarray:
        import pandas as pd

        return predict(pd.DataFrame({"path": [str(p) for p in paths]}))

    return classify, list(cfg.classes)


#: patient-diagnose's patient columns, in the order written (``label``, ``correct`` where labels
#: are known; ``failed_slices`` after the first ones, whose order scripts rely on)
PATIENT_COLUMNS = ("group", "slices", "selected", "positive", "fraction", "mean_prob", "score",
                   "decision", "seconds", "select_seconds", "infer_seconds", "failed_slices",
                   "label", "correct")


def patient_row(r: PatientResult, classes: list[str], pos: str, neg: str, threshold: Threshold) -> dict:
    """A patient's row: its counts, the fraction and mean probability of the positive class over
    its selected slices, the rule's decision and the seconds spent."""
    k = classes.index(pos)
    n_sel = r.n_selected
    pred = r.probs.argmax(axis=1) if n_sel else np.zeros(0, int)
    n_pos = int((pred == k).sum())
    mean_prob = float(r.probs[:, k].mean()) if n_sel else float("nan")
    frac = n_pos / n_sel if n_sel else float("nan")
    return {"group": r.group, "slices": r.n_slices, "failed_slices": len(r.failed_slices),
            "selected": n_sel, "positive": n_pos,
            "fraction": frac, "mean_prob": mean_prob, "score": frac,
            "decision": patient_decision(n_sel, n_pos, threshold, pos, neg, None if not n_sel else mean_prob),
            "seconds": round(r.seconds, 4), "select_seconds": round(r.select_seconds, 4),
            "infer_seconds": round(r.infer_seconds, 4), "error": r.error}


def slice_rows(r: PatientResult, classes: list[str]) -> list[dict]:
    """The ``--slices`` rows of a patient: select's row of each slice (:func:`slice_records`),
    its predicted class and its class probabilities (empty for slices not selected)."""
    probs = {id(sl): row for sl, row in zip(r.selected_slices, r.probs)}
    rows = []
    for sr in r.series:
        for sl, row in slice_records(sr):
            if sl is None:
                continue
            p = probs.get(id(sl))
            row["pred"] = classes[int(np.argmax(p))] if p is not None else ""
            for c_i, c in enumerate(classes):
                row[f"prob_{c}"] = float(p[c_i]) if p is not None else float("nan")
            rows.append(row)
    return rows


def slice_table(patients: Sequence[PatientResult], classes: list[str],
                error: bool) -> tuple[list[str], list[dict]]:
    """``(columns, rows)`` of the ``--slices`` manifest, columns in the runner's order
    (:func:`covtool.core.stage.output_columns`; ``error`` where ``error``)."""
    own = ["id", "path", "group", "series", "slice", "dark_pixels", "threshold", "selected",
           "slice_index", "pred", *(f"prob_{c}" for c in classes)]
    rows = [row for r in patients for row in slice_rows(r, classes)]
    return output_columns(own, rows, [None] * len(rows), error=error), rows


class DiagnoseStage(Stage):
    """COVID-CTset's fully automated system, patient by patient (a runner stage).

    An item is a patient (``(group, series)``, :func:`group_by_patient`). :meth:`load` reads and
    selects its slices (run one patient ahead in a thread with the runner's ``prefetch``, while
    the current one is classified); :meth:`run` classifies the selected slices and gives the
    patient's row, and a :class:`~covtool.core.stage.Note` with its :class:`PatientResult` (for
    ``--slices``). DICOM and NIfTI slices reach the classifier as 16-bit TIFFs in a temporary
    folder (the stage is a context manager: the folder goes when it closes).

    Parameters
    ----------
    classify : callable
        ``classify(paths) -> (N, len(classes))`` probabilities.
    classes : list of str
        The classifier's classes, in its output order.
    threshold : Threshold
        The patient rule.
    positive : str, optional
        The positive class (default: the one whose name contains 'covid').
    options : SelectOptions
        The selection's (``skip_bad``: a bad slice is recorded, the patient goes on).
    labels : dict, optional
        Known labels per patient: their rows get ``label`` and ``correct``.
    on_series, on_slice : callable, optional
        Called with each series' SeriesResult once its patient is classified; after each slice
        read (in the prefetch thread, where there is one).
    stage_dir : Path, optional
        Where DICOM and NIfTI slices are written for the classifier (default: a temporary folder).
    """

    name = "diagnose"
    columns = PATIENT_COLUMNS
    optional = ("label", "correct")

    def __init__(self, classify: Classifier, classes: list[str], threshold: Threshold,
                 positive: str | None = None, options: SelectOptions = SelectOptions(),
                 labels: dict[str, str] | None = None,
                 on_series: Callable[[SeriesResult], None] | None = None,
                 on_slice: Callable[[], None] | None = None, stage_dir: Path | None = None):
        self.classify, self.classes, self.threshold = classify, list(classes), threshold
        self.positive = positive_class(self.classes, positive)
        self.negative = negative_name(self.classes, self.positive)
        self.options, self.labels = options, labels or {}
        self.on_series, self.on_slice = on_series, on_slice
        self.stage_dir, self._tmp = stage_dir, None

    def __enter__(self) -> DiagnoseStage:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Remove the temporary folder of the classifier's slice files."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _folder(self) -> Path:
        if self.stage_dir is None:
            import tempfile

            self._tmp = tempfile.TemporaryDirectory(prefix="covtool-slices-")
            self.stage_dir = Path(self._tmp.name)
        return self.stage_dir

    def key(self, patient) -> str:
        return patient[0]

    def plan(self, patient) -> Plan:
        return Plan(units=sum(len(s.slices) for s in patient[1]))

    def load(self, patient, plan: Plan, advance) -> tuple[list[SeriesResult], float]:
        group, series = patient
        needs_files = any(s.kind != "images" for s in series)
        on_slice = advance if self.on_slice is None else self._both(advance)
        return _select_patient(group, series, self.options, on_slice,
                               self._folder() if needs_files else None)

    def _both(self, advance):
        def on_slice() -> None:   # the progress bar per slice, and the caller's own callback
            advance(1)
            self.on_slice()
        return on_slice

    def run(self, patient, plan: Plan, loaded, advance):
        group = patient[0]
        series_results, t_sel = loaded
        chosen = [sl for r in series_results for sl in r.slices if sl.selected]
        paths = [sl.image if sl.image is not None else sl.path for sl in chosen]
        n = len(self.classes)
        t0 = time.perf_counter()
        try:
            probs = np.asarray(self.classify(paths), np.float32) if paths else np.zeros((0, n), np.float32)
        finally:
            for sl in chosen:
                if sl.image is not None:
                    sl.image.unlink(missing_ok=True)
        t_inf = time.perf_counter() - t0
        if probs.shape != (len(paths), n):
            raise ValueError(f"classifier returned shape {probs.shape} for {len(paths)} slices")
        errors = [r.error for r in series_results if r.error]
        result = PatientResult(group, series_results, probs, paths, chosen, t_sel, t_inf, "; ".join(errors))
        failed = result.failed_slices
        if failed and series_results:  # the decision stands on incomplete data: say so
            first = failed[0]
            series_results[-1].warnings.append(
                f"patient {group}: diagnosed from incomplete data, {len(failed)} of "
                f"{result.n_slices} slices failed (first {first.path}: {first.error})")
        if self.on_series is not None:
            for r in series_results:
                self.on_series(r)
        row = patient_row(result, self.classes, self.positive, self.negative, self.threshold)
        if group in self.labels:
            row["label"] = self.labels[group]
            row["correct"] = row["decision"] == self.labels[group]
        return [row, Note(result)]

    def error_row(self, patient, message: str) -> Out:
        return Out({"group": patient[0], "error": message})


def diagnose_patients(patients: Sequence[tuple[str, list[Series]]], classify: Classifier,
                      n_classes: int, options: SelectOptions = SelectOptions(),
                      on_slice: Callable[[], None] | None = None,
                      prefetch: bool = True, stage_dir: Path | None = None) -> list[PatientResult]:
    """Select and classify patient by patient (:class:`DiagnoseStage` through the runner); one
    :class:`PatientResult` each, in order.

    With ``prefetch`` the selection of patient i+1 runs in a background thread during the
    inference of patient i. Selection errors follow ``options.skip_bad`` (see
    :func:`covtool.ct.pipeline.select_series`). ``stage_dir`` (default: a temporary folder)
    receives DICOM and NIfTI series' selected slices as TIFF files for the classifier; a
    patient's files are removed once it is classified.
    """
    from covtool.core.stage import run_stage

    classes = [str(k) for k in range(n_classes)]
    with DiagnoseStage(classify, classes, Threshold("count", 0.0), classes[0], options,
                       on_slice=on_slice, stage_dir=stage_dir) as stage:
        result = run_stage(stage, patients, skip_bad=options.skip_bad, prefetch=prefetch)
    return [r for r in result.notes if r is not None]
