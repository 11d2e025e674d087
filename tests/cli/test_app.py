from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from covtool import __version__
from covtool.cli.app import app
from tests.conftest import covtool_cmd, covtool_env

runner = CliRunner()


def test_help_lists_the_command_families():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("select", "demo"):
        assert name in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"covtool {__version__}"


def test_usage_error_exits_2():
    result = runner.invoke(app, ["select"])
    assert result.exit_code == 2


def test_starting_covtool_does_not_import_tensorflow(tmp_path):
    code = (
        "import sys\n"
        "from covtool.cli.app import main\n"
        "for argv in (['--help'], ['select', '--help'], ['train', '--help'], ['eval', '--help'],\n"
        "             ['models', '--help'], ['patient-diagnose', '--help'], ['explain', '--help'],\n"
        "             ['features', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "bad = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=covtool_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_data_errors_are_one_line_and_debug_shows_the_traceback(tmp_path):
    missing = tmp_path / "none.csv"
    proc = subprocess.run(covtool_cmd("select", str(missing), "-o", str(tmp_path / "o.csv")),
                          env=covtool_env(), capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"covtool: error: {missing}: no such manifest"
    proc = subprocess.run(covtool_cmd("--debug", "select", str(missing), "-o", str(tmp_path / "o.csv")),
                          env=covtool_env(), capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" in proc.stderr
