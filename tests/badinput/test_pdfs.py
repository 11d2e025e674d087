"""``extract`` through every family of bad PDF (issue 18), uniformly.

Each bad PDF is given on the command line beside a good one and as a row of a PDF manifest:
without ``--skip-bad`` exit 1, one line naming it, nothing written (no figure folder, no
``done.json``, no temporary file); with it the bad PDF's error row has a stable id and names it,
the good PDF's figures are extracted and the run exits 0; a batch of only the bad PDF exits 1
(``check_done``). The inputs stay byte-identical. Damaged PDFs' own details (pages lost, the
one-PDF rollback, unwritable outputs) are tested in tests/pdf/test_stage.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from covtool.cli.app import app
from covtool.core.manifest import read_manifest
from tests.badinput.test_commands import digest, nothing_written, one_line_error

runner = CliRunner()


def zero_pages() -> bytes:
    """A well-formed PDF whose page tree is empty."""
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    out, offsets = b"%PDF-1.4\n", []
    for i, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, obj)
    xref = len(out)
    out += b"xref\n0 3\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    return out + b"trailer\n<< /Size 3 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref


def make_bad(family: str, good: Path, bad: Path) -> None:
    """Write ``bad`` (x.pdf) as a PDF of ``family``."""
    if family == "empty":
        bad.write_bytes(b"")
    elif family == "png":   # a PNG renamed .pdf
        import cv2
        import numpy as np

        bad.write_bytes(cv2.imencode(".png", np.zeros((8, 8), np.uint8))[1].tobytes())
    elif family == "truncated":   # an interrupted download
        data = good.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif family == "encrypted":
        import pymupdf

        with pymupdf.open(good) as doc:
            doc.save(bad, encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner", user_pw="user")
    elif family == "header-only":
        bad.write_bytes(b"%PDF-1.7\n")
    elif family == "zero-pages":
        bad.write_bytes(zero_pages())
    elif family == "folder":
        bad.mkdir()
    # "missing": nothing


#: family -> what the error line says
FAMILIES = {
    "missing": "no such",
    "empty": "empty file",
    "png": "not a PDF",
    "truncated": "truncated or damaged PDF",
    "encrypted": "encrypted PDF",
    "header-only": "damaged PDF",
    "zero-pages": "no pages",
    "folder": "folder",
}


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    from covtool.synth.pdf import make_paper

    path = tmp_path_factory.mktemp("goodpdf") / "good.pdf"
    make_paper(path, seed=3)
    return path


def invoke(*argv) -> object:
    return runner.invoke(app, [str(a) for a in argv])


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("given", ["argument", "manifest"])
def test_a_bad_pdf_stops_cleanly_or_is_recorded(good, tmp_path, family, given):
    ws = tmp_path / "in"
    ws.mkdir()
    shutil.copy(good, ws / "good.pdf")
    bad = ws / "x.pdf"
    make_bad(family, good, bad)
    if given == "manifest":
        (ws / "list.csv").write_text("path,journal\ngood.pdf,Lancet\nx.pdf,BMJ\n")
        batch, alone = [ws / "list.csv"], None
    else:
        batch, alone = [ws / "good.pdf", bad], [bad]
    before = digest(ws)
    out = tmp_path / "out"
    args = ["extract", *batch, "-d", out / "figs", "-o", out / "o.csv"]
    r = invoke(*args)
    assert r.exit_code == 1, r.output
    one_line_error(r.output, "x.pdf", FAMILIES[family])
    nothing_written(out)
    assert digest(ws) == before
    if given == "argument" and family in ("missing", "folder"):
        # a command-line argument that is no PDF at all is refused before any work, --skip-bad
        # or not (as a missing manifest is): the user's typo, not a bad item of a batch
        r = invoke(*args, "--skip-bad")
        assert r.exit_code == 1, r.output
        one_line_error(r.output, "x.pdf", "no such file" if family == "missing" else "no PDF found")
        nothing_written(out)
        return
    r = invoke(*args, "--skip-bad")
    assert r.exit_code == 0, r.output
    rows = read_manifest(out / "o.csv")
    failed = rows[rows["error"] != ""]
    assert len(failed) == 1 and failed["source"].iloc[0].endswith("x.pdf")
    assert "x.pdf" in failed["error"].iloc[0] and FAMILIES[family] in failed["error"].iloc[0]
    bad_id = failed["id"].iloc[0]
    assert bad_id.startswith("x-") and len(bad_id) == len("x-") + 8 and bad_id not in set(rows["id"][rows["error"] == ""])
    figures = rows[rows["error"] == ""]
    assert len(figures) >= 3 and all((out / "figs").joinpath(*Path(p).parts[-2:]).is_file()
                                     for p in figures["path"])
    assert (figures["journal"] == "Lancet").all() if given == "manifest" else True
    folders = sorted(p.name for p in (out / "figs").iterdir())
    assert len(folders) == 1 and folders[0].startswith("good-")   # no folder (nor done.json) for x.pdf
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    assert digest(ws) == before
    # the same id on a rerun (another output folder): stable
    again = tmp_path / "again"
    assert invoke("extract", *batch, "-d", again / "figs", "-o", again / "o.csv", "--skip-bad").exit_code == 0
    assert bad_id in set(read_manifest(again / "o.csv")["id"])
    if alone is not None:   # a batch where every PDF failed: the manifest says why, exit 1
        solo = tmp_path / "solo"
        r = invoke("--quiet", "extract", *alone, "-d", solo / "figs", "-o", solo / "o.csv", "--skip-bad")
        assert r.exit_code == 1, r.output
        one_line_error(r.output, "the one item failed", str(solo / "o.csv"))
        assert list(read_manifest(solo / "o.csv")["id"]) == [bad_id]


@pytest.mark.parametrize("row, says", [("\"unterminated,BMJ\n", ":3:"), (",BMJ\n", ":3: empty value in column 'path'")])
def test_a_bad_row_of_a_pdf_manifest_names_its_line(good, tmp_path, row, says):
    m = tmp_path / "list.csv"
    m.write_text(f"path,journal\n{good},Lancet\n{row}")
    out = tmp_path / "out"
    for extra in ([], ["--skip-bad"]):
        r = invoke("extract", m, "-d", out / "figs", "-o", out / "o.csv", *extra)
        assert r.exit_code == 1, r.output
        one_line_error(r.output, "list.csv", says)
        nothing_written(out)
