from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from covtool.core.manifest import read_manifest
from covtool.models.build import ModelConfig
from covtool.training.config import AugmentConfig, PipelineConfig, TrainConfig
from covtool.training.train import TrainDisplay, class_weight_map, train
from tests.training.toy import write_toy


def tiny(epochs=4, **kw) -> TrainConfig:
    model = ModelConfig(name="custom", filters=[8, 8, 16, 16], final_filters=8, head_units=[32, 32],
                        dropout=0.1, block_dropout=0.0)
    kw = {"learning_rate": 3e-3, **kw}
    return TrainConfig(model=model, pipeline=PipelineConfig((32, 32)), batch_size=8,
                       epochs=epochs, seed=3, optimizer="adam", **kw)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return read_manifest(write_toy(tmp_path_factory.mktemp("toy")))


@pytest.mark.slow
def test_loss_falls_and_the_separable_toy_problem_is_learnt(toy, tmp_path):
    from covtool.evaluation.predict import load_run, predict_probs

    result = train(toy, tmp_path / "run", tiny(epochs=6, monitor="val_loss"))
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < 0.5 * losses[0]
    cfg, model = load_run(tmp_path / "run")
    test = toy[toy["split"] == "test"]
    probs, labels = predict_probs(model, cfg, test)
    assert (probs.argmax(axis=1) == labels).mean() >= 0.9
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert stored["classes"] == ["covid", "normal"] and stored["seed"] == 3
    assert stored["versions"]["tensorflow"] and stored["model"]["filters"] == [8, 8, 16, 16]
    for name in ("model.keras", "history.csv", "training-curve.png", "checkpoints/last.npz",
                 "checkpoints/best.npz"):
        assert (tmp_path / "run" / name).is_file(), name


@pytest.mark.slow
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(toy, tmp_path):
    # dropout, augmentation and shuffling all on: every source of randomness must be resumable
    def cfg():
        c = tiny(epochs=3, deterministic=True)
        return replace(c, model=replace(c.model, dropout=0.3, block_dropout=0.2),
                       augment=AugmentConfig(hflip=True, rotation=20.0, zoom=0.05))

    full = train(toy, tmp_path / "full", cfg())
    part = train(toy, tmp_path / "part", cfg(), stop_after=1)
    assert len(part.history) == 1 and not (tmp_path / "part" / "model.keras").exists()
    shutil.copytree(tmp_path / "part", tmp_path / "old")
    resumed = train(toy, tmp_path / "part", cfg(), resume=True)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in full.history]
    for a, b in zip(full.model.get_weights(), resumed.model.get_weights(), strict=True):
        assert np.array_equal(a, b)
    # Ctrl-C right after epoch 2 (its checkpoint being written in the background): the run
    # keeps that whole checkpoint and resumes to the same weights
    class CtrlC(TrainDisplay):
        def epoch(self, row):
            if row["epoch"] == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(toy, tmp_path / "ctrl-c", cfg(), display=CtrlC())
    state = json.loads((tmp_path / "ctrl-c" / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 2
    again = train(toy, tmp_path / "ctrl-c", cfg(), resume=True)
    for a, b in zip(full.model.get_weights(), again.model.get_weights(), strict=True):
        assert np.array_equal(a, b)
    # a run written before checkpoints were .npz (last.keras, best.weights.h5) resumes the same
    as_old_checkpoints(tmp_path / "old", part.config)
    old = train(toy, tmp_path / "old", cfg(), resume=True)
    assert [r["loss"] for r in old.history] == [r["loss"] for r in full.history]
    for a, b in zip(full.model.get_weights(), old.model.get_weights(), strict=True):
        assert np.array_equal(a, b)
    assert sorted(p.name for p in (tmp_path / "old" / "checkpoints").iterdir()) == [
        "best.npz", "last.npz", "state.json"]


def as_old_checkpoints(run, config) -> None:
    """Rewrite a run's checkpoints as covtool wrote them before: the whole model (Keras's
    format, with its optimizer) and the best weights as HDF5."""
    from covtool.models.build import build_model
    from covtool.training import rundir
    from covtool.training.losses import compile_args
    from covtool.training.train import make_optimizer

    ckpt = run / "checkpoints"
    model = build_model(config.model)
    model.compile(optimizer=make_optimizer(config, 1), **compile_args(config.model.name))
    model.optimizer.build(model.trainable_variables)
    rundir.read_variables(model, ckpt / "last.npz")
    model.save(ckpt / "last.keras")
    rundir.read_variables(model, ckpt / "best.npz", optimizer=False)
    model.save_weights(ckpt / "best.weights.h5")
    (ckpt / "last.npz").unlink()
    (ckpt / "best.npz").unlink()


def test_a_checkpoint_that_cannot_be_written_fails_the_run(toy, tmp_path, monkeypatch):
    """The files are written in a background thread: its error still ends the run."""
    from covtool.training import rundir

    def full_disk(values, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rundir, "write_snapshot", full_disk)
    with pytest.raises(OSError, match="No space left"):
        train(toy, tmp_path / "run", tiny(epochs=1))


def test_a_checkpoint_of_another_model_or_a_broken_one_is_one_clear_line(tmp_path):
    from covtool.core.errors import CovtoolError
    from covtool.models.build import build_model
    from covtool.training import rundir

    def model(filters):
        return build_model(replace(tiny().model, filters=filters, input_shape=(32, 32, 1),
                                   classes=2))

    a = model([4, 4, 8, 8])
    rundir.write_variables(a, tmp_path / "a.npz", optimizer=False)
    b = model([4, 4, 8, 8])
    rundir.read_variables(b, tmp_path / "a.npz", optimizer=False)
    for x, y in zip(a.get_weights(), b.get_weights(), strict=True):
        assert np.array_equal(x, y)
    with pytest.raises(CovtoolError, match=r"a\.npz: variable \d+ .* has shape .* another model"):
        rundir.read_variables(model([4, 4, 8, 16]), tmp_path / "a.npz", optimizer=False)
    (tmp_path / "cut.npz").write_bytes((tmp_path / "a.npz").read_bytes()[:500])
    with pytest.raises(CovtoolError, match=r"cut\.npz: corrupt or unreadable checkpoint"):
        rundir.read_variables(b, tmp_path / "cut.npz", optimizer=False)


@pytest.mark.slow
def test_early_stopping_restores_the_best_epoch(toy, tmp_path):
    cfg = tiny(epochs=10, early_stopping=2, monitor="val_loss",
               learning_rate=0.0)  # nothing improves after the first epoch
    result = train(toy, tmp_path / "run", cfg)
    assert result.stopped_early and len(result.history) == 3 and result.best_epoch == 1


def test_class_weights():
    labels = np.array([0, 0, 0, 1])
    assert class_weight_map("none", labels, ["a", "b"]) is None
    w = class_weight_map("balanced", labels, ["a", "b"])
    assert w == pytest.approx({0: 4 / 6, 1: 2.0})
    assert class_weight_map("b=3", labels, ["a", "b"]) == {0: 1.0, 1: 3.0}


def test_a_run_that_fails_before_its_first_checkpoint_leaves_nothing(toy, tmp_path):
    from covtool.core.errors import ImageError

    bad = toy.copy()
    # not the first training image: that one is read when the run resolves its input shape,
    # before the run folder is made; a later one fails inside training, after it is made
    first, later = bad[bad["split"] == "train"].index[:2]
    broken = tmp_path / "broken.tif"
    broken.write_bytes(open(bad.loc[later, "path"], "rb").read()[:50])
    bad.loc[later, "path"] = str(broken)
    with pytest.raises(ImageError, match="broken.tif: could not read the image"):
        train(bad, tmp_path / "run", tiny(epochs=1))
    assert not (tmp_path / "run").exists()
    early = toy.copy()
    early.loc[first, "path"] = str(broken)
    with pytest.raises(ImageError, match="broken.tif: unreadable TIFF"):
        train(early, tmp_path / "run", tiny(epochs=1))
    assert not (tmp_path / "run").exists()
    # a folder that held other files keeps them
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(ImageError):
        train(bad, tmp_path / "mine", tiny(epochs=1))
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


@pytest.mark.slow
def test_the_training_rows_scale_is_recorded_and_eval_refuses_another(toy, tmp_path):
    from typer.testing import CliRunner

    from covtool.cli.app import app
    from covtool.core.errors import ManifestError

    mixed = toy.assign(value_scale=["hu+1024"] * (len(toy) - 1) + ["per-image-max"])
    with pytest.raises(ManifestError, match="training and validation rows mix two value scales"):
        train(mixed, tmp_path / "mixed", tiny(epochs=1))
    stored_scale = toy.assign(value_scale="hu+1024")
    cfg = tiny(epochs=1)
    train(stored_scale, tmp_path / "run", replace(cfg, pipeline=replace(cfg.pipeline, normalize="none")))
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert stored["data_scale"] == "hu+1024"
    other = tmp_path / "other.csv"
    toy.assign(value_scale="per-image-max", path=[str(p) for p in toy["path"]]).to_csv(other, index=False)
    r = CliRunner().invoke(app, ["eval", str(tmp_path / "run"), str(other), "-d", str(tmp_path / "ev")])
    assert r.exit_code == 1 and "trained on 'hu+1024' values but these slices are 'per-image-max'" in r.output
    assert "Traceback" not in r.output


def test_train_leaves_its_frozen_config_alone_and_returns_the_resolved_one(tmp_path):
    df = read_manifest(write_toy(tmp_path / "d", n=20))
    cfg = tiny(epochs=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 2
    result = train(df, tmp_path / "run", cfg)
    assert cfg == tiny(epochs=1) and cfg.classes == () and cfg.model.classes == 14
    done = result.config
    assert done.classes == ("covid", "normal") and done.model.classes == 2
    assert done.pipeline.image_size == (32, 32) and done.pipeline.channels == 1
    assert done.model.input_shape == (32, 32, 1) and not done.pipeline.resize
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert TrainConfig.from_dict(stored) == done


def test_resolve_fills_in_what_the_images_decide(tmp_path):
    from covtool.training.train import resolve

    df = read_manifest(write_toy(tmp_path / "d", n=10, size=40))
    cfg = replace(tiny(), pipeline=PipelineConfig(input_size=48))
    got = resolve(cfg, df.assign(value_scale="hu+1024"))
    assert got.pipeline.image_size == (48, 48) and got.pipeline.resize
    assert got.model.input_shape == (48, 48, 1) and got.data_scale == "hu+1024"
    own = resolve(tiny(), df)
    assert own.pipeline.image_size == (40, 40) and not own.pipeline.resize
    assert cfg.pipeline.image_size == (256, 256)  # the argument is not changed


def test_class_weight_names_are_checked_against_the_classes(tmp_path):
    from covtool.core.errors import ParameterError
    from covtool.training.train import resolve

    df = read_manifest(write_toy(tmp_path / "d", n=10))
    with pytest.raises(ParameterError, match="'flu' is not one of the classes") as err:
        resolve(tiny(class_weights="flu=2"), df)
    assert err.value.param == "class_weights"


def test_config_json_of_older_runs_still_loads():
    # a config.json from before the frozen configs: no input_size, no augment preset, lists for
    # tuples, and a key this version does not know
    old = {"model": {"name": "custom", "input_shape": [32, 32, 1], "classes": 2,
                     "filters": [8, 8, 16, 16], "head_units": [32, 32]},
           "pipeline": {"image_size": [32, 32], "channels": 1, "resize": False,
                        "normalize": "range", "value_range": [0, 255], "cache": "none"},
           "augment": {"hflip": True, "rotation": 20.0},
           "classes": ["covid", "normal"], "strategy": "auto", "retired_option": 1,
           "versions": {"covtool": "0.1.0"}}
    cfg = TrainConfig.from_dict(old)
    assert cfg.model.filters == (8, 8, 16, 16) and cfg.model.input_shape == (32, 32, 1)
    assert cfg.pipeline.value_range == (0, 255) and cfg.pipeline.input_size is None
    assert cfg.augment.hflip and cfg.augment.preset == "none" and cfg.classes == ("covid", "normal")
    again = cfg.to_dict()
    assert again["model"]["filters"] == [8, 8, 16, 16] and again["classes"] == ["covid", "normal"]
    assert TrainConfig.from_dict(again) == cfg
