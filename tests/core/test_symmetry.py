from __future__ import annotations

import numpy as np
import pytest

from covtool.core.symmetry import (
    DESCRIPTIVE,
    IDENTITY,
    SYMMETRIES,
    apply_symmetry,
    orient,
    parse_symmetry,
    symmetry_name,
)


def test_both_spellings_of_every_symmetry_parse_to_the_same_flip_and_turns():
    expected = [(False, 0), (False, 1), (False, 2), (False, 3), (True, 0), (True, 1), (True, 2), (True, 3)]
    assert SYMMETRIES == ("rot90_k0", "rot90_k1", "rot90_k2", "rot90_k3",
                          "flip_rot90_k0", "flip_rot90_k1", "flip_rot90_k2", "flip_rot90_k3")
    for canonical, descriptive, want in zip(SYMMETRIES, DESCRIPTIVE, expected, strict=True):
        for spelling in (canonical, descriptive, canonical.upper(), f"  {descriptive.title()} "):
            assert parse_symmetry(spelling) == want, spelling
        assert symmetry_name(*want) == canonical
    assert IDENTITY == "rot90_k0" and symmetry_name(True, 5) == "flip_rot90_k1"
    for empty in (None, "", "  ", "none", "nan", float("nan")):
        assert parse_symmetry(empty) == (False, 0), empty


@pytest.mark.parametrize("name", ["rot45", "rot90_k4", "flip_", "k1", "rot90_k", "flip_identity",
                                  "fliprot90", "rot360"])
def test_other_names_are_refused_naming_the_accepted_ones(name):
    with pytest.raises(ValueError, match=rf"unknown transform '{name}' \(expected one of rot90_k0, "):
        parse_symmetry(name)


def test_application_is_mirror_then_counter_clockwise_quarter_turns():
    img = np.arange(12, dtype=np.int16).reshape(3, 4)
    outs = [apply_symmetry(img, name) for name in SYMMETRIES]
    assert len({o.tobytes() + bytes(o.shape) for o in outs}) == 8
    assert np.array_equal(apply_symmetry(img, "rot90"), [[3, 7, 11], [2, 6, 10], [1, 5, 9], [0, 4, 8]])
    assert np.array_equal(apply_symmetry(img, "flip_rot90_k2"), img[::-1, :])      # = flipud
    assert np.array_equal(apply_symmetry(img, "flip_rot90"), np.rot90(np.fliplr(img)))
    colour = np.zeros((2, 3, 3), np.uint8)
    colour[0, 2] = (1, 2, 3)
    assert orient(colour, True, 3).shape == (3, 2, 3) and orient(colour, False, 1)[0, 0].tolist() == [1, 2, 3]
    for d, c in zip(DESCRIPTIVE, SYMMETRIES, strict=True):
        assert np.array_equal(apply_symmetry(img, d), apply_symmetry(img, c))
