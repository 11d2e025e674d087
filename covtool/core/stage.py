"""The stage runner: one manifest-to-manifest step, run the same way for every stage.

A stage (a small object in its domain package) says what one item needs and gives, and
:func:`run_stage` does everything the stages share, once:

1. **shard** -- ``--shard K/N`` keeps item ``i`` where ``i mod N == K`` (:mod:`covtool.core.shard`);
2. **plan** -- every item's cheap checks and the files it will write, before any work: an output
   that exists (without ``force``), two items writing one file, or an output that is one of the
   inputs stops the run before anything is written;
3. **progress** on stderr (quiet when not a terminal or with ``--quiet``);
4. **per-item errors** -- a :class:`~covtool.core.errors.CovtoolError` stops the run, or with
   ``skip_bad`` becomes the item's error row (its own id and an ``error`` cell) and the run goes
   on; rows an earlier stage marked failed pass through unchanged;
5. **rollback** -- on a failure, an interrupt or any exception, the files this run wrote are taken
   back (a file that was there before and was not rewritten stays), also those an item writes into
   its :attr:`Plan.folders` that no plan could name; a :attr:`Stage.resumable` stage keeps, on an
   interrupt, the outputs of the items it finished, for a rerun to reuse;
6. **pass-through** -- every output row carries its input row's columns that the stage does not
   write (MONAI's ``MapTransform`` rule), so stages chain;
7. **column order** -- :func:`output_columns`: the core columns, the stage's own, the carried
   ones in input order, ``error`` last.

The runner knows nothing of the command line: a command parses its options, builds the stage,
calls :func:`run_stage` and writes :attr:`StageResult.rows` with :func:`write_result`.

Items are the stage's unit of work: a manifest :class:`~covtool.core.manifest.Row` for per-item
stages (rescale, crop, features), a series or a patient for per-series stages (select,
patient-diagnose). Optional hooks: :meth:`Stage.load` (the reading part of an item, run one item
ahead in a thread with ``prefetch``), :meth:`Stage.start` (once, after every check and before the
first item: an expensive set-up such as a model), :meth:`Stage.finish` (once after the last item:
work batched across items, such as deep features) and ``jobs`` > 1 (items in worker processes;
the stage must pickle). Besides its rows, an item's run may give a :class:`Note` (what the summary needs to say
about that item: its pages, whether it was reused), collected in :attr:`StageResult.notes`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from covtool.core.atomic import check_writable, remove_temporaries, sigint_held
from covtool.core.errors import CovtoolError, OutputExistsError, UsageError
from covtool.core.manifest import CORE_COLUMNS, Row, write_records
from covtool.core.shard import Shard


@dataclass
class Plan:
    """What one item will do, worked out before any item is run.

    Attributes
    ----------
    outputs : list of Path
        Files the item will write (checked before any work; taken back on failure).
    inputs : list of Path
        Files it reads (no output may be one of them).
    units : int
        Progress units of the item (its patches, its slices); 1 by default.
    data : object
        Whatever the stage worked out in planning, handed to :meth:`Stage.run`.
    folders : list of Path
        Folders the item writes files into that only its run can name (a PDF's figures). Not
        checked before work; on rollback every file in them (and below) that is new or changed
        since planning is taken back, and a folder this run created is removed once empty.
    """

    outputs: list[Path] = field(default_factory=list)
    inputs: list[Path] = field(default_factory=list)
    units: int = 1
    data: Any = None
    folders: list[Path] = field(default_factory=list)


@dataclass
class Out:
    """One output row: the stage's own ``values`` and the input row it carries (or none)."""

    values: dict
    carry: Row | None = None


@dataclass
class Note:
    """What an item's run tells the summary besides its rows (given among them; not a row)."""

    value: Any


class Stage:
    """Base of every stage: override :meth:`plan` (optional) and :meth:`run`.

    Attributes
    ----------
    name : str
        The progress bar's label.
    required : tuple of str
        Columns every row of its manifest must fill (:func:`run_manifest` reads with them).
    columns : tuple of str
        The columns the stage writes, in the order they are written (after the core columns).
    drops : tuple of str
        Input columns its output rows never carry (crop's image-level ``mask`` on a patch row).
    optional : tuple of str
        Those of :attr:`columns` written only where a row gives them (select's ``slice_index``
        of NIfTI slices); every other one is always written.
    resumable : bool
        A finished item's outputs are complete on their own and a rerun reuses them (extract's
        PDFs): an interrupt takes back only the items not finished (a failure still takes back
        all).
    """

    name: str = "stage"
    required: tuple[str, ...] = ("path",)
    columns: tuple[str, ...] = ()
    drops: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    resumable: bool = False

    def key(self, item) -> str:
        """The id of an item's error row: the row's own id; for a row without one (extract's PDFs
        found in folders), its file's stem and the first 8 hex digits of the SHA-1 of its
        resolved path (``paper-1a2b3c4d``), so that ``a/paper.pdf`` and ``b/paper.pdf`` differ in
        one batch and across shards, and a rerun gives the same id."""
        if isinstance(item, Row):
            return item.text("id") or path_key(item.path(), item.line)
        return str(getattr(item, "id", item))

    def check_table(self, table) -> None:
        """Whole-manifest checks before any work (:func:`run_manifest`): a column the stage
        needs in some form (an annotation column; a pixel size column or a default)."""

    def plan(self, item) -> Plan:
        """Cheap checks and the files the item will write; raise CovtoolError for a bad item."""
        return Plan()

    def load(self, item, plan: Plan, advance: Callable[[int], None]) -> Any:
        """The reading part of an item (run one item ahead, in a thread, with ``prefetch``); it
        may move the progress bar with ``advance`` as :meth:`run` does. Default: nothing."""
        return None

    def run(self, item, plan: Plan, loaded: Any, advance: Callable[[int], None]) -> Iterable[dict | Out]:
        """Do one item; give its output rows (a dict carries the item itself when it is a Row)."""
        raise NotImplementedError

    def start(self) -> None:
        """Once, after every item's plan and output check and before the first item runs: an
        expensive set-up (a model) that no bad output should wait for; not called when no item
        is to run. Its errors stop the run (they are no item's error)."""

    def finish(self) -> None:
        """Once, after the last item and still inside the run (a failure here takes back the run's
        files): complete work batched across items. The row dicts :meth:`run` gave may still be
        filled in here (in a serial run; worker processes give the runner copies)."""

    def error_row(self, item, message: str) -> Out:
        """The row recorded for a bad item under ``skip_bad``: its id, its error, its columns."""
        return Out({"id": self.key(item), "error": message}, item if isinstance(item, Row) else None)


def path_key(path: Path | None, line: int | None = None) -> str:
    """A stable id for an item named only by its file: ``<stem>-<sha1 of its resolved path, 8 hex>``
    (``line<N>`` where there is no file)."""
    import hashlib

    from covtool.core.naming import safe_id

    if path is None:
        return f"line{line}" if line is not None else "item"
    digest = hashlib.sha1(os.fsencode(os.path.realpath(path))).hexdigest()[:8]
    return f"{safe_id(path.stem)}-{digest}"


@dataclass
class StageResult:
    """What a run produced: the merged output rows, their columns and the counts."""

    rows: list[dict]
    columns: list[str]
    items: int = 0
    done: int = 0
    failed: int = 0
    passed: int = 0          #: items an earlier stage had marked failed (passed through)
    errors: list[str] = field(default_factory=list)
    notes: list = field(default_factory=list)  #: per item: the last Note value its run gave, or None
    work: list = field(default_factory=list)   #: the items run (after sharding), in order
    item_errors: list[str] = field(default_factory=list)  #: per item: its error ('' when done)


def run_stage(stage: Stage, items: Sequence, *, skip_bad: bool = False, force: bool = False,
              shard: Shard | None = None, prefetch: bool = False, jobs: int = 1,
              input_columns: Sequence[str] | None = None,
              output: str | os.PathLike | None = None) -> StageResult:
    """Run ``stage`` over ``items`` (see the module docstring for what is done once, here).

    Parameters
    ----------
    stage : Stage
    items : sequence
        The work list, in output order (Rows, series, patients...).
    skip_bad : bool
        Record a bad item's error row and go on, instead of stopping.
    force : bool
        Overwrite existing outputs.
    shard : Shard, optional
        Keep only this share of the items.
    prefetch : bool
        Run :meth:`Stage.load` of the next item in a thread while this one runs (of two items or
        more, every load, the first too, then runs in that thread; :meth:`Stage.run` in the
        caller's).
    jobs : int
        Worker processes (>1: items run in parallel, rows still in item order).
    input_columns : sequence of str, optional
        The input manifest's columns: the output header then holds them (and every one of
        :attr:`Stage.columns`) whatever the rows are, also where there is no row at all (an
        empty shard), so the next stage can read it. By default, the columns of the rows carried.
    output : path, optional
        The manifest the command will write: checked before any work, like every item's output,
        never to be one of the run's inputs nor an item's output.

    Returns
    -------
    StageResult
    """
    run = _Run(stage, list(items) if shard is None else shard.select(list(items)), skip_bad)
    try:
        run.plan_all()
        _check_outputs(run.plans, force, run.read_files(), output)
        run.written.remember(run.plans)
        if run.plans:
            stage.start()
        run.execute(prefetch, jobs)
        stage.finish()
    except BaseException as exc:
        run.roll_back(exc)
        raise
    return run.result(input_columns)


class _Run:
    """One run of a stage: its items, their plans, rows and errors, and what it wrote."""

    def __init__(self, stage: Stage, todo: list, skip_bad: bool):
        self.stage, self.todo, self.skip_bad = stage, todo, skip_bad
        self.results: list[list[Out]] = [[] for _ in todo]
        self.plans: dict[int, Plan] = {}
        self.written = _Written()
        self.failed_items: set[int] = set()
        self.res = StageResult([], [], items=len(todo), work=todo, notes=[None] * len(todo),
                               item_errors=[""] * len(todo))

    def plan_all(self) -> None:
        """Every item's plan before any work; rows failed earlier pass through unchanged."""
        for i, item in enumerate(self.todo):
            if isinstance(item, Row) and item.failed:
                self.results[i] = [Out({}, item)]
                self.res.item_errors[i] = item.failed
                self.res.passed += 1
                continue
            try:
                self.plans[i] = self.stage.plan(item)
            except CovtoolError as exc:
                self.record_error(i, exc)

    def read_files(self) -> list[Path]:
        """Files the run reads besides its plans' inputs: every Row item's path columns
        (``path``, ``mask``, ``annotation``, ``heatmap``) and its manifest, also of the items that
        failed planning or an earlier stage (an output may replace none of them either)."""
        from covtool.core.manifest import PATH_COLUMNS, STDIO

        files: list[Path] = []
        manifests: set[str] = set()
        for item in self.todo:
            if isinstance(item, Row):
                files.extend(p for c in PATH_COLUMNS if (p := item.path(c)) is not None)
                if item.manifest and str(item.manifest) != STDIO:
                    manifests.add(str(item.manifest))
        return files + [Path(m) for m in sorted(manifests)]

    def record_error(self, i: int, exc: CovtoolError) -> None:
        """A bad item's error row (``skip_bad``); an existing output or bad usage stops the run."""
        if not self.skip_bad or isinstance(exc, (OutputExistsError, UsageError)):
            raise exc
        row = self.stage.error_row(self.todo[i], str(exc))
        if "id" in row.values and not row.values["id"]:   # never an empty id (manifest merge)
            row.values["id"] = self.stage.key(self.todo[i])
        self.results[i] = [row]
        self.failed_items.add(i)
        self.res.item_errors[i] = str(exc)
        self.res.failed += 1
        self.res.errors.append(str(exc))

    def record_rows(self, i: int, rows: Iterable[dict | Out | Note]) -> None:
        """What item ``i``'s run gave: its rows (a dict carries the item's own Row) and its Note."""
        item = self.todo[i]
        carry = item if isinstance(item, Row) else None
        rows = list(rows)
        self.results[i] = [r if isinstance(r, Out) else Out(r, carry) for r in rows
                           if not isinstance(r, Note)]
        self.res.notes[i] = next((r.value for r in reversed(rows) if isinstance(r, Note)), None)
        self.res.done += 1
        self.written.finished.add(i)

    def item_failed(self, i: int, exc: CovtoolError) -> None:
        """Item ``i`` failed while running: stop, or take back its files and record its row."""
        if not self.skip_bad or isinstance(exc, UsageError):
            raise exc
        self.written.take_back(self.plans[i].outputs, self.plans[i].folders)
        self.record_error(i, exc)

    def execute(self, prefetch: bool, jobs: int) -> None:
        from covtool.core.progress import make_progress

        with make_progress() as prog:
            task = prog.add_task(self.stage.name, total=sum(p.units for p in self.plans.values()))
            order = sorted(self.plans)
            args = (self.stage, self.todo, self.plans, order)
            if jobs > 1 and len(order) > 1:
                _run_parallel(*args, jobs, prog, task, self.record_rows, self.item_failed)
            else:
                _run_serial(*args, prefetch, prog, task, self.record_rows, self.item_failed)

    def roll_back(self, exc: BaseException) -> None:
        """Take back what the run wrote (a resumable stage keeps finished items on an interrupt)."""
        keep = self.written.finished if self.stage.resumable and isinstance(exc, KeyboardInterrupt) else set()
        for i, plan in self.written.planned.items():  # only what was planned before any work
            if i not in keep:
                self.written.take_back(plan.outputs, plan.folders)
        self.written.remove_made_folders()

    def result(self, input_columns: Sequence[str] | None) -> StageResult:
        """The merged rows (carried columns, the stage's own) in :func:`output_columns`' order."""
        stage, res = self.stage, self.res
        self.unique_error_ids()
        rows = [(o, _merge(o, stage.drops)) for rs in self.results for o in rs]
        carried = [o.carry for o, _ in rows]
        want_error = self.skip_bad or any(r.get("error") for _, r in rows) or \
            any(c is not None and "error" in c for c in carried) or "error" in (input_columns or ())
        if input_columns is not None:
            carried = [Row(dict.fromkeys(input_columns)), *carried]
        res.columns = output_columns(stage.columns, [r for _, r in rows], carried, error=want_error,
                                     drops=stage.drops, optional=stage.optional)
        res.rows = [r for _, r in rows]
        for r in res.rows:
            if want_error:
                r.setdefault("error", "")
            else:
                r.pop("error", None)
        return res


    def unique_error_ids(self) -> None:
        """An error row whose id another row of the run already has (two items whose ids are
        the same) gets ``-2``, ``-3``... in item order: a table the next stage and ``manifest
        merge`` read."""
        taken = {str(r.values.get("id") or (r.carry.raw("id") if r.carry is not None else "") or "")
                 for i, rs in enumerate(self.results) if i not in self.failed_items for r in rs}
        for i in sorted(self.failed_items):
            for out in self.results[i]:
                iid = out.values.get("id")
                if not iid:
                    continue
                new, n = iid, 1
                while new in taken:
                    n += 1
                    new = f"{iid}-{n}"
                out.values["id"] = new
                taken.add(new)


def _run_serial(stage, todo, plans, order, prefetch, prog, task, record_rows, item_failed) -> None:
    done = dict.fromkeys(order, 0)   # progress units each item's load and run have advanced

    def advancer(i: int):
        def advance(n: int = 1) -> None:
            done[i] += n
            prog.advance(task, n)   # rich's progress is thread-safe: load may run in the thread
        return advance

    pool = None
    if prefetch and len(order) > 1:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="covtool-prefetch")

    def load_ahead(i: int):
        return pool.submit(stage.load, todo[i], plans[i], advancer(i))

    try:  # with prefetch every load runs in the thread, the first too: the caller's only runs
        ahead = load_ahead(order[0]) if pool is not None else None
        for k, i in enumerate(order):
            error = loaded = None
            try:
                loaded = ahead.result() if ahead is not None else stage.load(todo[i], plans[i], advancer(i))
            except CovtoolError as exc:
                error = exc
            ahead = load_ahead(order[k + 1]) if pool is not None and k + 1 < len(order) else None
            if error is None:
                try:
                    rows = list(stage.run(todo[i], plans[i], loaded, advancer(i)))
                except CovtoolError as exc:
                    error = exc
            if error is not None:
                item_failed(i, error)
            else:
                record_rows(i, rows)
            prog.advance(task, max(plans[i].units - done[i], 0))
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def default_jobs(most: int = 8) -> int:
    """Worker processes when a command is not told: the CPUs this process may run on (its
    affinity, which a batch system's CPU binding sets), at most ``most``: on a large shared node
    a default should not take every core, nor a worker's memory (a whole PDF) for each."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):   # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(most, cpus))


def _run_one(stage, item, plan):
    """One item in a worker process: its rows, or the CovtoolError it raised."""
    try:
        return list(stage.run(item, plan, stage.load(item, plan, _no_progress), _no_progress)), None
    except CovtoolError as exc:
        return None, exc


def _no_progress(n: int = 1) -> None:
    """Worker processes do not move the bar: the runner advances an item's units when it is done."""


def _run_parallel(stage, todo, plans, order, jobs, prog, task, record_rows, item_failed) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    before = {p.pid for p in multiprocessing.active_children()}
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_worker_start)
    futures: dict = {}
    recorded: set[int] = set()
    try:
        # the largest items first (longest processing time first), so that a large item taken
        # last does not run alone while the other workers wait; results keep the input order.
        # The workers start (fork) here, with Ctrl-C held back until they ignore it
        with sigint_held():
            for i in sorted(order, key=lambda i: _size(plans[i]), reverse=True):
                futures[pool.submit(_run_one, stage, todo[i], plans[i])] = i
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                rows, error = fut.result()
            except BrokenProcessPool:
                raise CovtoolError("a worker process ended abruptly (killed, out of memory or a "
                                   "crash in a library) while this or another item ran; rerun with "
                                   "--jobs 1 to find the item", plans[i].inputs[0] if plans[i].inputs
                                   else None) from None
            recorded.add(i)
            if error is not None:
                item_failed(i, error)
            else:
                record_rows(i, rows)
            prog.advance(task, plans[i].units)
    except BaseException:
        # an interrupt, a failure that stops the run, a bug: stop the workers now, not after the
        # items they hold (a large PDF can take a while). The caller takes back their files; a
        # stopped worker's temporary files (no clean-up ran in it) go here
        with _sigint_ignored():  # a second Ctrl-C must not cut this short
            pool.shutdown(wait=False, cancel_futures=True)
            _stop_workers(before)
            remove_temporaries(p for i in futures.values() if i not in recorded for p in plans[i].outputs)
        raise
    pool.shutdown(wait=True)


def _worker_start() -> None:
    """In each worker: Ctrl-C is for the main process, which stops the workers itself. A worker
    that took a terminal's SIGINT (sent to the whole process group) while waiting for work would
    die with a traceback and leave the pool waiting for it. The worker was forked with SIGINT
    blocked (:func:`_run_parallel`): one that came meanwhile is dropped on unblocking."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@contextlib.contextmanager
def _sigint_ignored():
    """SIGINT ignored in this process for the block (main thread only; elsewhere a no-op)."""
    try:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:   # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _stop_workers(before: set[int], wait: float = 5.0) -> None:
    """End the worker processes started since ``before`` (the pids of the children alive then):
    SIGTERM, then SIGKILL for any still alive after ``wait`` seconds."""
    import multiprocessing

    workers = [p for p in multiprocessing.active_children() if p.pid not in before]
    for p in workers:
        p.terminate()
    end = time.monotonic() + wait
    for p in workers:
        p.join(max(0.0, end - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()


def _size(plan: Plan) -> tuple[int, int]:
    """How large an item's work looks before it runs: its progress units, then its inputs' bytes."""
    total = 0
    for p in plan.inputs:
        try:
            total += p.stat().st_size
        except OSError:
            pass
    return plan.units, total


def _check_outputs(plans: dict[int, Plan], force: bool, reads: Iterable[Path] = (),
                   output: str | os.PathLike | None = None) -> None:
    """Before any work: no output (the manifest ``output`` too) over an input (the plans' and
    ``reads``), no two items writing one file, none existing (without ``force``)."""
    inputs = {_key(p) for plan in plans.values() for p in plan.inputs} | {_key(p) for p in reads}
    folders: list[tuple[str, Path, int]] = []
    for i, plan in plans.items():
        for d in plan.folders:
            k = _key(d)
            for other, shown, _ in folders:   # a folder's rollback must never touch another item's files
                if k == other or k.startswith(other + os.sep) or other.startswith(k + os.sep):
                    raise CovtoolError(f"is written by two items (also {shown}); give the items "
                                       "distinct folders", d)
            folders.append((k, d, i))
    seen: set[str] = set()
    for i, plan in plans.items():
        for p in plan.outputs:
            k = _key(p)
            if k in inputs:
                raise CovtoolError("is an input of this run; an output may not replace it "
                                   "(write the outputs to another folder)", p)
            if k in seen:
                raise CovtoolError("would be written by two items (give the items distinct ids)", p)
            if any(k.startswith(f + os.sep) and owner != i for f, _, owner in folders):
                raise CovtoolError("is inside a folder another item writes", p)
            seen.add(k)
            check_writable(p, force)
    if output is not None and str(output) != "-":
        k = _key(Path(output))
        if k in inputs:
            raise CovtoolError("is an input of this run; the output manifest may not replace it "
                               "(write it to another file)", output)
        if k in seen:
            raise CovtoolError("is also a file an item writes; give the output manifest another "
                               "name", output)


def _key(path: Path) -> str:
    return os.path.normcase(os.path.realpath(path))


class _Written:
    """Which planned outputs this run wrote: new files, or files whose state changed."""

    def __init__(self):
        self.before: dict[str, tuple[int, int] | None] = {}
        self.folders: dict[str, dict[str, tuple[int, int] | None] | None] = {}
        self.finished: set[int] = set()
        self.made: set[Path] = set()
        self.planned: dict[int, Plan] = {}

    def remember(self, plans: dict[int, Plan]) -> None:
        self.planned = dict(plans)
        for plan in plans.values():
            for p in plan.outputs:
                self.before[_key(p)] = _stamp(p)
                parent = Path(p).parent
                while not parent.exists() and parent != parent.parent:   # folders the run makes
                    self.made.add(parent)
                    parent = parent.parent
            for d in plan.folders:
                self.folders[_key(d)] = _listing(d) if os.path.isdir(d) else None

    def take_back(self, paths: Iterable[Path], folders: Iterable[Path] = ()) -> None:
        for p in paths:
            now = _stamp(p)
            if now is not None and now != self.before.get(_key(p)):
                with contextlib.suppress(FileNotFoundError):
                    Path(p).unlink()
        for d in folders:
            if not os.path.isdir(d):
                continue
            before = self.folders.get(_key(d)) or {}
            for name, stamp in _listing(d).items():
                if stamp is not None and before.get(name) != stamp:
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(d, name))
            # folders this run created go too, once emptied (the deepest first)
            for name in sorted((n for n, st in _listing(d).items() if st is None and n not in before),
                               key=lambda n: (n != ".", len(n)), reverse=True):
                with contextlib.suppress(OSError):
                    os.rmdir(d if name == "." else os.path.join(d, name))


    def remove_made_folders(self) -> None:
        """Remove the folders this run made for its outputs, where they are empty now."""
        for d in sorted(self.made, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                d.rmdir()


def _listing(folder: str | os.PathLike) -> dict[str, tuple[int, int] | None]:
    """What is in and below ``folder`` (relative names, ``.`` itself): each file with its
    :func:`_stamp`, each folder with None."""
    found: dict[str, tuple[int, int] | None] = {}
    for root, _dirs, files in os.walk(folder):
        found[os.path.relpath(root, folder)] = None
        for name in files:
            full = os.path.join(root, name)
            stamp = _stamp(full)
            if stamp is not None:
                found[os.path.relpath(full, folder)] = stamp
    return found


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_ino


def _merge(out: Out, drops: Sequence[str]) -> dict:
    row = {} if out.carry is None else {c: out.carry.raw(c) for c in out.carry if c not in drops}
    row.update(out.values)
    return row


def output_columns(own: Sequence[str], rows: Sequence[dict], carried: Sequence[Row | None],
                   error: bool, drops: Sequence[str] = (), optional: Sequence[str] = ()) -> list[str]:
    """The core columns present, the stage's own, other keys its rows give (first seen), the
    carried input columns in their input order, ``error`` last (when ``error``).

    Every one of the stage's own columns is written (empty where no row gives it, as in an
    error row), so the header does not depend on which items failed: an empty or all-failed run
    still writes one that the next stage reads. ``drops``: input columns never carried;
    ``optional``: own columns written only where a row gives them.
    """
    present: dict[str, None] = {}
    for r in rows:
        present.update(dict.fromkeys(r))
    inputs: dict[str, None] = {}
    for c in carried:
        if c is not None:
            inputs.update(dict.fromkeys(k for k in c if k not in drops))
    present.update(dict.fromkeys(c for c in own if c not in optional))
    present.update(inputs)
    cols: dict[str, None] = {}
    for c in CORE_COLUMNS:
        if c in present:
            cols[c] = None
    for c in own:
        if c in present:
            cols[c] = None
    for r in rows:
        for c in r:
            if c not in inputs:
                cols.setdefault(c, None)
    for c in inputs:
        if c in present:
            cols.setdefault(c, None)
    cols.pop("error", None)
    return [*cols, "error"] if error else list(cols)


def with_ids(rows: Sequence[Row], column: str = "path") -> list[Row]:
    """Each row with its ``id``: the given one (made file-name safe), or one from the stem of its
    ``column`` file. Ids name output files, so a duplicate is an error naming the second row."""
    from covtool.core.naming import safe_id

    out, seen = [], set()
    for row in rows:
        given = row.text("id")
        iid = safe_id(given) if given else safe_id(Path(row.text(column)).stem)
        if iid in seen:
            raise row.error(f"duplicate image id '{iid}' (give an 'id' column to tell them apart)")
        seen.add(iid)
        out.append(row if given == iid else Row({**row, "id": iid}, row.line, row.manifest))
    return out


def run_manifest(stage: Stage, source: str | os.PathLike, dest: str | os.PathLike | None, *,
                 skip_bad: bool = False, force: bool = False, shard: Shard | None = None,
                 write: Callable[[StageResult, str | os.PathLike, bool], None] | None = None,
                 **options) -> StageResult:
    """A per-row stage as a function from a manifest to a manifest (DESIGN.md's idea).

    Checks the output ``dest`` (``-`` is stdout; None writes nothing), reads ``source`` (``-``
    is stdin) with the stage's :attr:`Stage.required` columns, runs :meth:`Stage.check_table`,
    gives every row its id (:func:`with_ids`), runs the stage (:func:`run_stage`, with
    ``options`` such as ``prefetch`` or ``jobs``) and writes the result with ``write``
    (default :func:`write_result`).
    """
    from covtool.core.manifest import check_output, read_table

    if dest is not None:
        check_output(dest, force)
    table = read_table(source, required=stage.required)
    stage.check_table(table)
    result = run_stage(stage, with_ids(table.rows), skip_bad=skip_bad, force=force, shard=shard,
                       input_columns=["id", *table.columns], output=dest, **options)
    if dest is not None:
        (write or write_result)(result, dest, force)
    return result


def write_result(result: StageResult, dest: str | os.PathLike, force: bool = False) -> None:
    """Write a run's rows as a manifest (atomically; ``-`` is stdout), without pandas."""
    write_records(result.rows, result.columns, dest, force)


def check_done(result: StageResult, dest: str | os.PathLike | None = None) -> None:
    """A batch in which no item succeeded is a failure: raise :class:`CovtoolError` (exit 1)
    ``all N items failed (see the 'error' column of DEST)`` (``the one item failed ...``).

    Every command calls it last, after writing its manifest (its error rows say why) and its
    summary. Items failed here (``--skip-bad``) and rows an earlier stage marked failed (passed
    through) count alike: the next stage of a pipe must not "succeed" on nothing. A run with no
    item at all (an empty shard of an array job) is not a failure.
    """
    if result.items == 0 or result.done > 0:
        return
    where = "the output" if dest is None or str(dest) == "-" else str(dest)
    what = "the one item" if result.items == 1 else f"all {result.items} items"
    raise CovtoolError(f"{what} failed (see the 'error' column of {where})")
