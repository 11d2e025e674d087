from __future__ import annotations

import numpy as np

from covtool.core.imageio import read_image
from covtool.synth.ct import draw_patient, lung_openness, patient_series


def test_series_is_16bit_in_stored_units_and_deterministic():
    spec = draw_patient(np.random.default_rng(3), 20, covid=True)
    a = [img for img, _ in patient_series(spec, seed=5)]
    b = [img for img, _ in patient_series(spec, seed=5)]
    assert all(x.dtype == np.uint16 and x.shape == (512, 512) for x in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    mid = a[10]
    assert 900 < np.median(mid[mid > 500]) < 1300        # soft tissue ~1000
    assert (mid < 300).sum() > 10000                        # open lungs are dark
    assert (a[0][200:350, 120:370] < 300).sum() == 0      # closed lungs at the series' ends


def test_lungs_open_and_close_along_the_series():
    spec = draw_patient(np.random.default_rng(1), 40, covid=False)
    o = [lung_openness(spec, k) for k in range(40)]
    assert o[0] == 0 and o[-1] == 0 and max(o) > 0.95
    assert spec.lesions == ()


def test_dataset_truth(ct_patients):
    root, truth = ct_patients
    assert set(truth["patient_label"]) == {"covid", "normal"}
    assert truth.groupby("group")["patient_label"].nunique().eq(1).all()
    covid_lesions = truth[truth.patient_label == "covid"]["lesion_pixels"].sum()
    assert covid_lesions > 0 and truth[truth.patient_label == "normal"]["lesion_pixels"].sum() == 0
    # slice labels: covid exactly where a lesion is visible, only in covid patients
    assert ((truth.label == "covid") == (truth.lesion_pixels >= 50)).all()
    assert set(truth.loc[truth.label == "covid", "patient_label"]) == {"covid"}
    pats = (root / "patients.csv").read_text().splitlines()
    assert pats[0] == "group,label" and len(pats) == 1 + truth.group.nunique()
    first = truth.iloc[0]
    assert read_image(first["path"]).dtype == np.uint16
    assert (root / "truth.csv").exists()
