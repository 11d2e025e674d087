from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from covtool.em.balance import (
    IDENTITY,
    TRANSFORMS,
    apply_transform,
    balance_manifest,
    parse_transform,
    plan_class,
)


def test_the_eight_transforms_are_the_distinct_symmetries_of_the_square():
    img = np.arange(12).reshape(3, 4)
    outs = {name: apply_transform(img, name) for name in TRANSFORMS}
    assert len({o.tobytes() + bytes(o.shape) for o in outs.values()}) == 8
    np.testing.assert_array_equal(outs[IDENTITY], img)
    np.testing.assert_array_equal(outs["rot90_k1"], np.rot90(img))
    np.testing.assert_array_equal(outs["flip_rot90_k0"], img[:, ::-1])
    np.testing.assert_array_equal(outs["flip_rot90_k2"], img[::-1, :])   # fliplr + 180° = flipud
    assert parse_transform("flip_rot90_k3") == (True, 3)
    with pytest.raises(ValueError, match="unknown transform"):
        apply_transform(img, "rot45")
    colour = np.zeros((4, 4, 3))
    colour[0, 3] = 1
    assert apply_transform(colour, "rot90_k1")[0, 0].tolist() == [1, 1, 1]


def patches(counts: dict[str, int], split="train") -> pd.DataFrame:
    pre = "" if split == "train" else f"{split}_"
    rows = [{"id": f"{pre}{lab}_{i}", "path": f"{pre}{lab}_{i}.tif", "label": lab, "split": split, "group": f"img{i % 3}"}
            for lab, n in counts.items() for i in range(n)]
    return pd.DataFrame(rows, dtype=object)


def test_classes_reach_per_class_by_augmenting_or_reducing():
    df = pd.concat([patches({"a": 5, "b": 30, "c": 10}), patches({"a": 4}, "test")], ignore_index=True)
    res = balance_manifest(df, per_class=12, seed=3)
    m = res.manifest
    train = m[m["split"] == "train"]
    assert train["label"].value_counts().to_dict() == {"a": 12, "b": 12, "c": 12}
    assert res.counts == {"a": (5, 12), "b": (30, 12), "c": (10, 12)}
    assert m["id"].is_unique
    # reduced class: 12 distinct originals, untouched
    b = train[train["label"] == "b"]
    assert (b["transform"] == IDENTITY).all() and b["id"].isin(df["id"]).all()
    # augmented class: all 5 originals kept, 7 copies of distinct (patch, transform) pairs
    a = train[train["label"] == "a"]
    orig = a[a["augmented_from"] == ""]
    copies = a[a["augmented_from"] != ""]
    assert sorted(orig["id"]) == [f"a_{i}" for i in range(5)] and (orig["transform"] == IDENTITY).all()
    assert len(copies) == 7 and (copies["transform"] != IDENTITY).all()
    assert not copies.duplicated(["augmented_from", "transform"]).any()
    assert (copies["id"] == copies["augmented_from"] + "_" + copies["transform"]).all()
    # no patch gets a second copy before every patch got one
    assert copies["augmented_from"].value_counts().max() - copies["augmented_from"].value_counts().min() <= 1
    assert set(copies["augmented_from"]) == set(orig["id"])
    # copies keep their original's path and group (no leakage across splits)
    src = df.set_index("id")
    assert (copies["path"].to_numpy() == src.loc[copies["augmented_from"], "path"].to_numpy()).all()
    assert (copies["group"].to_numpy() == src.loc[copies["augmented_from"], "group"].to_numpy()).all()
    # other splits pass unchanged
    test = m[m["split"] == "test"]
    assert len(test) == 4 and (test["transform"] == IDENTITY).all()


def test_deterministic_for_a_seed_and_different_for_another():
    df = patches({"a": 7, "b": 40})
    one = balance_manifest(df, per_class=20, seed=1).manifest
    two = balance_manifest(df, per_class=20, seed=1).manifest
    other = balance_manifest(df, per_class=20, seed=2).manifest
    pd.testing.assert_frame_equal(one, two)
    assert not one["id"].equals(other["id"])
    # adding a class leaves the others' draws alone
    more = balance_manifest(patches({"a": 7, "b": 40, "z": 3}), per_class=20, seed=1).manifest
    pd.testing.assert_frame_equal(more[more["label"] != "z"].reset_index(drop=True), one)


def test_more_than_eight_times_repeats_with_unique_ids():
    plan = plan_class(2, 20, np.random.default_rng(0))
    assert len(plan) == 20
    res = balance_manifest(patches({"a": 2}), per_class=20, seed=0)
    assert res.repeated == {"a": 4} and res.manifest["id"].is_unique
    assert res.manifest["id"].str.endswith("_r2").sum() == 4


def test_error_rows_are_left_out():
    df = patches({"a": 3})
    df["error"] = ["", "unreadable", ""]
    m = balance_manifest(df, per_class=4, seed=0).manifest
    assert (m["label"] == "a").sum() == 5
    bad = m[m["error"] != ""]
    assert bad["id"].tolist() == ["a_1"] and bad["transform"].tolist() == [""]
    assert "a_1" not in set(m["augmented_from"])


def test_balance_writes_the_canonical_names_as_it_always_did_and_they_round_trip():
    from covtool.core.symmetry import SYMMETRIES, apply_symmetry, parse_symmetry, symmetry_name

    one = balance_manifest(patches({"a": 1}), per_class=8, seed=0).manifest
    assert sorted(one["transform"]) == sorted(SYMMETRIES)           # every symmetry, once
    img = np.arange(6).reshape(2, 3)
    for name in one["transform"]:
        flip, k = parse_symmetry(name)
        assert symmetry_name(flip, k) == name
        assert np.array_equal(apply_symmetry(img, name), np.rot90(np.fliplr(img) if flip else img, k))
    # what the balance of this commit's parent wrote for this input (ids are built from the names)
    rows = [{"id": f"{lab}{i}", "path": f"{lab}{i}.tif", "label": lab, "split": "train"}
            for lab, n in {"a": 2, "b": 3}.items() for i in range(n)]
    rows.append({"id": "t0", "path": "t0.tif", "label": "a", "split": "test"})
    m = balance_manifest(pd.DataFrame(rows, dtype=object), per_class=9, seed=5).manifest
    assert list(zip(m["id"], m["transform"])) == [
        ("a0", "rot90_k0"), ("a1", "rot90_k0"), ("a0_flip_rot90_k3", "flip_rot90_k3"),
        ("a1_flip_rot90_k2", "flip_rot90_k2"), ("a0_rot90_k1", "rot90_k1"),
        ("a1_flip_rot90_k3", "flip_rot90_k3"), ("a0_rot90_k2", "rot90_k2"), ("a1_rot90_k2", "rot90_k2"),
        ("a1_flip_rot90_k1", "flip_rot90_k1"), ("b0", "rot90_k0"), ("b1", "rot90_k0"), ("b2", "rot90_k0"),
        ("b0_rot90_k1", "rot90_k1"), ("b1_rot90_k1", "rot90_k1"), ("b2_flip_rot90_k0", "flip_rot90_k0"),
        ("b0_rot90_k2", "rot90_k2"), ("b1_flip_rot90_k1", "flip_rot90_k1"),
        ("b2_flip_rot90_k1", "flip_rot90_k1"), ("t0", "rot90_k0")]


def test_per_class_below_one_is_a_parameter_error():
    from covtool.core.errors import ParameterError

    with pytest.raises(ParameterError) as err:
        balance_manifest(patches({"a": 2}).iloc[:0], per_class=0)      # before any work
    assert err.value.param == "per_class" and str(err.value) == "per_class: must be at least 1, got 0"
