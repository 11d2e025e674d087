from __future__ import annotations

import threading

import numpy as np

from covtool.ct.pipeline import SelectOptions
from covtool.ct.series import find_series
from covtool.ct.system import diagnose_patients, group_by_patient


def test_selected_slices_go_to_the_classifier_in_order(ct_patients):
    root, truth = ct_patients
    patients = group_by_patient(find_series(root))
    seen: list = []
    covid_paths = set(truth.loc[truth.lesion_pixels > 0, "path"].astype(str))

    def classify(paths):
        seen.append(list(paths))
        # a perfect "lesion detector": P(covid) = 1 where the generator drew a lesion
        p = np.array([1.0 if str(p) in covid_paths else 0.0 for p in paths])
        return np.stack([p, 1 - p], axis=1)

    results = list(diagnose_patients(patients, classify, n_classes=2))
    assert [r.group for r in results] == ["patient001", "patient002", "patient003"]
    for r, paths in zip(results, seen):
        assert r.selected_paths == paths
        assert r.n_selected == sum(sl.selected for s in r.series for sl in s.slices)
        assert r.probs.shape == (r.n_selected, 2)
        assert r.n_slices == (truth.group == r.group).sum()
        label = truth.loc[truth.group == r.group, "patient_label"].iloc[0]
        positive = int((r.probs[:, 0] > 0.5).sum())
        assert (positive > 0) == (label == "covid")


def test_selection_of_the_next_patient_overlaps_inference(ct_patients):
    root, _ = ct_patients
    patients = group_by_patient(find_series(root))
    started_next = threading.Event()
    slices_seen = []

    def on_slice():
        slices_seen.append(threading.current_thread().name)

    def classify(paths):
        # while patient 1 is being classified, patient 2's slices are being read elsewhere
        if not started_next.is_set():
            n = len(slices_seen)
            for _ in range(200):
                if len(slices_seen) > n:
                    started_next.set()
                    break
                threading.Event().wait(0.01)
        return np.tile([0.5, 0.5], (len(paths), 1))

    list(diagnose_patients(patients, classify, n_classes=2, on_slice=on_slice))
    assert started_next.is_set()
    assert threading.main_thread().name not in slices_seen


def test_patient_without_selected_slices_is_not_sent_to_the_classifier(tmp_path):
    from covtool.core.imageio import write_image

    for k in range(3):  # bright slices: no dark pixel, nothing selected
        write_image(tmp_path / "P1" / "S" / f"{k}.tif", np.full((64, 64), 1000, np.uint16))
    calls = []
    res = list(diagnose_patients(group_by_patient(find_series(tmp_path)),
                                 lambda p: calls.append(p) or np.zeros((len(p), 2)), 2,
                                 SelectOptions(), prefetch=False))
    assert calls == [] and res[0].n_selected == 0 and res[0].probs.shape == (0, 2)


def test_dicom_folder_with_two_series_is_one_patient_diagnosed_on_both(tmp_path):
    """Both series feed the patient rule (COVID-CTset's system: all of a patient's slices), and
    the selection's warning names them; the classifier sees feet-first slices in the
    radiologist's view."""
    from covtool.core.imageio import read_image
    from covtool.synth.volumes import chest_phantom, write_dicom_series

    vol = chest_phantom(10, 64, seed=1)
    write_dicom_series(tmp_path / "P1", vol, series_uid="1.2.3.1", series_number=2,
                       orientation=(-1, 0, 0, 0, 1, 0))
    write_dicom_series(tmp_path / "P1", vol[:6], series_uid="1.2.3.2", series_number=4,
                       names=[f"b{k}.dcm" for k in range(6)])
    seen = []

    def classify(paths):
        seen.extend(read_image(p) for p in paths)
        return np.tile([0.5, 0.5], (len(paths), 1))

    [r] = list(diagnose_patients(group_by_patient(find_series(tmp_path)), classify, 2,
                                 prefetch=False, stage_dir=tmp_path / "stage"))
    assert r.group == "P1" and [s.series.series for s in r.series] == ["P1_S2", "P1_S4"]
    assert "2 DICOM series" in r.series[0].warnings[0] and "P1_S4 (SeriesNumber 4, 6 slices)" in r.series[0].warnings[0]
    assert r.n_slices == 16 and r.n_selected == len(seen) > 0
    assert {s.series.series for s in r.series for sl in s.slices if sl.selected} == {"P1_S2", "P1_S4"}
    shown = {(vol[k] + 1024).astype(np.uint16).tobytes() for k in range(10)}
    assert all(img.tobytes() in shown for img in seen)


def test_a_patient_diagnosed_without_a_failed_slice_says_how_many_failed(tmp_path):
    from covtool.core.imageio import write_image
    from covtool.core.stage import run_stage
    from covtool.ct.diagnose import Threshold
    from covtool.ct.system import DiagnoseStage

    dark = np.zeros((64, 64), np.uint16)
    for k in range(3):
        write_image(tmp_path / "P1" / "S" / f"{k}.tif", dark)
        write_image(tmp_path / "P2" / "S" / f"{k}.tif", dark)
    bad = tmp_path / "P2" / "S" / "3.tif"
    bad.write_bytes(b"II*\x00broken")
    seen = []
    with DiagnoseStage(lambda p: np.tile([0.9, 0.1], (len(p), 1)), ["covid", "normal"],
                       Threshold("count", 0.0), options=SelectOptions(skip_bad=True),
                       on_series=seen.append) as stage:
        result = run_stage(stage, group_by_patient(find_series(tmp_path)), skip_bad=True, prefetch=False)
    rows = {r["group"]: r for r in result.rows}
    assert {g: (r["slices"], r["failed_slices"], r["error"]) for g, r in rows.items()} == {
        "P1": (3, 0, ""), "P2": (4, 1, "")}
    assert rows["P2"]["decision"] == "covid" and rows["P2"]["selected"] == 3
    assert "failed_slices" in result.columns
    warnings = {r.series.group: r.warnings for r in seen}
    assert warnings["P1"] == []
    (line,) = warnings["P2"]
    assert line.startswith(f"patient P2: diagnosed from incomplete data, 1 of 4 slices failed (first {bad}: ")
