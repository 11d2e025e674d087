from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from covtool.core.errors import CovtoolError, ManifestError
from covtool.core.scale import (
    PER_IMAGE_MAX,
    STORED,
    check_scale,
    manifest_scale,
    per_image_max,
    scale_of_dtype,
)


def test_scale_of_dtype():
    assert scale_of_dtype(np.uint16) == STORED and scale_of_dtype("int16") == STORED
    assert scale_of_dtype(np.float32) == PER_IMAGE_MAX
    assert scale_of_dtype(np.uint8) is None  # a rendering, not CT values


def test_manifest_scale_one_none_or_mixed():
    assert manifest_scale(pd.DataFrame({"path": ["a"]})) is None
    assert manifest_scale(pd.DataFrame({"value_scale": ["", ""]})) is None
    assert manifest_scale(pd.DataFrame({"value_scale": ["hu+1024", "", "hu+1024"]})) == STORED
    df = pd.DataFrame({"value_scale": ["hu+1024", "per-image-max"]})
    df.attrs["manifest"] = "m.csv"
    with pytest.raises(ManifestError, match=r"m.csv: the rows mix two value scales \(hu\+1024 and per-image-max\)"):
        manifest_scale(df)
    with pytest.raises(ManifestError, match="unknown scale 'HU'"):
        manifest_scale(pd.DataFrame({"value_scale": ["HU"]}))


def test_per_image_max_is_the_release_conversion():
    img = np.array([[0, 1024], [2048, 4096]], np.uint16)
    out = per_image_max(img)
    assert out.dtype == np.float32
    assert np.array_equal(out, np.array([[0, 0.25], [0.5, 1.0]], np.float32))
    assert np.array_equal(per_image_max(np.zeros((2, 2), np.uint16)), np.zeros((2, 2), np.float32))


def test_check_scale_rules():
    assert check_scale(None, STORED, "none", "x") is None  # the run does not know: no check
    assert check_scale(STORED, None, "none", "x") is None
    assert check_scale(STORED, STORED, "none", "x") is None
    # per-image standardisation removes any per-image factor: the scales give the same input
    assert check_scale(PER_IMAGE_MAX, STORED, "standardize", "x") is None
    with pytest.raises(CovtoolError, match=r"m.csv: the run was trained on 'per-image-max' values but "
                       r"these slices are 'hu\+1024'") as exc:
        check_scale(PER_IMAGE_MAX, STORED, "none", "m.csv")
    assert exc.value.convertible   # patient-diagnose says how: --convert-scale (no flag in core)
    assert "--" not in str(exc.value)
    assert check_scale(PER_IMAGE_MAX, STORED, "range", "x", convert=True) == PER_IMAGE_MAX
    with pytest.raises(CovtoolError, match="trained on 'hu\\+1024' values") as exc:
        check_scale(STORED, PER_IMAGE_MAX, "none", "x", convert=True)  # the maximum is lost
    assert "--convert-scale" not in str(exc.value) and not exc.value.convertible
