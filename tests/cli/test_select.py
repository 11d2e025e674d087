from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import tifffile
from typer.testing import CliRunner

from covtool.cli.app import app
from covtool.core.imageio import write_image
from covtool.core.manifest import read_manifest
from tests.conftest import covtool_cmd, covtool_env

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_select_on_synthetic_patients_matches_the_anatomy(ct_patients, tmp_path):
    root, truth = ct_patients
    out = tmp_path / "sel.csv"
    result = run("select", root, "-o", out, "--plot", tmp_path / "plots")
    assert result.exit_code == 0, result.output
    df = read_manifest(out)
    assert len(df) == len(truth)
    assert list(df.columns[:8]) == ["id", "path", "group", "series", "slice", "dark_pixels", "threshold", "selected"]
    assert "value_scale" not in df.columns and "slice_index" not in df.columns
    merged = df.merge(truth[["id", "lung_open"]], on="id")
    assert len(merged) == len(df)
    sel = merged["selected"] == "true"
    # closed-lung slices are never selected; the selected ones are the widest-open ones
    assert not (sel & (merged["lung_open"].astype(float) == 0)).any()
    assert sel.sum() > 0
    for _, g in merged.groupby("group"):
        counts = g["dark_pixels"].astype(int)
        thr = float(g["threshold"].iloc[0])
        assert thr == pytest.approx((counts.max() - counts.min()) / 1.5)
        assert ((counts > thr) == (g["selected"] == "true")).all()
        assert g["slice"].astype(int).tolist() == list(range(1, len(g) + 1))
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "patient001_SR_3.png", "patient002_SR_3.png", "patient003_SR_3.png"]
    assert "slice selection per patient" in result.output


def test_options_change_the_rule(ct_patients, tmp_path):
    root, _ = ct_patients
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert run("select", root, "-o", a, "--only-selected").exit_code == 0
    assert run("select", root, "-o", b, "--only-selected", "--divisor", "4", "--dark-level", "250",
               "--region", "100,200,400,360").exit_code == 0
    da, db = read_manifest(a), read_manifest(b)
    assert (da["selected"] == "true").all()
    assert len(db) > len(da)  # a lower threshold keeps more slices


def test_manifest_input_passes_unknown_columns_and_ids(ct_patients, tmp_path):
    root, truth = ct_patients
    m = tmp_path / "slices.csv"
    t = truth.copy()
    t["path"] = t["path"].astype(str)
    t = t.drop(columns=["slice"]).sample(frac=1.0, random_state=0)  # shuffled rows
    t["note"] = "n-" + t["id"]
    t.to_csv(m, index=False)
    out = tmp_path / "o.csv"
    assert run("select", m, "-o", out).exit_code == 0
    df = read_manifest(out)
    assert set(df["id"]) == set(truth["id"])
    assert (df["note"] == "n-" + df["id"]).all()
    assert (df["label"] == df["id"].map(truth.set_index("id")["label"])).all()
    # slices come back in natural order within each series
    assert df.groupby("group")["slice"].apply(lambda s: s.astype(int).is_monotonic_increasing).all()


def test_shell_pipe(ct_patients, tmp_path):
    root, truth = ct_patients
    out = tmp_path / "piped.csv"
    env = covtool_env()
    cmd = (f"{subprocess.list2cmdline(covtool_cmd('--quiet', 'select', str(root), '-o', '-', '--only-selected'))}"
           f" | {subprocess.list2cmdline(covtool_cmd('--quiet', 'select', '-', '-o', str(out)))}")
    proc = subprocess.run(cmd, shell=True, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(out)
    assert len(df) > 0 and len(df) < len(truth)
    # re-selecting among selected slices recomputes the threshold on the narrower range
    assert df["selected"].dtype == bool
    assert (tmp_path / df["path"].iloc[0]).exists()


def test_existing_output_needs_force(ct_patients, tmp_path):
    root, _ = ct_patients
    out = tmp_path / "o.csv"
    out.write_text("precious\n")
    result = run("select", root, "-o", out)
    assert result.exit_code == 1 and "--force" in result.output
    assert out.read_text() == "precious\n"
    assert run("select", root, "-o", out, "--force").exit_code == 0


def make_series(folder, n=5, shape=(512, 512), dtype=np.uint16):
    for k in range(n):
        img = np.full(shape, 1000, dtype)
        img[shape[0] // 2 - 20: shape[0] // 2 + 20, : shape[1] // 2] = 0 if k in (1, 2, 3) else 1000
        write_image(folder / f"IM{k + 1}.tif", img)


def one_line_then_recorded(root, out, bad, reason):
    """select stops with one line naming ``bad``; with --skip-bad the row records ``reason``."""
    result = run("select", root, "-o", out)
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"covtool: error: {bad}: "), result.output
    assert reason in lines[0] and "Traceback" not in result.output
    assert not out.exists()
    result = run("select", root, "-o", out, "--skip-bad")
    assert result.exit_code == 0, result.output
    df = read_manifest(out)
    errs = df[df["error"] != ""]
    assert len(errs) == 1 and reason in errs["error"].iloc[0]
    return df, errs


@pytest.mark.parametrize("case", ["truncated", "colour", "mixed", "empty"])
def test_bad_input_stops_with_one_line_or_is_recorded(tmp_path, case):
    root = tmp_path / "pats"
    make_series(root / "P1" / "SR_2")
    make_series(root / "P2" / "SR_2")
    bad = root / "P1" / "SR_2" / "IM3.tif"
    if case == "truncated":
        data = bad.read_bytes()
        bad.write_bytes(data[: len(data) // 3])
        reason = "unreadable TIFF"
    elif case == "colour":
        rgb = np.zeros((512, 512, 3), np.uint16)
        rgb[..., 0] = 900
        tifffile.imwrite(bad, rgb, photometric="rgb")
        reason = "colour image"
    elif case == "mixed":
        write_image(bad, np.zeros((256, 256), np.uint16), force=True)
        reason = "differs from the series' 512x512"
    else:
        bad = root / "P3" / "SR_2"
        bad.mkdir(parents=True)
        reason = "empty series"
    df, errs = one_line_then_recorded(root, tmp_path / "o.csv", bad, reason)
    assert errs["selected"].iloc[0] == "false"
    good = df[(df["group"] == "P2")]
    assert good["selected"].tolist() == ["false", "true", "true", "true", "false"]


def test_8bit_png_warns_and_non_512_region_is_scaled(tmp_path):
    folder = tmp_path / "P1" / "S1"
    for k in range(4):
        img = np.full((256, 256), 200, np.uint8)
        img[120:170, 60:185] = 0 if k == 2 else 200  # exactly the scaled region
        write_image(folder / f"{k}.png", img)
    out = tmp_path / "o.csv"
    result = run("select", folder, "-o", out)
    assert result.exit_code == 0
    assert "8-bit image" in result.output
    df = read_manifest(out)
    # 200 < 300 counts everywhere: whole scaled region (125x50) is dark on every slice
    assert df["dark_pixels"].astype(int).tolist() == [6250] * 4
    assert df["group"].iloc[0] == "P1" and df["series"].iloc[0] == "S1"


def test_shards_split_series_between_jobs(ct_patients, tmp_path):
    root, truth = ct_patients
    parts = []
    for k in range(2):
        out = tmp_path / f"s{k}.csv"
        assert run("select", root, "-o", out, "--shard", f"{k}/2").exit_code == 0
        parts.append(read_manifest(out))
    assert set(parts[0]["group"]).isdisjoint(parts[1]["group"])
    assert sorted(pd.concat(parts)["id"]) == sorted(truth["id"])
    assert run("select", root, "-o", tmp_path / "x.csv", "--shard", "2/2").exit_code == 2  # usage


def test_select_on_a_folder_imports_no_pandas_and_a_manifest_input_neither(ct_patients, tmp_path):
    """select's start-up matters (array jobs, shell loops): pandas' half second is not paid for
    a folder, nor for a manifest (read as Rows, written as plain rows)."""
    root, _ = ct_patients
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    code = ("import sys\nfrom covtool.cli.app import main\n"
            f"for argv in {[['--quiet', 'select', str(root), '-o', str(a)], ['--quiet', 'select', str(a), '-o', str(b), '--only-selected']]!r}:\n"
            "    try:\n        main(argv)\n    except SystemExit as exc:\n        assert not exc.code, exc.code\n"
            "print(sorted(m for m in ('pandas', 'tensorflow') if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], env=covtool_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert 0 < len(read_manifest(b)) < len(read_manifest(a))


def test_an_empty_selection_still_writes_select_s_header(tmp_path):
    """--only-selected of a series where no slice is selected: a manifest of no rows, with the
    header (it can be piped on)."""
    for k in range(3):   # bright slices: no dark pixel, threshold 0, nothing selected
        write_image(tmp_path / "P1" / f"IM{k}.tif", np.full((64, 64), 1000, np.uint16))
    out = tmp_path / "o.csv"
    r = run("select", tmp_path, "-o", out, "--only-selected")
    assert r.exit_code == 0, r.output
    assert out.read_text().splitlines()[0].startswith("id,path,group,series,slice,dark_pixels,threshold,selected")
    assert len(read_manifest(out)) == 0 and "0 of 3 slices selected in 1 series" in r.output


def test_python_m_covtool_runs():
    proc = subprocess.run([sys.executable, "-m", "covtool", "--version"], env=covtool_env(),
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("covtool ")


# --- DICOM series and NIfTI volumes -------------------------------------------------------------

def volume_inputs(tmp_path, k=12):
    from covtool.synth.volumes import chest_phantom, write_dicom_series, write_nifti

    vol = chest_phantom(k, 64, seed=5)
    names = [f"slice{n}" for n in np.random.default_rng(1).permutation(k)]   # no suffix, shuffled
    write_dicom_series(tmp_path / "dicom" / "P1", vol, names=names, signed=True, intercept=0.0)
    write_nifti(tmp_path / "nifti" / "P1.nii.gz", vol, layout="RAS")
    return vol


def test_select_dicom_and_nifti_give_the_same_rows_in_anatomical_order(tmp_path):
    volume_inputs(tmp_path)
    a, b = tmp_path / "d.csv", tmp_path / "n.csv"
    r = run("select", tmp_path / "dicom", "-o", a, "--plot", tmp_path / "plots")
    assert r.exit_code == 0, r.output
    assert run("select", tmp_path / "nifti" / "P1.nii.gz", "-o", b).exit_code == 0
    d, n = read_manifest(a), read_manifest(b)
    assert d["slice"].astype(float).tolist() == [-200.0 + 2 * k for k in range(12)]
    assert n["slice"].tolist() == d["slice"].tolist()
    assert d["dark_pixels"].tolist() == n["dark_pixels"].tolist()
    assert d["selected"].tolist() == n["selected"].tolist()
    assert 0 < (d["selected"] == "true").sum() < 12
    # DICOM rows name their files; NIfTI rows name the volume and the slice's index in it
    assert [p.split("/")[-2] for p in d["path"]] == ["P1"] * 12 and "slice_index" not in d.columns
    assert set(n["path"]) == {str(tmp_path / "nifti" / "P1.nii.gz")} and n["slice_index"].tolist() == [str(k) for k in range(12)]
    assert n["id"].iloc[3] == "P1_P1_0003"
    assert set(d["value_scale"]) == set(n["value_scale"]) == {"hu+1024"}   # covtool.core.scale
    assert (tmp_path / "plots" / "P1_P1.png").exists()


def test_select_pipes_nifti_rows_back_in(tmp_path):
    volume_inputs(tmp_path)
    first = tmp_path / "n.csv"
    assert run("select", tmp_path / "nifti" / "P1.nii.gz", "-o", first).exit_code == 0
    df = read_manifest(first).sample(frac=1.0, random_state=2)   # shuffled rows, a subset
    df = df[df["slice_index"].astype(int) % 2 == 0]
    df.drop(columns=["dark_pixels", "threshold", "selected"]).to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "o.csv"
    assert run("select", tmp_path / "in.csv", "-o", out).exit_code == 0
    o = read_manifest(out)
    assert o["slice_index"].astype(int).tolist() == list(range(0, 12, 2))
    full = read_manifest(first).set_index("id")
    assert (o["dark_pixels"] == o["id"].map(full["dark_pixels"])).all()


def test_manifest_of_dicom_files_is_ordered_by_position(tmp_path):
    volume_inputs(tmp_path)
    files = sorted((tmp_path / "dicom" / "P1").iterdir())
    pd.DataFrame({"path": [str(f) for f in files], "group": "P1", "note": [f.name for f in files]}).to_csv(
        tmp_path / "m.csv", index=False)
    out = tmp_path / "o.csv"
    assert run("select", tmp_path / "m.csv", "-o", out).exit_code == 0
    o = read_manifest(out)
    assert o["slice"].astype(float).is_monotonic_increasing and len(o) == 12
    assert (o["note"] == [p.split("/")[-1] for p in o["path"]]).all()


def test_localizers_are_reported(tmp_path):
    from covtool.synth.volumes import chest_phantom, dicom_slice

    vol = volume_inputs(tmp_path)
    ds = dicom_slice(chest_phantom(1, 32)[0], position=(0, 0, 0), instance=99,
                     image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    ds.save_as(tmp_path / "dicom" / "P1" / "scout.dcm", enforce_file_format=True)
    out = tmp_path / "o.csv"
    r = run("select", tmp_path / "dicom", "-o", out)
    assert r.exit_code == 0, r.output
    assert "P1/P1: 1 image left out (localizer 1)" in r.output
    assert len(read_manifest(out)) == len(vol)


@pytest.mark.parametrize("orientation", [(-1, 0, 0, 0, 1, 0), (-1, 0, 0, 0, -1, 0)])  # FFS, HFP
def test_select_feet_first_and_prone_dicom_gives_the_nifti_rows(tmp_path, orientation):
    from covtool.synth.volumes import chest_phantom, write_dicom_series, write_nifti

    vol = chest_phantom(12, 64, seed=5)
    write_dicom_series(tmp_path / "dicom" / "P1", vol, orientation=orientation, descending=True)
    write_nifti(tmp_path / "P1.nii.gz", vol, layout="RAS")
    a, b = tmp_path / "d.csv", tmp_path / "n.csv"
    assert run("select", tmp_path / "dicom", "-o", a).exit_code == 0
    assert run("select", tmp_path / "P1.nii.gz", "-o", b).exit_code == 0
    d, n = read_manifest(a), read_manifest(b)
    assert d["slice"].astype(float).tolist() == [-200.0 + 2 * k for k in range(12)]   # inferior first
    assert d["slice"].tolist() == n["slice"].tolist()
    assert d["dark_pixels"].tolist() == n["dark_pixels"].tolist()
    assert d["selected"].tolist() == n["selected"].tolist() and (d["selected"] == "true").any()


def test_dicom_files_named_by_uid_in_numeric_folders_get_unique_ids(tmp_path):
    from covtool.synth.volumes import chest_phantom, write_dicom_series

    for p in ("1", "2"):
        write_dicom_series(tmp_path / "pts" / p, chest_phantom(6, 32),
                           names=[f"1.3.12.2.1107.5.1.4.92591.{p}.{k}" for k in range(6)],
                           series_uid=f"1.2.3.{p}")
    out = tmp_path / "o.csv"
    assert run("select", tmp_path / "pts", "-o", out).exit_code == 0
    df = read_manifest(out)          # refuses duplicate ids, as `covtool split` does
    assert df["id"].nunique() == 12 and df["id"].iloc[0] == "1_1_1.3.12.2.1107.5.1.4.92591.1.0"


@pytest.mark.parametrize("kind", ["dicom", "nifti"])
def test_a_manifests_chosen_slices_with_gaps_are_selected_with_a_warning(tmp_path, kind):
    volume_inputs(tmp_path)
    src = tmp_path / "dicom" if kind == "dicom" else tmp_path / "nifti" / "P1.nii.gz"
    first = tmp_path / "all.csv"
    assert run("select", src, "-o", first).exit_code == 0
    full = read_manifest(first)
    chosen = full.drop(index=full.index[[4, 5, 8]])           # an expert's list of slices
    cols = ["id", "path", "group", "series"] + (["slice_index"] if kind == "nifti" else [])
    chosen[cols].to_csv(tmp_path / "chosen.csv", index=False)
    out = tmp_path / "o.csv"
    r = run("select", tmp_path / "chosen.csv", "-o", out)
    assert r.exit_code == 0, r.output
    assert "P1/P1: 2 gaps in the listed slices' positions (the first 6.00 mm after" in r.output
    o = read_manifest(out)
    assert o["id"].tolist() == chosen["id"].tolist()
    assert (o["dark_pixels"] == o["id"].map(full.set_index("id")["dark_pixels"])).all()
    sel = tmp_path / "sel.csv"     # select's own --only-selected output, fed back
    assert run("select", src, "-o", sel, "--only-selected", "--force").exit_code == 0
    assert run("select", sel, "-o", tmp_path / "again.csv").exit_code == 0


def test_two_series_in_one_folder_are_named_in_one_warning(tmp_path):
    from covtool.synth.volumes import chest_phantom, write_dicom_series

    vol = chest_phantom(8, 32)
    write_dicom_series(tmp_path / "P1", vol, series_uid="1.2.3.1", series_number=3)
    write_dicom_series(tmp_path / "P1", vol[:5], series_uid="1.2.3.2", series_number=7,
                       names=[f"b{k}.dcm" for k in range(5)])
    out = tmp_path / "o.csv"
    r = run("select", tmp_path, "-o", out)
    assert r.exit_code == 0, r.output
    assert r.output.count("2 DICOM series") == 1
    assert "P1_S3 (SeriesNumber 3, 8 slices); P1_S7 (SeriesNumber 7, 5 slices)" in " ".join(r.output.split())
    assert sorted(set(read_manifest(out)["series"])) == ["P1_S3", "P1_S7"]


@pytest.mark.parametrize("case", ["gap", "no pixels", "corrupt", "mixed", "4-D"])
def test_bad_volumes_stop_with_one_line_or_are_recorded(tmp_path, case):
    from covtool.synth.volumes import dicom_slice

    volume_inputs(tmp_path)
    folder = tmp_path / "dicom" / "P1"
    files = {}
    import pydicom
    for f in folder.iterdir():
        files[int(pydicom.dcmread(f, stop_before_pixels=True).InstanceNumber)] = f
    root = tmp_path / "dicom"
    if case == "gap":
        files[6].unlink()
        bad, reason = files[7], "gap in slice positions"
    elif case == "no pixels":
        bad, reason = folder / "np.dcm", "without pixel data"
        dicom_slice(np.zeros((64, 64)), position=(0, 0, 300), pixel_data=False).save_as(bad, enforce_file_format=True)
    elif case == "corrupt":
        bad, reason = folder / "c.dcm", "DICOM"
        bad.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff")
    elif case == "mixed":
        bad, reason = folder / "m.dcm", "mixed sizes"
        dicom_slice(np.zeros((32, 32)), position=(0, 0, 300)).save_as(bad, enforce_file_format=True)
    else:
        import nibabel as nib

        root = bad = tmp_path / "four.nii"
        nib.save(nib.Nifti1Image(np.zeros((64, 64, 5, 3), np.int16), np.eye(4)), bad)
        reason = "not a 3-D volume"
    _, errs = one_line_then_recorded(root, tmp_path / "o.csv", bad, reason)
    assert errs["path"].iloc[0].endswith(bad.name)


def test_plots_are_checked_before_work_and_written_only_when_every_series_succeeded(tmp_path):
    rng = np.random.default_rng(0)
    for patient in ("A", "B"):
        for i in range(4):
            write_image(tmp_path / "pts" / patient / f"IM{i}.tif",
                        rng.integers(0, 2000, (64, 64)).astype(np.uint16))
    bad = tmp_path / "pts" / "B" / "IM2.tif"
    bad.write_bytes(b"II*\0junk")
    plots, out = tmp_path / "plots", tmp_path / "s.csv"
    r = run("select", tmp_path / "pts", "-o", out, "--plot", plots)
    assert r.exit_code == 1 and "IM2.tif" in r.output
    assert not out.exists() and not list(plots.glob("*.png"))  # A's plot was not left behind
    write_image(bad, rng.integers(0, 2000, (64, 64)).astype(np.uint16), force=True)
    r = run("select", tmp_path / "pts", "-o", out, "--plot", plots)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in plots.glob("*.png")) == ["A_A.png", "B_B.png"]
    r = run("select", tmp_path / "pts", "-o", tmp_path / "other.csv", "--plot", plots)
    assert r.exit_code == 1 and "A_A.png: already exists" in r.output
    assert not (tmp_path / "other.csv").exists()


def test_value_scale_is_written_only_for_slices_read_as_hu_and_max_divided_slices_are_refused(tmp_path):
    import pydicom

    from covtool.synth.volumes import write_dicom_series

    vol = np.full((4, 64, 64), -1000.0)
    vol[:, 20:40, 10:50] = 40.0
    write_dicom_series(tmp_path / "ct" / "P1", vol)
    mr = write_dicom_series(tmp_path / "mr" / "P2", vol)
    for p in mr:  # the same pixels as MR: not HU, stored values kept, no scale claimed
        ds = pydicom.dcmread(p)
        ds.Modality = "MR"
        del ds.RescaleIntercept, ds.RescaleSlope
        ds.save_as(p)
    r = run("select", tmp_path / "ct", "-o", tmp_path / "ct.csv")
    assert r.exit_code == 0, r.output
    assert set(read_manifest(tmp_path / "ct.csv")["value_scale"]) == {"hu+1024"}
    r = run("select", tmp_path / "mr", "-o", tmp_path / "mr.csv")
    assert r.exit_code == 0, r.output
    assert "value_scale" not in read_manifest(tmp_path / "mr.csv").columns
    # a folder of slices divided by their maximum (COVID-CTset's training part): refused
    for i in range(3):
        img = np.random.default_rng(i).integers(0, 3000, (64, 64)).astype(np.float32)
        write_image(tmp_path / "unit" / "P3" / f"IM{i}.tif", img / img.max())
    r = run("select", tmp_path / "unit", "-o", tmp_path / "u.csv")
    assert r.exit_code == 1 and "IM0.tif: values in 0..1" in r.output and not (tmp_path / "u.csv").exists()


def test_an_unreadable_dicom_file_is_one_error_and_the_counts_are_the_rows(tmp_path):
    """Issue 16 review: with --skip-bad the good neighbour of an unreadable file also got a false
    gap error, and the summary counted one slice fewer than the manifest's rows."""
    volume_inputs(tmp_path)
    folder = tmp_path / "dicom" / "P1"
    bad = sorted(folder.iterdir())[4]
    bad.write_bytes(bad.read_bytes()[:400])
    out = tmp_path / "o.csv"
    r = run("select", tmp_path / "dicom", "-o", out, "--skip-bad")
    assert r.exit_code == 0, r.output
    df = read_manifest(out)
    errs = df[df["error"] != ""]
    assert errs["path"].tolist() == [str(bad)] and errs["error"].iloc[0].startswith(f"{bad}: truncated DICOM")
    text = " ".join(r.output.split())
    assert f"of {len(df)} slices selected in 1 series" in text and len(df) == 12
    assert "│ P1 │ 1 │ 12 │" in text


def test_two_nifti_files_of_one_stem_are_two_series_with_distinct_ids(tmp_path):
    from covtool.synth.volumes import chest_phantom, write_nifti

    vol = chest_phantom(6, 64, seed=5)
    write_nifti(tmp_path / "v" / "P001.nii", vol)
    write_nifti(tmp_path / "v" / "P001.nii.gz", vol)
    import nibabel as nib
    nib.save(nib.Nifti1Image(np.zeros((64, 64, 5, 3), np.int16), np.eye(4)), tmp_path / "v" / "fourd.nii")
    out = tmp_path / "o.csv"
    r = run("select", tmp_path / "v", "-o", out, "--skip-bad")
    assert r.exit_code == 0, r.output
    df = read_manifest(out)
    assert df["id"].is_unique and len(df) == 13
    assert sorted(set(zip(df["group"], df["series"]))) == [
        ("P001", "P001.nii"), ("P001", "P001.nii.gz"), ("fourd", "fourd")]
    assert "P001_P001.nii.gz_0000" in set(df["id"])
    bad = df[df["error"] != ""]
    assert bad["id"].tolist() == ["fourd_fourd_fourd.nii"] and bad["path"].iloc[0].endswith("fourd.nii")


def test_symlinked_patients_are_selected_and_finding_nothing_is_an_error(tmp_path):
    import os

    volume_inputs(tmp_path)
    links = tmp_path / "links"
    links.mkdir()
    os.symlink(tmp_path / "dicom" / "P1", links / "P1")
    out = tmp_path / "o.csv"
    r = run("select", links, "-o", out)
    assert r.exit_code == 0, r.output
    assert len(read_manifest(out)) == 12 and "of 12 slices selected in 1 series" in " ".join(r.output.split())
    (links / "P1").unlink()
    os.symlink(tmp_path / "gone", links / "P1")      # a dangling link: nothing to select
    r = run("select", links, "-o", tmp_path / "n.csv")
    assert r.exit_code == 1 and f"covtool: error: {links}: " in r.output and not (tmp_path / "n.csv").exists()


@pytest.mark.realdata
def test_covid_ct_md_from_its_dataset_root_is_patient_p001(tmp_path):
    from tests.conftest import shared_data

    root = shared_data("ct-dicom", "covid-ct-md")
    out = tmp_path / "x.csv"
    r = run("select", root, "-o", out)
    assert r.exit_code == 0, r.output
    df = read_manifest(out)
    assert set(df["group"]) == {"P001"} and set(df["series"]) == {"P001"} and len(df) == 148
    assert (df["selected"] == "true").sum() == 90
