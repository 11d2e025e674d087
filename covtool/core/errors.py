"""Errors that covtool reports to people as one line.

A :class:`CovtoolError` carries the file (and, for tables, the line) it is about, so the message
reads ``path:line: what is wrong``. The command line turns it into exit status 1 without a
traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import os
from pathlib import Path


class CovtoolError(Exception):
    """A problem with the user's data or files, reported as one line.

    Parameters
    ----------
    message : str
        What is wrong, in words a user can act on.
    path : str or Path, optional
        The file or folder concerned.
    line : int, optional
        1-based line number inside ``path`` (for manifests and annotation files).
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line

    def __reduce__(self):
        # errors cross process boundaries (extract --jobs): rebuild them from their state, not
        # from __init__'s arguments, which subclasses change
        return _restore, (type(self), self.message, dict(self.__dict__))

    def where(self) -> str:
        if self.path is None:
            return ""
        return f"{self.path}:{self.line}" if self.line is not None else self.path

    def __str__(self) -> str:
        where = self.where()
        text = f"{where}: {self.message}" if where else self.message
        # always one line: a line break inside a value (a quoted CSV header cell) is shown escaped
        return text.replace("\r", "\\r").replace("\n", "\\n")


def _restore(cls: type, message: str, state: dict) -> CovtoolError:
    """A pickled :class:`CovtoolError` back, with its file, line and own fields."""
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    exc.__dict__.update(state)
    return exc


class ManifestError(CovtoolError):
    """A manifest that cannot be read or lacks what a stage needs."""


class ImageError(CovtoolError):
    """An image that cannot be read, or whose content does not fit the stage."""


class OutputExistsError(CovtoolError):
    """An output that already exists and would be overwritten without ``--force``."""

    def __init__(self, path: str | os.PathLike):
        super().__init__("already exists (use --force to overwrite)", path)


class UsageError(CovtoolError):
    """Options that do not make sense together, found after parsing (exit status 2)."""


class ParameterError(UsageError):
    """A parameter's value, or a combination of parameters, that cannot work.

    The library names parameters by their Python names; the command line shows them as its
    flags (``input_size`` -> ``--input-size``) in one place (``covtool.cli.app``), so no module
    below the CLI quotes a flag.

    Parameters
    ----------
    param : str
        The parameter at fault (``"strategy"``).
    message : str
        What is wrong with it. ``{name}`` fields name other parameters (given in ``also``).
    also : sequence of str
        The other parameters the message names.
    """

    def __init__(self, param: str, message: str, also: tuple[str, ...] | list[str] = (),
                 path: str | os.PathLike | None = None, line: int | None = None):
        self.param, self.template, self.also = param, message, tuple(also)
        super().__init__(self.render(lambda name: name), path, line)

    def render(self, name_of) -> str:
        """The message with every parameter shown as ``name_of(param)`` (a flag, on the CLI)."""
        text = self.template.format(**{a: name_of(a) for a in self.also}) if self.also else self.template
        return f"{name_of(self.param)}: {text}"

    def shown_with(self, name_of) -> str:
        """The whole one-line error (file and line first) with parameters shown by ``name_of``."""
        where = self.where()
        text = self.render(name_of)
        return f"{where}: {text}" if where else text


def describe(exc: BaseException, path: str | os.PathLike | None = None) -> str:
    """One line for any exception, for manifests' ``error`` column and log lines."""
    if isinstance(exc, CovtoolError):
        return exc.message
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        first = exc.strerror
    return f"{type(exc).__name__}: {first}" if not isinstance(exc, OSError) else first


def as_path(value: str | os.PathLike) -> Path:
    return value if isinstance(value, Path) else Path(value)
