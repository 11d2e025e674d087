"""The stage runner: what every stage gets from it, tested once here on a tiny stage."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from covtool.core.errors import CovtoolError, ImageError, ManifestError, OutputExistsError
from covtool.core.manifest import Row, read_manifest, read_table
from covtool.core.shard import Shard
from covtool.core.stage import (
    Note,
    Out,
    Plan,
    Stage,
    output_columns,
    run_stage,
    with_ids,
    write_result,
)


class Copy(Stage):
    """Writes each row's text to OUT/<id>.txt; 'bad' rows fail in run, 'early' rows in plan."""

    name = "copy"
    columns = ("size", "done")

    def __init__(self, outdir, fail_after=None, interrupt_at=None):
        self.outdir, self.fail_after, self.interrupt_at = outdir, fail_after, interrupt_at
        self.ran: list[str] = []

    def plan(self, row):
        if row.text("kind") == "early":
            raise row.error("bad in planning")
        return Plan(outputs=[self.outdir / f"{row.text('id')}.txt"], inputs=[row.path()] if row.has("path") else [])

    def run(self, row, plan, loaded, advance):
        self.ran.append(row.text("id"))
        if row.text("id") == self.interrupt_at:
            raise KeyboardInterrupt
        plan.outputs[0].parent.mkdir(parents=True, exist_ok=True)
        plan.outputs[0].write_text(row.text("id"))
        if row.text("kind") == "bad":
            raise ImageError("cannot read", f"/data/{row.text('id')}.tif")
        return [{"id": row.text("id"), "size": len(row.text("id")), "done": True, "path": str(plan.outputs[0])}]


def table(tmp_path, text):
    p = tmp_path / "m.csv"
    p.write_text(text)
    return read_table(p)


def test_pass_through_column_order_and_values(tmp_path):
    t = table(tmp_path, "note,id,label,kind\nx,a,covid,\ny,bb,normal,\n")
    res = run_stage(Copy(tmp_path / "o"), t.rows)
    # core columns first (schema order), the stage's own, carried ones in input order
    assert res.columns == ["id", "path", "label", "size", "done", "note", "kind"]
    assert [(r["id"], r["size"], r["note"], r["label"]) for r in res.rows] == [("a", 1, "x", "covid"),
                                                                              ("bb", 2, "y", "normal")]
    assert res.done == 2 and res.failed == 0
    write_result(res, tmp_path / "out.csv")
    back = read_manifest(tmp_path / "out.csv")
    assert list(back.columns) == res.columns and back["done"].tolist() == ["true", "true"]
    assert back["path"].tolist() == [str(tmp_path / "o" / "a.txt"), str(tmp_path / "o" / "bb.txt")]


def test_a_failure_stops_and_takes_back_only_what_this_run_wrote(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("old")     # not planned: never touched
    t = table(tmp_path, "id,kind\na,\nb,\nc,bad\nd,\n")
    stage = Copy(out)
    with pytest.raises(ImageError, match="cannot read"):
        run_stage(stage, t.rows)
    assert stage.ran == ["a", "b", "c"]      # stopped at the bad item
    assert sorted(os.listdir(out)) == ["keep.txt"]


def test_force_rollback_keeps_a_file_this_run_did_not_rewrite(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "b.txt").write_text("from an earlier run")
    t = table(tmp_path, "id,kind\na,bad\nb,\n")
    with pytest.raises(ImageError):
        run_stage(Copy(out), t.rows, force=True)
    assert sorted(os.listdir(out)) == ["b.txt"] and (out / "b.txt").read_text() == "from an earlier run"


def test_interrupt_takes_back_everything(tmp_path):
    t = table(tmp_path, "id\na\nb\nc\n")
    with pytest.raises(KeyboardInterrupt):
        run_stage(Copy(tmp_path / "o", interrupt_at="c"), t.rows)
    assert not (tmp_path / "o").exists()      # the folder the run made goes too


def test_skip_bad_records_error_rows_with_their_ids_and_goes_on(tmp_path):
    t = table(tmp_path, "id,kind,note\na,,1\nb,bad,2\nc,early,3\nd,,4\n")
    stage = Copy(tmp_path / "o")
    res = run_stage(stage, t.rows, skip_bad=True)
    assert stage.ran == ["a", "b", "d"]
    by_id = {r["id"]: r for r in res.rows}
    assert [r["id"] for r in res.rows] == ["a", "b", "c", "d"]     # input order kept
    assert by_id["b"]["error"] == "/data/b.tif: cannot read" and by_id["b"]["note"] == "2"
    assert by_id["c"]["error"] == f"{t.name}:4: bad in planning"
    assert by_id["a"]["error"] == "" and res.columns[-1] == "error"
    assert (res.done, res.failed) == (2, 2)
    assert not (tmp_path / "o" / "b.txt").exists()   # the failed item's own file is taken back
    assert (tmp_path / "o" / "d.txt").read_text() == "d"


def test_rows_an_earlier_stage_failed_pass_unchanged(tmp_path):
    t = table(tmp_path, "id,error,note\na,,1\nb,earlier problem,2\n")
    stage = Copy(tmp_path / "o")
    res = run_stage(stage, t.rows)
    assert stage.ran == ["a"] and res.passed == 1
    assert res.rows[1] == {"id": "b", "error": "earlier problem", "note": "2"}
    assert res.columns[-1] == "error"


def test_outputs_are_checked_before_any_work(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "c.txt").write_text("there")
    t = table(tmp_path, "id\na\nb\nc\n")
    stage = Copy(out)
    with pytest.raises(OutputExistsError):
        run_stage(stage, t.rows, skip_bad=True)     # an existing output is never a "bad item"
    assert stage.ran == [] and sorted(os.listdir(out)) == ["c.txt"]


def test_an_output_over_an_input_and_two_items_one_file_are_refused(tmp_path):
    src = tmp_path / "o" / "a.txt"
    src.parent.mkdir()
    src.write_text("input")
    t = table(tmp_path, f"id,path\na,{src}\n")
    stage = Copy(tmp_path / "o")
    with pytest.raises(CovtoolError, match="is an input of this run"):
        run_stage(stage, t.rows, force=True)
    assert src.read_text() == "input" and stage.ran == []
    t = table(tmp_path, "id,kind\na,\nb,\n")
    twice = [t.rows[0], Row({"id": "a"}, 9, t.name)]
    with pytest.raises(CovtoolError, match="written by two items"):
        run_stage(Copy(tmp_path / "p"), twice)


def test_shard_prefetch_and_worker_processes_give_the_same_rows(tmp_path):
    t = table(tmp_path, "id\n" + "".join(f"r{i}\n" for i in range(7)))
    res = run_stage(Copy(tmp_path / "s"), t.rows, shard=Shard(1, 3))
    assert [r["id"] for r in res.rows] == ["r1", "r4"]
    serial = run_stage(Copy(tmp_path / "a"), t.rows).rows
    ahead = run_stage(Copy(tmp_path / "b"), t.rows, prefetch=True).rows
    pool = run_stage(Copy(tmp_path / "c"), t.rows, jobs=2).rows
    strip = [[{k: v for k, v in r.items() if k != "path"} for r in rows] for rows in (serial, ahead, pool)]
    assert strip[0] == strip[1] == strip[2] and len(serial) == 7


class Loader(Copy):
    def load(self, row, plan, advance):
        if row.text("kind") == "unreadable":
            raise ImageError("truncated", "/data/x.tif")
        return row.text("id").upper()

    def run(self, row, plan, loaded, advance):
        self.ran.append(loaded)
        return [{"id": row.text("id"), "size": loaded}]


def test_load_errors_are_item_errors_with_or_without_prefetch(tmp_path):
    t = table(tmp_path, "id,kind\na,\nb,unreadable\nc,\n")
    for prefetch in (False, True):
        stage = Loader(tmp_path / "o")
        res = run_stage(stage, t.rows, skip_bad=True, prefetch=prefetch)
        assert stage.ran == ["A", "C"]
        assert [r["error"] for r in res.rows] == ["", "/data/x.tif: truncated", ""]
        with pytest.raises(ImageError):
            run_stage(Loader(tmp_path / "o"), t.rows, prefetch=prefetch)


def test_with_prefetch_every_load_runs_in_the_thread_and_every_run_in_the_callers(tmp_path):
    import threading

    t = table(tmp_path, "id\na\nb\nc\n")
    seen: list[tuple[str, str]] = []

    class Where(Loader):
        def load(self, row, plan, advance):
            seen.append(("load", threading.current_thread().name))
            return super().load(row, plan, advance)

        def run(self, row, plan, loaded, advance):
            seen.append(("run", threading.current_thread().name))
            return super().run(row, plan, loaded, advance)

    res = run_stage(Where(tmp_path / "o"), t.rows, prefetch=True)
    assert [r["size"] for r in res.rows] == ["A", "B", "C"]
    main = threading.current_thread().name
    assert [w for what, w in seen if what == "run"] == [main] * 3
    loads = [w for what, w in seen if what == "load"]
    assert len(loads) == 3 and main not in loads
    seen.clear()
    run_stage(Where(tmp_path / "p"), t.rows)          # without prefetch: all in the caller's
    assert {w for _, w in seen} == {main}


def test_group_items_and_out_rows_carry_the_row_they_name(tmp_path):
    t = table(tmp_path, "id,group,note\ns1,P1,x\ns2,P1,y\ns3,P2,z\n")

    class PerGroup(Stage):
        name = "groups"
        columns = ("n",)

        def key(self, item):
            return item[0]

        def run(self, item, plan, loaded, advance):
            group, rows = item
            return [Out({"id": r.text("id"), "n": len(rows)}, r) for r in rows]

    items = [("P1", t.rows[:2]), ("P2", t.rows[2:])]
    res = run_stage(PerGroup(), items)
    assert [(r["id"], r["group"], r["n"], r["note"]) for r in res.rows] == [
        ("s1", "P1", 2, "x"), ("s2", "P1", 2, "y"), ("s3", "P2", 1, "z")]
    assert res.columns == ["id", "group", "n", "note"]


def test_with_ids_fills_ids_from_the_file_and_refuses_duplicates(tmp_path):
    t = table(tmp_path, "id,path\n,/d/img 1.tif\nx y,/d/b.tif\n")
    assert [r.text("id") for r in with_ids(t.rows)] == ["img-1", "x-y"]
    t = table(tmp_path, "path\n/d/a.tif\n/e/a.tif\n")
    with pytest.raises(ManifestError, match=r"m.csv:3: duplicate image id 'a'"):
        with_ids(t.rows)


def test_row_typed_reads_name_the_line(tmp_path):
    t = table(tmp_path, "a,b,c,d\n1.5, ,nan,yes\n-2,x,3.0,maybe\n")
    r1, r2 = t.rows
    assert r1.number("a") == 1.5 and r1.text("b") == "" and not r1.has("c") and r1.flag("d") is True
    assert r1.number("b", 7.0) == 7.0 and r2.integer("c") == 3 and r1.text("zz", "dflt") == "dflt"
    with pytest.raises(ManifestError, match=r"m.csv:3: 'x' in column 'b' is not a number"):
        r2.number("b")
    with pytest.raises(ManifestError, match=r"m.csv:3: -2 in column 'a' must be positive"):
        r2.number("a", positive=True)
    with pytest.raises(ManifestError, match=r"m.csv:2: empty value in column 'b'"):
        r1.number("b")
    with pytest.raises(ManifestError, match=r"m.csv:3: 'maybe' in column 'd' is not true/false"):
        r2.flag("d")
    assert dict(r1) == {"a": "1.5", "b": " ", "c": "nan", "d": "yes"}   # the mapping is the cells as stored


def test_read_table_and_read_manifest_agree(tmp_path):
    p = tmp_path / "sub" / "m.csv"
    p.parent.mkdir()
    p.write_text("id,path,x\n\na,img.png,1\nb,/abs/c.png,\n")
    t, df = read_table(p), read_manifest(p)
    assert t.columns == list(df.columns)
    assert [r.line for r in t.rows] == list(df.index) == [3, 4]
    assert [r.raw("path") for r in t.rows] == df["path"].tolist() == [str(p.parent / "img.png"), "/abs/c.png"]
    assert t.frame().equals(df)
    for bad, msg in (("id,path\na,x\na,y\n", "m.csv:3: duplicate id 'a'"), ("id,path\na,\n", "m.csv:2: empty value in column 'path'")):
        p.write_text(bad)
        with pytest.raises(ManifestError, match=msg):
            read_table(p, required=["path"])
        with pytest.raises(ManifestError, match=msg):
            read_manifest(p, required=["path"])


def test_output_columns_rule():
    carried = [Row({"z": "1", "id": "a", "label": "c"})]
    rows = [{"id": "a", "label": "c", "z": "1", "new": 1, "own": 2, "error": ""}]
    assert output_columns(("own",), rows, carried, error=True) == ["id", "label", "own", "new", "z", "error"]
    assert output_columns(("own",), rows, carried, error=False) == ["id", "label", "own", "new", "z"]


class Batched(Stage):
    """Writes one file per item and fills a value into its rows only at the end (a batch)."""

    name = "batched"
    columns = ("n", "total")

    def __init__(self, outdir, fail_at_finish=False):
        self.outdir, self.fail_at_finish, self.pending = outdir, fail_at_finish, []

    def plan(self, row):
        return Plan(outputs=[self.outdir / f"{row['id']}.txt"])

    def run(self, row, plan, loaded, advance):
        plan.outputs[0].write_text(row["id"])
        out = {"n": len(self.pending)}
        self.pending.append(out)
        return [out]

    def finish(self):
        if self.fail_at_finish:
            raise CovtoolError("the batch failed")
        for r in self.pending:
            r["total"] = len(self.pending)


def _rows(*ids):
    return [Row({"id": i, "note": f"x{i}"}, line=k + 2, manifest="m.csv") for k, i in enumerate(ids)]


def test_finish_completes_the_rows_run_gave(tmp_path):
    res = run_stage(Batched(tmp_path), _rows("a", "b", "c"))
    assert [(r["id"], r["n"], r["total"], r["note"]) for r in res.rows] == [
        ("a", 0, 3, "xa"), ("b", 1, 3, "xb"), ("c", 2, 3, "xc")]
    assert res.columns == ["id", "n", "total", "note"]


def test_a_failing_finish_takes_back_the_files_of_the_run(tmp_path):
    (tmp_path / "b.txt").write_text("old")
    with pytest.raises(CovtoolError, match="the batch failed"):
        run_stage(Batched(tmp_path, fail_at_finish=True), _rows("a", "b"), force=True)
    assert list(tmp_path.iterdir()) == []  # b.txt was rewritten by this run: taken back too


# -- files no plan names (Plan.folders), resumable stages, notes, runs without rows --
class FolderStage(Stage):
    """Each item writes ``<id>.done`` (planned) and files named only as it runs into ``<id>/``;
    the item ``bad`` fails, ``stop`` interrupts."""

    name = "folders"
    columns = ("n",)

    def __init__(self, outdir: Path, resumable: bool = False):
        self.outdir, self.resumable = outdir, resumable

    def plan(self, row: Row) -> Plan:
        iid = row.text("id")
        return Plan(outputs=[self.outdir / f"{iid}.done"], folders=[self.outdir / iid])

    def run(self, row: Row, plan: Plan, loaded, advance):
        iid = row.text("id")
        if iid == "stop":
            raise KeyboardInterrupt
        (self.outdir / iid / "deep").mkdir(parents=True, exist_ok=True)
        (self.outdir / iid / "a.png").write_bytes(b"a")
        (self.outdir / iid / "deep" / "b.png").write_bytes(b"b")
        if iid == "bad":
            raise CovtoolError("broken", iid)
        plan.outputs[0].write_text("done")
        return [{"id": iid, "n": 2}, Note(f"{iid}: 2 files")]


def folder_rows(*ids: str) -> list[Row]:
    return [Row({"id": i, "path": f"{i}.pdf"}) for i in ids]


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_failure_takes_back_the_files_written_into_plan_folders(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "kept.png").write_bytes(b"there before")
    (tmp_path / "old" / "a.png").write_bytes(b"rewritten by the run")
    with pytest.raises(CovtoolError, match="broken"):
        run_stage(FolderStage(tmp_path), folder_rows("one", "old", "bad", "two"))
    # the folders the run created are gone; of the one that was there, what it had and the run
    # did not rewrite stays
    assert files(tmp_path) == ["old", "old/kept.png"]


def test_skip_bad_takes_back_the_failed_items_folder_only(tmp_path):
    res = run_stage(FolderStage(tmp_path), folder_rows("one", "bad"), skip_bad=True)
    assert [r["id"] for r in res.rows] == ["one", "bad"] and res.failed == 1
    assert files(tmp_path) == ["one", "one.done", "one/a.png", "one/deep", "one/deep/b.png"]
    assert res.notes == ["one: 2 files", None]
    assert res.columns == ["id", "path", "n", "error"]


def test_an_interrupt_keeps_the_finished_items_of_a_resumable_stage(tmp_path):
    for resumable, left in ((False, []), (True, ["one", "one.done", "one/a.png", "one/deep",
                                                  "one/deep/b.png"])):
        out = tmp_path / str(resumable)
        out.mkdir()
        with pytest.raises(KeyboardInterrupt):
            run_stage(FolderStage(out, resumable), folder_rows("one", "stop"))
        assert files(out) == left, resumable
    with pytest.raises(CovtoolError):  # a failure takes back all, resumable or not
        run_stage(FolderStage(tmp_path / "r", True), folder_rows("one", "bad"))
    assert files(tmp_path / "r") == []


def test_notes_and_folders_come_back_from_worker_processes(tmp_path):
    res = run_stage(FolderStage(tmp_path), folder_rows("one", "two", "three"), jobs=2)
    assert [r["id"] for r in res.rows] == ["one", "two", "three"]
    assert res.notes == ["one: 2 files", "two: 2 files", "three: 2 files"]
    with pytest.raises(CovtoolError, match="broken"):
        run_stage(FolderStage(tmp_path / "j"), folder_rows("a", "bad", "b", "c"), jobs=2)
    assert files(tmp_path / "j") == []


def test_a_check_before_work_takes_nothing_back(tmp_path):
    (tmp_path / "one.done").write_text("an earlier run's")
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "a.png").write_bytes(b"earlier")
    with pytest.raises(OutputExistsError):
        run_stage(FolderStage(tmp_path), folder_rows("two", "one"))
    assert files(tmp_path) == ["one", "one.done", "one/a.png"]


def test_without_rows_the_header_is_the_stages_columns():
    assert output_columns(("id", "path", "n"), [], [], error=False) == ["id", "path", "n"]
    assert output_columns(("id", "n"), [], [], error=True) == ["id", "n", "error"]
    assert run_stage(FolderStage(Path(".")), []).columns == ["n"]


class Started(Copy):
    """A set-up after every check, before the first item; a failing one is no item's error."""

    def __init__(self, outdir, fail=False):
        super().__init__(outdir)
        self.fail, self.started = fail, 0

    def start(self):
        assert self.ran == []
        self.started += 1
        if self.fail:
            raise CovtoolError("no model")


def test_start_runs_once_after_the_checks_and_its_error_stops_the_run(tmp_path):
    stage = Started(tmp_path / "out")
    run_stage(stage, _rows("a", "b"))
    assert stage.started == 1 and stage.ran == ["a", "b"]
    (tmp_path / "out" / "a.txt").write_text("old")
    stage = Started(tmp_path / "out")
    with pytest.raises(OutputExistsError):  # an existing output is found before the set-up
        run_stage(stage, _rows("a", "b"))
    assert stage.started == 0
    stage = Started(tmp_path / "new", fail=True)
    with pytest.raises(CovtoolError, match="no model"):
        run_stage(stage, _rows("a", "b"), skip_bad=True)
    assert stage.ran == [] and not (tmp_path / "new").exists()
    stage = Started(tmp_path / "none")
    failed = [Row({"id": "a", "error": "unreadable"}, 2, "m.csv")]
    assert run_stage(stage, failed).passed == 1 and stage.started == 0  # nothing to run: no set-up


def test_run_manifest_is_the_stage_as_a_manifest_to_manifest_function(tmp_path):
    from covtool.core.stage import run_manifest

    class NeedsKind(Copy):
        required = ("id",)

        def check_table(self, table):
            table.require("kind")

    (tmp_path / "m.csv").write_text("id,kind,note\na,,1\nb,,2\n")
    res = run_manifest(NeedsKind(tmp_path / "o"), tmp_path / "m.csv", tmp_path / "out.csv")
    back = read_manifest(tmp_path / "out.csv")
    assert back["id"].tolist() == ["a", "b"] and back["note"].tolist() == ["1", "2"] and res.done == 2
    with pytest.raises(OutputExistsError):          # the output is checked before the manifest is read
        run_manifest(NeedsKind(tmp_path / "p"), tmp_path / "missing.csv", tmp_path / "out.csv")
    (tmp_path / "n.csv").write_text("id,note\na,1\n")
    with pytest.raises(ManifestError, match="n.csv:1: missing column kind"):
        run_manifest(NeedsKind(tmp_path / "q"), tmp_path / "n.csv", None)
    assert not (tmp_path / "q").exists()


def test_headers_do_not_depend_on_the_rows(tmp_path):
    """An empty shard or an all-failed batch still writes every column the next stage reads."""
    from covtool.core.stage import run_manifest

    class AnyRow(Copy):
        required = ()

    (tmp_path / "m.csv").write_text("id,kind,note\na,bad,1\nb,bad,2\n")
    empty = run_manifest(AnyRow(tmp_path / "e"), tmp_path / "m.csv", None, shard=Shard(5, 6))
    assert empty.rows == [] and empty.columns == ["id", "size", "done", "kind", "note"]
    failed = run_manifest(AnyRow(tmp_path / "f"), tmp_path / "m.csv", None, skip_bad=True)
    assert failed.columns == ["id", "size", "done", "kind", "note", "error"]
    assert [r["error"] for r in failed.rows] == ["/data/a.tif: cannot read", "/data/b.tif: cannot read"]


class Misused(Copy):
    """Raises a usage error for row b (a stage must never turn one into a bad item's row)."""

    def run(self, row, plan, loaded, advance):
        from covtool.core.errors import ParameterError

        if row.text("id") == "b":
            raise ParameterError("floor", "must be finite")
        return super().run(row, plan, loaded, advance)


def test_usage_errors_are_never_bad_items_and_errors_cross_processes(tmp_path):
    from covtool.core.errors import ParameterError

    t = table(tmp_path, "id\na\nb\nc\n")
    for jobs in (1, 2):
        with pytest.raises(ParameterError, match="floor: must be finite"):
            run_stage(Misused(tmp_path / f"o{jobs}"), t.rows, skip_bad=True, jobs=jobs)
        assert not (tmp_path / f"o{jobs}").exists()
    bad = table(tmp_path, "id,kind\na,\nb,bad\n")
    res = run_stage(Copy(tmp_path / "p"), bad.rows, skip_bad=True, jobs=2)   # an ImageError pickled back
    assert res.rows[1]["error"] == "/data/b.tif: cannot read"


def test_an_output_folder_that_is_a_file_and_shared_item_folders_are_refused(tmp_path):
    (tmp_path / "afile").write_text("x")
    t = table(tmp_path, "id\na\n")
    with pytest.raises(CovtoolError, match="afile: is a file, expected a folder"):
        run_stage(Copy(tmp_path / "afile" / "sub"), t.rows)

    class Shared(Copy):
        def plan(self, row):
            return Plan(folders=[tmp_path / "figs" / ("" if row.text("id") == "a" else "b")])

    t = table(tmp_path, "id\na\nb\n")
    with pytest.raises(CovtoolError, match="is written by two items"):
        run_stage(Shared(tmp_path / "o"), t.rows)


# -- issue 18: outputs over inputs, error ids, a batch where every item failed ----------------

def test_no_output_over_any_file_the_run_reads(tmp_path):
    """Inputs of an item that failed planning (--skip-bad) and the manifest itself are inputs too;
    a symlinked folder or a relative path names the same file."""
    out = tmp_path / "o"
    out.mkdir()
    (out / "b.txt").write_text("input of the bad row")
    (tmp_path / "link").symlink_to(out)
    m = tmp_path / "m.csv"
    m.write_text("id,path,kind\nx,link/b.txt,early\nb,other.txt,\n")
    t = read_table(m)
    stage = Copy(out)
    with pytest.raises(CovtoolError, match="b.txt: is an input of this run"):
        run_stage(stage, t.rows, skip_bad=True, force=True)   # b's output is x's input
    assert (out / "b.txt").read_text() == "input of the bad row" and stage.ran == []
    t = table(tmp_path, "id\nq\n")
    for dest in (m, tmp_path / "link" / ".." / "m.csv"):
        with pytest.raises(CovtoolError, match="the output manifest may not replace it"):
            run_stage(Copy(tmp_path / "p"), t.rows, force=True, output=dest)
    with pytest.raises(CovtoolError, match="is also a file an item writes"):
        run_stage(Copy(tmp_path / "p"), t.rows, force=True, output=tmp_path / "p" / "q.txt")
    assert m.read_text() == "id\nq\n" and not (tmp_path / "p").exists()


class Fail(Stage):
    """Every item fails (items without an id: the runner's key names their error rows)."""

    def run(self, row, plan, loaded, advance):
        raise ImageError("cannot read", row.path())


def test_error_rows_get_unique_stable_ids_in_a_batch_and_across_shards(tmp_path):
    a, b = tmp_path / "a" / "paper.pdf", tmp_path / "b" / "paper.pdf"
    items = [Row({"path": str(a)}), Row({"path": str(b)}), Row({"path": str(a)})]
    res = run_stage(Fail(), items, skip_bad=True)
    ids = [r["id"] for r in res.rows]
    assert ids[0].startswith("paper-") and len(ids[0]) == len("paper-") + 8
    assert ids == [ids[0], ids[1], f"{ids[0]}-2"] and ids[0] != ids[1]   # the same file twice
    assert [r["id"] for r in run_stage(Fail(), items, skip_bad=True).rows] == ids   # stable
    # one bad item in each of two shards, merged: distinct ids
    parts = [run_stage(Fail(), items[:2], skip_bad=True, shard=Shard(k, 2)).rows[0]["id"] for k in (0, 1)]
    assert parts == ids[:2]
    # an explicit id is kept as it is
    res = run_stage(Fail(), [Row({"id": "paper-3", "path": str(a)})], skip_bad=True)
    assert res.rows[0]["id"] == "paper-3"


def test_error_row_ids_are_never_empty_nor_a_kept_rows_id(tmp_path):
    class Blank(Copy):
        def error_row(self, item, message):
            return Out({"id": "", "error": message}, item)

    t = table(tmp_path, "id,kind\nx,\ny,bad\n")
    rows = [t.rows[0], Row({"id": "x", "kind": "bad"}, 3, t.name), t.rows[1]]
    res = run_stage(Blank(tmp_path / "o"), rows[1:2] + rows[2:], skip_bad=True)
    assert [r["id"] for r in res.rows] == ["x", "y"]    # empty ids filled with the item's key
    res = run_stage(Copy(tmp_path / "p"), [rows[0], Row({"id": "x", "kind": "early"}, 3, t.name)],
                    skip_bad=True)
    assert [r["id"] for r in res.rows] == ["x", "x-2"] and res.rows[1]["error"]


def test_check_done_every_item_failed_is_an_error_after_writing(tmp_path):
    from covtool.core.stage import check_done

    t = table(tmp_path, "id,kind\na,bad\nb,early\n")
    res = run_stage(Copy(tmp_path / "o"), t.rows, skip_bad=True)
    write_result(res, tmp_path / "out.csv")
    with pytest.raises(CovtoolError) as err:
        check_done(res, tmp_path / "out.csv")
    assert str(err.value) == f"all 2 items failed (see the 'error' column of {tmp_path / 'out.csv'})"
    assert [r.text("error") != "" for r in read_table(tmp_path / "out.csv").rows] == [True, True]
    with pytest.raises(CovtoolError, match="^the one item failed .*of the output"):
        check_done(run_stage(Copy(tmp_path / "o"), t.rows[:1], skip_bad=True), "-")
    check_done(run_stage(Copy(tmp_path / "o"), t.rows[:1], skip_bad=True, shard=Shard(1, 2)))  # empty shard
    check_done(run_stage(Copy(tmp_path / "p"), table(tmp_path, "id,kind\na,bad\nc,\n").rows, skip_bad=True))
    passed = table(tmp_path, "id,error\na,earlier problem\n")   # failed by an earlier stage
    with pytest.raises(CovtoolError, match="the one item failed"):
        check_done(run_stage(Copy(tmp_path / "q"), passed.rows))


def _cli(*args):
    from typer.testing import CliRunner

    from covtool.cli.app import app

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture()
def em_folder(tmp_path):
    """Two EM images with annotations and masks in one folder, its manifest beside them."""
    from covtool.synth.em import write_em_dataset

    root = tmp_path / "em"
    write_em_dataset(root, n_per_class=1, shape=(48, 48), pixel_sizes=(0.9, 1.1), masks=True, seed=3)
    return root


@pytest.mark.parametrize("command", ["rescale", "crop"])
def test_outdir_the_input_folder_never_replaces_an_input(em_folder, tmp_path, command):
    """Issue 18 item 2: -d the images' own folder with --force (also through a symlink)."""
    folder = em_folder / "adeno"
    (tmp_path / "link").symlink_to(folder)
    before = {p: p.read_bytes() for p in em_folder.rglob("*") if p.is_file()}
    extra = ["--size", "16"] if command == "crop" else []
    for outdir in (folder, tmp_path / "link"):
        res = _cli(command, em_folder / "manifest.csv", "-d", outdir, "-o", tmp_path / "o.csv",
                   "--force", "--skip-bad", *extra)
        if command == "rescale":   # rescale writes <id>.tif, <id>.txt, <id>_mask.png: the inputs' names
            assert res.exit_code == 1 and "Traceback" not in res.output
            lines = [ln for ln in res.output.splitlines() if ln.strip()]
            assert len(lines) == 1 and lines[0].startswith("covtool: error: ")
            assert "adeno_001.tif: is an input of this run" in lines[0]
        else:                      # crop's patches have their own names: it runs, next to them
            assert res.exit_code == 0, res.output
    res = _cli(command, em_folder / "manifest.csv", "-d", tmp_path / "new", "-o",
               em_folder / "manifest.csv", "--force", *extra)
    assert res.exit_code == 1 and "manifest.csv: is an input of this run" in res.output
    assert {p: p.read_bytes() for p in before} == before


def test_a_batch_where_every_item_failed_exits_1_after_writing(tmp_path):
    (tmp_path / "a.tif").write_bytes(b"II*\x00broken")
    (tmp_path / "m.csv").write_text("id,path,pixel_size_nm\na,a.tif,1\nb,a.tif,-1\n")
    args = ["rescale", tmp_path / "m.csv", "-d", tmp_path / "r", "-o", tmp_path / "o.csv", "--skip-bad"]
    res = _cli(*args)
    assert res.exit_code == 1
    assert res.output.splitlines()[-1] == (f"covtool: error: all 2 items failed (see the 'error' "
                                           f"column of {tmp_path / 'o.csv'})")
    rows = read_table(tmp_path / "o.csv").rows
    assert [r.text("id") for r in rows] == ["a", "b"] and all(r.text("error") for r in rows)
    res = _cli(*args[:-3], "-o", tmp_path / "o2.csv", "--skip-bad", "--shard", "2/3")  # an empty shard
    assert res.exit_code == 0, res.output
    assert read_table(tmp_path / "o2.csv").rows == []


def test_extract_error_rows_of_two_shards_merge(tmp_path):
    """Issue 18 item 5: two bad PDFs of one name in two folders, one in each shard."""
    for sub in ("a", "b"):
        (tmp_path / "pdfs" / sub).mkdir(parents=True)
        (tmp_path / "pdfs" / sub / "paper.pdf").write_bytes(b"%PDF-1.4\n" + sub.encode())
    for k in (0, 1):
        _cli("extract", tmp_path / "pdfs", "-d", tmp_path / "x", "-o", tmp_path / f"p{k}.csv",
             "--skip-bad", "--shard", f"{k}/2")
    res = _cli("manifest", "merge", tmp_path / "p0.csv", tmp_path / "p1.csv", "-o", tmp_path / "all.csv")
    assert res.exit_code == 0, res.output
    ids = [r.text("id") for r in read_table(tmp_path / "all.csv").rows]
    assert len(ids) == 2 and len(set(ids)) == 2 and all(i.startswith("paper-") for i in ids)


def test_worker_processes_take_the_largest_inputs_first_and_keep_the_input_order(tmp_path, monkeypatch):
    """Submitted largest first (so that a large item is not left to run alone at the end), the
    rows still come back in the input's order."""
    import concurrent.futures as cf

    submitted: list[str] = []

    class Inline:                      # a pool that runs each item as it is submitted
        def __init__(self, max_workers, initializer=None):
            pass

        def shutdown(self, wait=True, cancel_futures=False):
            pass

        def submit(self, fn, stage, item, plan):
            submitted.append(item.text("id"))
            fut: cf.Future = cf.Future()
            fut.set_result(fn(stage, item, plan))
            return fut

    monkeypatch.setattr(cf, "ProcessPoolExecutor", Inline)
    sizes = {"a": 10, "b": 3000, "c": 10, "d": 500}
    for name, n in sizes.items():
        (tmp_path / f"{name}.in").write_bytes(b"x" * n)
    t = table(tmp_path, "id,path\n" + "".join(f"{k},{tmp_path / k}.in\n" for k in sizes))
    res = run_stage(Copy(tmp_path / "out"), t.rows, jobs=2)
    assert submitted == ["b", "d", "a", "c"]      # by size, ties in input order
    assert [r["id"] for r in res.rows] == ["a", "b", "c", "d"]


class Stuck(Copy):
    """'stuck' rows hold an atomic output's temporary file open for a minute; 'bad' rows fail
    after a second (by then the stuck item has made its temporary file)."""

    def run(self, row, plan, loaded, advance):
        import time

        from covtool.core.atomic import atomic_path

        if row.text("id") == "bad":
            time.sleep(1.0)
            raise ImageError("cannot read", f"/data/{row.text('id')}.tif")
        with atomic_path(plan.outputs[0]) as tmp:
            tmp.write_text("half")
            time.sleep(60)
        return [{"id": row.text("id")}]


def test_a_stopping_failure_stops_the_other_workers_at_once_and_takes_their_files_back(tmp_path):
    """The run does not wait a minute for the stuck item: its worker is stopped, and the
    temporary file it had open (no clean-up runs in a stopped process) is removed."""
    import multiprocessing
    import time

    t = table(tmp_path, "id\nstuck\nbad\n")
    out = tmp_path / "out"
    start = time.monotonic()
    with pytest.raises(ImageError, match="cannot read"):
        run_stage(Stuck(out), t.rows, jobs=2)
    assert time.monotonic() - start < 30
    assert not multiprocessing.active_children()
    assert not out.exists() or [p.name for p in out.iterdir()] == []


def test_default_jobs_is_the_cpus_of_the_affinity_at_most_eight(monkeypatch):
    from covtool.core import stage

    for cpus, jobs in ((1, 1), (2, 2), (8, 8), (64, 8)):
        monkeypatch.setattr(stage.os, "sched_getaffinity", lambda pid, n=cpus: set(range(n)), raising=False)
        assert stage.default_jobs() == jobs
    assert stage.default_jobs(most=4) == 4
