"""tf.distribute strategies: ``auto``, ``mirrored`` (all local GPUs), ``multiworker``.

``multiworker`` takes its cluster from ``TF_CONFIG`` when set, otherwise from Slurm
(``SlurmClusterResolver``: one task per node, ``srun`` environment). Only the chief writes the
run directory.
"""

from __future__ import annotations

import os

from covtool.core.errors import ParameterError

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
    resolver = (resolvers.TFConfigClusterResolver() if os.environ.get("TF_CONFIG")
                else resolvers.SlurmClusterResolver())
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)


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
