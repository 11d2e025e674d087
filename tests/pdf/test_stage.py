"""ExtractStage and the PDF inputs, run by the stage runner without the command line."""

from __future__ import annotations

import json
import shutil

import pytest

from covtool.core.errors import CovtoolError, ParameterError
from covtool.core.manifest import Row, is_manifest_arg
from covtool.core.stage import run_stage
from covtool.pdf import pipeline
from covtool.pdf import stage as pdf_stage
from covtool.pdf.pipeline import DONE, PARTIAL, ExtractOptions
from covtool.pdf.stage import ExtractStage, collect_pdfs


def test_collect_pdfs_files_folders_manifests_in_order_once(paper, tmp_path):
    path, _ = paper
    tree = tmp_path / "tree"
    for name in ("b/paper10.pdf", "b/paper9.pdf", "a.PDF", ".hidden.pdf", "notes.txt"):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, tree / name)
    man = tmp_path / "list.csv"
    man.write_text(f"path,journal\n{path},Lancet\n{tree / 'a.PDF'},BMJ\n")
    rows = collect_pdfs([str(man), str(tree), str(path)])
    assert [r.text("path") for r in rows] == [str(path), str(tree / "a.PDF"), str(tree / "b" / "paper9.pdf"),
                                              str(tree / "b" / "paper10.pdf")]
    assert [r.text("journal") for r in rows] == ["Lancet", "BMJ", "", ""]  # a manifest's row as it is
    assert rows[0].manifest == str(man) and rows[0].line == 2
    assert is_manifest_arg("-") and is_manifest_arg("x.TSV") and not is_manifest_arg("x.pdf")
    with pytest.raises(CovtoolError, match="nope.pdf: no such file or folder"):
        collect_pdfs([str(tmp_path / "nope.pdf")])


def test_options_are_refused_when_the_stage_is_built(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ParameterError) as err:
        ExtractStage(tmp_path / "file")
    assert err.value.param == "outdir"
    with pytest.raises(ParameterError) as err:
        ExtractStage(tmp_path / "out", caption_match="(CT")
    assert err.value.param == "caption_match" and not (tmp_path / "out").exists()


def test_rows_notes_caption_filter_and_a_rerun_reusing_the_folder(paper, tmp_path):
    path, truth = paper
    items = [Row({"path": str(path), "journal": "Lancet"})]
    first = run_stage(ExtractStage(tmp_path, ExtractOptions(split_panels=True)), items)
    (note,) = first.notes
    assert (note.pages, note.figures, note.captioned, note.reused) == (3, len(truth), len(truth), False)
    assert note.rows == len(first.rows) == sum(t.panels for t in truth)
    assert {r["journal"] for r in first.rows} == {"Lancet"} and first.columns[-1] == "journal"
    # a rerun with a caption pattern reuses the PDF's folder and filters its rows
    stage = ExtractStage(tmp_path, ExtractOptions(split_panels=True), caption_match="panels")
    again = run_stage(stage, items)
    (note,) = again.notes
    assert note.reused and note.rows == len(first.rows)
    kept = [r for r in first.rows if "panels" in r["caption"]]
    assert len(kept) == 6 and [r["id"] for r in again.rows] == [r["id"] for r in kept]
    assert [str(r["page"]) for r in again.rows] == [str(r["page"]) for r in kept]


def test_an_interrupt_keeps_the_pdfs_finished_for_the_rerun(paper, tmp_path, monkeypatch):
    path, _ = paper
    other = tmp_path / "other.pdf"
    other.write_bytes(path.read_bytes() + b"\n% another file\n")
    real = pdf_stage.extract_pdf

    def interrupted(pdf, *args):
        if pdf == str(other):
            raise KeyboardInterrupt
        return real(pdf, *args)

    monkeypatch.setattr(pdf_stage, "extract_pdf", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_stage(ExtractStage(tmp_path / "out"), [Row({"path": str(path)}), Row({"path": str(other)})])
    (folder,) = (tmp_path / "out").iterdir()
    assert (folder / DONE).exists() and (folder / PARTIAL).exists()
    monkeypatch.setattr(pdf_stage, "extract_pdf", real)
    res = run_stage(ExtractStage(tmp_path / "out"), [Row({"path": str(path)}), Row({"path": str(other)})])
    assert [n.reused for n in res.notes] == [True, False]


def test_a_file_that_cannot_be_written_fails_its_pdf_and_leaves_nothing(paper, tmp_path, monkeypatch):
    path, _ = paper
    real = pipeline.write_file

    def flaky(file, payload):
        if "fig3" in file.name:
            raise CovtoolError(f"cannot write {file} (No space left on device)")
        real(file, payload)

    monkeypatch.setattr(pipeline, "write_file", flaky)
    items = [Row({"path": str(path), "id": "paper-3"})]
    res = run_stage(ExtractStage(tmp_path / "out"), items, skip_bad=True)
    (row,) = res.rows
    assert row["id"] == "paper-3" and row["source"] == str(path) and row["path"] == ""
    assert row["error"].startswith(f"{path}: cannot write") and "fig3" in row["error"]
    assert "No space left on device" in row["error"]
    assert res.notes == [None] and res.failed == 1
    assert list((tmp_path / "out").rglob("*")) == []  # the figures written before it: taken back
    with pytest.raises(CovtoolError, match="No space left"):
        run_stage(ExtractStage(tmp_path / "out2"), items)
    assert list((tmp_path / "out2").rglob("*")) == []


def test_a_folder_done_with_other_options_is_that_pdfs_error(paper, tmp_path):
    path, _ = paper
    run_stage(ExtractStage(tmp_path), [Row({"path": str(path)})])
    (folder,) = tmp_path.iterdir()
    before = json.loads((folder / DONE).read_text())
    res = run_stage(ExtractStage(tmp_path, ExtractOptions(dpi=300)), [Row({"path": str(path)})], skip_bad=True)
    assert res.failed == 1 and "holds an extraction with other options" in res.rows[0]["error"]
    assert json.loads((folder / DONE).read_text()) == before  # left as it was


def test_a_copy_of_a_pdf_is_its_error_before_any_work(paper, tmp_path):
    path, _ = paper
    (tmp_path / "copy").mkdir()
    copy = tmp_path / "copy" / path.name
    copy.write_bytes(path.read_bytes())
    items = [Row({"path": str(path)}), Row({"path": str(copy)})]
    with pytest.raises(CovtoolError, match=f"a copy of {path}"):
        run_stage(ExtractStage(tmp_path / "out"), items)
    assert not (tmp_path / "out").exists()
    res = run_stage(ExtractStage(tmp_path / "out"), items, skip_bad=True)
    assert res.failed == 1 and res.rows[-1]["source"] == str(copy) and res.notes[1] is None
    assert {r["source"] for r in res.rows[:-1]} == {str(path)}
