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
from covtool.core.errors import CovtoolError, ParameterError, UsageError

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) is not for people; a user's
# own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class CovtoolGroup(TyperGroup):
    """Turns covtool's errors into one line and an exit status (:func:`exit_status`)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _quiet_broken_pipe()
        except (CovtoolError, OSError, KeyboardInterrupt) as exc:
            if console.state.debug:
                raise
            raise typer.Exit(exit_status(exc, _flag_namer(self, ctx))) from None


def exit_status(exc: BaseException, name_of=None) -> int:
    """Say what went wrong in one line on stderr and give the exit status: 2 bad usage, 1 bad
    data or a failed item, 130 interrupted (DESIGN.md). ``name_of`` shows a parameter of a
    :class:`ParameterError` as the running command's flag."""
    if isinstance(exc, KeyboardInterrupt):
        console.error("interrupted")
        return 130
    if isinstance(exc, ParameterError):
        console.error(exc.shown_with(name_of or _default_flag))
        return 2
    if isinstance(exc, CovtoolError):
        console.error(str(exc))
        return 2 if isinstance(exc, UsageError) else 1
    where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
    console.error(f"{where}{getattr(exc, 'strerror', None) or exc}")
    return 1


def _default_flag(param: str) -> str:
    return "--" + param.replace("_", "-")


def _flag_namer(group, ctx):
    """``param -> flag`` for the command the user ran: its options' long names, its arguments'
    metavars (the one place where library parameter names become the CLI's words)."""
    def params(cmd) -> list:
        found = list(getattr(cmd, "params", []))
        for sub in getattr(cmd, "commands", {}).values():
            found += params(sub)
        return found

    name = ctx.invoked_subcommand
    cmd = group.get_command(ctx, name) if name else None
    flags: dict[str, str] = {}
    for p in params(cmd) if cmd is not None else []:
        if p.param_type_name == "option":
            longs = [o for o in p.opts if o.startswith("--")]
            flags.setdefault(p.name, (longs or p.opts)[0])
        elif p.param_type_name == "argument":
            flags.setdefault(p.name, p.metavar or p.name.upper())
    return lambda param: flags.get(param, _default_flag(param))


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
    except KeyboardInterrupt as exc:  # between commands (in typer's own parsing)
        sys.exit(exit_status(exc))
