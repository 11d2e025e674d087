"""Config fields that describe themselves: a default written once, with its help, choices and group.

A config class is a frozen dataclass whose fields are made by :func:`option` (a setting a user
chooses: the command line generates its flag from it) or :func:`derived` (filled in from the data
when a run starts: the classes, the image size). The metadata is plain data, so the library needs
no command-line package; ``covtool.cli.train`` turns it into typer options.

:class:`Config` gives every such class one ``to_dict``/``from_dict`` (JSON-ready lists for
tuples, nested configs, unknown keys of older files ignored).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from covtool.core.errors import ParameterError

#: the metadata key of an :class:`Option`
OPTION = "covtool.option"


@dataclass(frozen=True)
class Option:
    """How a config field is offered to users.

    Attributes
    ----------
    help : str
        One sentence or two, the papers' values named.
    group : str
        The help panel it is listed in (``covtool train --help``).
    choices : tuple of str, optional
        The accepted values (checked by the config's ``validate``, shown as the metavar).
    flag : str, optional
        The long flag where it is not ``--`` + the field name with dashes (``learning_rate`` is
        ``--lr``).
    metavar : str, optional
        What the value looks like in help (``LO,HI``).
    parse : callable, optional
        ``parse(text, field_name) -> value`` for values given as text (``"64,128,256,512"``);
        the option is then a text option whose default is ``show(default)``.
    show : callable, optional
        ``show(value) -> text``, the inverse of ``parse`` (default: comma-separated ``%g``).
    negatable : bool
        A ``--x/--no-x`` pair instead of a flag that can only switch on.
    required : bool
        Needed for a new run (no default on the command line).
    from_preset : bool
        Unset on the command line means "the preset's value" (the augmentation options).
    """

    help: str
    group: str
    choices: tuple[str, ...] | None = None
    flag: str | None = None
    metavar: str | None = None
    parse: Callable[[str, str], Any] | None = None
    show: Callable[[Any], str] | None = None
    negatable: bool = False
    required: bool = False
    from_preset: bool = False

    def flag_of(self, name: str) -> str:
        return self.flag or "--" + name.replace("_", "-")

    def text(self, value: Any) -> str:
        """``value`` as it is written on the command line (for ``parse`` options)."""
        if self.show is not None:
            return self.show(value)
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)


def option(default: Any, help: str, group: str, **kw: Any) -> Any:
    """A config field offered as an option (``dataclasses.field`` with :class:`Option` metadata)."""
    return dataclasses.field(default=default, metadata={OPTION: Option(help=help, group=group, **kw)})


def derived(default: Any) -> Any:
    """A config field filled in from the data when a run starts (no option)."""
    return dataclasses.field(default=default)


def option_of(f: dataclasses.Field) -> Option | None:
    return f.metadata.get(OPTION)


def nested_configs(cls: type) -> dict[str, type]:
    """The fields of ``cls`` that are configs themselves, with their classes."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)
            if dataclasses.is_dataclass(hints.get(f.name))}


def option_fields(cls: type) -> Iterator[tuple[dataclasses.Field, Option, Any]]:
    """``(field, option, type)`` of every option of ``cls`` and of its nested configs, nested
    ones first, in field order."""
    nested = nested_configs(cls)
    for sub in nested.values():
        yield from option_fields(sub)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        spec = option_of(f)
        if spec is not None and f.name not in nested:
            yield f, spec, hints[f.name]


def from_options(cls: type, values: dict[str, Any]) -> Any:
    """A ``cls`` from option values by field name (nested configs' options included).

    ``None`` means "not given": the field keeps its default (or, for ``from_preset`` options, the
    value of the preset ``cls.PRESETS[values['preset']]``). Text values of ``parse`` options are
    parsed (a :class:`ParameterError` names the field).
    """
    nested = nested_configs(cls)
    given: dict[str, Any] = {name: from_options(sub, values) for name, sub in nested.items()}
    for f in dataclasses.fields(cls):
        spec = option_of(f)
        if spec is None or f.name in nested or values.get(f.name) is None:
            continue
        value = values[f.name]
        given[f.name] = spec.parse(value, f.name) if spec.parse and isinstance(value, str) else value
    presets = getattr(cls, "PRESETS", None)
    if presets is not None and given.get("preset") in presets:
        return dataclasses.replace(presets[given["preset"]], **given)
    return cls(**given)


def parse_ints(text: str, name: str) -> tuple[int, ...]:
    """``"64,128,256,512"`` -> ``(64, 128, 256, 512)``."""
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ParameterError(name, f"expects whole numbers separated by commas, got {text!r}") from None


def parse_range(text: str, name: str) -> tuple[float, float]:
    """``"LO,HI"`` -> ``(lo, hi)``."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise ParameterError(name, f"expects LO,HI, got {text!r}") from None
    return lo, hi


def check_choice(config: Any, name: str) -> None:
    """Refuse a value of field ``name`` outside its option's choices."""
    spec = option_of(config.__dataclass_fields__[name])
    value = getattr(config, name)
    if spec is not None and spec.choices and value not in spec.choices:
        raise ParameterError(name, f"must be one of {', '.join(spec.choices)}; got {value!r}")


def check_choices(config: Any) -> None:
    """:func:`check_choice` for every field of ``config`` that has choices."""
    for f in dataclasses.fields(config):
        check_choice(config, f.name)


def check_range(config: Any, name: str, lo: float, hi: float | None = None, *,
                open_hi: bool = False) -> None:
    """Refuse a number outside ``[lo, hi]`` (``[lo, hi)`` with ``open_hi``; no ``hi``: unbounded)."""
    value = getattr(config, name)
    above = hi is not None and (value >= hi if open_hi else value > hi)
    if value < lo or above:
        top = "" if hi is None else f", {hi:g}{')' if open_hi else ']'}"
        where = f"[{lo:g}{top}" if hi is not None else f">= {lo:g}"
        raise ParameterError(name, f"must be {'in ' if hi is not None else ''}{where}; got {value:g}")


class Config:
    """``to_dict``/``from_dict`` for frozen config dataclasses (``config.json``)."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # lists given for tuple fields (JSON, callers) -> tuples
            if isinstance(f.default, tuple) and isinstance(getattr(self, f.name), list):
                object.__setattr__(self, f.name, tuple(getattr(self, f.name)))

    def to_dict(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Config):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, d: dict):
        """The config a ``to_dict`` wrote (keys this version does not know are ignored)."""
        nested = nested_configs(cls)
        known = {}
        for name, value in d.items():
            if name in nested:
                known[name] = nested[name].from_dict(value or {})
            elif name in cls.__dataclass_fields__:
                known[name] = value
        return cls(**known)
