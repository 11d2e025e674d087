"""The Typer root: global options, error handling, and the registry of command families.

Command modules are imported when their command runs (:data:`COMMANDS`); none of them imports
TensorFlow at module level, so ``covtool --help`` and the non-deep-learning stages start without
it, and a stage imports only what it uses.
"""

from __future__ import annotations

import os
import sys

import typer
from typer.core import TyperGroup

from covtool import __version__
from covtool.core import console
from covtool.core.errors import CovtoolError

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) is not for people; a user's
# own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class CovtoolGroup(TyperGroup):
    """Turns covtool's errors into one line and an exit status (1 data, 130 interrupted)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CovtoolError as exc:
            if console.state.debug:
                raise
            console.error(str(exc))
            raise typer.Exit(1) from None
        except BrokenPipeError:
            _quiet_broken_pipe()
        except OSError as exc:
            if console.state.debug:
                raise
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            console.error(f"{where}{exc.strerror or exc}")
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            if console.state.debug:
                raise
            console.error("interrupted")
            raise typer.Exit(130) from None


def _quiet_broken_pipe() -> None:
    """The reader of our stdout went away (``covtool ... | head``): stop quietly, like a C tool."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    raise typer.Exit(141)


app = typer.Typer(
    cls=CovtoolGroup,
    name="covtool",
    help="Reproducible pipelines for COVID-19 and virus imaging datasets. Every stage reads and "
         "writes a manifest (CSV; '-' is stdin/stdout), so stages chain in pipes and Makefiles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"covtool {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or summaries on stderr."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    console.state.debug = debug
    console.state.quiet = quiet


#: Every command: name -> (module, attribute, help). A command's module is imported only when the
#: command runs (or help lists it), so ``covtool select`` does not pay for extract's imports.
#: Attributes that are Typer apps are command families (subcommands).
COMMANDS: dict[str, tuple[str, str, str | None]] = {
    "select": ("covtool.cli.select", "select_command", None),
    "rescale": ("covtool.cli.rescale", "rescale_command", None),
    "crop": ("covtool.cli.crop", "crop_command", None),
    "balance": ("covtool.cli.balance", "balance_command", None),
    "split": ("covtool.cli.split", "split_app", None),
    "models": ("covtool.cli.train", "models_command", "MODELS_DOC"),
    "train": ("covtool.cli.train", "train_command", None),
    "eval": ("covtool.cli.eval", "eval_command", None),
    "patient-diagnose": ("covtool.cli.diagnose", "diagnose_command", None),
    "explain": ("covtool.cli.explain", "explain_command", None),
    "extract": ("covtool.cli.extract", "extract_command", None),
    "manifest": ("covtool.cli.manifest", "manifest_app", None),
    "ingest": ("covtool.cli.ingest", "app", None),
    "features": ("covtool.cli.features", "features_command", None),
    "demo": ("covtool.cli.demo", "demo_command", None),
}


def load_command(name: str):
    """The click command for ``name``, built from its module (imported now)."""
    import importlib

    from typer.main import get_command, get_group

    module_name, attr, help_attr = COMMANDS[name]
    module = importlib.import_module(module_name)
    obj = getattr(module, attr)
    text = getattr(module, help_attr) if help_attr else module.__doc__
    if isinstance(obj, typer.Typer):
        if text and not obj.info.help:
            obj.info.help = text
        group = get_group(obj)
        group.name = name
        return group
    one = typer.Typer(add_completion=False)
    one.command(name, help=text)(obj)
    return get_command(one)


def _lazy(group_cls):
    """Give the root group the commands of :data:`COMMANDS`, each loaded on first use."""

    class Lazy(group_cls):
        def list_commands(self, ctx):
            return list(COMMANDS)

        def get_command(self, ctx, name):
            if name not in COMMANDS:
                return None
            if name not in self.commands:
                self.add_command(load_command(name), name)
            return self.commands[name]

    return Lazy


app.info.cls = _lazy(CovtoolGroup)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        app(args=argv, prog_name="covtool")
    except BrokenPipeError:
        try:
            _quiet_broken_pipe()
        except typer.Exit:
            sys.exit(141)
    except KeyboardInterrupt:
        console.error("interrupted")
        sys.exit(130)
