from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from covtool.core.errors import UsageError
from covtool.core.shard import Shard, parse_shard


def test_parse_and_select():
    s = parse_shard("1/3", environ={})
    assert s == Shard(1, 3)
    assert s.select(list("abcdefg")) == ["b", "e"]


def test_slurm_defaults():
    env = {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4"}
    assert parse_shard(None, environ=env) == Shard(2, 4)
    env1 = {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"}
    assert parse_shard(None, environ=env1) == Shard(3, 4)
    assert parse_shard(None, environ={}) is None
    assert parse_shard("0/2", environ=env) == Shard(0, 2)  # the option wins


@pytest.mark.parametrize("text", ["3", "a/b", "2/2", "-1/3", "0/0", "1/2/3"])
def test_bad_shards(text):
    with pytest.raises(UsageError):
        parse_shard(text, environ={})


@given(st.lists(st.integers(), max_size=60), st.integers(1, 9))
def test_shards_partition_the_items(items, n):
    parts = [Shard(k, n).select(items) for k in range(n)]
    assert sorted(sum(parts, [])) == sorted(items)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
