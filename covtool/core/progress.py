"""Progress bars on stderr, quiet when stderr is not a terminal or under ``--quiet``.

rich.progress is imported only when a bar is shown: where none is (a batch job, a pipe,
``--quiet``), :func:`make_progress` gives a silent stand-in with the same calls, so a stage run
in an array job does not pay rich's start-up before its first item.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, TypeVar

from covtool.core import console

if TYPE_CHECKING:
    from rich.progress import Progress

T = TypeVar("T")


def enabled() -> bool:
    return console.interactive() and not console.state.quiet


class SilentProgress:
    """The calls covtool makes on a rich ``Progress``, doing nothing (no bar is shown)."""

    def __enter__(self) -> SilentProgress:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_task(self, description: str, total: float | None = None, **fields) -> int:
        return 0

    def advance(self, task: int, advance: float = 1) -> None:
        pass

    def update(self, task: int, **fields) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


def make_progress() -> Progress | SilentProgress:
    """A rich Progress on stderr, or a silent stand-in where a bar would only clutter logs."""
    if not enabled():
        return SilentProgress()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console._stderr_console(),
        transient=False,
    )


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar (or without, when disabled)."""
    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = None
    with make_progress() as prog:
        task = prog.add_task(description, total=total)
        for item in items:
            yield item
            prog.advance(task)
