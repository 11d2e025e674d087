"""``--shard K/N``: one share of the items for cluster array jobs.

K is 0-based (``0 <= K < N``). Item ``i`` of the stage's ordered work list belongs to shard
``i mod N``, so shards are balanced and together hold every item exactly once. Without the option,
Slurm's ``SLURM_ARRAY_TASK_ID``/``SLURM_ARRAY_TASK_COUNT`` give the default (the task id is made
0-based with ``SLURM_ARRAY_TASK_MIN`` when it is set, so ``--array=1-8`` works too).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from covtool.core.errors import ParameterError, UsageError

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def select(self, items: Sequence[T]) -> list[T]:
        """The items of this shard, in their order."""
        return [item for i, item in enumerate(items) if i % self.count == self.index]

    def owns(self, position: int) -> bool:
        return position % self.count == self.index


def parse_shard(text: str | None, environ: Mapping[str, str] | None = None) -> Shard | None:
    """Parse ``K/N``; ``None`` (no option) falls back to the Slurm array variables."""
    env = os.environ if environ is None else environ
    if text is None or text == "":
        task, count = env.get("SLURM_ARRAY_TASK_ID"), env.get("SLURM_ARRAY_TASK_COUNT")
        if not task or not count:
            return None
        try:
            k, n = int(task) - int(env.get("SLURM_ARRAY_TASK_MIN", "0") or 0), int(count)
        except ValueError:
            raise UsageError(f"SLURM_ARRAY_TASK_ID={task!r}/SLURM_ARRAY_TASK_COUNT={count!r} are not numbers") from None
        source = "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT"
    else:
        parts = text.split("/")
        if len(parts) != 2:
            raise ParameterError("shard", f"expects K/N (e.g. 0/4), got {text!r}")
        try:
            k, n = int(parts[0]), int(parts[1])
        except ValueError:
            raise ParameterError("shard", f"expects whole numbers K/N, got {text!r}") from None
        source = None
    problem = (f"the shard count must be at least 1, got {n}" if n < 1 else
               f"shard index {k} is outside 0..{n - 1} (K is 0-based)" if not 0 <= k < n else None)
    if problem is not None:
        raise ParameterError("shard", problem) if source is None else UsageError(f"{source}: {problem}")
    return Shard(k, n)
