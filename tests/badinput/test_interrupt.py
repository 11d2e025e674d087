"""Ctrl-C in the middle of a batch, in a real ``covtool`` process, for every per-item stage.

The interrupt is deterministic: the second image of the batch is a named pipe (a read that does
not return, as of a stalled network file system); the test opens its other end, which tells it
the run has reached that item, and sends SIGINT. Then: exit 130, the one line ``covtool: error:
interrupted``, no traceback; a restart-cleanly stage (rescale, crop, chest-crop, features, select) leaves
nothing it wrote (no output manifest, no file of the item it finished, no temporary file), and
the same command, the pipe replaced by its image, gives byte for byte what an uninterrupted run
gives. extract (resumable) keeps the PDFs it finished, and the same command resumes and gives the
uninterrupted run's outputs. The inputs stay byte-identical. explain is left out: it needs a
trained model (tests/explain). patient-diagnose likewise.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from covtool.core.manifest import read_manifest
from tests.badinput.test_commands import COMMANDS, base, digest, manifest, workspace  # noqa: F401
from tests.conftest import covtool_cmd, covtool_env

TIMEOUT = 60.0


def _as_from_a_shell() -> None:
    """In the child: SIGINT delivered and handled as in a process a shell starts. A test worker
    may hold SIGINT ignored or blocked (pytest-xdist's workers, a library's state), and a child
    inherits both, so that Python would not even install its handler."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(argv: list, group: bool = False) -> subprocess.Popen:
    """``covtool --quiet ARGV``; with ``group`` in a process group of its own (as a shell's
    foreground job, whose Ctrl-C reaches every process of the group: see :func:`interrupt`)."""
    return subprocess.Popen(covtool_cmd("--quiet", *[str(a) for a in argv]), env=covtool_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_as_from_a_shell, start_new_session=group)


def interrupt(proc: subprocess.Popen, group: bool = False) -> None:
    """SIGINT to the process, or (``group``) to its whole process group, as a terminal's Ctrl-C."""
    if group:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)


def children(proc: subprocess.Popen) -> list[int]:
    """The pids of ``proc``'s child processes (Linux)."""
    try:
        return [int(x) for x in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    except OSError:
        return []


def all_gone(pids: list[int]) -> bool:
    """Whether no process of ``pids`` is alive a few seconds on (a zombie is reaped meanwhile)."""
    end = time.monotonic() + 5.0
    while time.monotonic() < end:
        alive = [p for p in pids if Path(f"/proc/{p}").exists() and
                 "State:\tZ" not in Path(f"/proc/{p}/status").read_text(errors="replace")]
        if not alive:
            return True
        time.sleep(0.05)
    return False


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the run did not end")
    return proc.returncode, err


def run(argv: list) -> None:
    code, err = finish(start(argv))
    assert code == 0, err


def interrupted(code: int, err: str) -> None:
    assert code == 130, (err, "worker SIGINT:", signal.getsignal(signal.SIGINT),
                         "blocked:", signal.pthread_sigmask(signal.SIG_BLOCK, []))
    assert err == "covtool: error: interrupted\n", err


def reader_reached(fifo: Path, proc: subprocess.Popen) -> int:
    """Wait until the run opens ``fifo`` for reading; give our (write) end, kept open so that
    its read waits."""
    end = time.monotonic() + TIMEOUT
    while time.monotonic() < end:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:   # ENXIO: no reader yet
            if proc.poll() is not None:
                pytest.fail(f"the run ended before reading the pipe: {proc.communicate()}")
            time.sleep(0.01)
    proc.kill()
    pytest.fail("the run never read the pipe")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_an_interrupted_run_takes_back_what_it_wrote_and_the_rerun_is_whole(base, tmp_path, command):  # noqa: F811
    kind, argv = COMMANDS[command]
    ws, b = workspace(base, tmp_path, None)
    m = manifest(ws, kind)
    out = tmp_path / "out"
    args = argv(m, out)
    run(args)
    whole = digest(out)
    assert "o.csv" in whole and (command == "features" or len(whole) > 1)
    shutil.rmtree(out)
    image = b.read_bytes()
    b.unlink()
    os.mkfifo(b)
    before = digest(ws)
    proc = start(args)
    fd = reader_reached(b, proc)
    proc.send_signal(signal.SIGINT)
    # the signal may land on a library's worker thread, which leaves the main thread's read
    # waiting: end the pipe (as a stalled read ends) so that it returns and the interrupt is seen
    time.sleep(1.0)      # a loaded machine (a parallel test run) may take a while to deliver it
    os.close(fd)
    code, err = finish(proc)
    interrupted(code, err)
    left = [p for p in out.rglob("*") if not p.is_dir()] if out.exists() else []
    assert left == []                      # no manifest, no finished item's file, no temporary
    assert digest(ws) == before
    b.unlink()
    b.write_bytes(image)
    run(args)                              # the same command again
    assert digest(out) == whole


def copies_of_a_paper(folder: Path, n: int, pages: int = 150) -> None:
    """``n`` PDFs of other content (so other folders): ``p0.pdf`` a generated paper, the others
    that paper and ``pages`` pages of body text, about 0.3 s each, so that an interrupt sent once
    the first is done lands while the others are still to do, even on a loaded machine."""
    import pymupdf

    from covtool.synth.pdf import make_paper

    folder.mkdir()
    make_paper(folder / "p0.pdf", seed=3)
    doc = pymupdf.open(folder / "p0.pdf")
    for i in range(pages):
        doc.new_page().insert_text((72, 72), "\n".join(
            f"Line {j} of page {i}: the body text of a long paper." for j in range(50)), fontsize=9)
    data = doc.tobytes()
    doc.close()
    for i in range(1, n):
        (folder / f"p{i}.pdf").write_bytes(data + b"\n%% copy %d\n" % i)


def first_pdf_done(out: Path, proc: subprocess.Popen) -> list[int]:
    """Wait until a PDF's folder is finished; the run's child processes (its workers) then."""
    end = time.monotonic() + TIMEOUT
    while not list((out / "figs").glob("*/done.json")) and time.monotonic() < end and proc.poll() is None:
        time.sleep(0.005)
    return children(proc)


# one process; worker processes (the default on a machine of 2 or more CPUs) with Ctrl-C sent
# to the main process alone, or to the whole process group as a terminal sends it; more workers
# than PDFs: a worker that took a terminal's Ctrl-C while waiting for work once died with a
# traceback, and the run waited for it for ever
@pytest.mark.parametrize("jobs,group,n", [("1", False, 10), ("2", False, 10), ("2", True, 10),
                                          ("4", True, 3)])
def test_an_interrupted_extract_keeps_finished_pdfs_and_the_same_command_resumes(tmp_path, jobs, group, n):
    ws = tmp_path / "in"
    copies_of_a_paper(ws, n)
    before = digest(ws)
    out = tmp_path / "out"
    args = ["extract", ws, "-d", out / "figs", "-o", out / "o.csv", "--jobs", jobs]
    run(args)
    whole = digest(out)
    assert sum(name.endswith("done.json") for name in whole) == n
    shutil.rmtree(out)
    proc = start(args, group)
    workers = first_pdf_done(out, proc)
    assert len(workers) == 0 if jobs == "1" else 1 <= len(workers) <= int(jobs)
    interrupt(proc, group)
    interrupted(*finish(proc))
    assert all_gone(workers)               # stopped, not left running or waiting
    done = {p.parent.name for p in (out / "figs").glob("*/done.json")}
    assert len(done) < n
    if jobs == "1":
        assert len(done) >= 1              # a worker's finished PDF may not have reached the runner
    folders = {p.name for p in (out / "figs").iterdir()} if (out / "figs").exists() else set()
    assert folders == done                 # the unfinished PDFs' folders: taken back
    assert not (out / "o.csv").exists()
    assert not [p for p in out.rglob("*") if ".tmp" in p.name or p.name.endswith(".partial")]
    assert digest(out) == {k: v for k, v in whole.items() if k.split("/")[1:2] and k.split("/")[1] in done}
    assert digest(ws) == before
    proc = start(args)
    code, err = finish(proc)
    assert code == 0, err                  # the same command resumes: finished PDFs reused
    assert digest(out) == whole
    rows = read_manifest(out / "o.csv")
    assert rows["source"].nunique() == n and "error" not in rows
    assert digest(ws) == before


def test_a_worker_killed_mid_run_stops_extract_with_one_line_and_no_worker_left(tmp_path):
    ws = tmp_path / "in"
    copies_of_a_paper(ws, 10)
    out = tmp_path / "out"
    proc = start(["extract", ws, "-d", out / "figs", "-o", out / "o.csv", "--jobs", "2", "--skip-bad"])
    workers = first_pdf_done(out, proc)
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)    # as the kernel's out-of-memory killer, or a crash
    code, err = finish(proc)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("covtool: error: ") and "Traceback" not in err
    assert "worker process ended abruptly" in err and "--jobs 1" in err
    assert all_gone(workers)
    assert not (out / "o.csv").exists()
    assert not [p for p in out.rglob("*") if p.is_file()]   # a failed run leaves nothing
