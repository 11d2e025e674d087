"""An unreadable image in ``train`` and ``eval``: one line naming it, exit 1, and the process ends.

The hang these guard against (issue 18): the reader's error stopped a ``tf.data`` iterator with
``numpy_function`` calls in flight; the iterator, kept alive by the error's frames, was freed only
by the interpreter's last garbage collection, when the calls could no longer take the GIL, and
its destructor waited for them for ever. The readers here are slowed (the GIL released in
``time.sleep``) so that calls are always in flight when the error comes: without
:func:`covtool.training.tf_errors.release_pipelines` every run below hangs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import covtool_env
from tests.training.toy import write_truncated_toy, write_untrained_run

BAD = "img4.tif"  # a training row, not the first (whose shape is probed before the pipeline)

#: ``covtool`` with every image read 0.2 s slower (GIL released), the bad one at once
SLOW_COVTOOL = f"""
import sys, time
import covtool.core.imageio as io
read = io.read_image
def slow(path, *args, **kwargs):
    if not str(path).endswith({BAD!r}):
        time.sleep(0.2)
    return read(path, *args, **kwargs)
io.read_image = slow
from covtool.cli.app import main
main(sys.argv[1:])
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_truncated_toy(tmp_path_factory.mktemp("unreadable"), BAD)


@pytest.fixture(scope="module")
def untrained_run(data) -> Path:
    return write_untrained_run(data, data.parent / "run")


def run_slow(*args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-c", SLOW_COVTOOL, *args], capture_output=True,
                              text=True, env=covtool_env(), timeout=60)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"covtool {' '.join(args[:1])} hung after its error: "
                    f"{(exc.stderr or b'')[-300:]!r}")


def assert_one_line(proc: subprocess.CompletedProcess, bad: Path) -> None:
    assert proc.returncode == 1, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("covtool: error:")]
    assert errors == [f"covtool: error: {bad}: could not read the image: unreadable TIFF "
                      f"(failed to read 2048 bytes, got 896)"], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "covtool-unreadable" not in proc.stderr


def live_iterators() -> int:
    """The ``tf.data`` iterators still alive (after a garbage collection)."""
    import gc

    from tensorflow.python.data.ops.iterator_ops import OwnedIterator

    gc.collect()
    return sum(isinstance(obj, OwnedIterator) for obj in gc.get_objects())


def test_eval_exits_after_an_unreadable_image(data, untrained_run, tmp_path):
    proc = run_slow("eval", str(untrained_run), str(data), "--split", "all", "--batch-size", "2",
                    "-d", str(tmp_path / "out"))
    assert_one_line(proc, data.parent / BAD)
    assert not (tmp_path / "out").exists()


def test_predict_frees_its_pipeline_before_raising(data, untrained_run):
    from covtool.core.errors import ImageError
    from covtool.core.manifest import read_manifest
    from covtool.evaluation.predict import load_run, make_predictor, predict_probs

    cfg, model = load_run(untrained_run)
    df = read_manifest(data)
    before = live_iterators()
    for predict in (lambda rows: predict_probs(model, cfg, rows, 2), make_predictor(model, cfg, 2)):
        with pytest.raises(ImageError, match="could not read the image") as caught:
            predict(df)
        assert str(caught.value).startswith(f"{data.parent / BAD}: could not read the image")
        assert live_iterators() == before  # while the error is still held, as the CLI holds it


@pytest.mark.slow
def test_train_frees_its_pipelines_before_raising(data, tmp_path):
    from covtool.core.errors import ImageError
    from covtool.core.manifest import read_manifest
    from covtool.models.build import ModelConfig
    from covtool.training.config import PipelineConfig, TrainConfig
    from covtool.training.train import train

    model = ModelConfig(name="custom", filters=[8, 8, 8, 8], final_filters=8, head_units=[8, 8])
    df = read_manifest(data)
    before = live_iterators()
    # the bad image a validation row: the error comes when fit holds its training iterator (an
    # epoch's) in its frame and has stored the validation iterator on the model
    rows = df.assign(split=df["split"].where(df["id"] != "img4", "val"))
    cfg = TrainConfig(model=model, pipeline=PipelineConfig((32, 32)), batch_size=2, epochs=1)
    with pytest.raises(ImageError, match="could not read the image") as caught:
        train(rows, tmp_path / "run", cfg)
    assert live_iterators() == before  # while the error is still held, as the CLI holds it
    assert str(caught.value).startswith(f"{data.parent / BAD}: could not read the image")
    assert not (tmp_path / "run").exists()
