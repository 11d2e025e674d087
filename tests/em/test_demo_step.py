from __future__ import annotations

import pytest

from covtool.core.errors import CovtoolError
from covtool.core.manifest import read_manifest
from covtool.demo import covtool, step_em


def test_em_demo_step_runs_split_to_eval(tmp_path):
    import json

    outs = step_em(tmp_path, 0, False)
    balanced = read_manifest(outs[2])
    train = balanced[balanced["split"] == "train"]
    assert set(train["label"].value_counts()) == {24}
    patches = read_manifest(outs[1])
    assert (patches["pixel_size_nm"] == "1").all() and len(patches) > 8
    # patches inherit their image's representative split; eval ran on the test split
    images = read_manifest(outs[0]).set_index("id")["split"]
    assert (patches["split"] == patches["group"].map(images)).all()
    metrics = json.loads((tmp_path / "em" / "eval" / "metrics.json").read_text())
    assert 0.0 <= metrics["macro_f1"] <= 1.0 and set(metrics["per_class"]) == set(train["label"])


def test_a_failing_demo_command_stops_the_demo(tmp_path):
    with pytest.raises(CovtoolError, match="demo step failed"):
        covtool("balance", tmp_path / "missing.csv", "-o", tmp_path / "o.csv")
