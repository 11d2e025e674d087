"""docs/architecture.md's worked example of adding a stage runs as written there."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import typer
from typer.testing import CliRunner

from covtool.core.imageio import write_image
from covtool.core.manifest import read_manifest

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def example_blocks() -> dict[str, str]:
    """The doc's python blocks, by the file their first line names."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    named = {}
    for b in blocks:
        first = b.splitlines()[0]
        m = re.match(r"# (covtool/\S+\.py)", first)
        if m:
            named[m.group(1)] = b
    return named


def test_the_worked_example_of_a_new_stage_runs(tmp_path):
    blocks = example_blocks()
    assert set(blocks) == {"covtool/em/stats.py", "covtool/cli/stats.py"}
    stage_ns: dict = {"__name__": "stats_example"}
    exec(compile(blocks["covtool/em/stats.py"], "stats.py", "exec"), stage_ns)
    cli_src = blocks["covtool/cli/stats.py"].replace("from covtool.em.stats import StatsStage", "pass")
    cli_ns: dict = {"__name__": "stats_cli_example", "StatsStage": stage_ns["StatsStage"]}
    exec(compile(cli_src, "cli_stats.py", "exec"), cli_ns)

    write_image(tmp_path / "a.tif", np.array([[0, 2], [4, 6]], np.uint16))
    (tmp_path / "b.tif").write_bytes(b"II*\x00broken")
    (tmp_path / "m.csv").write_text("id,path,note\na,a.tif,kept\nb,b.tif,also kept\n")
    app = typer.Typer()
    app.command()(cli_ns["stats_command"])
    runner = CliRunner()
    res = runner.invoke(app, [str(tmp_path / "m.csv"), "-o", str(tmp_path / "o.csv"), "--skip-bad",
                              "--floor", "1"])
    assert res.exit_code == 0, res.output
    out = read_manifest(tmp_path / "o.csv")
    assert list(out.columns) == ["id", "path", "mean", "std", "note", "error"]
    assert out.loc[2, ["mean", "std", "note", "error"]].tolist() == ["4", str(round(float(np.std([2, 4, 6])), 4)),
                                                                    "kept", ""]
    assert "b.tif" in out.loc[3, "error"] and out.loc[3, "note"] == "also kept"
    res = runner.invoke(app, [str(tmp_path / "m.csv"), "-o", str(tmp_path / "o.csv")])
    assert res.exit_code != 0 and "already exists" in str(res.exception)
