from __future__ import annotations

import pandas as pd

from covtool.demo import STEPS, step_features


def test_features_demo_step(tmp_path):
    assert any(s.run is step_features for s in STEPS)
    (out,) = step_features(tmp_path, 0, False)
    df = pd.read_csv(out)
    assert len(df) >= 4 and (df["area_nm2"] > 0).all() and df["hog_36"].notna().all()
