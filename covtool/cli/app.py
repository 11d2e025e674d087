"""The Typer root: global options, error handling, and the registry of command families.

Command modules are imported here; none of them imports TensorFlow at module level, so
``covtool --help`` and the non-deep-learning stages start without it.
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


def _register() -> None:
    from covtool.cli import (
        balance,
        crop,
        demo,
        diagnose,
        explain,
        extract,
        features,
        ingest,
        manifest,
        rescale,
        select,
        split,
    )
    from covtool.cli import eval as eval_cli
    from covtool.cli import train as train_cli

    app.command("select", help=select.__doc__)(select.select_command)
    app.command("rescale", help=rescale.__doc__)(rescale.rescale_command)
    app.command("crop", help=crop.__doc__)(crop.crop_command)
    app.command("balance", help=balance.__doc__)(balance.balance_command)
    app.add_typer(split.split_app, name="split", help=split.__doc__)
    app.command("models", help=train_cli.MODELS_DOC)(train_cli.models_command)
    app.command("train", help=train_cli.__doc__)(train_cli.train_command)
    app.command("eval", help=eval_cli.__doc__)(eval_cli.eval_command)
    app.command("patient-diagnose", help=diagnose.__doc__)(diagnose.diagnose_command)
    app.command("explain", help=explain.__doc__)(explain.explain_command)
    app.command("extract", help=extract.__doc__)(extract.extract_command)
    app.add_typer(manifest.manifest_app, name="manifest")
    app.add_typer(ingest.app, name="ingest", help=ingest.__doc__)
    app.command("features", help=features.__doc__)(features.features_command)
    app.command("demo", help=demo.__doc__)(demo.demo_command)


_register()


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
