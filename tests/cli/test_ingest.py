from __future__ import annotations

import io
import subprocess

import pandas as pd
from typer.testing import CliRunner

from covtool.cli.app import app
from covtool.core.manifest import read_manifest
from tests.conftest import covtool_cmd, covtool_env
from tests.datasets import fixtures

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_covid_ct_writes_manifest_with_relative_paths(tmp_path):
    root = fixtures.covid_ct(tmp_path / "ct")
    out = tmp_path / "ct.csv"
    r = run("ingest", "covid-ct", root, "-o", out)
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert "ct/Images-processed/CT_COVID/2020.01.24-p1-1.png" in text and str(tmp_path) not in text
    df = read_manifest(out)
    assert len(df) == 7 and set(df["split"]) == {"train", "val", "test"}
    assert "7 items, 0 removed" in r.output
    # an existing output is refused before any work
    r = run("ingest", "covid-ct", root, "-o", out)
    assert r.exit_code == 1 and "already exists" in r.output


def test_covid_cxr_filters_and_summary(tmp_path):
    root = fixtures.covid_cxr(tmp_path / "cxr")
    out = tmp_path / "cxr.csv"
    r = run("ingest", "covid-cxr", root, "-o", out, "--modality", "X-ray", "--view", "PA,AP",
            "--label-map", "COVID-19=covid", "--label-map", "No Finding=normal")
    assert r.exit_code == 0, r.output
    df = read_manifest(out)
    assert sorted(df["id"]) == ["a", "b", "c"]
    assert dict(zip(df["id"], df["label"])) == {"a": "covid", "b": "covid", "c": "normal"}
    assert "removed 1: modality is not X-ray" in r.output
    assert "removed 1: view not in --view" in r.output
    assert "removed 1: finding not in --label-map" in r.output


def test_bad_file_is_one_line_error_or_skipped(tmp_path):
    root = fixtures.covid_cxr(tmp_path / "cxr")
    (root / "images" / "d.png").write_bytes(b"junk")
    out = tmp_path / "cxr.csv"
    r = run("ingest", "covid-cxr", root, "-o", out)
    assert r.exit_code == 1
    assert "covtool: error:" in r.output and "d.png: unreadable image" in r.output
    assert "Traceback" not in r.output and not out.exists()
    r = run("ingest", "covid-cxr", root, "-o", out, "--skip-bad")
    assert r.exit_code == 0, r.output
    assert "skipped" in r.output and "d.png" in r.output and "removed 1: unreadable image" in r.output
    assert len(read_manifest(out)) == 5


def test_covid_ctset_manifest_feeds_select(tmp_path):
    root = fixtures.covid_ctset(tmp_path / "set")
    out = tmp_path / "set.csv"
    r = run("ingest", "covid-ctset", root, "-o", out)
    assert r.exit_code == 2 and not out.exists()   # choosing a part is the user's: bad usage
    assert "--part: both parts of the release are here" in r.output and "Traceback" not in r.output
    r = run("ingest", "covid-ctset", root, "-o", out, "--part", "raw")
    assert r.exit_code == 0, r.output
    sel = tmp_path / "sel.csv"
    r = run("select", out, "-o", sel)
    assert r.exit_code == 0, r.output
    df = read_manifest(sel)
    assert len(df) == 8 and set(df["group"]) == {"patient1", "patient168"}
    assert df["series"].nunique() == 3 and "label" in df.columns and set(df["value_scale"]) == {"hu+1024"}
    r = run("ingest", "covid-ctset", root, "-o", out, "--part", "both", "--force")
    assert r.exit_code == 2 and "--part: must be raw or training" in r.output


def test_tem_unknown_dir_and_usage(tmp_path):
    r = run("ingest", "tem", tmp_path / "nope", "-o", tmp_path / "x.csv")
    assert r.exit_code == 1 and "no such dataset folder" in r.output
    r = run("--quiet", "ingest", "tem", fixtures.tem(tmp_path / "tem"), "-o", tmp_path / "t.csv")
    assert r.exit_code == 0 and r.output == ""
    df = read_manifest(tmp_path / "t.csv")
    assert dict(zip(df["id"], df["particles"]))["train_Adenovirus_a1"] == "2"


def test_subprocess_pipe_ingest_into_select(tmp_path):
    root = fixtures.covid_ctset(tmp_path / "set")
    ingest = subprocess.run(covtool_cmd("ingest", "covid-ctset", str(root), "-o", "-", "--part", "raw"), cwd=tmp_path,
                            env=covtool_env(), capture_output=True, text=True, timeout=120)
    assert ingest.returncode == 0, ingest.stderr
    # stdout is a clean manifest, paths relative to the working directory
    df = pd.read_csv(io.StringIO(ingest.stdout), dtype=str, keep_default_na=False)
    assert len(df) == 8 and df["path"].str.startswith("set/").all()
    assert "8 items, 6 removed" in ingest.stderr
    sel = subprocess.run(covtool_cmd("select", "-", "-o", "-"), input=ingest.stdout, cwd=tmp_path,
                         env=covtool_env(), capture_output=True, text=True, timeout=120)
    assert sel.returncode == 0, sel.stderr
    out = pd.read_csv(io.StringIO(sel.stdout), dtype=str, keep_default_na=False)
    assert sorted(out["id"]) == sorted(df["id"])
    assert (out.set_index("id")["label"] == df.set_index("id")["label"]).all()


def test_tem_default_pixel_size_and_its_old_hidden_name(tmp_path):
    root = tmp_path / "flat"
    fixtures.png(root / "Rotavirus" / "r1.png")
    fixtures.write(root / "Rotavirus" / "r1.txt", "3 3\n")
    for flag in ("--default-pixel-size", "--pixel-size-nm"):
        out = tmp_path / f"{flag}.csv"
        r = run("ingest", "tem", root, "-o", out, flag, "2.5")
        assert r.exit_code == 0, r.output
        assert read_manifest(out)["pixel_size_nm"].tolist() == ["2.5"]
    r = run("ingest", "tem", root, "-o", tmp_path / "both.csv", "--default-pixel-size", "2",
            "--pixel-size-nm", "2")
    assert r.exit_code == 2 and not (tmp_path / "both.csv").exists()
    assert "--pixel-size-nm is the old name of --default-pixel-size: give one" in r.output
    r = run("ingest", "tem", "--help")
    assert "--default-pixel-size NM" in r.output and "--pixel-size-nm" not in r.output


def test_covid_cxr_bad_patterns_name_their_option(tmp_path):
    root = fixtures.covid_cxr(tmp_path / "cxr")
    for args, line in [(["--label-map", "covid"], "--label-map: expects PATTERN=LABEL, got 'covid'"),
                       (["--label-map", "(=x"], "--label-map: '(=x': bad regular expression"),
                       (["--finding", "("], "--finding: '(': bad regular expression")]:
        r = run("ingest", "covid-cxr", root, "-o", tmp_path / "o.csv", *args)
        assert r.exit_code == 2, r.output
        assert r.output.startswith(f"covtool: error: {line}"), r.output
        assert not (tmp_path / "o.csv").exists()


def test_nothing_found_or_left_is_an_error_naming_the_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "x.csv"
    r = run("ingest", "covid-ctset", empty, "-o", out, "--part", "raw")
    assert r.exit_code == 1 and not out.exists()
    assert f"{empty}: no COVID-CTset slice found of the raw part" in " ".join(r.output.split())
    root = fixtures.covid_cxr(tmp_path / "cxr")
    r = run("ingest", "covid-cxr", root, "-o", out, "--modality", "MRI")
    assert r.exit_code == 1 and not out.exists()
    assert f"{root}: no item left: 6 removed (6 modality is not MRI)" in " ".join(r.output.split())


def test_a_file_given_for_the_dataset_folder_is_named_as_a_file(tmp_path):
    archive = tmp_path / "tem.zip"
    archive.write_bytes(b"PK\x03\x04")
    for reader in ("tem", "covid-ct", "covid-cxr", "covid-ctset"):
        r = run("ingest", reader, archive, "-o", tmp_path / "x.csv")
        assert r.exit_code == 1 and f"{archive}: is a file, expected the dataset folder" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tem.zip"]
