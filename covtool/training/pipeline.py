"""Former home of the input pipeline, now split by what each part is about:
:mod:`covtool.training.config` (configs, presets), :mod:`~covtool.training.table` (the image
table), :mod:`~covtool.training.readers` (image readers), :mod:`~covtool.training.dataset`
(tf.data assembly) and :mod:`~covtool.training.tf_errors` (TensorFlow error translation).

The names below stay importable from here for ``benchmarks/bench_train.py`` and
``tests/training/test_symmetry.py``.
"""

from __future__ import annotations

from covtool.training.config import AUGMENT_PRESETS, AugmentConfig, PipelineConfig
from covtool.training.dataset import cached_base, make_dataset
from covtool.training.readers import orient
from covtool.training.table import image_table

__all__ = ["AUGMENT_PRESETS", "AugmentConfig", "PipelineConfig", "cached_base", "image_table",
           "make_dataset", "orient"]
