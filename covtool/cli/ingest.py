"""Read a public dataset in its authors' own layout into a manifest.

Unknown or damaged files stop the command with one line naming the file; with --skip-bad they
are listed on stderr and skipped. The summary on stderr says how many items each reason
(filters included) removed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from covtool.cli.common import Force, OutManifest, old_option, renamed
from covtool.core import console
from covtool.core.errors import UsageError
from covtool.core.manifest import STDIO, check_output, write_manifest
from covtool.datasets.common import (
    PROBLEMS_LISTED,
    Ingested,
    crossing_groups,
    problem_lines,
    require_items,
)

ingest_app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)

DirArg = Annotated[Path, typer.Argument(metavar="DIR", help="The dataset's folder, as unpacked from its release.")]
SkipBad = Annotated[bool, typer.Option(
    "--skip-bad", help="List a bad file on stderr, count it in the summary and go on, instead of "
                       "stopping (the manifest holds only good items).")]
Verify = Annotated[bool, typer.Option("--verify/--no-verify",
                                      help="Decode every image once, so a damaged file is found now.")]


def summary_table(result: Ingested):
    from rich.table import Table

    df = result.items
    table = Table(title="ingested", title_justify="left")
    table.add_column("label")
    for col in ("items", "groups"):
        table.add_column(col, justify="right")
    has_split = "split" in df.columns and (df["split"].fillna("") != "").any()
    splits = ["train", "val", "test", ""] if has_split else []
    for s in splits:
        table.add_column(s or "no split", justify="right")
    for label, sub in df.groupby("label", sort=True) if len(df) else []:
        cells = [str(len(sub)), str(sub["group"].nunique())]
        cells += [str(int((sub["split"].fillna("") == s).sum())) for s in splits]
        table.add_row(str(label), *cells)
    return table


def report(result: Ingested, output: str) -> None:
    """Problems, removals and leaks on stderr (warnings survive --quiet)."""
    for line in problem_lines(result, None if console.state.debug else PROBLEMS_LISTED):
        console.warn(line)
    for message in result.warnings:
        console.warn(message)
    crossing = crossing_groups(result.items)
    if crossing:
        console.warn(f"{len(crossing)} group(s) in more than one split, e.g. {', '.join(crossing[:3])}")
    if console.state.quiet:
        return
    console.stderr.print(summary_table(result))
    for reason, n in sorted(result.removed.items()):
        console.info(f"removed {n}: {reason}")
    dest = "stdout" if output == STDIO else output
    console.info(f"{len(result.items)} items, {sum(result.removed.values())} removed -> {dest}")


def finish(result: Ingested, root: Path, output: str, force: bool) -> None:
    """Write the manifest and report; no item at all is an error naming ``root`` (its skipped
    files listed first)."""
    if not len(result.items):
        for line in problem_lines(result):
            console.warn(line)
    write_manifest(require_items(result, root).items, output, force)
    report(result, output)


@ingest_app.command("covid-ct")
def covid_ct_command(
    root: DirArg,
    output: OutManifest = ...,
    covid_label: Annotated[str, typer.Option("--covid-label", help="Label of CT_COVID images.")] = "covid",
    noncovid_label: Annotated[str, typer.Option("--noncovid-label", help="Label of CT_NonCOVID images.")] = "noncovid",
    split_dir: Annotated[Path | None, typer.Option(
        "--split-dir", help="Folder of the split lists (trainCT_COVID.txt, ...); default DIR/Data-split.")] = None,
    metadata: Annotated[Path | None, typer.Option(
        "--metadata", help="The COVID MetaInfo table (.xlsx or .csv); default: found under DIR.")] = None,
    verify: Verify = True,
    skip_bad: SkipBad = False,
    force: Force = False,
) -> None:
    """COVID-CT (UCSD-AI4H): CT_COVID/CT_NonCOVID images, Data-split lists, MetaInfo table."""
    from covtool.datasets.covid_ct import ingest_covid_ct

    check_output(output, force)
    finish(ingest_covid_ct(root, skip_bad=skip_bad, verify=verify, labels=(covid_label, noncovid_label),
                           split_dir=split_dir, metadata=metadata), root, output, force)


@ingest_app.command("covid-cxr")
def covid_cxr_command(
    root: DirArg,
    output: OutManifest = ...,
    modality: Annotated[str | None, typer.Option("--modality", help="Keep one modality: X-ray or CT.")] = None,
    view: Annotated[str | None, typer.Option("--view", metavar="PA,AP,...",
                                             help="Keep these views (comma separated): PA, AP, AP Supine, L, Axial, Coronal.")] = None,
    finding: Annotated[str | None, typer.Option("--finding", metavar="REGEX",
                                                help="Keep rows whose finding matches (case-insensitive search).")] = None,
    label_map: Annotated[list[str] | None, typer.Option(
        "--label-map", metavar="PATTERN=LABEL",
        help="Label from finding: first matching regex wins; rows no pattern matches are removed. "
             "Repeat the option. Default: the finding is the label.")] = None,
    metadata: Annotated[Path | None, typer.Option("--metadata", help="Default DIR/metadata.csv.")] = None,
    verify: Verify = True,
    skip_bad: SkipBad = False,
    force: Force = False,
) -> None:
    """COVID-19 image data collection (ieee8023): metadata.csv and images/."""
    from covtool.datasets.covid_cxr import ingest_covid_cxr

    check_output(output, force)
    views = [v for v in (view or "").split(",") if v.strip()]
    finish(ingest_covid_cxr(root, skip_bad=skip_bad, verify=verify, modality=modality, views=views,
                            finding=finding, label_map=label_map or [], metadata=metadata), root, output,
           force)


@ingest_app.command("covid-ctset")
def covid_ctset_command(
    root: DirArg,
    output: OutManifest = ...,
    fold: Annotated[int | None, typer.Option("--fold", min=1, help="Fold whose lists give 'split' (default: the first found).")] = None,
    listed_only: Annotated[bool, typer.Option("--listed-only", help="Keep only slices named in a fold list or all.csv.")] = False,
    details: Annotated[Path | None, typer.Option("--details", help="Patient_details.csv, when not under DIR.")] = None,
    part: Annotated[str | None, typer.Option(
        "--part", metavar="raw|training",
        help="The part of the release to read, needed where both are under DIR: 'raw' (every "
             "patient's 16-bit slices, HU + 1024) or 'training' (the fold lists' slices as 32-bit "
             "floats divided by each image's maximum).")] = None,
    verify: Verify = True,
    skip_bad: SkipBad = False,
    force: Force = False,
) -> None:
    """COVID-CTset (mr7495): patient/SR_k series of 16-bit TIFFs, fold lists, Patient_details.csv."""
    from covtool.datasets.covid_ctset import ingest_covid_ctset

    check_output(output, force)
    if part is not None and part not in ("raw", "training"):
        raise UsageError(f"--part: must be raw or training, got '{part}'")
    finish(ingest_covid_ctset(root, skip_bad=skip_bad, verify=verify, fold=fold, listed_only=listed_only,
                              details=details, part=part), root, output, force)


@ingest_app.command("tem")
def tem_command(
    root: DirArg,
    output: OutManifest = ...,
    layout: Annotated[str, typer.Option(
        "--layout", metavar="auto|raw|crops|annotated",
        help="raw: context_virus_RAW (images, particle_positions/, tags/); crops: "
             "context_virus_1nm_256x256 or any <Virus>/<image>_<k> crops; annotated: images with "
             "annotations beside them. auto tells them apart; at the release's root it reads raw.")] = "auto",
    split_table: Annotated[Path | None, typer.Option(
        "--split-table", help="Crops: a table of the release's crops (protocol_A_official.csv) giving "
                              "each crop's split and source image.")] = None,
    pixel_sizes: Annotated[Path | None, typer.Option(
        "--pixel-sizes", help="Annotated layout: table image,pixel_size_nm (default: pixel_sizes.csv found in DIR, split or class folders).")] = None,
    default_pixel_size: Annotated[float | None, typer.Option(
        "--default-pixel-size", metavar="NM",
        help="Pixel size (nm) of images that carry none (no tag file or table row); crops: their "
             "pixel size (default 1).")] = None,
    old_pixel_size: old_option("--pixel-size-nm") = None,
    verify: Verify = True,
    skip_bad: SkipBad = False,
    force: Force = False,
) -> None:
    """TEM virus dataset: raw images with particle and tag files, or the 1 nm crops."""
    from covtool.datasets.tem import ingest_tem

    default_pixel_size = renamed(default_pixel_size, old_pixel_size, "--default-pixel-size", "--pixel-size-nm")
    check_output(output, force)
    finish(ingest_tem(root, skip_bad=skip_bad, verify=verify, pixel_sizes=pixel_sizes,
                      default_pixel_size=default_pixel_size, layout=layout, split_table=split_table),
           root, output, force)


@ingest_app.command("inf-net")
def inf_net_command(
    root: DirArg,
    output: OutManifest = ...,
    label: Annotated[str, typer.Option("--label", help="Label of every slice (all are COVID-19).")] = "covid",
    split: Annotated[str, typer.Option(
        "--split", help="Split written on every row (default train: the slices join COVID-CT's "
                        "training images; '' for none).")] = "train",
    verify: Verify = True,
    skip_bad: SkipBad = False,
    force: Force = False,
) -> None:
    """Inf-Net's lesion-masked CT slices (COVID-19 CT segmentation set): Imgs/ with the doctors' GT/ masks."""
    from covtool.datasets.inf_net import ingest_inf_net

    check_output(output, force)
    finish(ingest_inf_net(root, skip_bad=skip_bad, verify=verify, label=label, split=split), root,
           output, force)
