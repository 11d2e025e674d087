"""Work with manifests themselves: merge the shards of an array job, check completeness."""

from __future__ import annotations

from typing import Annotated

import typer

from covtool.cli.common import Force, OutManifest
from covtool.core import console
from covtool.core.errors import ManifestError
from covtool.core.manifest import check_output, merge_manifests, read_manifest, write_manifest

manifest_app = typer.Typer(help=__doc__, no_args_is_help=True)


@manifest_app.command("merge")
def merge_command(
    parts: Annotated[list[str], typer.Argument(metavar="PART...", help="Manifests to merge (e.g. one per shard).")],
    output: OutManifest = ...,
    expect: Annotated[str | None, typer.Option(
        "--expect", metavar="ORIGINAL.csv",
        help="The manifest the shards were cut from: fail unless every one of its items is present exactly once.")] = None,
    key: Annotated[str, typer.Option("--key", help="Column identifying an item.")] = "id",
    force: Force = False,
) -> None:
    """Concatenate manifests; fail on an item present twice, or missing with --expect."""
    check_output(output, force)
    frames = [read_manifest(p, unique_ids=(key == "id")) for p in parts]
    merged = merge_manifests(frames, key)
    if expect is not None:
        orig = read_manifest(expect, required=[key], unique_ids=(key == "id"))
        want, have = set(orig[key]), set(merged[key])
        missing, extra = sorted(want - have), sorted(have - want)
        if missing or extra:
            parts_ = []
            if missing:
                parts_.append(f"{len(missing)} item(s) missing ({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''})")
            if extra:
                parts_.append(f"{len(extra)} item(s) not in it ({', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''})")
            raise ManifestError("merged shards do not match: " + "; ".join(parts_), expect)
    write_manifest(merged, output, force)
    console.info(f"merged {len(frames)} manifests, {len(merged)} rows")
