from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from covtool.core.errors import CovtoolError, ManifestError, ParameterError
from covtool.splits import (
    SplitPlan,
    assign_split,
    bad_split,
    group_table,
    inherit,
    kfold_split,
    leakage_problems,
    random_split,
    representative_split,
    split_summary,
    split_table,
)

# 7 images of one class with known particle counts (ids chosen so that ties need the id rule)
SEVEN = pd.DataFrame({"id": list("abcdefg"), "label": ["x"] * 7, "particles": ["5", "1", "3", "3", "9", "2", "7"]})


def test_representative_split_by_hand():
    # ascending: b(1) f(2) c(3) d(3) a(5) g(7) e(9); cycle train,test,train,val,train,...
    got = representative_split(group_table(SEVEN))
    assert got == {"b": "train", "f": "test", "c": "train", "d": "val", "a": "train", "g": "train", "e": "test"}


def test_bad_split_by_hand():
    # ascending b f c d a g e; 60 % of 7 = 4.2 -> 4 train, 80 % = 5.6 -> 6: one val, one test
    got = bad_split(group_table(SEVEN))
    assert got == {"b": "train", "f": "train", "c": "train", "d": "train", "a": "val", "g": "val", "e": "test"}


def test_tem_table1_adenovirus_proportions():
    # TEM Table 1: Adenovirus, 67 images -> train 40, val 13, test 14
    df = pd.DataFrame({"id": [f"i{k:02d}" for k in range(67)], "label": "adeno", "particles": [str(k) for k in range(67)]})
    got = pd.Series(representative_split(group_table(df))).value_counts().to_dict()
    assert got == {"train": 40, "val": 13, "test": 14}


def test_groups_share_a_split_and_patches_count_rows():
    patches = pd.DataFrame({"id": [f"p{k}" for k in range(12)], "label": ["x"] * 12,
                            "group": ["A"] * 5 + ["B"] * 1 + ["C"] * 3 + ["D"] * 2 + ["E"] * 1})
    g = group_table(patches, "particles").table  # no particles column: rows per group
    assert dict(zip(g.group, g["count"])) == {"A": 5, "B": 1, "C": 3, "D": 2, "E": 1}
    # ascending: B(1) E(1) D(2) C(3) A(5) -> train test train val train
    assert representative_split(group_table(patches)) == {"B": "train", "E": "test", "D": "train", "C": "val", "A": "train"}


def test_group_errors_name_the_line():
    df = pd.DataFrame({"id": ["a", "b"], "label": ["x", "y"], "group": ["G", "G"]}, index=[2, 3])
    df.attrs["manifest"] = "m.csv"
    with pytest.raises(ManifestError, match=r"m.csv:2: group 'G' has more than one label"):
        group_table(df)
    df = pd.DataFrame({"id": ["a"], "label": ["x"], "particles": ["many"]}, index=[2])
    df.attrs["manifest"] = "m.csv"
    with pytest.raises(ManifestError, match=r"m.csv:2: 'many' in column 'particles' is not a number"):
        group_table(df)


def test_too_few_groups():
    three = SEVEN.iloc[:3]
    with pytest.raises(CovtoolError, match="class 'x' has 3 group"):
        representative_split(group_table(three))
    with pytest.raises(CovtoolError, match="too few"):
        bad_split(group_table(three))
    with pytest.raises(CovtoolError, match="5-fold"):
        kfold_split(group_table(SEVEN.iloc[:4]), folds=5)


def test_random_and_kfold_are_seeded():
    df = pd.DataFrame({"id": [f"i{k}" for k in range(20)], "label": ["x", "y"] * 10})
    g = group_table(df)
    assert random_split(g, seed=3) == random_split(g, seed=3)
    assert random_split(g, seed=3) != random_split(g, seed=4)
    assert kfold_split(g, 5, seed=1) == kfold_split(g, 5, seed=1)


def test_split_table_and_leakage():
    df = SEVEN.assign(split=SEVEN["id"].map(representative_split(group_table(SEVEN))))
    t = split_table(df, "particles")
    row = t.iloc[0].to_dict()
    assert row["images_train"] == 4 and row["images_val"] == 1 and row["images_test"] == 2
    assert row["particles_train"] == 1 + 3 + 5 + 7 and row["particles_total"] == 30
    assert leakage_problems(df) == []
    leak = pd.DataFrame({"id": ["1", "2", "3"], "group": ["A", "A", "B"], "label": ["x", "x", "x"],
                         "split": ["train", "test", "train"]})
    assert leakage_problems(leak) == ["1 group(s) in two splits: A"]
    missing = pd.DataFrame({"id": ["1", "2", "3"], "label": ["x", "y", "y"], "split": ["train", "test", "train"]})
    assert leakage_problems(missing) == ["class 'x' is missing from test"]


labels_st = st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=80)


def frame(labels, counts, group_sizes):
    rows = []
    for g, (lab, cnt, size) in enumerate(zip(labels, counts, group_sizes)):
        for r in range(size):
            rows.append({"id": f"g{g}_{r}", "group": f"g{g}", "label": lab, "particles": str(cnt)})
    return pd.DataFrame(rows)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_properties_of_every_strategy(data):
    labels = data.draw(labels_st)
    counts = data.draw(st.lists(st.integers(0, 50), min_size=len(labels), max_size=len(labels)))
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=len(labels), max_size=len(labels)))
    df = frame(labels, counts, sizes)
    g = group_table(df)
    per_class = g.table.groupby("label").size()
    for strategy, fn in (("representative", representative_split), ("bad", bad_split),
                         ("random", lambda x: random_split(x, seed=data.draw(st.integers(0, 9))))):
        try:
            assign = fn(g)
        except CovtoolError:
            assert per_class.min() < 5  # only small classes are refused
            continue
        # every group lands in exactly one split
        assert set(assign) == set(g.table["group"])
        out = df.assign(split=df["group"].map(assign))
        assert leakage_problems(out) == []
        # proportions hold within one group per class
        for lab, n in per_class.items():
            got = pd.Series([assign[x] for x in g.of_class(lab)["group"]]).value_counts()
            for s, f in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
                assert abs(got.get(s, 0) - f * n) <= 1, (strategy, lab, n, got.to_dict())
    k = data.draw(st.integers(2, 5))
    if per_class.min() >= k:
        folds = kfold_split(g, k, seed=0)
        assert set(folds) == set(g.table["group"]) and set(folds.values()) <= set(range(k))
        for lab in per_class.index:
            sizes_f = np.bincount([folds[x] for x in g.of_class(lab)["group"]], minlength=k)
            assert sizes_f.max() - sizes_f.min() <= 1


# TEM Table 1 (# images: train, val, test, total) for all 22 classes, copied from the paper
TEM_TABLE1 = {
    "Adenovirus": (40, 13, 14, 67), "Astrovirus": (46, 15, 15, 76), "CCHF": (44, 15, 15, 74),
    "Cowpox": (30, 10, 10, 50), "Dengue": (19, 6, 7, 32), "Ebola": (65, 22, 22, 109),
    "Guanarito": (13, 4, 4, 21), "Influenza": (56, 19, 19, 94), "Lassa": (62, 21, 21, 104),
    "LCM": (22, 7, 8, 37), "Machupo": (20, 6, 7, 33), "Marburg": (57, 19, 19, 95),
    "Nipah": (25, 8, 8, 41), "Norovirus": (32, 11, 11, 54), "Orf": (38, 13, 13, 64),
    "Papilloma": (19, 6, 6, 31), "Pseudocowpox": (20, 7, 7, 34), "Rift Valley": (77, 26, 26, 129),
    "Rotavirus": (22, 7, 7, 36), "Sapovirus": (8, 3, 3, 14), "TBE": (25, 8, 8, 41),
    "WestNile": (5, 2, 2, 9),
}


def test_representative_split_reproduces_tem_table1_image_counts():
    rows = [{"id": f"{c}-{k:03d}", "label": c, "particles": str(k)}
            for c, (*_, total) in TEM_TABLE1.items() for k in range(total)]
    df = pd.DataFrame(rows)
    df["split"] = df["id"].map(representative_split(group_table(df)))
    t = split_table(df, "particles").set_index("class")
    for c, want in TEM_TABLE1.items():
        got = tuple(int(t.at[c, f"images_{s}"]) for s in ("train", "val", "test", "total"))
        assert got == want, c
    assert tuple(t.loc["total", [f"images_{s}" for s in ("train", "val", "test", "total")]]) == (745, 248, 252, 1245)


def test_no_group_and_no_id_is_a_manifest_error():
    df = pd.DataFrame({"label": ["x", "x"], "particles": ["1", "2"]}, index=[2, 3])
    df.attrs["manifest"] = "m.csv"
    with pytest.raises(ManifestError, match=r"m.csv:1: missing column group \(or id"):
        group_table(df)
    with pytest.raises(ManifestError, match="missing column group"):
        leakage_problems(df.assign(split="train"))
    with pytest.raises(ManifestError, match=r"m.csv:1: missing column kind"):
        group_table(df.assign(id=["a", "b"]), class_column="kind")


def test_leakage_class_missing_from_a_fold_test_part():
    # class y has no group in fold 10; folds named in numeric order (2 before 10)
    df = pd.DataFrame({"id": list("abcdef"), "label": ["x", "x", "x", "y", "y", "y"],
                       "fold": ["0", "2", "10", "0", "2", "0"]})
    assert leakage_problems(df) == ["class 'y' is missing from the test part of fold 10"]
    assert leakage_problems(df.assign(fold=["0", "2", "10", "10", "2", "0"])) == []


def test_inherit_and_summary_without_the_cli():
    images = pd.DataFrame({"id": ["A", "B", "C"], "label": ["x", "x", "y"], "split": ["train", "test", "train"]})
    patches = pd.DataFrame({"id": ["p1", "p2", "p3", "p4"], "group": ["A", "A", "B", "C"]})
    out = inherit(patches, images)
    assert out["split"].tolist() == ["train", "train", "test", "train"] and "split" not in patches.columns
    table, title = split_summary(out, images, "label", "particles")
    t = table.set_index("class")
    assert t.loc["x", ["images_train", "images_test", "count_train", "count_test"]].tolist() == [1, 1, 2, 1]
    assert title.endswith("rows per group)")
    assert split_summary(out, None, "label") == (None, "")
    with pytest.raises(ManifestError, match="group 'D' is not in"):
        inherit(patches.assign(group=["A", "A", "B", "D"]), images)
    two = pd.concat([images, pd.DataFrame({"id": ["A2"], "split": ["val"]})], ignore_index=True)
    with pytest.raises(ManifestError, match="group 'A' has two different splits"):
        inherit(patches, two.assign(group=["A", "B", "C", "A"]))


def test_split_plan_checks_every_combination_and_assign_split_uses_it():
    with pytest.raises(ParameterError) as err:
        SplitPlan("clever")
    assert err.value.param == "strategy" and "got 'clever'" in str(err.value)
    with pytest.raises(ParameterError, match="val_fold"):
        SplitPlan("kfold", val_fold=2)
    out = assign_split(SEVEN, SplitPlan("kfold", folds=3, fold=0, val_fold=1), count_column=None)
    assert ((out["fold"] == 0) == (out["split"] == "test")).all()
    assert ((out["fold"] == 1) == (out["split"] == "val")).all()
    assert assign_split(SEVEN, SplitPlan("bad"))["split"].tolist() == \
        [bad_split(group_table(SEVEN))[g] for g in SEVEN["id"]]
