from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from covtool.cli.app import app
from covtool.core.imageio import read_image, write_image
from covtool.core.manifest import read_manifest
from covtool.datasets.common import DatasetError
from covtool.datasets.tem import ingest_tem, read_tags
from covtool.em.annotations import AnnotationError, read_annotations
from covtool.em.patches import patch_centres
from tests.datasets import fixtures


def test_classes_splits_particles_and_pixel_sizes(tmp_path):
    res = ingest_tem(fixtures.tem(tmp_path / "tem"))
    df = res.items.set_index("id")
    assert len(df) == 4 and not res.removed
    assert list(res.items.columns) == ["id", "path", "label", "group", "split", "annotation",
                                       "pixel_size_nm", "particles"]
    assert df.loc["train_Adenovirus_a1", "particles"] == 2
    assert df.loc["train_Adenovirus_a2", "particles"] == 1  # the comment line is not a particle
    assert df.loc["test_Adenovirus_a3", "particles"] == 3
    assert df.loc["train_Ebola_e1", "particles"] == 1  # one centre line
    assert df.loc["train_Adenovirus_a1", "pixel_size_nm"] == 1.5
    assert df.loc["test_Adenovirus_a3", "split"] == "test"
    assert df.loc["train_Ebola_e1", "label"] == "Ebola"
    assert df.loc["train_Ebola_e1", "annotation"].endswith("e1.txt")


def test_class_folders_without_split_folders_and_default_pixel_size(tmp_path):
    root = tmp_path / "flat"
    fixtures.png(root / "Rotavirus" / "r1.png")
    fixtures.write(root / "Rotavirus" / "r1.txt", "3 3\n")
    with pytest.raises(DatasetError, match="no pixel size"):
        ingest_tem(root)
    res = ingest_tem(root, default_pixel_size=2.0)
    assert "split" not in res.items.columns
    assert res.items.iloc[0]["pixel_size_nm"] == 2.0 and res.items.iloc[0]["particles"] == 1


def test_bad_annotation_and_orphans(tmp_path):
    root = fixtures.tem(tmp_path / "tem")
    fixtures.write(root / "train" / "Ebola" / "e1.txt", "1 1\n2 oops\n")
    with pytest.raises(DatasetError, match=r"e1.txt:2: bad annotation: 'oops' is not a number"):
        ingest_tem(root)
    fixtures.write(root / "train" / "Ebola" / "e1.txt", "1 1\n500 5\n")  # outside the 40x32 image
    fixtures.png(root / "train" / "Ebola" / "e2.png")  # no annotation
    fixtures.write(root / "train" / "Ebola" / "orphan.txt", "1 1\n")
    res = ingest_tem(root, skip_bad=True, default_pixel_size=1.0)
    assert dict(res.removed) == {"bad annotation": 1, "no annotation": 1, "unknown file": 1}
    assert sorted(res.items["id"]) == ["test_Adenovirus_a3", "train_Adenovirus_a1", "train_Adenovirus_a2"]


# ---------------------------------------------------------------- the release's particle files

def test_particle_positions_objects_midpoints_and_lines(tmp_path):
    text = ("header one\nheader two\nx;y\n"
            "particleposition\n10.5;20\nparticleposition\n1;2\n3;4\n\nparticleposition\n"
            "5,5;6,25\n7;8\n9;10\nparticleposition\n")
    f = fixtures.write(tmp_path / "a_particlepositions.txt", text)
    parts = read_annotations(f)  # chosen by the name, not the .txt suffix
    assert [len(p.vertices) for p in parts] == [1, 2, 3]
    assert parts[0].vertices.tolist() == [[10.5, 20.0]] and parts[0].lines == (5,)
    assert parts[2].vertices.tolist() == [[5.5, 6.25], [7, 8], [9, 10]]  # decimal comma
    assert parts[1].lines == (7, 8)
    centres = [(c.kind, c.x, c.y) for c in patch_centres(parts)]
    assert centres == [("point", 10.5, 20.0), ("midpoint", 2.0, 3.0), ("vertex", 5.5, 6.25),
                       ("vertex", 7.0, 8.0), ("vertex", 9.0, 10.0)]
    # without a leading separator; a header line may be any text but a point
    f2 = fixtures.write(tmp_path / "b_particlepositions.txt", "3\n1;2;3\nx;y\n7;8\n")
    assert [p.vertices.tolist() for p in read_annotations(f2)] == [[[7.0, 8.0]]]
    assert read_annotations(fixtures.write(tmp_path / "c_particlepositions.txt", "h\nh\nh\n")) == []
    # the same text under another name is covtool's text form (one object per line)
    g = fixtures.write(tmp_path / "plain.txt", "1;2\n3;4\n")
    assert [len(p.vertices) for p in read_annotations(g)] == [1, 1]


def test_particle_positions_errors_name_the_line(tmp_path):
    f = fixtures.write(tmp_path / "x_particlepositions.txt", "h\nh\nh\n1;2\nparticleposition\n3;oops\n")
    with pytest.raises(AnnotationError, match=r"x_particlepositions.txt:6: '3;oops' is not a point"):
        read_annotations(f)
    fixtures.write(f, "h\nh\nh\n1;2;3\n")
    with pytest.raises(AnnotationError, match=r":4: '1;2;3' is not a point 'x;y'"):
        read_annotations(f)
    fixtures.write(f, "h\n")
    with pytest.raises(AnnotationError, match=r":1: 1 line\(s\), expected 3 header lines"):
        read_annotations(f)
    f.write_bytes(b"Positions \xb5m\nh\nh\n1;2\n")  # a latin-1 header is still a header
    assert read_annotations(f)[0].vertices.tolist() == [[1.0, 2.0]]


@pytest.mark.parametrize("text, line, point", [
    ("1;2\n3;4\n5;6\n7;8\n", 1, "1;2"),  # no header at all: its points are not dropped
    ("h\n12,5; 30\nh\n7;8\n", 2, "12,5; 30"),  # a decimal comma is a point too
    ("h\nh\n-1.5;2e3\nparticleposition\n7;8\n", 3, "-1.5;2e3"),
])
def test_particle_positions_header_line_that_is_a_point_is_an_error(tmp_path, text, line, point):
    f = fixtures.write(tmp_path / "x_particlepositions.txt", text)
    with pytest.raises(AnnotationError, match=rf"x_particlepositions.txt:{line}: expected three header "
                       rf"lines, line {line} is a point '{point}'"):
        read_annotations(f)


def test_tag_files_decimal_comma_and_checks(tmp_path):
    t = read_tags(fixtures.write(tmp_path / "a.tif_tags.csv", fixtures.tem_tag_text((10, 20), "0,867", "0,868")))
    assert t.pixel_size_nm() == pytest.approx(0.867)
    assert t.columns() == {"tag_date": "19.10.2009", "tag_time": "14:30:14", "tag_camera": "Morada",
                           "acc_voltage": "80000", "defocus": "-1.5", "magnification": "73000"}
    t.check_size((10, 20))
    with pytest.raises(DatasetError, match=r"a.tif_tags.csv:2: Width 20 is not the image's \(21x10\)"):
        t.check_size((10, 21))
    t = read_tags(fixtures.write(tmp_path / "b.tif_tags.csv", fixtures.tem_tag_text((10, 20), "2,0", "2,5")))
    with pytest.raises(DatasetError, match=r"b.tif_tags.csv:7: Yscale 2.5 differs from Xscale 2.0 by more than 1%"):
        t.pixel_size_nm()
    t = read_tags(fixtures.write(tmp_path / "c.tif_tags.csv", "Height;10\nXscale;0.5 nm\n"))
    with pytest.raises(DatasetError, match=r"c.tif_tags.csv:2: Xscale '0.5 nm' is not a number"):
        t.pixel_size_nm()
    assert read_tags(fixtures.write(tmp_path / "d.csv", "Xscale;1,5;\n\n")).pixel_size_nm() == 1.5


#: Tag values whose digits a number format would change (1.2e+06, 2.0091e+07, -1234.57).
DIGITS = {"Defocus": ("-1234,5678", "-1234.5678"), "Magnification": ("1200000", "1200000"),
          "Serial": ("20091019", "20091019"), "AccVoltage": (" 80 000 ", "80000"),
          "Date": ("19.10.2009", "19.10.2009"), "Camera": ("Morada G2", "Morada G2")}


def test_tag_values_keep_their_digits_in_the_manifest(tmp_path):
    text = "Height;40\nWidth;50\nXscale;2,0\nYscale;2,0\n" + "".join(f"{k};{v}\n" for k, (v, _) in DIGITS.items())
    tags = read_tags(fixtures.write(tmp_path / "t.tif_tags.csv", text))
    assert tags.columns() == {"defocus": "-1234.5678", "magnification": "1200000", "tag_serial": "20091019",
                              "acc_voltage": "80000", "tag_date": "19.10.2009", "tag_camera": "Morada G2"}
    # through ingest and the written manifest; the pixel size, a float, keeps every digit written
    root = fixtures.tem_release(tmp_path / "rel", crops=False)
    tag = root / "context_virus_RAW" / "train" / "Ebola" / "tags" / "E-1.tif_tags.csv"
    fixtures.write(tag, text.replace("2,0", "2,000000000000001"))
    out = tmp_path / "m.csv"
    _cli("ingest", "tem", root, "-o", out)
    row = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("id").loc["train_Ebola_E-1"]
    column = {"Defocus": "defocus", "Magnification": "magnification", "AccVoltage": "acc_voltage"}
    for key, (_, cell) in DIGITS.items():
        assert row[column.get(key, f"tag_{key.lower()}")] == cell
    assert row["pixel_size_nm"] == "2.000000000000001" and float(row["pixel_size_nm"]) != 2.0
    with pytest.raises(DatasetError, match=r"t.tif_tags.csv:2: Width 50 is not the image's \(60x40\)"):
        tags.check_size((40, 60))


# ---------------------------------------------------------------- the raw part

RAW = {(s, c, Path(n).stem): (shape, xs, objects) for s, c, n, shape, _, xs, _, objects in fixtures.TEM_RAW}


def test_release_raw_part(tmp_path):
    root = fixtures.tem_release(tmp_path / "TEM virus dataset")
    for where in (root, root / "context_virus_RAW"):
        res = ingest_tem(where)
        df = res.items.set_index("id")
        assert len(df) == len(fixtures.TEM_RAW) and not res.removed
        assert list(res.items.columns[:9]) == ["id", "path", "label", "group", "split", "source",
                                               "annotation", "pixel_size_nm", "particles"]
        for (split, cls, stem), (_, xs, objects) in RAW.items():
            row = df.loc[f"{'val' if split == 'validation' else split}_{cls}_{stem}"]
            assert row["pixel_size_nm"] == pytest.approx(float(xs.replace(",", ".")))
            assert row["particles"] == len(objects)
            assert row["source"] == f"{split}/{cls}/{stem}.tif"  # protocol_A's raw_source_id
            assert row["label"] == cls and row["group"] == row.name
            assert row["annotation"].endswith(f"particle_positions/{stem}_particlepositions.txt")
            assert row["magnification"] == "73000" and row["defocus"] == "-1.5"
        assert sorted(df["split"].unique()) == ["test", "train", "val"]
    one = ingest_tem(root / "context_virus_RAW" / "train")  # one split folder: no split column
    assert "split" not in one.items.columns and len(one.items) == 2


def test_release_root_with_both_parts_reads_raw_unless_told(tmp_path):
    root = fixtures.tem_release(tmp_path / "rel")
    res = ingest_tem(root)
    assert "annotation" in res.items.columns
    assert res.warnings == [f"{root} holds both parts of the release: read context_virus_RAW (the raw "
                            "images); the crops layout reads context_virus_1nm_256x256"]
    assert not ingest_tem(root, layout="raw").warnings and not ingest_tem(root / "context_virus_RAW").warnings
    crops = ingest_tem(root, layout="crops").items
    assert len(crops) == len(fixtures.TEM_CROPS) and "annotation" not in crops.columns
    with pytest.raises(DatasetError, match="no context_virus_RAW folder"):
        ingest_tem(fixtures.tem_release(tmp_path / "c", raw=False), layout="raw")


@pytest.mark.parametrize("case", ["no_xscale", "bad_xscale", "bad_line", "no_header", "no_particles",
                                  "no_image", "no_tags", "outside"])
def test_raw_bad_input_names_file_and_line_and_skip_bad_goes_on(tmp_path, case):
    root = fixtures.tem_release(tmp_path / "rel", crops=False)
    cls = root / "context_virus_RAW" / "train" / "Ebola"
    pp, tag = cls / "particle_positions" / "E-1_particlepositions.txt", cls / "tags" / "E-1.tif_tags.csv"
    expect = {
        "no_xscale": (lambda: fixtures.write(tag, "Height;40\nWidth;50\nYscale;2,0\n"),
                      r"E-1.tif_tags.csv: bad tag file: no Xscale row", "bad tag file"),
        "bad_xscale": (lambda: fixtures.write(tag, "Height;40\nWidth;50\nXscale;zwei\n"),
                       r"E-1.tif_tags.csv:3: bad tag file: Xscale 'zwei' is not a number", "bad tag file"),
        "bad_line": (lambda: fixtures.write(pp, "h\nh\nh\n1;1\nparticleposition\n2 2\n"),
                     r"E-1_particlepositions.txt:6: bad particle file: '2 2' is not a point", "bad particle file"),
        "no_particles": (lambda: pp.unlink(),
                         r"E-1.tif: no particle file: expected particle_positions/E-1_particlepositions.txt",
                         "no particle file"),
        "no_image": (lambda: (cls / "E-1.tif").rename(tmp_path / "elsewhere.tif"),
                     r"E-1_particlepositions.txt: no image: no image E-1.tif for this particle file", "no image"),
        "no_tags": (lambda: tag.unlink(), r"E-1.tif: no tag file: expected tags/E-1.tif_tags.csv", "no tag file"),
        "no_header": (lambda: fixtures.write(pp, "5;5\n20;10\n40;30\nparticleposition\n45;35\n"),
                      r"E-1_particlepositions.txt:1: bad particle file: expected three header lines, "
                      r"line 1 is a point '5;5'", "bad particle file"),
        "outside": (lambda: fixtures.write(pp, "h\nh\nh\n1;1\nparticleposition\n60;5\n"),
                    r"E-1_particlepositions.txt:6: bad particle file: point \(60, 5\) is outside the 50x40 image",
                    "bad particle file"),
    }
    damage, message, reason = expect[case]
    damage()
    with pytest.raises(DatasetError, match=message):
        ingest_tem(root)
    r = CliRunner().invoke(app, ["ingest", "tem", str(root), "-o", str(tmp_path / "out.csv")])
    assert r.exit_code == 1 and "Traceback" not in r.output and not (tmp_path / "out.csv").exists()
    assert len([ln for ln in r.output.splitlines() if ln.strip()]) == 1 and "E-1" in r.output
    res = ingest_tem(root, skip_bad=True)
    removed = {reason: 2 if case == "no_image" else 1}  # no image: its tag file is an orphan too
    assert dict(res.removed) == removed and len(res.problems) == sum(removed.values())
    assert len(res.items) == len(fixtures.TEM_RAW) - 1 and "train_Ebola_E-1" not in set(res.items["id"])


def test_raw_without_tag_file_takes_given_pixel_size(tmp_path):
    root = fixtures.tem_release(tmp_path / "rel", crops=False)
    (root / "context_virus_RAW" / "train" / "Ebola" / "tags" / "E-1.tif_tags.csv").unlink()
    df = ingest_tem(root, default_pixel_size=3.0).items.set_index("id")
    assert df.loc["train_Ebola_E-1", "pixel_size_nm"] == 3.0
    assert df.loc["train_Adenovirus_A4-080201_7", "pixel_size_nm"] == 0.5  # tags win where present


def test_raw_tags_size_must_match_image(tmp_path):
    root = fixtures.tem_release(tmp_path / "rel", crops=False)
    tag = root / "context_virus_RAW" / "test" / "Ebola" / "tags" / "E-9.tif_tags.csv"
    fixtures.write(tag, fixtures.tem_tag_text((33, 32), "0,867", None))
    with pytest.raises(DatasetError, match=r"E-9.tif_tags.csv:1: bad tag file: Height 33 is not the image's"):
        ingest_tem(root)
    assert len(ingest_tem(root, verify=False).items) == len(fixtures.TEM_RAW)


# ---------------------------------------------------------------- the whole chain on the raw part

def _cli(*args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r


def test_chain_ingest_rescale_crop_split_on_raw_release(tmp_path):
    root = fixtures.tem_release(tmp_path / "rel", crops=False)
    images, rescaled, patches, split = (tmp_path / f"{n}.csv" for n in ("images", "rescaled", "patches", "split"))
    _cli("ingest", "tem", root, "-o", images)
    _cli("rescale", images, "-d", tmp_path / "r", "-o", rescaled)
    size = 16
    _cli("crop", rescaled, "-d", tmp_path / "p", "-o", patches, "--size", size)
    _cli("split", patches, "--from", images, "-o", split)
    _cli("split", "check", split)

    r = read_manifest(rescaled).set_index("id")
    p = read_manifest(patches)
    s = read_manifest(split)
    want_patches = 0
    for (spl, cls, stem), (shape, xs, objects) in RAW.items():
        iid = f"{'val' if spl == 'validation' else spl}_{cls}_{stem}"
        nm = float(xs.replace(",", "."))
        row = r.loc[iid]
        assert float(row["pixel_size_nm"]) == 1.0 and float(row["source_pixel_size_nm"]) == pytest.approx(nm)
        assert float(row["scale"]) == pytest.approx(nm)
        assert (int(row["width"]), int(row["height"])) == (int(shape[1] * nm + 0.5), int(shape[0] * nm + 0.5))
        mine = p[p["group"] == iid]
        centres = fixtures.tem_patch_centres(objects)
        want_patches += len(centres)
        assert len(mine) == len(centres)
        assert set(mine["split"]) == {"val" if spl == "validation" else spl}
        assert set(mine["source"]) == {f"{spl}/{cls}/{stem}.tif"}
        kinds = [("midpoint" if len(o) == 2 else "vertex" if len(o) > 2 else "point") for o in objects
                 for _ in range(1 if len(o) <= 2 else len(o))]
        assert list(mine["center_kind"]) == kinds
        for (x, y), (_, prow) in zip(centres, mine.iterrows()):
            # the paper's centres in the 1 nm image (pixel centres: x' = (x + 0.5) * s - 0.5)
            assert float(prow["center_x"]) == pytest.approx((x + 0.5) * nm - 0.5, abs=1e-3)
            assert float(prow["center_y"]) == pytest.approx((y + 0.5) * nm - 0.5, abs=1e-3)
            assert float(prow["pixel_size_nm"]) == 1.0
            patch = read_image(prow["path"]).astype(float)
            assert patch.shape == (size, size)
            bg = np.median(patch)
            # the bright spot drawn at the particle lies at the patch centre
            assert patch[size // 2, size // 2] - bg > 0.5 * (patch.max() - bg) > 0
    assert len(p) == want_patches == 12
    # group integrity: every patch has its image's split; no image in two splits
    assert (s.groupby("group")["split"].nunique() == 1).all()
    imgs = read_manifest(images).set_index("id")
    assert all(imgs.loc[g, "split"] == sp for g, sp in zip(s["group"], s["split"]))


# ---------------------------------------------------------------- crops

def test_release_crops_split_from_folders(tmp_path):
    root = fixtures.tem_release(tmp_path / "rel", raw=False)
    res = ingest_tem(root / "context_virus_1nm_256x256")
    df = res.items.set_index("id")
    assert list(res.items.columns) == ["id", "path", "label", "group", "split", "source", "pixel_size_nm",
                                       "center_x", "center_y"]
    assert len(df) == 6 and not res.removed
    assert df.loc["train_Adenovirus_1_2", "group"] == "train/Adenovirus/1"
    assert df.loc["val_Adenovirus_1_1", "group"] == "validation/Adenovirus/1"  # not train's image 1
    assert df["group"].nunique() == 4
    assert (df["pixel_size_nm"] == 1.0).all() and (df["center_x"] == 128).all() and (df["center_y"] == 128).all()
    assert df.loc["test_Ebola_1_1", "split"] == "test" and df.loc["val_Adenovirus_1_1", "split"] == "val"
    assert ingest_tem(root).items["id"].tolist() == res.items["id"].tolist()  # the root has only crops


def test_release_crops_with_split_table(tmp_path):
    root = fixtures.tem_release(tmp_path / "rel", raw=False)
    table = fixtures.tem_crop_table(tmp_path / "protocol_A_official.csv")
    df = ingest_tem(root, split_table=table).items.set_index("id")
    assert df.loc["train_Adenovirus_1_1", "group"] == "train/Adenovirus/A4-080201_7.tif"
    assert df.loc["train_Adenovirus_2_1", "group"] == "train/Adenovirus/A4-080201_8.tif"
    assert df.loc["val_Adenovirus_1_1", "source"] == "validation/Adenovirus/B2-65k-071019_3.tif"
    assert (df["date"] == "2009-10-19 14:30:14").all() and (df["magnification"] == "73000").all()
    assert df["split"].tolist() == ["test", "test", "train", "train", "train", "val"]
    # a table that contradicts the folder is a bad crop
    bad = fixtures.tem_crop_table(tmp_path / "bad.csv", split_of={("train", "Adenovirus", "2_1.tif"): "test"})
    with pytest.raises(DatasetError, match=r"2_1.tif: split disagrees: in a train folder, but bad.csv:4 puts it in test"):
        ingest_tem(root, split_table=bad)
    res = ingest_tem(root, split_table=bad, skip_bad=True)
    assert dict(res.removed) == {"split disagrees": 1} and len(res.items) == 5
    with pytest.raises(DatasetError, match="a split table names crops"):
        ingest_tem(fixtures.tem_release(tmp_path / "raw", crops=False), split_table=table)


def test_png_crops_folder_groups_by_source_image(tmp_path):
    root = fixtures.tem_png_crops(tmp_path / "crops")
    res = ingest_tem(root)
    df = res.items.set_index("id")
    assert "split" not in df.columns and len(df) == 4
    assert df.loc["Adenovirus_A4-080201_14_1", "group"] == "Adenovirus/A4-080201_14"
    assert df.loc["Adenovirus_A4-080201_14_0", "group"] == "Adenovirus/A4-080201_14"
    assert df.loc["Nipah-virus_N1_0", "label"] == "Nipah virus"
    assert df["group"].nunique() == 3
    # a table naming the source images gives split and group (matched by class and image name)
    t = fixtures.write(tmp_path / "t.csv", "filepath,class_name,split,raw_source_id\n"
                       "/x/context_virus_1nm_256x256/test/Adenovirus/3_1.tif,Adenovirus,test,test/Adenovirus/A4-080201_14.tif\n")
    res = ingest_tem(root, split_table=t)
    assert res.warnings == [f"2 crop(s) not in {t}: their folder gives the split (if any) and their name "
                            f"the source image, e.g. {root / 'Adenovirus' / 'B2-65k-071019_18_3.png'}"]
    df = res.items.set_index("id")
    assert df.loc["Adenovirus_A4-080201_14_1", "split"] == "test"
    assert df.loc["Adenovirus_A4-080201_14_1", "group"] == "test/Adenovirus/A4-080201_14.tif"
    assert df.loc["Nipah-virus_N1_0", "split"] == "" or pd.isna(df.loc["Nipah-virus_N1_0", "split"])
    assert df.loc["Nipah-virus_N1_0", "group"] == "Nipah virus/N1"


def test_crops_bad_names_and_split_straight_after_ingest(tmp_path):
    root = fixtures.tem_png_crops(tmp_path / "crops")
    fixtures.png(root / "Adenovirus" / "whole.png")
    with pytest.raises(DatasetError, match=r"whole.png: unknown file: not a crop name <source image>_<k>"):
        ingest_tem(root)
    (root / "Adenovirus" / "whole.png").unlink()
    for k in range(3):  # enough groups per class for a three-way split
        fixtures.png(root / "Nipah virus" / f"N{k + 2}_0.png", shape=(256, 256))
        fixtures.png(root / "Adenovirus" / f"C{k}_0.png", shape=(256, 256))
    out, split = tmp_path / "c.csv", tmp_path / "s.csv"
    _cli("ingest", "tem", root, "-o", out)
    _cli("split", out, "--strategy", "random", "-o", split)
    _cli("split", "check", split)
    s = read_manifest(split)
    a = s[s["group"] == "Adenovirus/A4-080201_14"]
    assert len(a) == 2 and a["split"].nunique() == 1


@pytest.mark.realdata
def test_real_crops_306_in_14_classes_grouped_by_source_image():
    from tests.conftest import shared_data

    crops = shared_data("tem-crops")
    res = ingest_tem(crops)
    df = res.items
    assert len(df) == 306 and not res.removed and df["label"].nunique() == 14
    assert df["group"].nunique() == 87
    assert (df["pixel_size_nm"] == 1.0).all() and (df["center_x"] == 128).all()
    assert df.groupby("label")["group"].nunique().to_dict()["Papilloma"] == 3
    table = shared_data("tem-release", "protocol_A_official.csv")
    res = ingest_tem(crops, split_table=table)
    df = res.items
    assert len(df) == 306 and not res.removed and not res.warnings  # every crop is listed
    assert set(df["split"]) == {"test"}  # the shared crops are from the test part
    assert df["group"].str.match(r"^test/[^/]+/[^/]+\.tif$").all() and df["group"].nunique() == 87
    proto = pd.read_csv(table, dtype=str)
    assert set(df["group"]) <= set(proto["raw_source_id"])
    assert (df["magnification"] != "").all()


def test_cli_layout_and_split_table_options(tmp_path):
    root = fixtures.tem_release(tmp_path / "rel")
    table = fixtures.tem_crop_table(tmp_path / "protocol_A_official.csv")
    out = tmp_path / "crops.csv"
    r = _cli("ingest", "tem", root, "--layout", "crops", "--split-table", table, "-o", out)
    assert "6 items, 0 removed" in r.output
    df = read_manifest(out).set_index("id")
    assert df.loc["test_Ebola_1_2", "group"] == "test/Ebola/E-9.tif"
    r = CliRunner().invoke(app, ["ingest", "tem", str(root), "--layout", "patches", "-o", str(tmp_path / "x.csv")])
    assert r.exit_code == 2 and "--layout: must be one of auto, raw, crops, annotated" in r.output
    r = CliRunner().invoke(app, ["ingest", "tem", str(root), "--split-table", str(table), "-o", str(tmp_path / "x.csv")])
    assert r.exit_code == 1 and "a split table names crops; this is the raw layout" in r.output


@pytest.mark.slow
def test_crops_go_straight_to_split_and_train(tmp_path):
    root = fixtures.tem_release(tmp_path / "rel", raw=False)
    crops, run = tmp_path / "crops.csv", tmp_path / "run"
    for name in ("1_1.tif", "2_1.tif"):  # a second class in train
        write_image(root / "context_virus_1nm_256x256" / "train" / "Ebola" / name, np.full((256, 256), 9, np.uint8))
    _cli("ingest", "tem", root / "context_virus_1nm_256x256", "-o", crops)
    _cli("train", crops, "-r", run, "--model", "custom", "--input-size", "32", "--filters", "4,4,8,8",
         "--final-filters", "4", "--head-units", "8,8", "--dropout", "0", "--block-dropout", "0",
         "--optimizer", "adam", "--batch-size", "2", "--epochs", "1")
    hist = pd.read_csv(run / "history.csv")
    assert len(hist) == 1 and np.isfinite(hist["loss"]).all()
    assert (run / "model.keras").is_file()
