from __future__ import annotations

import os
import stat

import pytest

from covtool.core.atomic import atomic_open, atomic_path, atomic_write_bytes, atomic_write_text
from covtool.core.errors import OutputExistsError


def test_failure_leaves_nothing_behind(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_open(target) as fh:
            fh.write("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_the_previous_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, force=True) as fh:
            fh.write("new")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_temporary_keeps_suffix_and_creates_folders(tmp_path):
    target = tmp_path / "deep" / "er" / "x.png"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".png" and tmp.parent == target.parent
        tmp.write_bytes(b"data")
    assert target.read_bytes() == b"data"


def test_no_overwrite_without_force(tmp_path):
    target = tmp_path / "x.txt"
    atomic_write_text(target, "1")
    with pytest.raises(OutputExistsError, match="use --force"):
        atomic_write_text(target, "2")
    atomic_write_text(target, "2", force=True)
    assert target.read_text() == "2"


def test_write_bytes_creates_folders_refuses_overwrite_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "new" / "x.bin"
    assert atomic_write_bytes(target, memoryview(b"abc")) == target
    assert target.read_bytes() == b"abc"
    with pytest.raises(OutputExistsError):
        atomic_write_bytes(target, b"def")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes", force=True)     # fails half-way: old file kept
    assert target.read_bytes() == b"abc" and [p.name for p in target.parent.iterdir()] == ["x.bin"]
    atomic_write_bytes(target, b"def", force=True)
    assert target.read_bytes() == b"def"


def test_output_appearing_meanwhile_is_not_overwritten(tmp_path):
    target = tmp_path / "x.txt"
    with pytest.raises(OutputExistsError):
        with atomic_path(target) as tmp:
            tmp.write_text("mine")
            target.write_text("someone else's")
    assert target.read_text() == "someone else's" and [p.name for p in tmp_path.iterdir()] == ["x.txt"]


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_outputs_get_the_mode_a_plain_open_gives(tmp_path, monkeypatch, mask):
    """Not mkstemp's 0600: 0666 less the umask, for atomic_path, atomic_open and the writers."""
    import numpy as np

    from covtool.core import atomic
    from covtool.core.imageio import write_image

    old = os.umask(mask)
    try:
        monkeypatch.setattr(atomic, "_UMASK", None)   # read once per process: read it anew here
        with (tmp_path / "plain").open("w") as fh:
            fh.write("x")
        with atomic.atomic_open(tmp_path / "a.csv") as fh:
            fh.write("x")
        with atomic.atomic_path(tmp_path / "b.bin") as tmp:
            tmp.write_bytes(b"x")
        atomic.atomic_write_bytes(tmp_path / "c.bin", b"x")
        write_image(tmp_path / "d.tif", np.zeros((4, 4), np.uint8))
        write_image(tmp_path / "e.png", np.zeros((4, 4), np.uint8))
    finally:
        os.umask(old)
    want = 0o666 & ~mask
    assert stat.S_IMODE((tmp_path / "plain").stat().st_mode) == want
    for name in ("a.csv", "b.bin", "c.bin", "d.tif", "e.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == want, name
    assert atomic.umask() == mask


def test_together_writes_all_or_nothing(tmp_path):
    """Files written inside together() appear only when the block ends cleanly; a failure (or an
    interrupt) in the block, even after some were written, leaves none and no temporary file."""
    from covtool.core.atomic import together

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        with together():
            atomic_write_text(out / "a.json", "{}")
            with atomic_path(out / "b.png") as tmp:
                tmp.write_bytes(b"png")
            assert not (out / "a.json").exists()          # held back until the block ends
            raise KeyboardInterrupt
    assert [p.name for p in out.rglob("*")] == []
    with together():
        atomic_write_text(out / "a.json", "{}")
        atomic_write_bytes(out / "b.png", b"png")
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "b.png"]
    assert (out / "b.png").read_bytes() == b"png"


def test_together_refuses_before_renaming_any(tmp_path):
    """An output that appeared meanwhile (another process) stops the whole group, not half of it."""
    from covtool.core.atomic import together

    with pytest.raises(OutputExistsError):
        with together():
            atomic_write_text(tmp_path / "a.txt", "new a")
            atomic_write_text(tmp_path / "b.txt", "new b")
            (tmp_path / "b.txt").write_text("someone else's")
    assert not (tmp_path / "a.txt").exists() and (tmp_path / "b.txt").read_text() == "someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.txt"]
