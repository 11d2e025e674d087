"""tf.distribute strategies: ``auto``, ``mirrored`` (all local GPUs), ``multiworker``.

``multiworker`` takes its cluster from ``TF_CONFIG`` when set, otherwise from Slurm
(``SlurmClusterResolver``: one task per node, ``srun`` environment). Only the chief writes the
run directory.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping

from covtool.core.errors import CovtoolError, ParameterError

STRATEGIES = ("auto", "mirrored", "multiworker")


def check_strategy(name: str) -> None:
    """Refuse a strategy that is unknown or, for ``multiworker``, has no cluster to run on."""
    if name not in STRATEGIES:
        raise ParameterError("strategy", f"must be one of {', '.join(STRATEGIES)}; got {name!r}")
    if name == "multiworker" and not (os.environ.get("TF_CONFIG") or os.environ.get("SLURM_JOB_ID")):
        raise ParameterError("strategy", "multiworker needs TF_CONFIG or a Slurm job (SLURM_JOB_ID)")


def make_strategy(name: str):
    check_strategy(name)
    import tensorflow as tf

    if name == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    resolvers = tf.distribute.cluster_resolver  # multiworker
    if os.environ.get("TF_CONFIG"):
        resolver = resolvers.TFConfigClusterResolver()
    else:
        resolver = slurm_resolver(resolvers.SlurmClusterResolver)
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)


def slurm_gpus_per_node(environ: Mapping[str, str] | None = None,
                        which: Callable[[str], str | None] = shutil.which) -> int | None:
    """The GPUs of this node for TensorFlow's Slurm resolver, found without ``nvidia-smi`` where
    the environment says it: ``CUDA_VISIBLE_DEVICES`` (empty or ``-1``: none), Slurm's
    ``SLURM_GPUS_ON_NODE``, else 0 on a node without ``nvidia-smi`` (a CPU node); None leaves
    the count to the resolver (it runs ``nvidia-smi``)."""
    env = os.environ if environ is None else environ
    if "CUDA_VISIBLE_DEVICES" in env:
        devices = [d.strip() for d in env["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
        return 0 if not devices or devices[0] == "-1" else len(devices)
    if (env.get("SLURM_GPUS_ON_NODE") or "").strip().isdigit():
        return int(env["SLURM_GPUS_ON_NODE"])
    return 0 if which("nvidia-smi") is None else None


def slurm_resolver(factory, environ: Mapping[str, str] | None = None,
                   which: Callable[[str], str | None] = shutil.which):
    """``factory(gpus_per_node=...)`` (TensorFlow's ``SlurmClusterResolver``) with the node's GPU
    count from :func:`slurm_gpus_per_node`; its failures as one line saying what to set."""
    env = os.environ if environ is None else environ
    gpus = slurm_gpus_per_node(env, which)
    if gpus == 0:
        # TensorFlow's resolver gives every task a slice of the node's GPUs and so finds no task
        # at all with none (a range of step 0): a placeholder slot per task, CUDA left alone
        slots = _max_tasks_per_node(env)
        kwargs = {"gpus_per_node": slots, "gpus_per_task": 1, "auto_set_gpu": False}
    else:
        kwargs = {} if gpus is None else {"gpus_per_node": gpus}
    try:
        return factory(**kwargs)
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        raise CovtoolError(
            f"TensorFlow's Slurm cluster resolver failed ({type(exc).__name__}: {exc}); run the tasks "
            "with srun inside a Slurm job (SLURM_PROCID, SLURM_STEP_NODELIST, "
            "SLURM_STEP_TASKS_PER_NODE), and say how many GPUs a node has with "
            "CUDA_VISIBLE_DEVICES (empty on a CPU node) or SLURM_GPUS_ON_NODE") from None


def _max_tasks_per_node(env: Mapping[str, str]) -> int:
    """The most tasks on one node, from Slurm's ``2(x3),1`` form (1 where it is not set)."""
    import re

    text = env.get("SLURM_STEP_TASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE") or "1"
    counts = [int(m.group(1)) for m in re.finditer(r"(\d+)(?:\(x\d+\))?", text)]
    return max(counts or [1])


def is_multi_worker(strategy) -> bool:
    """True for a ``MultiWorkerMirroredStrategy`` whose cluster has more than one worker."""
    extended = getattr(strategy, "extended", None)
    return bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())


def is_chief(strategy) -> bool:
    """True on the worker that writes outputs (always true outside multi-worker training)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not is_multi_worker(strategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type in (None, "chief") or (task_type == "worker" and task_id == 0)
