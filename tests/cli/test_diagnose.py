from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from covtool.cli.app import app
from covtool.core.imageio import write_image
from covtool.core.manifest import read_manifest
from tests.conftest import covtool_cmd, covtool_env

runner = CliRunner()


def test_patient_diagnose_end_to_end(ct_patients, ct_run, tmp_path):
    root, truth = ct_patients
    out, slices, sweep, metrics = (tmp_path / n for n in ("p.csv", "s.csv", "sweep.csv", "m.json"))
    r = runner.invoke(app, ["patient-diagnose", str(root), "--run", str(ct_run), "-o", str(out),
                            "--slices", str(slices), "--labels", str(root / "patients.csv"),
                            "--sweep", str(sweep), "--metrics", str(metrics), "--threshold", "0.1"])
    assert r.exit_code == 0, r.output
    p = read_manifest(out)
    assert p["group"].tolist() == ["patient001", "patient002", "patient003"]
    for col in ("group", "slices", "selected", "positive", "fraction", "decision", "score", "seconds"):
        assert col in p.columns
    s = read_manifest(slices)
    assert len(s) == len(truth)
    for g, row in p.set_index("group").iterrows():
        sg = s[s.group == g]
        assert int(row["slices"]) == len(sg)
        assert int(row["selected"]) == (sg.selected == "true").sum()
        sel = sg[sg.selected == "true"]
        n_pos = (sel.pred == "covid").sum()
        assert int(row["positive"]) == n_pos
        # the paper's 0.1 rule, recomputed from the per-slice table
        expected = "covid" if n_pos > 0 and n_pos >= 0.1 * len(sel) else "normal"
        assert row["decision"] == expected
        probs = sel[["prob_covid", "prob_normal"]].astype(float).to_numpy()
        assert np.allclose(probs.sum(axis=1), 1, atol=1e-4)
        assert (sg.loc[sg.selected == "false", "pred"] == "").all()
    m = json.loads(metrics.read_text())
    assert m["patients"] == 3 and m["threshold"] == {"rule": "fraction", "value": 0.1}
    ev = m["evaluation"]
    assert ev["correct"] + ev["wrong"] + ev["undetermined"] == 3
    sw = pd.read_csv(sweep)
    assert {"rule", "threshold", "correct", "wrong"} <= set(sw.columns) and len(sw) >= 11
    assert "Tables 5/6" in r.output


def test_threshold_changes_the_decision(ct_patients, ct_run, tmp_path):
    root, _ = ct_patients
    out0, out_hi = tmp_path / "a.csv", tmp_path / "b.csv"
    assert runner.invoke(app, ["patient-diagnose", str(root), "--run", str(ct_run), "-o", str(out0), "--threshold", "0"]).exit_code == 0
    assert runner.invoke(app, ["patient-diagnose", str(root), "--run", str(ct_run), "-o", str(out_hi), "--threshold", "1000"]).exit_code == 0
    a, b = read_manifest(out0), read_manifest(out_hi)
    assert (a["decision"] == np.where(a["positive"].astype(int) > 0, "covid", "normal")).all()
    assert (b["decision"] == "normal").all()


def test_no_selected_slice_is_undetermined_and_bad_slices(ct_run, tmp_path):
    pats = tmp_path / "pats"
    for k in range(3):
        write_image(pats / "P1" / "S" / f"IM{k}.tif", np.full((64, 64), 1000, np.uint16))
    (pats / "P2" / "S").mkdir(parents=True)
    write_image(pats / "P2" / "S" / "IM0.tif", np.zeros((64, 64), np.uint16))
    (pats / "P2" / "S" / "IM1.tif").write_bytes(b"II*\x00broken")
    out = tmp_path / "o.csv"
    r = runner.invoke(app, ["patient-diagnose", str(pats), "--run", str(ct_run), "-o", str(out)])
    assert r.exit_code == 1 and f"{pats / 'P2' / 'S' / 'IM1.tif'}: unreadable TIFF" in r.output
    assert not out.exists()
    r = runner.invoke(app, ["patient-diagnose", str(pats), "--run", str(ct_run), "-o", str(out), "--skip-bad"])
    assert r.exit_code == 0, r.output
    p = read_manifest(out).set_index("group")
    assert p.at["P1", "decision"] == "undetermined" and p.at["P1", "selected"] == "0"
    # P2 is diagnosed from 1 of its 2 slices: its row and stderr say so
    assert p["failed_slices"].to_dict() == {"P1": "0", "P2": "1"} and p.at["P2", "error"] == ""
    assert list(p.columns[-3:]) == ["infer_seconds", "failed_slices", "error"]
    assert (f"warning: patient P2: diagnosed from incomplete data, 1 of 2 slices failed (first "
            f"{pats / 'P2' / 'S' / 'IM1.tif'}: unreadable TIFF") in " ".join(r.output.split())


def test_run_and_class_errors(ct_patients, ct_run, tmp_path):
    root, _ = ct_patients
    r = runner.invoke(app, ["patient-diagnose", str(root), "--run", str(tmp_path), "-o", str(tmp_path / "o.csv")])
    assert r.exit_code == 1 and "not a run folder" in r.output
    r = runner.invoke(app, ["patient-diagnose", str(root), "--run", str(ct_run), "-o", str(tmp_path / "o.csv"),
                            "--positive-class", "flu"])
    assert r.exit_code == 2 and "not one of the model's classes (covid, normal)" in r.output  # usage
    assert "--positive-class: 'flu'" in r.output


def test_explain_writes_overlays(ct_patients, ct_run, tmp_path):
    root, truth = ct_patients
    out = tmp_path / "cams"
    r = runner.invoke(app, ["explain", str(ct_run), str(root / "truth.csv"), "-d", str(out), "--limit", "3", "--npy"])
    assert r.exit_code == 0, r.output
    m = read_manifest(out / "explain.csv")
    assert len(m) == 3 and (m["label"].isin(["covid", "normal"])).all()
    heat = np.load(m["heatmap"].iloc[0])
    assert heat.shape == (32, 32) and 0 <= heat.min() and heat.max() <= 1
    from covtool.core.imageio import read_image
    png = read_image(m["path"].iloc[0])
    assert png.shape == (32, 32, 3) and png.dtype == np.uint8
    # the input rows' other columns are carried (the stage runner's rule)
    t = read_manifest(root / "truth.csv").iloc[:3]
    assert m["group"].tolist() == t["group"].tolist() and m["source"].tolist() == t["path"].tolist()
    # a class the model lacks and an existing output stop before any work
    r = runner.invoke(app, ["explain", str(ct_run), str(root / "truth.csv"), "-d", str(tmp_path / "c2"),
                            "--class", "flu"])
    assert r.exit_code == 2 and "--class: 'flu' is not one of the model's classes" in r.output
    for layer, says in (("bogus", "--layer: no layer named 'bogus'"), ("head_dense1", "has a 2-D output")):
        r = runner.invoke(app, ["explain", str(ct_run), str(root / "truth.csv"), "-d", str(tmp_path / "c3"),
                                "--layer", layer])
        assert r.exit_code == 2 and says in r.output and not (tmp_path / "c3").exists(), r.output
    before = sorted(p.name for p in out.iterdir())
    r = runner.invoke(app, ["explain", str(ct_run), str(root / "truth.csv"), "-d", str(out), "--limit", "4"])
    assert r.exit_code == 1 and "already exists" in r.output
    assert sorted(p.name for p in out.iterdir()) == before


def test_subprocess_pipe(ct_patients, ct_run, tmp_path):
    root, _ = ct_patients
    cmd = (subprocess.list2cmdline(covtool_cmd("--quiet", "select", str(root), "-o", "-"))
           + " | " + subprocess.list2cmdline(covtool_cmd("--quiet", "patient-diagnose", "-", "--run", str(ct_run), "-o", "-")))
    proc = subprocess.run(cmd, shell=True, env=covtool_env(), capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no TensorFlow chatter
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("group,slices,selected,positive,fraction") and len(lines) == 4


def test_explain_shards_cover_the_rows_once(ct_patients, ct_run, tmp_path):
    root, _ = ct_patients
    ids = []
    for k in range(2):
        out = tmp_path / f"cams{k}"
        r = runner.invoke(app, ["explain", str(ct_run), str(root / "truth.csv"), "-d", str(out),
                                "--limit", "5", "--shard", f"{k}/2"])
        assert r.exit_code == 0, r.output
        ids += read_manifest(out / "explain.csv")["id"].tolist()
    assert sorted(ids) == sorted(read_manifest(root / "truth.csv")["id"].iloc[:5])


def test_dicom_and_nifti_patients_reach_the_classifier_as_tiffs_do(ct_patients, ct_run, tmp_path):
    """One generated patient as its TIFF slices, as a DICOM series (signed HU, intercept 0,
    shuffled names without suffix) and as a NIfTI volume: the same slices are selected and the
    classifier gives them the same probabilities (it sees HU + 1024, as in training)."""
    from covtool.core.imageio import read_image
    from covtool.synth.volumes import write_dicom_series, write_nifti

    root, _ = ct_patients
    tiffs = sorted((root / "patient001").rglob("*.tif"))
    from covtool.core.naming import natural_key
    tiffs.sort(key=lambda p: natural_key(p.name))
    hu = np.stack([read_image(p) for p in tiffs]).astype(np.float64) - 1024
    k = len(tiffs)
    names = [f"img{n}" for n in np.random.default_rng(0).permutation(k)]
    write_dicom_series(tmp_path / "dicom" / "patient001", hu, names=names, signed=True, intercept=0.0)
    write_nifti(tmp_path / "nifti" / "patient001.nii.gz", hu, layout="RAS")
    tif_root = tmp_path / "tiff" / "patient001"
    tif_root.mkdir(parents=True)
    for p in tiffs:
        (tif_root / p.name).symlink_to(p)
    outs = {}
    for kind, arg in (("tiff", tmp_path / "tiff"), ("dicom", tmp_path / "dicom"),
                      ("nifti", tmp_path / "nifti" / "patient001.nii.gz")):
        s = tmp_path / f"{kind}-slices.csv"
        r = runner.invoke(app, ["patient-diagnose", str(arg), "--run", str(ct_run), "-o",
                                str(tmp_path / f"{kind}.csv"), "--slices", str(s)])
        assert r.exit_code == 0, r.output
        outs[kind] = (read_manifest(tmp_path / f"{kind}.csv"), read_manifest(s))
    (pt, st) = outs["tiff"]
    assert int(pt["selected"].iloc[0]) > 0
    for kind in ("dicom", "nifti"):
        p, s = outs[kind]
        assert p["group"].tolist() == ["patient001"]
        assert p[["slices", "selected", "positive", "decision"]].equals(pt[["slices", "selected", "positive", "decision"]])
        assert s["selected"].tolist() == st["selected"].tolist()
        sel = s["selected"] == "true"
        assert np.allclose(s.loc[sel, "prob_covid"].astype(float), st.loc[sel, "prob_covid"].astype(float), atol=1e-6)
    n = outs["nifti"][1]
    assert n["slice_index"].tolist() == [str(i) for i in range(k)]
    assert not any((tmp_path / "nifti").glob("*.tif"))


def test_value_scale_mismatch_is_refused_or_converted_exactly(ct_patients, tmp_path):
    """A run trained on per-image-max slices (COVID-CTset's training part) given stored slices:
    refused, or with --convert-scale fed each slice divided by its maximum, which gives exactly
    the probabilities of the max-divided files themselves."""
    from covtool.core.imageio import read_image
    from covtool.core.scale import per_image_max
    from covtool.evaluation.predict import load_run, predict_probs

    root, truth = ct_patients
    unit = []
    for rec in truth.itertuples():
        dest = tmp_path / "unit" / f"{rec.id}.tif"
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_image(dest, per_image_max(read_image(rec.path)))
        unit.append(str(dest))
    t = truth.assign(path=unit, value_scale="per-image-max",
                     split=["train" if g != "patient003" else "val" for g in truth["group"]])
    t.to_csv(tmp_path / "unit.csv", index=False)
    run = tmp_path / "run"
    r = runner.invoke(app, [
        "train", str(tmp_path / "unit.csv"), "-r", str(run), "--model", "custom", "--input-size", "32",
        "--filters", "4,4,8,8", "--final-filters", "4", "--head-units", "8,8", "--dropout", "0",
        "--block-dropout", "0", "--optimizer", "adam", "--lr", "3e-3", "--batch-size", "16",
        "--epochs", "1", "--normalize", "none"])
    assert r.exit_code == 0, r.output
    assert json.loads((run / "config.json").read_text())["data_scale"] == "per-image-max"
    out, slices = tmp_path / "p.csv", tmp_path / "s.csv"
    r = runner.invoke(app, ["patient-diagnose", str(root), "--run", str(run), "-o", str(out)])
    assert r.exit_code == 1 and not out.exists()
    assert "trained on 'per-image-max' values but these slices are 'hu+1024'" in r.output
    assert "--convert-scale" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["patient-diagnose", str(root), "--run", str(run), "-o", str(out),
                            "--slices", str(slices), "--convert-scale"])
    assert r.exit_code == 0, r.output
    s = read_manifest(slices)
    sel = s[s["selected"] == "true"].merge(truth[["id"]].assign(unit=unit), on="id")
    assert len(sel) > 0
    cfg, model = load_run(run)
    probs, _ = predict_probs(model, cfg, pd.DataFrame({"path": sel["unit"]}), require_label=False)
    k = cfg.classes.index("covid")
    assert np.allclose(sel["prob_covid"].astype(float), probs[:, k], atol=1e-5)
    # slices divided by their maximum cannot be selected (the dark level is on stored values)
    r = runner.invoke(app, ["select", str(tmp_path / "unit.csv"), "-o", str(tmp_path / "sel.csv")])
    assert r.exit_code == 1 and "dark-pixel selection needs stored values" in r.output


def test_usage_and_input_errors_come_before_tensorflow_starts(ct_patients, tmp_path):
    """Outputs that exist, a missing run, missing labels for --sweep: named at once, before the
    seconds of TensorFlow's start-up (a stand-in tensorflow that refuses to import proves it)."""
    import os

    root, _ = ct_patients
    fake = tmp_path / "fake"
    (fake / "tensorflow").mkdir(parents=True)
    (fake / "tensorflow" / "__init__.py").write_text("raise ImportError('tensorflow was imported')\n")
    env = covtool_env()
    env["PYTHONPATH"] = str(fake) + os.pathsep + env["PYTHONPATH"]
    (tmp_path / "exists.csv").write_text("x\n")

    def run_cli(*args):
        r = subprocess.run(covtool_cmd(*map(str, args)), env=env, capture_output=True, text=True,
                           timeout=120)
        assert "tensorflow was imported" not in r.stderr and "Traceback" not in r.stderr, r.stderr
        return r

    r = run_cli("patient-diagnose", root, "--run", tmp_path / "nosuch", "-o", tmp_path / "o.csv")
    assert r.returncode == 1 and "nosuch: no such run folder" in r.stderr
    r = run_cli("patient-diagnose", root, "--run", tmp_path, "-o", tmp_path / "exists.csv")
    assert r.returncode == 1 and "exists.csv: already exists" in r.stderr
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    r = run_cli("patient-diagnose", root, "--run", tmp_path / "run", "-o", tmp_path / "o.csv",
                "--sweep", tmp_path / "sweep.csv", "--slices", tmp_path / "s.csv",
                "--metrics", tmp_path / "m.json")
    assert r.returncode == 2 and "--sweep: needs patient labels" in r.stderr   # usage, exit 2
    assert not [p.name for p in tmp_path.iterdir() if p.suffix in (".csv", ".json") and p.name != "exists.csv"]
    r = run_cli("eval", tmp_path / "nosuch", tmp_path / "exists.csv", "-d", tmp_path / "ev")
    assert r.returncode == 1 and "no such run folder" in r.stderr


def test_slice_ids_are_select_s_for_files_sharing_a_stem(tmp_path):
    """patient-diagnose's --slices ids come from the same function as select's: two files of a
    series sharing a stem (a.tif, a.png) get their whole names there too (issue 16 review)."""
    from covtool.ct.pipeline import result_rows, select_series
    from covtool.ct.series import find_series
    from covtool.ct.system import PatientResult, slice_rows

    rng = np.random.default_rng(0)
    for name in ("a.tif", "a.png", "b.tif"):
        write_image(tmp_path / "P1" / name, rng.integers(0, 2000, (64, 64)).astype(np.uint16))
    [s] = find_series(tmp_path)
    sr = select_series(s)
    selected = [sl for sl in sr.slices if sl.selected]
    r = PatientResult("P1", [sr], np.full((len(selected), 2), 0.5), [sl.path for sl in selected], selected)
    ids = [row["id"] for row in slice_rows(r, ["covid", "normal"])]
    assert ids == [row["id"] for row in result_rows(sr)]
    assert sorted(ids) == ["P1_P1_a.png", "P1_P1_a.tif", "P1_P1_b"]
