"""The D4 symmetries of the ``transform`` column: now :mod:`covtool.core.symmetry`.

Kept so that ``from covtool.training.symmetry import parse_symmetry`` (the input pipeline, older
code) still works; new code imports :mod:`covtool.core.symmetry`.
"""

from __future__ import annotations

from covtool.core.symmetry import *  # noqa: F403  (the same names, one module)
from covtool.core.symmetry import __all__  # noqa: F401
