"""Multi-worker training from a Slurm job on CPU nodes: no nvidia-smi needed (issue 18)."""

from __future__ import annotations

import pytest

from covtool.core.errors import CovtoolError
from covtool.training.distribute import slurm_gpus_per_node, slurm_resolver

SLURM_STEP = {"SLURM_PROCID": "1", "SLURM_STEP_NUM_TASKS": "2", "SLURM_STEP_NODELIST": "localhost",
              "SLURM_STEP_TASKS_PER_NODE": "2", "SLURM_JOB_ID": "7"}


def no_nvidia_smi(name):
    return None


def test_the_gpu_count_comes_from_the_environment_or_is_zero_without_nvidia_smi():
    assert slurm_gpus_per_node({}, no_nvidia_smi) == 0
    assert slurm_gpus_per_node({"CUDA_VISIBLE_DEVICES": "0,1"}, no_nvidia_smi) == 2
    assert slurm_gpus_per_node({"CUDA_VISIBLE_DEVICES": ""}, lambda n: "/usr/bin/nvidia-smi") == 0
    assert slurm_gpus_per_node({"CUDA_VISIBLE_DEVICES": "-1"}, no_nvidia_smi) == 0
    assert slurm_gpus_per_node({"SLURM_GPUS_ON_NODE": "4"}, no_nvidia_smi) == 4
    assert slurm_gpus_per_node({}, lambda n: "/usr/bin/nvidia-smi") is None   # the resolver asks it


def test_tensorflows_slurm_resolver_works_on_a_cpu_node(monkeypatch):
    tf = pytest.importorskip("tensorflow")
    for k, v in SLURM_STEP.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("SLURM_GPUS_ON_NODE", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")      # no nvidia-smi anywhere: a CPU partition
    resolver = slurm_resolver(tf.distribute.cluster_resolver.SlurmClusterResolver)
    spec = resolver.cluster_spec().as_dict()
    assert spec == {"worker": ["localhost:8888", "localhost:8889"]}
    assert (resolver.task_type, resolver.task_id) == ("worker", 1)
    import os

    assert "CUDA_VISIBLE_DEVICES" not in os.environ   # a CPU node's tasks: nothing hidden or set


def test_tasks_per_node_in_slurms_compressed_form():
    from covtool.training.distribute import _max_tasks_per_node

    assert _max_tasks_per_node({"SLURM_STEP_TASKS_PER_NODE": "2(x3),1"}) == 2
    assert _max_tasks_per_node({"SLURM_TASKS_PER_NODE": "4"}) == 4 and _max_tasks_per_node({}) == 1


def test_a_resolver_failure_is_one_line_saying_what_to_set():
    def broken(**kwargs):
        raise KeyError("SLURM_PROCID")

    with pytest.raises(CovtoolError, match="run the tasks with srun .*CUDA_VISIBLE_DEVICES"):
        slurm_resolver(broken, {}, no_nvidia_smi)
