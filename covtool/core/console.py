"""Where people's text goes: a rich console on stderr, and the run-wide flags.

stdout carries data only (a manifest written with ``-o -``); everything meant for people goes
through :data:`stderr`. ``--quiet`` silences information and progress, never errors.

rich is imported on the first line printed through it, not with this module: ``covtool --version``,
``--help`` and an error line never pay for it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


@dataclass
class RunState:
    debug: bool = False
    quiet: bool = False


state = RunState()


def _stderr_console() -> Console:
    from rich.console import Console

    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


class _LazyConsole:
    """A console bound to the *current* ``sys.stderr`` (test runners swap it)."""

    def __getattr__(self, name):
        return getattr(_stderr_console(), name)


stderr = _LazyConsole()


def info(message: str) -> None:
    """A line for people, dropped under ``--quiet``."""
    if not state.quiet:
        _stderr_console().print(message)


def warn(message: str) -> None:
    """A warning line; shown even under ``--quiet`` (it may change how results are read)."""
    _stderr_console().print(f"[yellow]warning:[/yellow] {message}")


def error(message: str) -> None:
    print(f"covtool: error: {message}", file=sys.stderr, flush=True)


def interactive() -> bool:
    """True when stderr is a terminal and progress bars make sense."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
