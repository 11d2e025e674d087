"""The Typer root: global options, error handling, and the registry of commands.

The registry rule
-----------------
Every command joins covtool the same way: one line in :data:`COMMANDS`,
``"name": Command("module:attribute", "summary")``.

* The *module* holds that command (or command family) alone, and its docstring is the command's
  help: ``covtool NAME --help`` starts with it.
* The *attribute* is the command function of a single command, or the ``typer.Typer`` of a
  family of subcommands (``ingest``, ``manifest``, ``split``), whose subcommands take their help
  from their own docstrings, as in any Typer app.
* The *summary* is the first paragraph of the module's docstring, on one line. The root help lists
  the commands from these summaries without importing a single command module
  (``tests/cli/test_app.py`` checks that every summary equals its command's help).

A command's module is imported only when that command runs or shows its own help, so
``covtool select`` does not pay for extract's imports, and no command module imports TensorFlow at
module level: ``covtool --help`` and the non-deep-learning stages start without it.

Help is click's plain formatter (``rich_markup_mode=None``, set for every command in
:func:`load_command`): it reflows each paragraph to the terminal's width, shows flags without a
value placeholder (no ``<bool>``), and does not import rich's panels (``--help`` starts faster).

Exit status (DESIGN.md): 0 success; 1 bad data or a failed item; 2 bad usage; 130 interrupted,
whether the interrupt comes while typer parses the options or while the command runs; 141 when
the reader of stdout goes away (``covtool ... | head``).
"""

from __future__ import annotations

import os
import sys
from typing import NamedTuple

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
        except _ClickUsageError as exc:  # typer's own parse errors: the same one line as ours
            if console.state.debug:
                raise
            console.error(_click_usage_line(exc, ctx))
            raise typer.Exit(2) from None
        except (CovtoolError, OSError, KeyboardInterrupt) as exc:
            if console.state.debug:
                raise
            raise typer.Exit(exit_status(exc, _flag_namer(self, ctx))) from None


try:  # typer 0.29 carries its own click; older typers use click itself
    from typer._click.exceptions import BadParameter as _ClickBadParameter
    from typer._click.exceptions import UsageError as _ClickUsageError
except ImportError:  # pragma: no cover
    from click.exceptions import BadParameter as _ClickBadParameter
    from click.exceptions import UsageError as _ClickUsageError


def _click_usage_line(exc, ctx) -> str:
    """A parse error (a bad value, a missing option, an unknown flag) as ``--flag: what`` plus
    where to look, on one line like covtool's other usage errors."""
    param = getattr(exc, "param", None)
    if isinstance(exc, _ClickBadParameter) and param is not None and exc.__class__ is _ClickBadParameter:
        longs = [o for o in getattr(param, "opts", []) if o.startswith("--")]
        flag = (longs or getattr(param, "opts", None) or [param.name.upper()])[0]
        text = f"{flag}: {exc.message.removeprefix('Value error, ')}"
    else:
        text = exc.format_message()
    where = exc.ctx.command_path if getattr(exc, "ctx", None) is not None else "covtool"
    return f"{text} (see '{where} --help')"


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


def _quiet_broken_pipe() -> None:
    """The reader of our stdout went away (``covtool ... | head``): stop quietly, like a C tool."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    raise typer.Exit(141)


class Command(NamedTuple):
    """A registry entry: where the command lives and the line the root help shows for it."""

    target: str    #: ``"module:attribute"``, the attribute a function or a ``typer.Typer``
    summary: str   #: the first paragraph of the module's docstring, on one line


#: Every command, in the order the root help lists them (the registry rule: module docstring).
COMMANDS: dict[str, Command] = {
    "select": Command("covtool.cli.select:select_command",
                      "Keep the CT slices where the lungs are open (COVID-CTset's dark-pixel "
                      "selection)."),
    "rescale": Command("covtool.cli.rescale:rescale_command",
                       "Resample TEM images to one pixel size (Lanczos-3, antialiased) with their "
                       "annotations."),
    "chest-crop": Command("covtool.cli.chestcrop:chest_crop_command",
                          "Crop CT images to the chest (COVID-CT's threshold segmentation and "
                          "convex hull), removing the white or black space at their edges."),
    "crop": Command("covtool.cli.crop:crop_command",
                    "Cut patches centred on the annotated virus particles (TEM virus benchmark)."),
    "balance": Command("covtool.cli.balance:balance_command",
                       "Balance the training patches: each class to --per-class samples by flips "
                       "and 90° rotations."),
    "split": Command("covtool.cli.split:split_app",
                     "Split a manifest into train/val/test (or k folds) at the level of the group, "
                     "and check splits."),
    "models": Command("covtool.cli.models:models_command",
                      "List the models with their trainable parameter counts (one row per model: "
                      "the name, then the count) for an input size and a class count."),
    "train": Command("covtool.cli.train:train_command",
                     "Train a classifier on a manifest's train rows (validating on its val rows) "
                     "into a run folder."),
    "eval": Command("covtool.cli.eval:eval_command",
                    "Evaluate a trained run on a manifest's test rows: predictions, the papers' "
                    "metrics, confusion."),
    "patient-diagnose": Command("covtool.cli.diagnose:diagnose_command",
                                "Diagnose whole patients: select lung slices, classify them, and "
                                "apply COVID-CTset's patient rule."),
    "explain": Command("covtool.cli.explain:explain_command",
                       "Grad-CAM heatmaps of a trained run on chosen images: overlay PNGs (and "
                       ".npy arrays)."),
    "extract": Command("covtool.cli.extract:extract_command",
                       "Figures and captions from PDF papers (COVID-CT's PyMuPDF mining, "
                       "automated)."),
    "manifest": Command("covtool.cli.manifest:manifest_app",
                        "Work with manifests themselves: merge the shards of an array job, check "
                        "completeness."),
    "ingest": Command("covtool.cli.ingest:ingest_app",
                      "Read a public dataset in its authors' own layout into a manifest."),
    "features": Command("covtool.cli.features:features_command",
                        "SC2-MID visual features of masked objects: shape (nm), texture (HOG, "
                        "GLCM) and deep (ImageNet CNNs)."),
    # the demo drives the command line, so it lives above it (covtool/demo.py), not in covtool.cli
    "demo": Command("covtool.demo:demo_command",
                    "Run the whole pipeline on data covtool generates itself, and say where the "
                    "outputs are."),
}


def load_command(name: str):
    """The click command for ``name``, built from its module (imported now) by the registry rule."""
    import importlib

    from typer.main import get_command, get_group

    module_name, _, attr = COMMANDS[name].target.partition(":")
    module = importlib.import_module(module_name)
    obj = getattr(module, attr)
    if isinstance(obj, typer.Typer):
        cmd = get_group(obj)
        cmd.help = module.__doc__
    else:
        one = typer.Typer(add_completion=False)
        one.command(name, help=module.__doc__)(obj)
        cmd = get_command(one)
    cmd.name = name
    return plain_help(cmd)


def plain_help(cmd):
    """Render ``cmd``'s help (and its subcommands') with click's plain formatter.

    Typer's rich panels keep a docstring's hard line breaks, squeeze the help column to a third of
    an 80-column terminal, and show every flag as ``<bool>``; the plain formatter reflows
    paragraphs and writes a flag as just its name. Options that name a ``rich_help_panel`` are
    still shown under that panel's heading.
    """
    cmd.rich_markup_mode = None
    for p in cmd.params:
        _plain_names(p)
    if cmd.help and not cmd.short_help:  # listed in its family in full, not cut at 45 characters
        cmd.short_help = summary_of(cmd.help)
    if any(getattr(p, "rich_help_panel", None) for p in cmd.params):
        cmd.format_options = lambda ctx, formatter: _options_by_panel(cmd, ctx, formatter)
    for sub in getattr(cmd, "commands", {}).values():
        plain_help(sub)
    return cmd


#: how a value's type reads in help, for options that give no metavar of their own
_TYPE_WORDS = {"int": "N", "int range": "N", "float": "NUM", "float range": "NUM", "str": "TEXT",
               "path": "PATH", "file": "FILE", "directory": "DIR"}


def _plain_names(param) -> None:
    """Show a parameter as click does: ``MANIFEST`` (not ``{MANIFEST}`` and ``MANIFEST <str>``),
    ``--batch-size N`` (not ``<int>``), choices as ``a|b|c``. Typer 0.29's own words are Python's;
    other typer versions do not have these hooks, and keep their own (harmless)."""
    if not hasattr(param, "display_type_rich"):
        return
    if param.param_type_name == "argument":
        if param.metavar is None:
            param.metavar = param.name.upper()
        name = param.metavar + ("..." if param.nargs != 1 and not param.metavar.endswith("...") else "")
        param._usage_display_name = lambda: name if param.required else f"[{name}]"
        param._rich_display_name = lambda: name
        param.display_type_rich = lambda ctx: None
        return
    shown = param.display_type_rich

    def words(ctx, shown=shown) -> str | None:
        text = shown(ctx)
        if not text:
            return text
        inner = text.strip("<>")
        if inner.startswith("list[") and inner.endswith("]"):
            inner = inner[5:-1]
        return _TYPE_WORDS.get(inner, inner)

    param.display_type_rich = words


def summary_of(help_text: str) -> str:
    """The first paragraph of a help text, on one line: what a command list shows for it."""
    return " ".join(help_text.strip().split("\n\n")[0].split())


def _options_by_panel(cmd, ctx, formatter) -> None:
    """click's "Arguments" and "Options" sections, one section per ``rich_help_panel``."""
    sections: dict[str, list[tuple[str, str]]] = {}
    for p in cmd.get_params(ctx):
        record = p.get_help_record(ctx)
        if record is not None:
            default = "Arguments" if p.param_type_name == "argument" else "Options"
            sections.setdefault(getattr(p, "rich_help_panel", None) or default, []).append(record)
    for title, records in sections.items():
        with formatter.section(title):
            formatter.write_dl(records)


class RootGroup(CovtoolGroup):
    """The ``covtool`` group: commands from :data:`COMMANDS`, each loaded on first use."""

    _listing = False   # True while the root help lists the commands

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        if name in self.commands:
            return self.commands[name]
        if self._listing:  # the summary alone: listing the commands imports none of them
            return typer.core.TyperCommand(name, short_help=COMMANDS[name].summary)
        self.add_command(load_command(name), name)
        return self.commands[name]

    def format_help(self, ctx, formatter):
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def make_context(self, info_name, args, parent=None, **extra):
        # typer parses the root options (and runs --version and --help) here, outside invoke();
        # an interrupt or a closed pipe here is handled as during a command
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except BrokenPipeError:  # ``covtool --help | head``
            _quiet_broken_pipe()
        except KeyboardInterrupt as exc:
            raise typer.Exit(exit_status(exc)) from None


app = typer.Typer(
    cls=RootGroup,
    name="covtool",
    help="Reproducible pipelines for COVID-19 and virus imaging datasets. Every stage reads and "
         "writes a manifest (CSV; '-' is stdin/stdout), so stages chain in pipes and Makefiles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _without_layout_model() -> None:
    """Keep PyMuPDF's layout model and pymupdf4llm out of a covtool process.

    ``import pymupdf`` imports ``pymupdf4llm`` and ``pymupdf.layout`` whenever they are installed
    (pymupdf4llm brings pymupdf-layout), and ``pymupdf.layout`` loads its ONNX models on import:
    0.6 s of every covtool process that reads a PDF (0.1 s without them), for code covtool never
    calls. PyMuPDF imports both inside ``try: ... except ImportError``, so marking them absent for
    this process skips them. Only the command line does this: a program importing covtool's
    modules keeps PyMuPDF as it finds it.
    """
    if "pymupdf" not in sys.modules:
        for name in ("pymupdf.layout", "pymupdf4llm"):
            sys.modules.setdefault(name, None)   # type: ignore[arg-type]


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


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    _without_layout_model()
    try:
        app(args=argv, prog_name="covtool")
    except BrokenPipeError:
        try:
            _quiet_broken_pipe()
        except typer.Exit:
            sys.exit(141)
    except KeyboardInterrupt as exc:  # while typer builds the command tree, before any parsing
        sys.exit(exit_status(exc))
