from __future__ import annotations

import numpy as np
import pytest

from covtool.core.symmetry import SYMMETRIES, apply_symmetry, parse_symmetry, symmetry_name


def test_names_and_balance_aliases():
    assert parse_symmetry("") == (False, 0) and parse_symmetry("identity") == (False, 0)
    assert parse_symmetry("rot270") == (False, 3)
    assert parse_symmetry("flip_rot90") == (True, 1)
    assert parse_symmetry("flip") == (True, 0)
    assert parse_symmetry("flip_rot90_k2") == (True, 2) and parse_symmetry("rot90_k1") == (False, 1)
    assert [symmetry_name(*parse_symmetry(n)) for n in SYMMETRIES] == list(SYMMETRIES)
    with pytest.raises(ValueError, match="unknown transform"):
        parse_symmetry("rot45")


def test_the_eight_symmetries_are_distinct_and_match_the_pipelines():
    from covtool.core.symmetry import orient

    img = np.arange(12, dtype=np.uint16).reshape(3, 4)[:3, :3]
    outs = {apply_symmetry(img, n).tobytes() for n in SYMMETRIES}
    assert len(outs) == 8
    assert np.array_equal(apply_symmetry(img, "flip_rot90"), np.rot90(np.fliplr(img)))
    for name in SYMMETRIES:
        flip, k = parse_symmetry(name)
        got = orient(img[:, :, None], np.int32(flip), np.int32(k))
        assert np.array_equal(got[:, :, 0], apply_symmetry(img, name)), name


def test_tensorflow_s_flip_and_rot90_are_the_numpy_symmetries_of_both_spellings():
    tf = pytest.importorskip("tensorflow")
    from covtool.core.symmetry import DESCRIPTIVE
    from covtool.core.symmetry import SYMMETRIES as CANONICAL

    img = np.arange(12, dtype=np.float32).reshape(3, 4, 1)
    for canonical, descriptive in zip(CANONICAL, DESCRIPTIVE, strict=True):
        flip, k = parse_symmetry(descriptive)
        assert (flip, k) == parse_symmetry(canonical)
        x = tf.image.flip_left_right(img) if flip else tf.constant(img)
        got = tf.image.rot90(x, k).numpy()
        assert np.array_equal(got, apply_symmetry(img, canonical)), canonical
