"""The command line's root: registry, help, start-up, errors and interrupts."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer
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


def run_main(argvs: list[list[str]], then: str) -> subprocess.CompletedProcess:
    """Run ``main(argv)`` for each argv in a new python, then the check ``then`` there."""
    code = ("import sys\nfrom covtool.cli.app import main\n"
            f"for argv in {argvs!r}:\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n" + then)
    return subprocess.run([sys.executable, "-c", code], env=covtool_env(), capture_output=True, text=True)


def test_starting_covtool_does_not_import_tensorflow(tmp_path):
    proc = run_main([["--help"], ["select", "--help"], ["train", "--help"], ["eval", "--help"],
                     ["models", "--help"], ["patient-diagnose", "--help"], ["explain", "--help"],
                     ["features", "--help"]],
                    "bad = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
                    "assert not bad, bad\n")
    assert proc.returncode == 0, proc.stderr


def test_the_command_line_keeps_pymupdfs_layout_model_out(tmp_path):
    """An installed pymupdf-layout or pymupdf4llm is imported by ``import pymupdf`` (the layout
    model loads ONNX models); covtool's command line never uses them. Stand-ins for both record
    whether they were imported: through ``main`` they are not, while PyMuPDF itself still works;
    imported directly (covtool as a library), PyMuPDF is left as it is found."""
    finder = ("import importlib.abc, importlib.util, sys\n"
              "class Stub(importlib.abc.MetaPathFinder, importlib.abc.Loader):\n"
              "    def find_spec(self, name, path=None, target=None):\n"
              "        if name in ('pymupdf.layout', 'pymupdf4llm'):\n"
              "            return importlib.util.spec_from_loader(name, self)\n"
              "    def create_module(self, spec):\n        return None\n"
              "    def exec_module(self, module):\n"
              "        sys.stubs_imported = getattr(sys, 'stubs_imported', ()) + (module.__name__,)\n"
              "        module.activate = lambda: None\n"
              "sys.meta_path.insert(0, Stub())\n")
    pdf = tmp_path / "a.pdf"
    pymupdf = pytest.importorskip("pymupdf")
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "Figure 1. Nothing.")
    doc.save(pdf)
    code = (finder + "from covtool.cli.app import main\n"
            f"try:\n    main(['-q', 'extract', {str(pdf)!r}, '-d', {str(tmp_path / 'o')!r}, '-o', '-'])\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "assert not getattr(sys, 'stubs_imported', ()), sys.stubs_imported\n"
            "assert sys.modules['pymupdf'].open is not None\n")
    proc = subprocess.run([sys.executable, "-c", code], env=covtool_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    library = (finder + "import covtool.pdf.document, pymupdf\n"
               "assert sorted(sys.stubs_imported) == ['pymupdf.layout', 'pymupdf4llm'], sys.stubs_imported\n")
    proc = subprocess.run([sys.executable, "-c", library], env=covtool_env(), capture_output=True, text=True)
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


# --- the registry, start-up, help ------------------------------------------------------------

def _all_commands():
    """(path, click command) of every command and subcommand, loaded through the registry."""
    from covtool.cli.app import COMMANDS, load_command

    found = []

    def walk(path, cmd):
        found.append((path, cmd))
        for name, sub in getattr(cmd, "commands", {}).items():
            if not sub.hidden:
                walk([*path, name], sub)

    for name in COMMANDS:
        walk([name], load_command(name))
    return found


def test_every_registry_entry_follows_the_rule_and_its_summary_is_its_help():
    import importlib

    import typer

    from covtool.cli.app import COMMANDS, load_command, summary_of

    for name, entry in COMMANDS.items():
        module_name, sep, attr = entry.target.partition(":")
        assert sep, name
        module = importlib.import_module(module_name)
        obj = getattr(module, attr)
        assert isinstance(obj, typer.Typer) or callable(obj), name
        cmd = load_command(name)
        assert cmd.help.split() == module.__doc__.split(), name
        assert summary_of(cmd.help) == entry.summary, name
        assert "\n" not in entry.summary and entry.summary.endswith("."), name


def test_root_help_lists_every_summary_without_importing_a_command_module():
    proc = run_main([["--help"]],
                    "loaded = sorted(m for m in sys.modules if m != 'covtool.cli.app'\n"
                    "                and m.startswith(('covtool.cli.', 'covtool.demo')))\n"
                    "heavy = [m for m in ('pandas', 'numpy', 'rich.console', 'pydantic') if m in sys.modules]\n"
                    "assert not loaded and not heavy, (loaded, heavy)\n")
    assert proc.returncode == 0, proc.stderr
    from covtool.cli.app import COMMANDS

    listed = " ".join(proc.stdout.split())
    for name, entry in COMMANDS.items():
        assert f" {name} {entry.summary}" in listed, name


def test_every_help_shows_no_bool_metavar_and_fits_80_columns():
    paths = _all_commands()
    assert len(paths) > len(__import__("covtool.cli.app").cli.app.COMMANDS)  # families' subcommands
    for path, cmd in paths:
        r = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
        assert r.exit_code == 0, (path, r.output)
        assert "<bool>" not in r.output and "BOOLEAN" not in r.output, path
        assert max(len(line) for line in r.output.splitlines()) <= 80, path
        # the docstring's hard line breaks are reflowed: its first paragraph reads as one text
        # (split's help is its hidden default subcommand's, by design)
        first = " ".join(r.output.split("\n\n")[1].split()).replace("- ", "-")  # COVID-|CTset
        shown = [cmd] + [s for s in getattr(cmd, "commands", {}).values() if s.hidden]
        assert first in [" ".join(c.help.strip().split("\n\n")[0].split()).replace("- ", "-")
                         for c in shown], path
        flags = [p for p in cmd.params if getattr(p, "is_flag", False) and not p.hidden]
        for flag in flags:  # a flag's line is its name(s) and its help, nothing between
            line = next(x for x in r.output.splitlines() if x.strip().startswith(flag.opts[-1])
                        or x.strip().startswith(", ".join(flag.opts)))
            assert "<" not in line.split("  ")[1 if line.startswith("  ") else 0], (path, line)


def test_demo_sits_above_the_cli():
    import ast
    from pathlib import Path

    import covtool.cli
    from covtool.cli.app import COMMANDS

    assert COMMANDS["demo"].target.startswith("covtool.demo:")
    for f in Path(covtool.cli.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            assert not any(n.startswith("covtool.demo") for n in names), f


def test_demo_command_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "old.txt").write_text("x")
    r = runner.invoke(app, ["demo", "-d", str(tmp_path)])
    assert r.exit_code == 1
    assert "demo folder is not empty (use --force to regenerate it)" in r.output
    assert [p.name for p in tmp_path.iterdir()] == ["old.txt"]
    r = runner.invoke(app, ["demo", "--help"])
    assert r.exit_code == 0 and "-d, --workdir" in r.output and "--force" in r.output


# --- interrupts: one line and 130, while parsing and while running ----------------------------

def boom_command(
    when: str = typer.Option("run", "--when", callback=lambda v: _interrupt_if(v == "parse") or v),
) -> None:
    _interrupt_if(when == "run")


def _interrupt_if(yes: bool) -> None:
    if yes:
        raise KeyboardInterrupt


@pytest.fixture
def boom(monkeypatch):
    from covtool.cli import app as app_module

    monkeypatch.setitem(app_module.COMMANDS, "boom",
                        app_module.Command("tests.cli.test_app:boom_command", "Raise an interrupt."))
    return app_module


@pytest.mark.parametrize("argv", [["boom"], ["boom", "--when", "parse"]])
def test_an_interrupt_in_a_command_or_its_parsing_exits_130_with_one_line(boom, argv, capsys):
    with pytest.raises(SystemExit) as exc:
        boom.main(argv)
    assert exc.value.code == 130
    assert capsys.readouterr().err == "covtool: error: interrupted\n"


def test_an_interrupt_while_typer_parses_the_root_options_exits_130(boom, monkeypatch, capsys):
    monkeypatch.setattr(boom.typer, "echo", lambda *a, **k: _interrupt_if(True))  # in --version
    with pytest.raises(SystemExit) as exc:
        boom.main(["--version"])
    assert exc.value.code == 130
    assert capsys.readouterr().err == "covtool: error: interrupted\n"


@pytest.mark.parametrize("argv", [["--help"], ["select", "--help"]])
def test_a_closed_stdout_exits_141_quietly(argv):
    code = ("import time\nfrom covtool.cli.app import main\ntime.sleep(1)\n"  # the reader leaves
            f"main({argv!r})\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env=covtool_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert (proc.returncode, err) == (141, b"")


def test_parse_errors_are_one_line_naming_the_flag_and_exit_2(tmp_path):
    """Typer's own usage errors (a bad value, a missing option, an unknown flag) read as ours."""
    cases = [
        (["crop", "m.csv", "-d", "p", "-o", "o.csv", "--size", "0"], "covtool: error: --size: "),
        (["rescale", "m.csv", "-d", "p"], "covtool: error: Missing option '-o' / '--output'"),
        (["rescale", "m.csv", "-d", "p", "-o", "o.csv", "--bogus"], "covtool: error: No such option: --bogus"),
        (["features", "m.csv", "-o", "o.csv", "--deep", "resnet"], "covtool: error: --deep: 'resnet' is not one of"),
    ]
    for argv, start in cases:
        r = CliRunner().invoke(app, argv)
        lines = r.output.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith(start), (argv, r.output)
        assert f"(see 'covtool {argv[0]} --help')" in lines[0]
