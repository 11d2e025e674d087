"""Benchmark of ``covtool extract``: figure–caption pairing quality and speed.

Quality: precision and recall of figure–caption pairs, on generated papers (truth from
covtool.synth.pdf: page, number, caption text and figure box, IoU >= 0.8) and, when
../shared/data/pdfs exists, on the three real papers (truth counted by a person: page, number and
caption start; their supplementary "Figure S1/S2" are not in that count and are reported apart).
Goal: >= 0.95 both.

Speed: pages per second of covtool extract (captions, figures, pairing, writing the images) next
to poppler's ``pdfimages -list`` (listing the images only) on the same PDFs in the same run, the
runs taking turns so that both see the same machine; the best of ``--repeat`` runs each. Goal:
covtool extract within 2x the time of ``pdfimages -list``; the verdict is printed. covtool runs
as the command does in one process; its CPU time is printed beside it. Also printed, to show
where the time goes: covtool's reading and caption work alone (no image written), the
floor of PyMuPDF itself (opening the PDF and one "dict" text extraction per page, nothing else),
``pdfimages -all`` (writing every image) and ``--jobs 2``.

    python benchmarks/bench_extract.py [--papers 12] [--repeat 5] [--install-poppler]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from covtool.pdf.layout import iou  # noqa: E402
from covtool.pdf.pipeline import ExtractOptions  # noqa: E402
from covtool.synth.pdf import write_pdf_set  # noqa: E402


def real_data_dir() -> Path | None:
    for base in (ROOT.parent, ROOT.parent.parent):
        p = base / "shared" / "data" / "pdfs"
        if (p / "expected.json").exists():
            return p
    return None


def parse_box(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(","))


def score(pred: list[tuple], truth: list[tuple], match) -> tuple[int, int, int]:
    """(true positives, predictions, truths) with one-to-one matching."""
    used: set[int] = set()
    tp = 0
    for p in pred:
        for i, t in enumerate(truth):
            if i not in used and match(p, t):
                used.add(i)
                tp += 1
                break
    return tp, len(pred), len(truth)


def pr(tp: int, npred: int, ntruth: int) -> str:
    p = tp / npred if npred else 1.0
    r = tp / ntruth if ntruth else 1.0
    return f"precision {p:.3f} ({tp}/{npred})  recall {r:.3f} ({tp}/{ntruth})"


def run_covtool(pdfs: list[Path], out: Path, split_panels: bool = False, jobs: int = 1
                ) -> tuple[float, dict]:
    """``covtool extract`` in one process, as the command runs it (the PDFs as its inputs, its
    stage run by the stage runner, ``--skip-bad``); wall time, and per PDF name its rows and
    pages."""
    from types import SimpleNamespace

    from covtool.core.stage import run_stage
    from covtool.pdf.stage import ExtractStage, collect_pdfs

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    stage = ExtractStage(out, ExtractOptions(split_panels=split_panels))
    result = run_stage(stage, collect_pdfs([str(p) for p in pdfs]), skip_bad=True, jobs=jobs)
    elapsed = time.perf_counter() - t0
    by_name = {Path(n.source).name: SimpleNamespace(rows=[], pages=n.pages) for n in result.notes if n}
    for r in result.rows:
        if not r.get("error"):
            by_name[Path(r["source"]).name].rows.append(r)
    return elapsed, by_name


def run_covtool_jobs(pdfs: list[Path], out: Path, jobs: int) -> float:
    return run_covtool(pdfs, out, jobs=jobs)[0]


def run_analyze(pdfs: list[Path]) -> float:
    """covtool's reading and caption/figure/pairing work, no image written."""
    from covtool.pdf import document
    from covtool.pdf.pipeline import analyze, read_small

    t0 = time.perf_counter()
    for p in pdfs:
        doc = document.open_pdf(p, read_small(p))      # as extract_pdf opens it
        recordings: dict = {}
        _, pages = analyze(doc, ExtractOptions(), recordings)
        document.doc_title_doi(doc, pages)
        doc.close()
    return time.perf_counter() - t0


def run_floor(pdfs: list[Path]) -> float:
    """PyMuPDF's own floor for reading captions: open, run each page once, "dict" text."""
    import pymupdf

    t0 = time.perf_counter()
    for p in pdfs:
        doc = pymupdf.open(p)
        for page in doc:
            page.get_text("dict", flags=0)
        doc.close()
    return time.perf_counter() - t0


def run_pdfimages(pdfs: list[Path], mode: str, out: Path) -> float:
    exe = shutil.which("pdfimages")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    for k, p in enumerate(pdfs):
        args = [exe, "-list", str(p)] if mode == "list" else [exe, "-all", str(p), str(out / f"d{k}")]
        subprocess.run(args, check=True, capture_output=True)
    return time.perf_counter() - t0


def find_pdfimages(install: bool) -> bool:
    """True when poppler's pdfimages is on PATH (installed first with ``install``, as root)."""
    if shutil.which("pdfimages") is None and install:
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "poppler-utils"]):
            subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL)
    return shutil.which("pdfimages") is not None


def speed(label: str, pdfs: list[Path], tmp: Path, repeat: int, baseline: bool) -> None:
    """Print pages/s of covtool extract and the others, runs taking turns; best of ``repeat``."""
    runs: dict[str, list[float]] = {}
    pages = 0
    for _ in range(repeat):
        if baseline:
            runs.setdefault("list", []).append(run_pdfimages(pdfs, "list", tmp / "pi"))
        c0 = time.process_time()
        t, results = run_covtool(pdfs, tmp / "out_t")
        runs.setdefault("covtool", []).append(t)
        runs.setdefault("cpu", []).append(time.process_time() - c0)
        pages = pages_of(results)
        runs.setdefault("analyze", []).append(run_analyze(pdfs))
        runs.setdefault("floor", []).append(run_floor(pdfs))
    if baseline:
        runs["all"] = [run_pdfimages(pdfs, "all", tmp / "pi") for _ in range(repeat)]
    runs["jobs"] = [run_covtool_jobs(pdfs, tmp / "out_j", 2) for _ in range(repeat)]
    best = {k: min(v) for k, v in runs.items()}
    base = best.get("list")

    def line(name: str, key: str, note: str = "") -> None:
        ratio = f"{best[key] / base:5.2f}x the time of pdfimages -list" if base else ""
        print(f"    {name:38s} {pages / best[key]:7.1f} pages/s  {ratio}{note}")

    print(f"  {label}: {len(pdfs)} PDFs, {pages} pages")
    if base:
        print(f"    {'pdfimages -list':38s} {pages / base:7.1f} pages/s  (the baseline: lists the images)")
    verdict = ""
    if base:
        met = best["covtool"] <= 2 * base
        verdict = f"  -> goal (within 2x): {'met' if met else 'NOT met'}"
    line("covtool extract", "covtool", verdict)
    line("  its CPU time", "cpu", "  (CPU seconds, not wall)")
    line("  of which reading and captions", "analyze", "  (no image written)")
    line("PyMuPDF floor: open + dict text", "floor", "  (one get_text('dict') a page)")
    if base:
        line("pdfimages -all", "all", "  (writes every image)")
    line("covtool extract --jobs 2", "jobs", "  (pool start-up included)")


def pages_of(results: dict) -> int:
    return sum(r.pages for r in results.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--papers", type=int, default=12, help="generated papers (3 pages each)")
    ap.add_argument("--repeat", type=int, default=5, help="timing repeats (best is reported)")
    ap.add_argument("--install-poppler", action="store_true",
                    help="apt-get install poppler-utils when pdfimages is missing (needs root)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    try:
        synth_dir = tmp / "synth"
        truth = write_pdf_set(synth_dir, n=args.papers, seed=100)
        synth = sorted(synth_dir.glob("*.pdf"))
        print(f"== quality: {len(synth)} generated papers")
        _, results = run_covtool(synth, tmp / "out")
        pred, gold = [], []
        for name, res in results.items():
            pred += [(name, int(r["page"]), r["figure"], r["caption"], parse_box(r["bbox"]))
                     for r in res.rows if r["figure"]]
            gold += [(name, t.page, t.name, t.caption, t.bbox) for t in truth[name]]
        tp, n_pred, n_gold = score(pred, gold, lambda p, t: p[:4] == t[:4] and iou(p[4], t[4]) >= 0.8)
        print(f"  figure-caption pairs (page, number, caption text, box IoU >= 0.8): {pr(tp, n_pred, n_gold)}")
        _, results_p = run_covtool(synth, tmp / "out_p", split_panels=True)
        ok = 0
        for name, res in results_p.items():
            for t in truth[name]:
                n = sum(1 for r in res.rows if r["figure"] == t.name and int(r["page"]) == t.page)
                ok += n == t.panels
        print(f"  --split-panels: panel count right for {ok}/{n_gold} figures")

        real = real_data_dir()
        real_pdfs: list[Path] = []
        if real is None:
            print("== quality: real papers skipped (../shared/data/pdfs is absent)")
        else:
            expected = json.loads((real / "expected.json").read_text())
            real_pdfs = [real / n for n in sorted(expected)]
            print(f"== quality: {len(real_pdfs)} real papers ({real})")
            _, results = run_covtool(real_pdfs, tmp / "out_real")
            pred, gold, supp = [], [], 0
            for name, res in results.items():
                for r in res.rows:
                    if not r["figure"]:
                        continue
                    if r["figure"].startswith("S") and not any(f["name"].startswith("S") for f in expected[name]["figures"]):
                        supp += 1       # supplementary figures are not in the person's count
                        continue
                    pred.append((name, int(r["page"]), r["figure"], r["caption"]))
                gold += [(name, f["page"], f["name"], f["caption_start"]) for f in expected[name]["figures"]]
            tp, n_pred, n_gold = score(pred, gold, lambda p, t: p[:3] == t[:3] and p[3].startswith(t[3]))
            print(f"  figure-caption pairs (page, number, caption start): {pr(tp, n_pred, n_gold)}")
            print(f"  supplementary figures found as well (not in expected.json): {supp}")
            _, results_p = run_covtool(real_pdfs, tmp / "out_real_p", split_panels=True)
            ok = n = 0
            for name, res in results_p.items():
                for f in expected[name]["figures"]:
                    got = sum(1 for r in res.rows if r["figure"] == f["name"] and int(r["page"]) == f["page"])
                    ok += got == f["panels"]
                    n += 1
            print(f"  --split-panels: panel count right for {ok}/{n} figures (gutter cuts over-split diagrams)")

        baseline = find_pdfimages(args.install_poppler)
        print(f"== speed (pages/s, best of {args.repeat}; one process; goal: covtool extract within "
              "2x the time of pdfimages -list)")
        if not baseline:
            print("  pdfimages not found, no baseline: install poppler-utils "
                  "(apt-get install -y poppler-utils, or run this with --install-poppler as root)")
        for label, pdfs in (("generated", synth), ("real", real_pdfs)):
            if pdfs:
                speed(label, pdfs, tmp, args.repeat, baseline)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
