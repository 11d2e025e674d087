"""Every per-item command through the same families of bad input (issue 18).

For each command and each family: the exit status, one line ``covtool: error: ...`` naming the
file (and line where there is one), no traceback, nothing written (no output, no temporary or
partial file), the inputs byte-identical; and with ``--skip-bad`` the batch goes on with the bad
item's error row. The count of inputs tried is printed in docs/badinput.md.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from covtool.cli.app import app
from covtool.core.imageio import write_image
from covtool.core.manifest import read_manifest

runner = CliRunner()


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Two good 48x48 16-bit images with masks and point annotations, as TEM and CT rows."""
    root = tmp_path_factory.mktemp("bad") / "in"
    root.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        img = (rng.random((48, 48)) * 3000 + 200).astype(np.uint16)
        img[10:30, 10:30] = 50      # dark "lungs" for select
        write_image(root / f"{name}.tif", img)
        mask = np.zeros((48, 48), np.uint8)
        mask[12:28, 14:30] = 255
        write_image(root / f"{name}_mask.png", mask)
        (root / f"{name}.txt").write_text("20 20\n30 25\n")
    return root


def workspace(base: Path, tmp_path: Path, bad: str | None) -> tuple[Path, Path]:
    """A copy of the good inputs, with image ``b.tif`` replaced by a bad one of the family."""
    ws = tmp_path / "ws"
    shutil.copytree(base, ws)
    b = ws / "b.tif"
    if bad == "missing":
        b.unlink()
    elif bad == "empty":
        b.write_bytes(b"")
    elif bad == "truncated":
        b.write_bytes(b.read_bytes()[: len(b.read_bytes()) // 2])
    elif bad == "garbage":
        b.write_bytes(b"II*\x00" + bytes(range(256)) * 4)
    elif bad == "folder":
        b.unlink()
        b.mkdir()
    elif bad == "huge-header":   # a valid PNG header claiming 50000x50000 over a tiny IDAT
        import struct
        import zlib

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 50000, 50000, 8, 0, 0, 0, 0))
               + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
        b.write_bytes(png)
    return ws, b


def manifest(ws: Path, kind: str) -> Path:
    head = {"tem": "id,path,label,pixel_size_nm,annotation,mask",
            "ct": "id,path,group,series"}[kind]
    rows = {"tem": [f"{n},{n}.tif,x,1.5,{n}.txt,{n}_mask.png" for n in ("a", "b")],
            "ct": [f"{n},{n}.tif,P1,S1" for n in ("a", "b")]}[kind]
    m = ws / "m.csv"
    m.write_text("\n".join([head, *rows]) + "\n")
    return m


COMMANDS = {
    "rescale": ("tem", lambda m, out: ["rescale", m, "-d", out / "files", "-o", out / "o.csv"]),
    "crop": ("tem", lambda m, out: ["crop", m, "-d", out / "files", "-o", out / "o.csv", "--size", "16"]),
    "features": ("tem", lambda m, out: ["features", m, "-o", out / "o.csv"]),
    "select": ("ct", lambda m, out: ["select", m, "-o", out / "o.csv", "--plot", out / "files"]),
    "chest-crop": ("ct", lambda m, out: ["chest-crop", m, "-d", out / "files", "-o", out / "o.csv"]),
}
FAMILIES = ["missing", "empty", "truncated", "garbage", "folder", "huge-header"]


def one_line_error(output: str, *names: str) -> None:
    lines = [x for x in output.strip().splitlines() if not x.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("covtool: error: "), output
    assert "Traceback" not in output
    for name in names:
        assert name in lines[0], (name, lines[0])


def nothing_written(out: Path) -> None:
    left = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert left == [], left


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_bad_image_stops_cleanly_or_is_recorded(base, tmp_path, command, family):
    kind, argv = COMMANDS[command]
    ws, bad = workspace(base, tmp_path, family)
    m = manifest(ws, kind)
    before = digest(ws)
    out = tmp_path / "out"
    r = runner.invoke(app, [str(a) for a in argv(m, out)])
    assert r.exit_code == 1, r.output
    one_line_error(r.output, "b.tif")
    nothing_written(out)
    assert digest(ws) == before          # inputs untouched
    r = runner.invoke(app, [str(a) for a in argv(m, out)] + ["--skip-bad"])
    assert r.exit_code == 0, r.output
    rows = read_manifest(out / "o.csv")
    bad_rows = rows[rows["error"].astype(str).str.len() > 0]
    # each error cell names the bad file itself (select's slice cells too: a cell read alone)
    assert len(bad_rows) >= 1
    assert all("b.tif" in e for e in bad_rows["error"]), bad_rows["error"].tolist()
    assert (rows["error"] == "").any()    # the good image went on
    assert digest(ws) == before


#: what each command needs of every row (its required columns, in the order it checks them)
REQUIRED = {"rescale": ["path"], "crop": ["path"], "chest-crop": ["path"], "features": ["path", "mask"],
            "select": ["path", "group"], "split": ["label"], "balance": ["id", "path", "label", "split"]}


def manifest_families(command: str) -> dict[str, tuple[str | bytes | None, str]]:
    cols = ["id", *[c for c in REQUIRED[command] if c != "id"]]
    good = ",".join(f"v{i}" for i in range(len(cols)))
    last = cols[-1]
    return {
        "no such manifest": (None, "no such manifest"),
        "empty file": ("", "empty manifest"),
        "binary": ("\x00\x01\x02", "binary data"),
        "a row of the wrong length": (f"{','.join(cols)}\n{good},extra\n",
                                      f":2: {len(cols) + 1} fields where the header has {len(cols)}"),
        "a missing column": (f"{','.join(cols[:-1])}\n{','.join(good.split(',')[:-1])}\n",
                             f":1: missing column {last}"),
        "an empty cell": (f"{','.join(cols)}\n{good.rsplit(',', 1)[0]},\n", f":2: empty value in column '{last}'"),
        "a duplicate id": (f"{','.join(cols)}\n{good}\n{good}\n", ":3: duplicate id 'v0'"),
        "not UTF-8": (b"id,path\n\xff\xfe,a.tif\n", "not UTF-8"),
    }


FAMILY_NAMES = list(manifest_families("rescale"))


@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("command", list(REQUIRED))
def test_a_bad_manifest_is_one_line_naming_it(base, tmp_path, command, family):
    content, says = manifest_families(command)[family]
    m = tmp_path / "m.csv"
    if isinstance(content, bytes):
        m.write_bytes(content)
    elif content is not None:
        m.write_text(content)
    out = tmp_path / "out"
    argv = {"split": ["split", m, "-o", out / "o.csv", "--strategy", "random"],
            "balance": ["balance", m, "-o", out / "o.csv"]}.get(command)
    if argv is None:
        argv = COMMANDS[command][1](m, out)
    r = runner.invoke(app, [str(a) for a in argv])
    assert r.exit_code == 1, r.output
    one_line_error(r.output, "m.csv", says)
    nothing_written(out)


def test_a_malformed_annotation_names_its_line(base, tmp_path):
    ws, _ = workspace(base, tmp_path, None)
    (ws / "b.txt").write_text("20 20\n30 x\n")
    m = manifest(ws, "tem")
    for command in ("rescale", "crop"):
        out = tmp_path / command
        r = runner.invoke(app, [str(a) for a in COMMANDS[command][1](m, out)])
        assert r.exit_code == 1, r.output
        one_line_error(r.output, "b.txt:2")
        nothing_written(out)


def test_a_bad_row_in_a_pipe_passes_through_to_the_end(base, tmp_path):
    """rescale -o - | crop - with --skip-bad: the bad image's row reaches crop's output unchanged
    (its error kept, no patch), the good one is cropped; run in a real shell pipe."""
    import subprocess

    from tests.conftest import covtool_cmd, covtool_env

    ws, _ = workspace(base, tmp_path, "truncated")
    m = manifest(ws, "tem")
    cmd = (subprocess.list2cmdline(covtool_cmd("--quiet", "rescale", str(m), "-d", str(tmp_path / "r"), "-o", "-",
                                               "--skip-bad"))
           + " | " + subprocess.list2cmdline(covtool_cmd("--quiet", "crop", "-", "-d", str(tmp_path / "p"), "-o",
                                                         str(tmp_path / "p.csv"), "--size", "16", "--skip-bad")))
    proc = subprocess.run(cmd, shell=True, env=covtool_env(), capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = read_manifest(tmp_path / "p.csv")
    bad = rows[rows["id"] == "b"]
    assert len(bad) == 1 and "b.tif" in bad["error"].iloc[0] and "unreadable TIFF" in bad["error"].iloc[0]
    assert (rows["group"] == "a").sum() == 2 and (rows.loc[rows["group"] == "a", "error"] == "").all()
