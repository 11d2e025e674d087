from __future__ import annotations

import pytest

from covtool.datasets.common import DatasetError
from covtool.datasets.tem import ingest_tem
from tests.datasets import fixtures


def test_classes_splits_particles_and_pixel_sizes(tmp_path):
    res = ingest_tem(fixtures.tem(tmp_path / "tem"))
    df = res.items.set_index("id")
    assert len(df) == 4 and not res.removed
    assert list(res.items.columns) == ["id", "path", "label", "group", "split", "annotation",
                                       "pixel_size_nm", "particles"]
    assert df.loc["train_Adenovirus_a1", "particles"] == 2
    assert df.loc["train_Adenovirus_a2", "particles"] == 1  # the comment line is not a particle
    assert df.loc["test_Adenovirus_a3", "particles"] == 3
    assert df.loc["train_Ebola_e1", "particles"] == 1  # one centre line
    assert df.loc["train_Adenovirus_a1", "pixel_size_nm"] == 1.5
    assert df.loc["test_Adenovirus_a3", "split"] == "test"
    assert df.loc["train_Ebola_e1", "label"] == "Ebola"
    assert df.loc["train_Ebola_e1", "annotation"].endswith("e1.txt")


def test_class_folders_without_split_folders_and_default_pixel_size(tmp_path):
    root = tmp_path / "flat"
    fixtures.png(root / "Rotavirus" / "r1.png")
    fixtures.write(root / "Rotavirus" / "r1.txt", "3 3\n")
    with pytest.raises(DatasetError, match="no pixel size"):
        ingest_tem(root)
    res = ingest_tem(root, pixel_size_nm=2.0)
    assert "split" not in res.items.columns
    assert res.items.iloc[0]["pixel_size_nm"] == 2.0 and res.items.iloc[0]["particles"] == 1


def test_bad_annotation_and_orphans(tmp_path):
    root = fixtures.tem(tmp_path / "tem")
    fixtures.write(root / "train" / "Ebola" / "e1.txt", "1 1\n2 oops\n")
    with pytest.raises(DatasetError, match=r"e1.txt:2: bad annotation: 'oops' is not a number"):
        ingest_tem(root)
    fixtures.write(root / "train" / "Ebola" / "e1.txt", "1 1\n500 5\n")  # outside the 40x32 image
    fixtures.png(root / "train" / "Ebola" / "e2.png")  # no annotation
    fixtures.write(root / "train" / "Ebola" / "orphan.txt", "1 1\n")
    res = ingest_tem(root, skip_bad=True, pixel_size_nm=1.0)
    assert dict(res.removed) == {"bad annotation": 1, "no annotation": 1, "unknown file": 1}
    assert sorted(res.items["id"]) == ["test_Adenovirus_a3", "train_Adenovirus_a1", "train_Adenovirus_a2"]
