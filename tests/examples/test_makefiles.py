"""The examples' Makefiles: the TEM one end to end on generated data, the others as dry runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")


def make(folder: str, out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = ["make", "-C", str(EXAMPLES / folder), f"OUT={out}", f"PYTHON={sys.executable}",
           f"COVTOOL={sys.executable} -m covtool --quiet", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def test_tem_end_to_end_prints_table2(tmp_path):
    out = tmp_path / "tem"
    # the Makefile's SMALL settings with fewer epochs: this checks the plumbing, not the scores
    fast = ["CUSTOM_ARGS=--model custom $(TINY) --epochs 2",
            "TRANSFER_ARGS=--model $(TRANSFER) --weights none $(TINY) --epochs 1"]
    r = make("tem", out, *fast)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.splitlines()
    head = lines.index(next(x for x in lines if x.startswith("TEM Table 2")))
    assert lines[head + 1].split() == ["model", "accuracy", "macro_precision", "macro_recall", "macro_f1"]
    rows = {x.split()[0]: x.split()[1:] for x in lines[head + 2:head + 5]}
    assert set(rows) == {"custom-representative", "mobilenetv2-representative", "custom-bad"}
    for name, cells in rows.items():
        metrics = json.loads((out / "eval" / name / "metrics.json").read_text())
        assert cells == [f"{metrics[k]:.3f}" for k in ("accuracy", "macro_precision",
                                                          "macro_recall", "macro_f1")]
        assert (out / "runs" / name / "model.keras").is_file()
    assert (out / "patches-representative.csv").is_file() and (out / "balanced-bad.csv").is_file()
    # incremental: nothing is redone
    assert "covtool" not in make("tem", out, "-n", "table", *fast).stdout


@pytest.mark.parametrize("folder,expected", [
    ("covid-ctset", ["select", "split", "--strategy kfold", "train", "eval", "patient-diagnose",
                     "--threshold 0 ", "--threshold 0.1 ", "explain"]),
    ("covid-ct", ["make_paper", "extract", "--caption-match", "--split-panels", "ingest covid-ct",
                  "train", "eval"]),
])
def test_dry_runs(tmp_path, folder, expected):
    r = make(folder, tmp_path / "out", "-n")
    assert r.returncode == 0, r.stderr
    for word in expected:
        assert word in r.stdout, word


def test_real_data_settings_dry_run(tmp_path):
    """With DATA the papers' settings are used (dry run: nothing is read)."""
    ct = make("covid-ct", tmp_path / "o", "-n", "DATA=/data/COVID-CT").stdout
    assert "--model densenet169 --head pooled --weights imagenet --input-size 480" in ct
    assert "ingest covid-ct /data/COVID-CT" in ct
    tem = make("tem", tmp_path / "o", "-n", "DATA=/data/tem").stdout
    assert "--per-class 736" in tem and "--epochs 300" in tem and "--model densenet201" in tem
    ctset = make("covid-ctset", tmp_path / "o", "-n", "DATA=/data/ctset").stdout
    assert "--model fpn" in ctset and "--folds 5" in ctset and "--listed-only" in ctset


def test_covid_ct_chest_crop_and_lesions_dry_run(tmp_path):
    """CROP=1 crops every row (the release's splits are all figures from papers;
    CROP_SPLITS=val,test is the paper's choice), LESIONS joins the masked slices; train and eval
    read the result (by default neither: the release's manifest, as before)."""
    out = tmp_path / "o"
    r = make("covid-ct", out, "-n", "DATA=/data/COVID-CT", "CROP=1", "LESIONS=/data/inf-net")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(f"ingest inf-net /data/inf-net -o {out}/lesions.csv" in x for x in lines)
    assert any(f"manifest merge {out}/images.csv {out}/lesions.csv -o {out}/combined.csv" in x
               for x in lines)
    crop = [x for x in lines if f"chest-crop {out}/combined.csv -d {out}/crops -o {out}/cropped.csv" in x]
    assert len(crop) == 1 and "--split" not in crop[0]
    paper = make("covid-ct", out, "-n", "DATA=/data/COVID-CT", "CROP=1", "CROP_SPLITS=val,test").stdout
    assert f"chest-crop {out}/images.csv -d {out}/crops -o {out}/cropped.csv --split val,test" in paper
    assert any(f"train {out}/cropped.csv" in x for x in lines)
    assert any(f"eval {out}/run {out}/cropped.csv" in x for x in lines)
    plain = make("covid-ct", out, "-n", "DATA=/data/COVID-CT").stdout
    assert "chest-crop" not in plain and "inf-net" not in plain and f"train {out}/images.csv" in plain


def _caption_regex(out: Path, *args: str):
    import re
    import shlex

    r = make("covid-ct", out, "-n", f"{out}/figures.csv", "PDFS=/data/pdfs", *args)
    assert r.returncode == 0, r.stderr
    words = shlex.split(next(x for x in r.stdout.splitlines() if " extract " in x))
    return re.compile(words[words.index("--caption-match") + 1])


def test_covid_ct_caption_filters_keep_ct_or_xray_captions_as_real_papers_write_them(tmp_path):
    """The recipe's CT regex keeps the ways the COVID-CT release's own captions name CT (as the
    preprints printed them), the X-ray one chest radiographs; neither keeps charts or diagrams."""
    ct = _caption_regex(tmp_path / "o")
    for caption in ["Figure 1. Transverse Chest Computed Tomographic Images.",
                    "Figure 4: Chest CTs of a asymptomatic patient, obtained on Feb 10",
                    "FIGURE 2, Different imaging features. A, Big patchy GGO in left lung.",
                    "Figure 3. HRCT of a 45-year-old woman", "Figure 2 Chest CT scan on day 5"]:
        assert ct.search(caption), caption
    xray = _caption_regex(tmp_path / "o", "MODALITY=xray")
    for caption in ["Figure 1. Chest radiographs of patient 1.", "Fig. 2 Portable chest X-ray",
                    "Figure 3. CXR on admission"]:
        assert xray.search(caption) and not ct.search(caption), caption
    for caption in ["Fig. 11 AUC and Accuracy performance gains from ConVIRT",
                    "Figure 1 Patient flow pattern at the medical department, June 2010.",
                    "Fig. 4 CO-Search System Architecture", "Figure 2. Contract types per sector"]:
        assert not ct.search(caption) and not xray.search(caption), caption
