from __future__ import annotations

import json
import shutil
import subprocess

import pandas as pd
import pytest
from typer.testing import CliRunner

from covtool.cli.app import app
from tests.conftest import covtool_cmd, covtool_env
from tests.training.toy import TINY, write_toy

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run trained through the command line, shared by the eval tests."""
    root = tmp_path_factory.mktemp("cli")
    manifest = write_toy(root / "data")
    result = invoke("train", str(manifest), "-r", str(root / "run"), *TINY, "--epochs", "4",
                    "--monitor", "val_loss")
    assert result.exit_code == 0, result.output
    return manifest, root / "run"


def test_models_lists_name_then_trainable_count_and_each_zoo_head():
    result = invoke("models", "--input-size", "32", "--classes", "3", "--model", "custom",
                    "--model", "mobilenetv2")
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.strip().splitlines()]
    assert [r[0] for r in rows] == ["custom", "mobilenetv2", "mobilenetv2"]
    assert rows[0] == ["custom", "6195363"]  # one head of its own: no third column
    counts = {r[2]: int(r[1]) for r in rows[1:]}  # MobileNetV2: 2,223,872 trainable without its top
    assert counts["dense"] == 2_223_872 + 1280 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 3 + 3
    assert counts["pooled"] == 2_223_872 + 1280 * 3 + 3
    only = invoke("models", "--input-size", "32", "--classes", "3", "--model", "mobilenetv2",
                  "--head", "pooled")
    assert only.exit_code == 0 and only.stdout.split() == ["mobilenetv2", str(counts["pooled"]),
                                                           "pooled"]


@pytest.mark.parametrize("args, message", [
    (["--classes", "0"], "--classes: a classifier needs at least 2 classes, got 0"),
    (["--input-size", "3"], "--input-size: no model takes 3x3 inputs (the smallest any takes is 32x32)"),
    (["--input-size", "50", "--model", "xception"],
     "--input-size: model 'xception' needs inputs of at least 71x71, got 50x50"),
    (["--channels", "2"], "--channels: images need 1 (grey) or 3 (RGB) channels, got 2"),
    (["--head", "linear"], "--head: must be one of dense, pooled, got 'linear'"),
])
def test_models_refuses_what_cannot_build_before_tensorflow_starts(args, message, monkeypatch):
    import covtool.cli.models

    def no_tensorflow():
        raise AssertionError("TensorFlow started")

    monkeypatch.setattr(covtool.cli.models, "load_tensorflow", no_tensorflow)
    result = invoke("models", *args)
    assert result.exit_code == 2 and result.stdout == "" and f"covtool: error: {message}" in result.output


def test_train_writes_the_run_folder_and_refuses_to_overwrite(trained):
    manifest, run = trained
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["optimizer"] == "adam" and cfg["batch_size"] == 8 and cfg["epochs"] == 4
    assert cfg["pipeline"]["image_size"] == [32, 32] and cfg["pipeline"]["channels"] == 1
    assert len(pd.read_csv(run / "history.csv")) == 4
    result = invoke("train", str(manifest), "-r", str(run), *TINY)
    assert result.exit_code == 1 and "already exists (use --force" in result.output


def test_eval_writes_predictions_metrics_and_confusion(trained, tmp_path):
    manifest, run = trained
    result = invoke("eval", str(run), str(manifest), "-d", str(tmp_path / "ev"))
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "per_class", "auc"):
        assert key in metrics
    assert metrics["n"] == 12 and metrics["accuracy"] >= 0.9
    assert set(metrics["per_class"]["covid"]) >= {"tp", "fp", "fn", "tn", "sensitivity",
                                                  "specificity", "precision"}
    pred = pd.read_csv(tmp_path / "ev" / "predictions.csv")
    assert {"id", "label", "pred", "prob_covid", "prob_normal"} <= set(pred.columns)
    assert (pred[["prob_covid", "prob_normal"]].sum(axis=1) - 1).abs().max() < 1e-4
    conf = pd.read_csv(tmp_path / "ev" / "confusion.csv", index_col=0)
    assert conf.to_numpy().sum() == 12
    assert (tmp_path / "ev" / "confusion.png").stat().st_size > 1000
    # -o OUTDIR is the fixed form of the shared CLI.md: the same option, without any warning
    fixed = invoke("eval", str(run), str(manifest), "-o", str(tmp_path / "fixed"))
    assert fixed.exit_code == 0 and "warning" not in fixed.output
    assert json.loads((tmp_path / "fixed" / "metrics.json").read_text())["accuracy"] == metrics["accuracy"]


def test_eval_interrupted_while_writing_its_report_leaves_nothing(trained, tmp_path, monkeypatch):
    """Ctrl-C at the last of the four report files: none of them is left, nor the folder eval made,
    so the same command then runs without --force (was: three files left, the rerun refused)."""
    from covtool.evaluation import report

    manifest, run = trained

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "plot_confusion", interrupted)
    result = invoke("eval", str(run), str(manifest), "-d", str(tmp_path / "ev"))
    assert result.exit_code == 130, result.output
    assert not (tmp_path / "ev").exists()
    monkeypatch.undo()
    again = invoke("eval", str(run), str(manifest), "-d", str(tmp_path / "ev"))
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in (tmp_path / "ev").iterdir()) == sorted(report.OUTPUTS)


def test_eval_rejects_unseen_labels_and_corrupt_models(trained, tmp_path):
    manifest, run = trained
    df = pd.read_csv(manifest)
    df.loc[3, "label"] = "influenza"  # a test row
    bad = manifest.parent / "unseen.csv"
    df.to_csv(bad, index=False)
    result = invoke("eval", str(run), str(bad), "-d", str(tmp_path / "a"))
    assert result.exit_code == 1
    assert "unseen.csv:5: label 'influenza' is not one of the model's classes (covid, normal)" in result.output
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    (broken / "model.keras").write_bytes(b"not a zip file")
    result = invoke("eval", str(broken), str(manifest))
    assert result.exit_code == 1 and "model.keras: corrupt or unreadable model file" in result.output


def test_train_reports_missing_images_and_size_mismatches(tmp_path):
    manifest = write_toy(tmp_path / "d", n=10)
    (tmp_path / "d" / "img5.tif").unlink()
    result = invoke("train", str(manifest), "-r", str(tmp_path / "r"), *TINY, "--epochs", "1")
    assert result.exit_code == 1 and "manifest.csv:7: no such image file" in result.output
    odd = write_toy(tmp_path / "e", n=10)
    write_toy(tmp_path / "e2", n=10, size=48)
    df = pd.read_csv(odd)
    df.loc[4, "path"] = str(tmp_path / "e2" / "img4.tif")
    df.to_csv(odd, index=False)
    result = invoke("train", str(odd), "-r", str(tmp_path / "r2"), *TINY, "--epochs", "1")
    assert result.exit_code == 1
    assert "img4.tif: image is 48x48 but the model takes 32x32" in result.output


@pytest.mark.slow
def test_pipe_through_real_processes(tmp_path):
    manifest = write_toy(tmp_path / "data", n=30)
    text = manifest.read_text()
    proc = subprocess.run(covtool_cmd("train", "-", "-r", str(tmp_path / "run"), *TINY, "--epochs", "1",
                                      "--augment", "covid-ctset"),
                          input=text, env=covtool_env(), capture_output=True, text=True,
                          cwd=manifest.parent)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(covtool_cmd("eval", str(tmp_path / "run"), str(manifest), "-d", str(tmp_path / "ev")),
                          env=covtool_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # people's text goes to stderr
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["n"] == 6
