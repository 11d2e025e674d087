from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from covtool.cli.app import app
from covtool.core.manifest import read_manifest
from covtool.synth.pdf import make_paper

ROOT = Path(__file__).resolve().parents[2]
# ../shared/data beside the repository (or beside the worktrees' folder, for a worktree)
REAL = next((p / "shared" / "data" / "pdfs" for p in (ROOT.parent, ROOT.parent.parent)
             if (p / "shared" / "data" / "pdfs").is_dir()), ROOT.parent / "shared" / "data" / "pdfs")
runner = CliRunner()


@pytest.fixture(scope="module")
def papers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pdfs")
    truth = {}
    for k in range(2):
        name = f"paper_{k}.pdf"
        truth[name] = make_paper(folder / "sub" / name if k else folder / name, seed=10 + k)
    return folder, truth


def test_extract_folder_with_split_panels_and_caption_match(papers, tmp_path):
    folder, truth = papers
    out = tmp_path / "figs.csv"
    res = runner.invoke(app, ["extract", str(folder), "-d", str(tmp_path / "img"), "-o", str(out),
                              "--split-panels", "--caption-match", "CT"])
    assert res.exit_code == 0, res.output
    df = read_manifest(out, unique_ids=True)
    assert list(df.columns[:6]) == ["id", "path", "source", "page", "figure", "panel"]
    # figure 2 (a bar chart) has no "CT" in its caption; the CT figures give their panels
    assert set(df["figure"]) == {"1", "3", "4", "5"}
    assert len(df) == 2 * (4 + 3 + 1 + 3)
    assert all(Path(p).exists() for p in df["path"])
    assert not df["caption"].str.contains("\n").any()
    assert set(df["doi"]) == {"10.5555/covtool.synth.10", "10.5555/covtool.synth.11"}


def test_output_exists_needs_force_and_rerun_resumes(papers, tmp_path):
    folder, _ = papers
    pdf = str(folder / "paper_0.pdf")
    out = tmp_path / "figs.csv"
    args = ["extract", pdf, "-d", str(tmp_path / "img"), "-o", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    before = out.read_text()
    res = runner.invoke(app, args)
    assert res.exit_code == 1 and "already exists" in res.output
    out.unlink()
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and out.read_text() == before
    assert "reused" in res.output


def test_bad_pdf_stops_or_is_recorded(papers, tmp_path):
    folder, _ = papers
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"not a pdf at all")
    out = tmp_path / "figs.csv"
    base = ["extract", str(bad), str(folder / "paper_0.pdf"), "-d", str(tmp_path / "img"), "-o", str(out)]
    res = runner.invoke(app, base)
    assert res.exit_code == 1 and "broken.pdf: not a PDF" in res.output and not out.exists()
    res = runner.invoke(app, [*base, "--skip-bad", "--jobs", "2"])
    assert res.exit_code == 0, res.output
    df = read_manifest(out, unique_ids=False)
    failed = df[df["error"] != ""]
    assert len(failed) == 1 and failed["source"].iloc[0] == str(bad)
    assert len(df) == 1 + 5


def test_a_truncated_pdf_is_an_error_row_and_a_repaired_whole_one_a_warning(papers, tmp_path):
    folder, _ = papers
    data = (folder / "paper_0.pdf").read_bytes()
    half, tail = tmp_path / "half.pdf", tmp_path / "tail.pdf"
    half.write_bytes(data[:len(data) // 2])          # an interrupted download
    tail.write_bytes(data[:-30])                     # only the trailer lost: every page is whole
    out = tmp_path / "figs.csv"
    args = ["extract", str(half), str(tail), "-d", str(tmp_path / "img"), "-o", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 1 and not out.exists()
    assert (f"{half}: truncated or damaged PDF (cannot find startxref): 2 of 3 pages lost or "
            "incomplete (pages 2, 3)") in " ".join(res.output.split())
    for _ in range(2):                               # not marked done: the rerun tries it again
        out.unlink(missing_ok=True)
        res = runner.invoke(app, [*args, "--skip-bad"])
        assert res.exit_code == 0, res.output
        df = read_manifest(out, unique_ids=False)
        bad = df[df["source"] == str(half)]
        assert list(bad["error"].str.contains("2 of 3 pages lost")) == [True]
        assert (df[df["source"] == str(tail)]["error"] == "").sum() == 5
        assert f"warning: {tail}: damaged PDF repaired (cannot find startxref)" in " ".join(res.output.split())
        assert [p.parent.name for p in (tmp_path / "img").rglob("done.json")] == [
            Path(df[df["source"] == str(tail)]["path"].iloc[0]).parent.name]


def test_manifest_of_pdfs_and_shard(papers, tmp_path):
    folder, _ = papers
    man = tmp_path / "pdfs.csv"
    man.write_text(f"path\n{folder / 'paper_0.pdf'}\n{folder / 'sub' / 'paper_1.pdf'}\n")
    out = tmp_path / "s1.csv"
    res = runner.invoke(app, ["extract", str(man), "-d", str(tmp_path / "img"), "-o", str(out), "--shard", "1/2"])
    assert res.exit_code == 0, res.output
    df = read_manifest(out)
    assert set(Path(s).name for s in df["source"]) == {"paper_1.pdf"}


def test_usage_errors(tmp_path):
    res = runner.invoke(app, ["extract", str(tmp_path / "nope.pdf"), "-d", str(tmp_path), "-o", "-"])
    assert res.exit_code == 1 and "nope.pdf: no such file or folder" in res.output   # a missing input is data, as elsewhere
    res = runner.invoke(app, ["extract", str(tmp_path), "-d", str(tmp_path), "-o", "-", "--caption-match", "("])
    assert res.exit_code == 2 and "--caption-match: '(' is not a valid regex" in res.output
    res = runner.invoke(app, ["extract", str(tmp_path), "-d", str(tmp_path), "-o", "-", "--flate", "gif"])
    assert res.exit_code == 2 and "--flate: must be keep or png, got 'gif'" in res.output


def test_a_folder_or_manifest_without_pdfs_is_an_error_naming_it(tmp_path):
    empty = tmp_path / "papers"
    (empty / "sub").mkdir(parents=True)
    (empty / "notes.txt").write_text("no PDF here")
    listing = tmp_path / "pdfs.csv"
    listing.write_text("path\n")
    for arg, message in ((empty, "no PDF found in this folder"), (listing, "no PDF listed")):
        res = runner.invoke(app, ["extract", str(arg), "-d", str(tmp_path / "img"), "-o", str(tmp_path / "o.csv")])
        assert res.exit_code == 1 and f"{arg}: {message}" in res.output, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["papers", "pdfs.csv"]


def test_every_option_is_checked_before_any_work(papers, tmp_path):
    folder, _ = papers
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "figs.csv"
    base = ["extract", str(folder), "-o", str(out)]
    for args, message in (
        (["-d", str(tmp_path / "file")], f"--outdir: {tmp_path / 'file'} exists and is not a folder"),
        (["-d", str(tmp_path / "img"), "--uncaptioned", "some"], "--uncaptioned: must be raster, all or none, got 'some'"),
        (["-d", str(tmp_path / "img"), "--caption-match", "[CT"], "--caption-match: '[CT' is not a valid regex"),
    ):
        res = runner.invoke(app, [*base, *args])
        assert res.exit_code == 2 and message in res.output, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing read, nothing written


def test_a_manifest_of_pdfs_gives_its_other_columns_to_their_figures(papers, tmp_path):
    folder, _ = papers
    man = tmp_path / "pdfs.csv"
    man.write_text(f"journal,path,label\nLancet,{folder / 'paper_0.pdf'},covid\nBMJ,{folder / 'sub' / 'paper_1.pdf'},\n")
    out = tmp_path / "figs.csv"
    res = runner.invoke(app, ["extract", str(man), "-d", str(tmp_path / "img"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    df = read_manifest(out)
    # core columns first (label among them), then extract's own, then the carried ones
    assert list(df.columns) == ["id", "path", "label", "source", "page", "figure", "panel", "bbox", "caption",
                                "width", "height", "format", "kind", "doi", "title", "journal"]
    by_pdf = df.groupby(df["source"].map(lambda s: Path(s).name))
    assert {k: sorted(set(g["journal"])) for k, g in by_pdf} == {"paper_0.pdf": ["Lancet"], "paper_1.pdf": ["BMJ"]}
    assert {k: sorted(set(g["label"])) for k, g in by_pdf} == {"paper_0.pdf": ["covid"], "paper_1.pdf": [""]}
    assert all(p.endswith((".png", ".jpg", ".tif")) for p in df["path"])  # the figures, not the PDFs


def test_jobs_defaults_to_the_usable_cpus_and_1_keeps_one_process(papers, tmp_path, monkeypatch):
    from covtool.cli import extract as cli_extract

    seen = []
    real = cli_extract.run_stage

    def spy(*args, **kwargs):
        seen.append(kwargs["jobs"])
        return real(*args, **kwargs)

    monkeypatch.setattr(cli_extract, "run_stage", spy)
    monkeypatch.setattr(cli_extract, "default_jobs", lambda: 3)
    folder, _ = papers
    for extra in ([], ["--jobs", "1"], ["-j", "2"]):
        res = runner.invoke(app, ["extract", str(folder), "-d", str(tmp_path / "img"), "-o",
                                  str(tmp_path / "o.csv"), "--force", *extra])
        assert res.exit_code == 0, res.output
    assert seen == [3, 1, 2]


def test_jobs_2_gives_the_rows_of_jobs_1(papers, tmp_path):
    folder, _ = papers
    texts = {}
    for jobs in (1, 2):
        out = tmp_path / f"j{jobs}.csv"
        res = runner.invoke(app, ["extract", str(folder), "-d", str(tmp_path / "img"), "-o", str(out),
                                  "--jobs", str(jobs), "--force", "--split-panels"])
        assert res.exit_code == 0, res.output
        texts[jobs] = out.read_text()
    assert texts[1] == texts[2] and len(texts[1].splitlines()) == 1 + 2 * (4 + 1 + 3 + 1 + 3)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_failing_pdf_leaves_nothing_of_the_pdfs_done_before_it(papers, tmp_path, jobs):
    folder, _ = papers
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.7 and then nothing a reader could use")
    out, img = tmp_path / "figs.csv", tmp_path / "img"
    res = runner.invoke(app, ["extract", str(folder / "paper_0.pdf"), str(folder / "sub" / "paper_1.pdf"),
                              str(bad), "-d", str(img), "-o", str(out), "--jobs", jobs])
    assert res.exit_code == 1 and "broken.pdf: " in res.output, res.output
    # the two PDFs before it were extracted (their folders made -d), then taken back
    assert not out.exists() and not img.exists()   # nothing, not even the folder the run made


def test_flate_keep_or_png(papers, tmp_path):
    folder, _ = papers
    formats = {}
    for mode in ("keep", "png"):
        out = tmp_path / f"{mode}.csv"
        res = runner.invoke(app, ["extract", str(folder / "paper_0.pdf"), "-d", str(tmp_path / mode), "-o", str(out),
                                  "--flate", mode])
        assert res.exit_code == 0, res.output
        formats[mode] = dict(zip(read_manifest(out)["figure"], read_manifest(out)["format"]))
    assert formats["keep"] == {"1": "tif", "2": "png", "3": "png", "4": "jpg", "5": "png"}
    assert formats["png"] == {"1": "png", "2": "png", "3": "png", "4": "jpg", "5": "png"}


def test_subprocess_pipe_to_stdout(papers, tmp_path):
    folder, _ = papers
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "covtool", "--quiet", "extract", str(folder / "paper_0.pdf"),
                           "-d", str(tmp_path / "img"), "-o", "-"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("id,path,source,page,figure,panel,bbox,caption")
    assert len(lines) == 1 + 5
    assert all(line.split(",")[1].startswith("img/") for line in lines[1:])


@pytest.mark.realdata
@pytest.mark.skipif(not (REAL / "expected.json").exists(), reason="../shared/data/pdfs is absent")
def test_real_papers_match_the_counted_figures(tmp_path):
    expected = json.loads((REAL / "expected.json").read_text())
    out = tmp_path / "figs.csv"
    res = runner.invoke(app, ["extract", str(REAL), "-d", str(tmp_path / "img"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    df = read_manifest(out)
    for name, info in expected.items():
        rows = df[df["source"].map(lambda s: Path(s).name) == name]
        main = rows[~rows["figure"].str.startswith("S") & (rows["figure"] != "")]
        got = {(r.figure, int(r.page)): r.caption for r in main.itertuples()}
        want = {(f["name"], f["page"]): f["caption_start"] for f in info["figures"]}
        assert set(got) == set(want), name
        for key, start in want.items():
            assert got[key].startswith(start), (name, key, got[key][:80])
