"""The configuration of a training run: one frozen dataclass per concern, defaults written once.

:class:`TrainConfig` holds the model (:class:`~covtool.models.build.ModelConfig`), the input
pipeline (:class:`PipelineConfig`), the augmentation (:class:`AugmentConfig`) and the optimisation.
Its fields carry their command-line description (:func:`covtool.core.options.option`), from
which ``covtool train`` makes its options; :func:`validate` checks a whole config once, before any
work. ``config.json`` is ``TrainConfig.to_dict()`` plus the library versions.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from typing import ClassVar

from covtool.core.errors import ParameterError
from covtool.core.options import (
    Config,
    check_choices,
    check_range,
    derived,
    option,
    parse_range,
)
from covtool.models.build import ModelConfig, check_options, minimum_input
from covtool.training.distribute import STRATEGIES, check_strategy

NORMALIZATIONS = ("standardize", "range", "none")
OPTIMIZERS = ("nadam", "adam", "sgd")
MONITORS = ("val_accuracy", "val_loss", "accuracy", "loss")

DATA, AUGMENT, TRAINING, HARDWARE = "Data", "Augmentation", "Training", "Hardware"


@dataclass(frozen=True)
class PipelineConfig(Config):
    """How images become network inputs (stored in ``config.json``).

    Attributes
    ----------
    image_size : (H, W)
        The model's input size: ``(input_size, input_size)``, else the first training image's.
    channels : int
        1 (grey) or 3 (RGB): 3 where any training image has colour.
    resize : bool
        Resize every image to ``image_size`` (bilinear); off, a differently sized image is an error.
    input_size : int, optional
        The square size every image is resized to; ``None``: the images' own size.
    normalize : str
        ``standardize`` (per image: zero mean, unit variance; TEM), ``range`` (``(x - lo) / (hi - lo)``
        with the fixed ``value_range``, e.g. 0..255 for 8-bit images) or ``none`` (raw values, as the
        COVID-CTset authors fed their 16-bit slices: their paper warns against scaling them by a
        constant or by each image's maximum).
    value_range : (lo, hi)
        For ``normalize="range"``.
    cache : str
        ``none``, ``memory`` or a file prefix for ``tf.data.Dataset.cache``.
    """

    image_size: tuple[int, int] = derived((256, 256))
    channels: int = derived(1)
    resize: bool = derived(False)
    input_size: int | None = option(
        None, "Resize every image to N x N (COVID-CT 480); default: the images' own size, no "
              "resizing.", DATA, metavar="N")
    normalize: str = option(
        "standardize", "standardize (per image; TEM), range (a fixed LO,HI to 0..1, e.g. 0,255 "
                       "for 8-bit images) or none (raw values; COVID-CTset, which warns against "
                       "scaling by a constant).", DATA, choices=NORMALIZATIONS)
    value_range: tuple[float, float] = option(
        (0.0, 5000.0), "Values mapped to 0..1 by the range normalisation.", DATA, flag="--range",
        metavar="LO,HI", parse=parse_range)
    cache: str = option("none", "Cache decoded images: none, memory, or a file prefix.", DATA)

    def cache_for(self, suffix: str) -> PipelineConfig:
        """The same pipeline with a cache file of its own (validation beside training)."""
        if self.cache in ("none", "memory"):
            return self
        return replace(self, cache=f"{self.cache}-{suffix}")


@dataclass(frozen=True)
class AugmentConfig(Config):
    """On-the-fly augmentation of training images (stored in ``config.json``).

    COVID-CTset (preset ``covid-ctset``): flips, rotation 0-360 degrees, zoom 5 %, shifts 5 %.
    COVID-CT (preset ``covid-ct``): random crop at scale 0.5 (area 0.5-1, aspect 3/4-4/3, resized
    back), horizontal flip, brightness and contrast 0.2.

    Attributes
    ----------
    preset : str
        The preset the other values start from (:data:`AUGMENT_PRESETS`).
    hflip, vflip : bool
        Mirror left-right / up-down with probability 1/2.
    rotation : float
        Degrees; the angle is uniform in [-rotation, rotation] (Keras ``rotation_range``).
    zoom : float
        Scale uniform in [1 - zoom, 1 + zoom] (Keras ``zoom_range``).
    shift : float
        Translation uniform in [-shift, shift] of the width and height.
    shear : float
        Shear angle in degrees, uniform in [-shear, shear] (Keras ``shear_range``, in degrees; the
        COVID-CTset code used 0.05). A ``config.json`` without ``shear_unit`` (covtool before
        issue 19) stored it in radians: :meth:`from_dict` converts it, so an old run resumes and
        is described with the shear it had.
    shear_unit : str
        ``degrees``, written to ``config.json`` to mark the unit (absent in older files).
    crop_scale : float
        Random resized crop of area fraction in [crop_scale, 1]; 0 is off.
    brightness, contrast : float
        Factors uniform in [1 - b, 1 + b] (torchvision ``ColorJitter``), applied after normalisation.
    """

    preset: str = option("none", "Augmentation preset (none on the fly; tem augments offline, by "
                                 "'covtool balance'); each value below overrides it.", AUGMENT,
                         flag="--augment", choices=("none", "covid-ctset", "covid-ct", "tem"))
    hflip: bool = option(False, "Random left-right flips.", AUGMENT, negatable=True, from_preset=True)
    vflip: bool = option(False, "Random up-down flips.", AUGMENT, negatable=True, from_preset=True)
    rotation: float = option(0.0, "Random rotation range in degrees.", AUGMENT, from_preset=True)
    zoom: float = option(0.0, "Random zoom range (0.05 = 5 %).", AUGMENT, from_preset=True)
    shift: float = option(0.0, "Random shift range (fraction of size).", AUGMENT, from_preset=True)
    shear: float = option(0.0, "Random shear range in degrees (Keras's shear_range).", AUGMENT,
                          from_preset=True)
    crop_scale: float = option(0.0, "Random resized crop, smallest area fraction.", AUGMENT,
                               from_preset=True)
    brightness: float = option(0.0, "Random brightness factor range.", AUGMENT, from_preset=True)
    contrast: float = option(0.0, "Random contrast factor range.", AUGMENT, from_preset=True)
    shear_unit: str = derived("degrees")

    #: the presets by name (filled in below: they are AugmentConfigs themselves)
    PRESETS: ClassVar[dict[str, AugmentConfig]] = {}

    @classmethod
    def from_dict(cls, d: dict):
        """As :meth:`Config.from_dict`; a file without ``shear_unit`` (covtool before issue 19)
        stored the shear in radians: it is read as the same angle in degrees."""
        d = dict(d or {})
        if d.get("shear_unit", "radians") == "radians" and d.get("shear"):
            d["shear"] = math.degrees(float(d["shear"]))
        d["shear_unit"] = "degrees"
        return super().from_dict(d)

    @property
    def geometric(self) -> bool:
        return bool(self.rotation or self.zoom or self.shift or self.shear)

    @property
    def any(self) -> bool:
        return bool(self.hflip or self.vflip or self.geometric or self.crop_scale
                    or self.brightness or self.contrast)


AUGMENT_PRESETS: dict[str, AugmentConfig] = {
    "none": AugmentConfig(),
    "covid-ctset": AugmentConfig(preset="covid-ctset", hflip=True, vflip=True, rotation=360.0,
                                 zoom=0.05, shift=0.05),
    "covid-ct": AugmentConfig(preset="covid-ct", hflip=True, crop_scale=0.5, brightness=0.2,
                              contrast=0.2),
    "tem": AugmentConfig(preset="tem"),  # the TEM paper augments offline, by the balance stage
}
AugmentConfig.PRESETS.update(AUGMENT_PRESETS)


@dataclass(frozen=True)
class TrainConfig(Config):
    """Every option of a training run (written to ``config.json``).

    The derived fields (``classes``, ``manifest``, ``data_scale`` and the nested image size,
    channels and model shape) are filled in by :func:`covtool.training.train.train`, which returns
    the resolved config.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    #: the class names in output order (sorted labels of the training rows)
    classes: tuple[str, ...] = derived(())
    optimizer: str = option("nadam", "Optimiser (COVID-CTset Nadam, COVID-CT Adam; the TEM paper "
                                     "names none).", TRAINING,
                            choices=OPTIMIZERS)
    learning_rate: float = option(1e-4, "Learning rate (COVID-CTset and COVID-CT 1e-4; the TEM "
                                        "paper gives none).", TRAINING, flag="--lr")
    momentum: float = option(0.9, "SGD momentum.", TRAINING)
    cosine_period: int = option(
        0, "Cosine learning-rate schedule restarting every N epochs (COVID-CT 10); 0 is constant.",
        TRAINING)
    batch_size: int = option(14, "Batch size (COVID-CTset 14; COVID-CT 16).", TRAINING)
    epochs: int = option(50, "Epochs (COVID-CTset 50; TEM 300 from scratch, 50 transfer).", TRAINING)
    class_weights: str = option("none", "none, balanced, or NAME=W,NAME=W.", TRAINING)
    early_stopping: int = option(
        0, "Stop after PATIENCE epochs without improvement of the monitored metric; 0 is off.", TRAINING,
        metavar="PATIENCE")
    monitor: str = option("val_accuracy", "Metric for the best epoch and early stopping.", TRAINING,
                          choices=MONITORS)
    restore_best: bool = option(True, "model.keras gets the best epoch's weights.", TRAINING,
                                negatable=True)
    seed: int = option(0, "Seed of weights, shuffling, augmentation, dropout.", TRAINING)
    cls_loss_weight: float = option(1.0, "jcs: weight of the classification loss (COVID-CT 1).",
                                    TRAINING)
    seg_loss_weight: float = option(1.0, "jcs: weight of the segmentation loss (COVID-CT 1).",
                                    TRAINING)
    mixed_precision: bool = option(False, "float16 compute (GPU).", HARDWARE)
    strategy: str = option("auto", "tf.distribute strategy: auto (mirrored on several GPUs), "
                                   "mirrored, or multiworker (TF_CONFIG or Slurm).", HARDWARE,
                           flag="--distribute", choices=STRATEGIES)
    deterministic: bool = option(
        False, "Deterministic TensorFlow ops (bit-identical reruns; slower on GPU).", HARDWARE)
    train_split: str = option("train", "Split value of the training rows.", DATA)
    val_split: str = option("val", "Split value of the validation rows.", DATA)
    #: the manifest trained on (absolute path, or '-' for stdin)
    manifest: str = derived("")
    #: the value scale of the training rows (their ``value_scale`` column, covtool.core.scale), ''
    #: where the manifest has none; eval and patient-diagnose check their data against it
    data_scale: str = derived("")


def validate(config: TrainConfig) -> None:
    """Check every option of a run once, before any work (CSBDeep's ``is_valid``).

    What the data decides (the image size where no ``input_size`` is given, the classes) is
    checked again when the run starts. Raises :class:`ParameterError` naming the field.
    """
    model, pipe, aug = config.model, config.pipeline, config.augment
    check_options(model)
    if model.weights not in ("none", "imagenet") and not os.path.isfile(model.weights):
        raise ParameterError("weights", f"no such weights file {model.weights} "
                                        f"(give imagenet, none or a PATH)")
    for part in (pipe, aug, config):
        check_choices(part)
    check_strategy(config.strategy)
    if model.name == "jcs" and config.strategy == "multiworker":
        raise ParameterError("strategy", "multiworker training runs classifiers with one output; "
                                         "jcs (two outputs) trains with auto or mirrored")
    if pipe.input_size is not None:
        least = minimum_input(model.name)
        if pipe.input_size < least:
            raise ParameterError("input_size", f"model '{model.name}' needs inputs of at least "
                                               f"{least}x{least}, got {pipe.input_size}")
    if pipe.cache not in ("none", "memory"):
        folder = os.path.dirname(os.path.abspath(pipe.cache))
        if not os.path.isdir(folder):   # TensorFlow would fail at the first batch, deep in a traceback
            raise ParameterError("cache", f"no such folder {folder} for the cache files "
                                          f"{pipe.cache}*")
    lo, hi = pipe.value_range
    if hi <= lo:
        raise ParameterError("value_range", f"HI must be above LO, got {lo:g},{hi:g}")
    for name in ("rotation", "zoom", "shift", "shear"):
        check_range(aug, name, 0.0)
    for name in ("crop_scale", "brightness", "contrast"):
        check_range(aug, name, 0.0, 1.0, open_hi=name != "crop_scale")
    check_range(config, "learning_rate", 0.0)
    check_range(config, "momentum", 0.0, 1.0)
    for name in ("cls_loss_weight", "seg_loss_weight"):
        check_range(config, name, 0.0)
    for name in ("cosine_period", "early_stopping"):
        check_range(config, name, 0)
    for name in ("batch_size", "epochs"):
        check_range(config, name, 1)
    parse_class_weights(config.class_weights)


def parse_class_weights(spec: str) -> dict[str, float] | str:
    """``none`` and ``balanced`` as they are, ``NAME=W,NAME=W`` as ``{name: w}``."""
    spec = (spec or "none").strip()
    if spec in ("none", "balanced"):
        return spec
    out = {}
    for part in spec.split(","):
        name, _, value = part.partition("=")
        if not name.strip() or not value:
            raise ParameterError("class_weights", f"expected none, balanced or NAME=W,...; got "
                                                  f"{part!r}")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ParameterError("class_weights", f"{value!r} is not a number") from None
    return out
