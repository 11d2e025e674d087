from __future__ import annotations

import pytest

from covtool.synth.pdf import make_paper


@pytest.fixture(scope="session")
def paper(tmp_path_factory):
    """One synthetic paper and its ground truth (generated once per session)."""
    folder = tmp_path_factory.mktemp("paper")
    path = folder / "paper.pdf"
    truth = make_paper(path, seed=3)
    return path, truth
