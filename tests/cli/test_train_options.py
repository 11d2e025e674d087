"""``covtool train``'s options are generated from the config fields (one source of truth)."""

from __future__ import annotations

import dataclasses
import re

import pytest
from typer.testing import CliRunner

from covtool.cli.app import app, load_command
from covtool.core.options import option_of
from covtool.models.build import ModelConfig
from covtool.training.config import AugmentConfig, PipelineConfig, TrainConfig

runner = CliRunner()
CONFIGS = (ModelConfig, PipelineConfig, AugmentConfig, TrainConfig)


def train_params() -> dict:
    return {p.name: p for p in load_command("train").params}


def test_every_config_option_field_is_an_option_with_the_fields_default():
    params = train_params()
    seen = 0
    for cls in CONFIGS:
        for f in dataclasses.fields(cls):
            spec = option_of(f)
            if spec is None:
                continue
            seen += 1
            assert f.name in params, f"{cls.__name__}.{f.name} has no option"
            param = params[f.name]
            assert spec.flag_of(f.name) in param.opts
            if spec.required or spec.from_preset:
                expected = None  # required for a new run / "the preset's value"
            elif spec.parse is not None:
                expected = spec.text(f.default)
            else:
                expected = f.default
            assert param.default == expected, f.name
    assert seen == len(params) - 5  # and none besides manifest, --run, --resume, --force, old --strategy
    assert params["old_strategy"].hidden and params["old_strategy"].opts == ["--strategy"]
    flags = {"name": "--model", "learning_rate": "--lr", "value_range": "--range",
             "preset": "--augment", "strategy": "--distribute"}
    for name, flag in flags.items():
        assert flag in params[name].opts
    assert params["filters"].default == "64,128,256,512" and params["learning_rate"].default == 1e-4


def test_derived_fields_have_no_option():
    params = train_params()
    for name in ("classes", "data_scale", "image_size", "channels", "resize", "input_shape"):
        assert name not in params
    assert params["manifest"].param_type_name == "argument"  # the MANIFEST, not the field


def test_help_groups_the_options_and_shows_flags_without_a_value():
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    text = result.output
    panels = [m.group(1) for m in re.finditer(r"^(\w+):$", text, re.M)]
    assert panels[-5:] == ["Model", "Data", "Augmentation", "Training", "Hardware"]
    model = text[text.index("\nModel:"):text.index("\nData:")]
    assert "--filters" in model and "--backbone" in model and "--lr" not in model
    hardware = text[text.index("\nHardware:"):]
    assert "--distribute auto|mirrored|multiworker" in hardware and "--strategy" not in text
    assert "--freeze  " in model or re.search(r"--freeze\s{2,}Freeze", model)
    assert "<bool>" not in text and "BOOLEAN" not in text


@pytest.mark.parametrize(("args", "message"), [
    (["--distribute", "bogus"], "--distribute: must be one of auto, mirrored, multiworker; got 'bogus'"),
    (["--optimizer", "rmsprop"], "--optimizer: must be one of nadam, adam, sgd; got 'rmsprop'"),
    (["--augment", "heavy"], "--augment: must be one of none, covid-ctset, covid-ct, tem; got 'heavy'"),
    (["--lr", "-1"], "--lr: must be >= 0; got -1"),
    (["--filters", "8,x"], "--filters: expects whole numbers separated by commas, got '8,x'"),
    (["--filters", "8,8"], "--filters: the custom CNN has 4 residual blocks: give 4 widths, got [8, 8]"),
    (["--range", "5,1"], "--range: HI must be above LO, got 5,1"),
    (["--model", "fpn", "--input-size", "64"], "--input-size: model 'fpn' needs inputs of at least 96x96, got 64"),
    (["--class-weights", "covid=x"], "--class-weights: 'x' is not a number"),
    (["--weights", "missing.h5"], "--weights: no such weights file missing.h5"),
    (["--cache", "/nonexistent-covtool/dir/prefix"], "--cache: no such folder /nonexistent-covtool/dir"),
])
def test_a_bad_option_is_named_by_its_flag_before_any_work(tmp_path, args, message):
    # the manifest does not exist: the options are checked before it is read
    argv = ["train", str(tmp_path / "nothing.csv"), "-r", str(tmp_path / "run")]
    if "--model" not in args:
        argv += ["--model", "custom"]
    result = runner.invoke(app, argv + args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "run").exists()


def test_multiworker_without_a_cluster_is_refused_as_distribute(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    result = runner.invoke(app, ["train", str(tmp_path / "m.csv"), "-r", str(tmp_path / "r"),
                                 "--model", "custom", "--distribute", "multiworker"])
    assert result.exit_code == 2
    assert "--distribute: multiworker needs TF_CONFIG or a Slurm job" in result.output


def test_a_new_run_needs_a_model(tmp_path):
    result = runner.invoke(app, ["train", str(tmp_path / "m.csv"), "-r", str(tmp_path / "r")])
    assert result.exit_code == 2 and "--model: a new run needs a model" in result.output


def test_docs_option_tables_say_what_the_help_says():
    """docs/train.md's option tables: one row per option field, its meaning the field's help (and
    choices), so a corrected help text (what a paper did or did not say) cannot go stale there."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "train.md").read_text()
    rows = dict((m.group(2), m.group(1)) for m in re.finditer(
        r"^\| `--[^`]+` \| [^|]+ \| (.*) \| `(\w+)` \|$", text, re.MULTILINE))
    for cls in CONFIGS:
        for f in dataclasses.fields(cls):
            spec = option_of(f)
            if spec is None:
                continue
            choices = f" ({', '.join(f'`{c}`' for c in spec.choices)})" if spec.choices else ""
            assert rows.get(f.name) == spec.help + choices, f.name
    assert "all three papers" not in text
