"""Benchmark of ``covtool extract``: figure–caption pairing quality and speed, beside a layout peer.

Sets: generated papers (covtool.synth.pdf: truth holds page, number, caption text and figure box),
every real set that exists among ../shared/data/pdfs and ../shared/data/pdfs-dev, and each
``--set DIR``: a folder of PDFs with an expected.json of the same shape (per PDF name its
"figures", each with page (1-based), name, caption_start and panels), so that other sets plug in.

Quality: a prediction is a figure–caption pair (page, figure number, caption). Every row covtool
writes is one, the rows without a caption (uncaptioned images, empty ``figure``) too: they never
match, and they are counted apart as well. A pair is right when its page and number are those of
an expected figure and its caption starts with that figure's caption_start (both sides NFKC,
whitespace collapsed), one pair per expected figure; on generated papers the caption is the whole
truth caption and the figure box must overlap the truth's (IoU >= 0.8). A paper's supplementary
figures ("S1") are reported apart and not counted when its expected.json lists no S figure. Per
real paper: figures expected, covtool's right pairs / predictions, and the peer's; per set:
precision and recall of both, and the panel accuracy of ``--split-panels`` (its rows per page and
figure equal to the expected ``panels``) over the expected figures and over those covtool paired.
Goal: precision and recall >= 0.95.

The peer: pymupdf4llm's layout analysis (``pymupdf4llm.to_json``, PyMuPDF's layout ONNX model,
offline; not run when pymupdf4llm is not installed, or with ``--no-peer``). It counts a figure for
each ``caption`` box whose text begins with "Fig" on a page that has a ``picture`` box; its pair is
(page, the number read by covtool's match_caption_start, the caption box's text).

Speed: pages per second of covtool extract (captions, figures, pairing, writing the images) next
to poppler's ``pdfimages -list`` (listing the images only) on the same PDFs in the same run, the
runs taking turns so that both see the same machine; the best of ``--repeat`` runs each. Goal:
covtool extract within 2x the time of ``pdfimages -list``. On real sets the peer takes its turn
in the first ``--peer-repeat`` rounds (it is slow; best of those), after one untimed warm-up on a
generated paper; its CPU use (CPU seconds over wall seconds: ONNX Runtime runs threads) is
printed. Goal: covtool's pages/s >= 30x the peer's. covtool runs through the stage runner as the
command does, with the command's default workers (``default_jobs()``: the usable CPUs, at most 8)
and in one process (``--jobs 1``, its CPU time beside it), and as the command in a new process
(start-up and imports included); the verdicts of both goals are printed for the first two. Also
printed, to show where the time goes: covtool's reading and caption work alone (no image
written), the floor of PyMuPDF itself (opening the PDF and one "dict" text extraction per page,
nothing else) and ``pdfimages -all`` (writing every image).

    python benchmarks/bench_extract.py [--papers 12] [--repeat 5] [--set DIR ...]
        [--peer-repeat 1] [--no-peer] [--install-poppler]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from covtool.pdf.captions import match_caption_start  # noqa: E402
from covtool.pdf.layout import iou  # noqa: E402
from covtool.pdf.pipeline import ExtractOptions  # noqa: E402
from covtool.synth.pdf import write_pdf_set  # noqa: E402

REAL_SETS = ("pdfs", "pdfs-dev")
QUALITY_GOAL = 0.95
PDFIMAGES_GOAL = 2.0      # covtool's time at most this many times pdfimages -list's
PEER_GOAL = 30.0          # covtool's pages/s at least this many times the peer's


class Expected(NamedTuple):
    """One figure a paper should yield; ``bbox`` (points) only where the truth has one."""

    page: int
    name: str
    caption_start: str
    panels: int
    bbox: tuple[float, ...] | None = None


class Pair(NamedTuple):
    """One prediction: page (1-based), figure number ("" when none), caption text, box."""

    page: int
    name: str
    caption: str
    bbox: tuple[float, ...] | None = None


@dataclass
class PaperScore:
    """The pairs of one paper (or a set, summed) scored against its expected figures."""

    expected: int = 0
    right: int = 0
    predictions: int = 0
    uncaptioned: int = 0
    supplementary: int = 0
    paired: set[int] = field(default_factory=set)     # indices of the expected figures matched

    def add(self, other: PaperScore) -> None:
        self.expected += other.expected
        self.right += other.right
        self.predictions += other.predictions
        self.uncaptioned += other.uncaptioned
        self.supplementary += other.supplementary


def normalise(text: str) -> str:
    """NFKC, whitespace runs collapsed to one space, ends stripped."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def parse_box(text: str) -> tuple[float, ...] | None:
    return tuple(float(v) for v in text.split(",")) if text else None


def pair_matches(p: Pair, t: Expected) -> bool:
    if (p.page, p.name) != (t.page, t.name) or not p.name:
        return False
    if not normalise(p.caption).startswith(normalise(t.caption_start)):
        return False
    return t.bbox is None or (p.bbox is not None and iou(p.bbox, t.bbox) >= 0.8)


def score_pairs(pairs: list[Pair], expected: list[Expected]) -> PaperScore:
    """Right pairs (one-to-one, first come first matched), predictions, and those set apart.

    A pair without a number is a prediction that never matches; a supplementary pair ("S1") is
    set apart, not counted, when ``expected`` lists no supplementary figure.
    """
    lists_supp = any(t.name.startswith("S") for t in expected)
    s = PaperScore(expected=len(expected))
    for p in pairs:
        if p.name.startswith("S") and not lists_supp:
            s.supplementary += 1
            continue
        s.predictions += 1
        s.uncaptioned += not p.caption
        for i, t in enumerate(expected):
            if i not in s.paired and pair_matches(p, t):
                s.paired.add(i)
                s.right += 1
                break
    return s


def covtool_pairs(rows: list[dict]) -> list[Pair]:
    """Every row covtool wrote as a pair; a row with an empty ``figure`` has no caption."""
    return [Pair(int(r["page"]), r["figure"], r["caption"] if r["figure"] else "",
                 parse_box(r.get("bbox", "")))
            for r in rows]


def panel_hits(rows: list[dict], expected: list[Expected]) -> list[bool]:
    """Per expected figure: do the ``--split-panels`` rows of its page and number count its panels?"""
    return [sum(1 for r in rows if r["figure"] == t.name and int(r["page"]) == t.page) == t.panels
            for t in expected]


def box_text(box: dict) -> str:
    """The text of one layout box of pymupdf4llm's JSON: spans of a line joined (a space where
    they stand apart), lines joined by spaces, then normalised."""
    lines = []
    for line in box["textlines"]:
        text, right = "", None
        for span in line["spans"]:
            if right is not None and span["bbox"][0] - right > 0.15 * span["size"]:
                text += " "
            text += span["text"]
            right = span["bbox"][2]
        lines.append(text)
    return normalise(" ".join(lines))


def peer_pairs(doc: dict) -> list[Pair]:
    """The peer's figures in pymupdf4llm's JSON (``pages`` -> ``boxes`` with ``boxclass``): a
    ``caption`` box beginning with "Fig" on a page that has a ``picture`` box."""
    pairs = []
    for page in doc["pages"]:
        boxes = page["boxes"]
        if not any(b["boxclass"] == "picture" for b in boxes):
            continue
        for b in boxes:
            if b["boxclass"] != "caption":
                continue
            text = box_text(b)
            if not text.lower().startswith("fig"):
                continue
            m = match_caption_start(text)
            pairs.append(Pair(page["page_number"], m[1] if m else "", text,
                              (b["x0"], b["y0"], b["x1"], b["y1"])))
    return pairs


def load_expected(folder: Path) -> tuple[dict[str, list[Expected]], list[str]]:
    """Expected figures by PDF name for the PDFs of ``folder``'s expected.json that are there,
    and the names it lists that are missing."""
    listed = json.loads((folder / "expected.json").read_text())
    present = {n: v for n, v in sorted(listed.items()) if (folder / n).is_file()}
    expected = {n: [Expected(int(f["page"]), str(f["name"]), f["caption_start"], int(f["panels"]))
                    for f in v.get("figures", [])]
                for n, v in present.items()}
    return expected, sorted(set(listed) - set(present))


def real_set_dirs(extra: list[str]) -> list[Path]:
    """The real sets beside the repository (as shared/ is laid out) and those given by ``--set``."""
    found: list[Path] = []
    for name in REAL_SETS:
        for base in (ROOT.parent, ROOT.parent.parent):
            p = base / "shared" / "data" / name
            if (p / "expected.json").exists():
                found.append(p.resolve())
                break
    for d in extra:
        p = Path(d).resolve()
        if p not in found:
            found.append(p)
    return found


def ratio(tp: int, n: int) -> float:
    return tp / n if n else 1.0


def pr(s: PaperScore) -> str:
    return (f"precision {ratio(s.right, s.predictions):.3f} ({s.right}/{s.predictions})  "
            f"recall {ratio(s.right, s.expected):.3f} ({s.right}/{s.expected})")


def quality_verdict(s: PaperScore) -> str:
    met = min(ratio(s.right, s.predictions), ratio(s.right, s.expected)) >= QUALITY_GOAL
    return f"-> goal (>= {QUALITY_GOAL} both): {'met' if met else 'NOT met'}"


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


def run_command(pdfs: list[Path], out: Path) -> float:
    """``covtool extract`` as a user runs it: a new process (start-up and imports included)."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "covtool", "-q", "extract", *map(str, pdfs), "-d", str(out / "d"),
           "-o", str(out / "m.csv")]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


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


def peer_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("pymupdf4llm") is not None


def run_peer(pdfs: list[Path]) -> tuple[float, dict[str, dict]]:
    """``pymupdf4llm.to_json`` on each PDF: wall time (the JSON parsed after it), JSON by name."""
    import pymupdf
    import pymupdf4llm

    texts = {}
    sink = io.StringIO()
    # its "Document parser messages" go to stdout; keep them out of this benchmark's figures
    pymupdf.set_messages(stream=sink)
    try:
        with contextlib.redirect_stdout(sink):
            t0 = time.perf_counter()
            for p in pdfs:
                texts[p.name] = pymupdf4llm.to_json(str(p))
            elapsed = time.perf_counter() - t0
    finally:
        pymupdf.set_messages(stream=sys.stdout)
    return elapsed, {n: json.loads(t) for n, t in texts.items()}


def find_pdfimages(install: bool) -> bool:
    """True when poppler's pdfimages is on PATH (installed first with ``install``, as root)."""
    if shutil.which("pdfimages") is None and install:
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "poppler-utils"]):
            subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL)
    return shutil.which("pdfimages") is not None


@dataclass
class Rounds:
    """What the timed rounds of one set gave: best seconds per run kind, pages, and the outputs
    of the first covtool and peer runs (scored for quality)."""

    best: dict[str, float]
    pages: int
    rows: dict
    peer: dict[str, dict] | None


def timed_rounds(pdfs: list[Path], tmp: Path, repeat: int, baseline: bool, peer_repeat: int
                 ) -> Rounds:
    """covtool extract in one process and with the command's default workers, the command as a
    new process, pdfimages -list, covtool's analysis alone, the PyMuPDF floor and (the first
    ``peer_repeat`` rounds) the peer, taking turns; then pdfimages -all."""
    from covtool.core.stage import default_jobs

    runs: dict[str, list[float]] = {}
    rows = peer = None
    for k in range(max(repeat, peer_repeat)):
        if k < repeat:
            if baseline:
                runs.setdefault("list", []).append(run_pdfimages(pdfs, "list", tmp / "pi"))
            c0 = time.process_time()
            t, results = run_covtool(pdfs, tmp / "out_t")
            runs.setdefault("covtool", []).append(t)
            runs.setdefault("cpu", []).append(time.process_time() - c0)
            rows = rows or results
            runs.setdefault("jobs", []).append(run_covtool(pdfs, tmp / "out_j", jobs=default_jobs())[0])
        if k < peer_repeat:
            c0 = time.process_time()
            t, docs = run_peer(pdfs)
            runs.setdefault("peer", []).append(t)
            runs.setdefault("peer_cpu", []).append(time.process_time() - c0)
            peer = peer or docs
        if k < repeat:
            runs.setdefault("command", []).append(run_command(pdfs, tmp / "out_c"))
            runs.setdefault("analyze", []).append(run_analyze(pdfs))
            runs.setdefault("floor", []).append(run_floor(pdfs))
    if baseline:
        runs["all"] = [run_pdfimages(pdfs, "all", tmp / "pi") for _ in range(repeat)]
    pages = sum(r.pages for r in rows.values())
    return Rounds({k: min(v) for k, v in runs.items()}, pages, rows, peer)


def print_speed(r: Rounds, repeat: int, peer_repeat: int) -> None:
    from covtool.core.stage import default_jobs

    best, pages = r.best, r.pages
    base = best.get("list")
    peer = best.get("peer")

    def line(name: str, key: str, note: str = "") -> None:
        vs = f"{best[key] / base:5.2f}x the time of pdfimages -list" if base else ""
        print(f"    {name:40s} {pages / best[key]:7.1f} pages/s  {vs}{note}")

    def verdicts(key: str) -> str:
        out = []
        if base:
            met = best[key] <= PDFIMAGES_GOAL * base
            out.append(f"pdfimages goal (within {PDFIMAGES_GOAL:g}x): {'met' if met else 'NOT met'}")
        if peer:
            times = peer / best[key]
            out.append(f"{times:.1f}x the peer's pages/s, peer goal (>= {PEER_GOAL:g}x): "
                       f"{'met' if times >= PEER_GOAL else 'NOT met'}")
        return ("  -> " + "; ".join(out)) if out else ""

    jobs = default_jobs()
    print(f"  speed ({pages} pages; best of {repeat})")
    if base:
        print(f"    {'pdfimages -list':40s} {pages / base:7.1f} pages/s  (the baseline: lists the images)")
    line(f"covtool extract (default: --jobs {jobs})", "jobs", f"  (pool start-up included){verdicts('jobs')}")
    line("covtool extract --jobs 1 (one process)", "covtool", verdicts("covtool"))
    line("  its CPU time", "cpu", "  (CPU seconds, not wall)")
    line("  of which reading and captions", "analyze", "  (no image written)")
    line("PyMuPDF floor: open + dict text", "floor", "  (one get_text('dict') a page)")
    if base:
        line("pdfimages -all", "all", "  (writes every image)")
    line("covtool extract, the command", "command", "  (a new process, default workers: start-up "
         f"and imports{'; ' + format(peer / best['command'], '.1f') + 'x the peer' if peer else ''})")
    if peer:
        print(f"    {'peer: pymupdf4llm.to_json':40s} {pages / peer:7.1f} pages/s  "
              f"(best of {peer_repeat}; it used {best['peer_cpu'] / peer:.2f} CPUs: CPU seconds "
              f"over wall seconds, ONNX Runtime's threads)")


def generated_set(tmp: Path, args: argparse.Namespace, baseline: bool) -> list[Path]:
    """Quality (with boxes) and speed on generated papers; the PDFs, for the peer's warm-up."""
    folder = tmp / "synth"
    truth = write_pdf_set(folder, n=args.papers, seed=100)
    pdfs = sorted(folder.glob("*.pdf"))
    expected = {n: [Expected(t.page, t.name, t.caption, t.panels, t.bbox) for t in ts]
                for n, ts in truth.items()}
    r = timed_rounds(pdfs, tmp, args.repeat, baseline, 0)
    print(f"== set generated: {len(pdfs)} papers, {r.pages} pages")
    _, split = run_covtool(pdfs, tmp / "out_p", split_panels=True)
    total, panels_ok, paired_ok = PaperScore(), 0, 0
    for name, figs in expected.items():
        s = score_pairs(covtool_pairs(r.rows[name].rows), figs)
        hits = panel_hits(split[name].rows, figs)
        total.add(s)
        panels_ok += sum(hits)
        paired_ok += sum(hits[i] for i in s.paired)
    print("  pairs: page, number, caption text, box IoU >= 0.8 (the peer is run on real sets only)")
    print(f"  covtool: {pr(total)}  uncaptioned rows: {total.uncaptioned}  {quality_verdict(total)}")
    print(f"  --split-panels: panel count right for {panels_ok}/{total.expected} expected figures, "
          f"{paired_ok}/{total.right} paired ones")
    print_speed(r, args.repeat, 0)
    return pdfs


def real_set(folder: Path, tmp: Path, args: argparse.Namespace, baseline: bool, peer_repeat: int
             ) -> None:
    """Quality per paper and per set, and speed, on one folder of real papers."""
    expected, missing = load_expected(folder)
    pdfs = [folder / n for n in expected]
    if not pdfs:
        print(f"== set {folder}: no PDF of its expected.json is there, skipped")
        return
    r = timed_rounds(pdfs, tmp, args.repeat, baseline, peer_repeat)
    print(f"== set {folder.name} ({folder}): {len(pdfs)} papers, {r.pages} pages")
    if missing:
        print(f"  listed in expected.json but missing, skipped: {', '.join(missing)}")
    _, split = run_covtool(pdfs, tmp / "out_real_p", split_panels=True)
    ours, theirs, panels_ok, paired_ok = PaperScore(), PaperScore(), 0, 0
    width = max(len(n) for n in expected) + 1
    print("  pairs: page, number, caption start; right/predictions")
    for name, figs in expected.items():
        res = r.rows.get(name)
        s = score_pairs(covtool_pairs(res.rows if res else []), figs)
        hits = panel_hits(split[name].rows if name in split else [], figs)
        ours.add(s)
        panels_ok += sum(hits)
        paired_ok += sum(hits[i] for i in s.paired)
        line = (f"    {name + ':':{width}s} expected {s.expected:2d} | covtool {s.right:2d}/{s.predictions:<2d}"
                f" uncaptioned rows: {s.uncaptioned}")
        supp = {"covtool": s.supplementary}
        if r.peer is not None:
            p = score_pairs(peer_pairs(r.peer[name]), figs)
            theirs.add(p)
            line += f" | peer {p.right:2d}/{p.predictions:<2d}"
            supp["peer"] = p.supplementary
        line += f" | panels right {sum(hits)}/{len(figs)}"
        if any(supp.values()):
            line += " | supplementary apart: " + ", ".join(f"{k} {v}" for k, v in supp.items())
        print(line)
    print(f"  covtool: {pr(ours)}  uncaptioned rows: {ours.uncaptioned}  "
          f"supplementary apart: {ours.supplementary}  {quality_verdict(ours)}")
    if r.peer is not None:
        print(f"  peer:    {pr(theirs)}  supplementary apart: {theirs.supplementary}")
    print(f"  --split-panels: panel count right for {panels_ok}/{ours.expected} expected figures, "
          f"{paired_ok}/{ours.right} paired ones")
    print_speed(r, args.repeat, peer_repeat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--papers", type=int, default=12, help="generated papers (3 pages each)")
    ap.add_argument("--repeat", type=int, default=5, help="timing repeats (best is reported)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="DIR",
                    help="another folder of PDFs with an expected.json (repeatable)")
    ap.add_argument("--peer-repeat", type=int, default=1,
                    help="timed runs of the peer per real set (best is reported)")
    ap.add_argument("--no-peer", action="store_true", help="do not run the pymupdf4llm peer")
    ap.add_argument("--install-poppler", action="store_true",
                    help="apt-get install poppler-utils when pdfimages is missing (needs root)")
    args = ap.parse_args()
    if args.repeat < 1 or args.peer_repeat < 1 or args.papers < 1:
        ap.error("--papers, --repeat and --peer-repeat must be at least 1")
    sets = real_set_dirs(args.sets)
    for d in sets:
        if not (d / "expected.json").is_file():
            ap.error(f"--set {d}: no expected.json there")

    baseline = find_pdfimages(args.install_poppler)
    if not baseline:
        print("pdfimages not found, no speed baseline: install poppler-utils "
              "(apt-get install -y poppler-utils, or run this with --install-poppler as root)")
    peer_repeat = 0
    if args.no_peer:
        print("the peer is not run (--no-peer)")
    elif not peer_available():
        print("the peer is not run: pymupdf4llm is not installed (pip install pymupdf4llm)")
    else:
        peer_repeat = args.peer_repeat
    tmp = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    try:
        synth = generated_set(tmp, args, baseline)
        if not sets:
            print(f"== real sets skipped: none of ../shared/data/{{{','.join(REAL_SETS)}}} is there")
        if sets and peer_repeat:
            run_peer(synth[:1])          # warm-up: the model's first inference is not timed
        for d in sets:
            real_set(d, tmp, args, baseline, peer_repeat)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
