"""Atomic output: write to a temporary file beside the target, then rename.

A crash or an error half-way leaves the target untouched (or absent) and no temporary file
behind. Existing outputs are only replaced with ``force=True``. A file written this way gets the
mode a plain ``open(path, "w")`` would give it (``0o666`` less the umask), not ``mkstemp``'s
private ``0o600``: group members on a shared folder read results as they read any other file.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from covtool.core.errors import CovtoolError, OutputExistsError


def check_writable(path: str | os.PathLike, force: bool = False) -> Path:
    """Refuse to overwrite ``path`` unless ``force``; make sure its folder can exist."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(path)
    if path.is_dir():
        raise CovtoolError("is a folder, expected a file", path)
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():   # a file where an output folder must be
        raise CovtoolError("is a file, expected a folder for the outputs", parent)
    return path


_UMASK: int | None = None


def umask() -> int:
    """The process's umask, read once (``/proc/self/status`` where Linux gives it; elsewhere set
    and restored at once, before any writer thread could create a file under the interim one)."""
    global _UMASK
    if _UMASK is None:
        _UMASK = _read_umask()
    return _UMASK


def _read_umask() -> int:
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    old = os.umask(0o077)
    os.umask(old)
    return old


def _temp_beside(path: Path) -> tuple[int, Path]:
    """An open, new temporary file in ``path``'s folder (made if missing), keeping its suffix,
    with the mode a plain ``open()`` would give the target (``0o666 & ~umask``)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):   # POSIX; Windows has no mode bits to give
            os.fchmod(fd, 0o666 & ~umask())
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    return fd, Path(tmp)


#: the temporary names of :func:`_temp_beside`: ``.<name>.<mkstemp's 8 random characters>.tmp<the
#: name's suffix>``
TEMPORARY = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp(?P<suffix>\.[^.]*)?")


def temporary_of(name: str) -> str | None:
    """The target's name when ``name`` is one of the atomic writer's temporary files, else None."""
    m = TEMPORARY.fullmatch(name)
    if m and Path(m["name"]).suffix == (m["suffix"] or ""):
        return m["name"]
    return None


def remove_temporaries(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Remove the temporary files left beside ``paths`` by writers killed before their clean-up
    ran (a worker process stopped in the middle of an item). Each folder is listed once; only
    temporaries of these names go. Returns those removed."""
    wanted: dict[Path, set[str]] = {}
    for p in paths:
        p = Path(p)
        wanted.setdefault(p.parent, set()).add(p.name)
    removed = []
    for folder, names in wanted.items():
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if temporary_of(entry.name) in names and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _commit(tmp: Path, path: Path, force: bool) -> None:
    if not force and path.exists():
        raise OutputExistsError(path)
    os.replace(tmp, path)


#: the files written inside :func:`together`, waiting to be renamed onto their targets
_PENDING: contextvars.ContextVar[list[tuple[Path, Path, bool]] | None] = contextvars.ContextVar(
    "covtool_atomic_pending", default=None)


@contextlib.contextmanager
def _replacing(path: str | os.PathLike, force: bool) -> Iterator[tuple[int, Path]]:
    """A new temporary file beside ``path`` (its open descriptor and its name): renamed onto
    ``path`` when the block ends cleanly (or, inside :func:`together`, when that block does),
    removed when it fails."""
    path = check_writable(path, force)
    fd, tmp = _temp_beside(path)
    try:
        yield fd, tmp
        pending = _PENDING.get()
        if pending is None:
            _commit(tmp, path, force)
        else:
            pending.append((tmp, path, force))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def together() -> Iterator[None]:
    """Several outputs written as one: every atomic write inside the block is kept in its
    temporary file and renamed onto its target only when the whole block ends cleanly. A failure
    or an interrupt anywhere in the block leaves none of them (and no temporary file), so a rerun
    of the same command finds nothing in its way; the renames themselves run with Ctrl-C held
    back (an interrupt arriving then takes effect once they are done)."""
    pending: list[tuple[Path, Path, bool]] = []
    token = _PENDING.set(pending)
    try:
        yield
        for _, path, force in pending:    # refuse before renaming any
            if not force and path.exists():
                raise OutputExistsError(path)
        with sigint_held():
            for tmp, path, _ in pending:
                os.replace(tmp, path)
        pending.clear()
    finally:
        _PENDING.reset(token)
        for tmp, _, _ in pending:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


@contextlib.contextmanager
def sigint_held() -> Iterator[None]:
    """SIGINT blocked for the main thread during the block: one that arrives then is delivered
    when it ends (a no-op in other threads and where signal masks do not exist)."""
    main = threading.current_thread() is threading.main_thread()
    if not main or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def sigint_deferred() -> Iterator[None]:
    """Ctrl-C's handler called after the block, not in it. Python runs a signal's handler in
    whatever Python code the main thread runs next, which in this block may be a callback that C++
    called (a MuPDF device method in :func:`covtool.pdf.document.path_boxes`): the
    KeyboardInterrupt raised there would be dropped by SWIG's director (printed, and the run
    gone on), and the command would go on as if never interrupted. Outside the main thread, or
    where SIGINT is ignored, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.getsignal(signal.SIGINT)
    if not callable(old):   # ignored (a worker process) or the system default
        yield
        return
    got: list = []
    signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if got:
        old(signal.SIGINT, None)   # the default handler raises KeyboardInterrupt


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; rename it onto ``path`` on success.

    The temporary name keeps the target's suffix so that writers choosing a format by
    extension (OpenCV, tifffile, matplotlib) still work.
    """
    with _replacing(path, force) as (fd, tmp):
        os.close(fd)
        yield tmp


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", force: bool = False,
                encoding: str | None = "utf-8", newline: str | None = None) -> Iterator[IO]:
    """Open a temporary file for writing; it becomes ``path`` when the block ends cleanly.

    The file is the temporary file's own descriptor (no second open: a batch of small files
    spends as much time opening as writing); it is closed before the rename."""
    if "b" in mode:
        encoding = None
    with _replacing(path, force) as (fd, tmp), \
            open(fd, mode, encoding=encoding, newline=newline, closefd=True) as fh:
        yield fh


def atomic_write_bytes(path: str | os.PathLike, data: bytes | memoryview, force: bool = False) -> Path:
    with atomic_open(path, "wb", force=force) as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, force: bool = False) -> Path:
    with atomic_open(path, "w", force=force) as fh:
        fh.write(text)
    return Path(path)
