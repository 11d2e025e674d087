"""Keras model builders: the TEM paper's custom CNN, COVID-CTset's FPN, and the keras.applications zoo.

Every builder is a plain function of a :class:`ModelConfig` (``build_model(config) -> keras.Model``);
TensorFlow and Keras are imported inside the functions, so importing this package is cheap.
"""

from __future__ import annotations

from covtool.models.build import MODEL_NAMES, ModelConfig, build_model, count_trainable

__all__ = ["MODEL_NAMES", "ModelConfig", "build_model", "count_trainable"]
