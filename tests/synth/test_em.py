from __future__ import annotations

import numpy as np

from covtool.core.imageio import read_image
from covtool.core.manifest import read_manifest
from covtool.em.annotations import read_annotations
from covtool.synth.em import DEFAULT_CLASSES, render_em_image, write_em_dataset


def test_render_is_deterministic_and_annotations_sit_on_particles():
    cls = DEFAULT_CLASSES[0]   # round, dark rim
    a = render_em_image(cls, (160, 140), 1.0, 3, seed=5)
    b = render_em_image(cls, (160, 140), 1.0, 3, seed=5)
    np.testing.assert_array_equal(a.image, b.image)
    assert a.image.dtype == np.uint16 and a.image.shape == (160, 140) and a.mask.shape == (160, 140)
    assert len(a.particles) == 3 and all(p.is_point for p in a.particles)
    for p in a.particles:          # centres are approximate (2 nm jitter) but inside the particle
        x, y = np.rint(p.vertices[0]).astype(int)
        assert a.mask[y, x]
    assert 0.05 < a.mask.mean() < 0.9
    c = render_em_image(cls, (160, 140), 1.0, 3, seed=6)
    assert not np.array_equal(a.image, c.image)


def test_particle_size_follows_the_pixel_size():
    cls = DEFAULT_CLASSES[0]
    small = render_em_image(cls, (300, 300), 2.0, 1, seed=1).mask.sum()
    large = render_em_image(cls, (300, 300), 1.0, 1, seed=1).mask.sum()
    assert 2.5 < large / max(small, 1) < 5.5   # area ~ (1/pixel size)^2, less for border cuts


def test_dataset_files_manifest_and_annotation_kinds(tmp_path):
    df = write_em_dataset(tmp_path / "em", n_per_class=2, shape=(128, 128), pixel_sizes=(2.5, 3.5),
                          masks=True, seed=2)
    m = read_manifest(tmp_path / "em" / "manifest.csv")
    assert len(m) == len(df) == 2 * len(DEFAULT_CLASSES)
    assert set(m["label"]) == {c.name for c in DEFAULT_CLASSES}
    assert list(m["split"][:2]) == ["train", "test"]
    kinds = {}
    for _, row in m.iterrows():
        img = read_image(row["path"])
        mask = read_image(row["mask"])
        assert img.dtype == np.uint16 and mask.shape == img.shape and set(np.unique(mask)) <= {0, 255}
        parts = read_annotations(row["annotation"])
        assert len(parts) == int(row["particles"])
        kinds.setdefault(row["label"], set()).update(len(p.vertices) for p in parts)
        assert float(row["pixel_size_nm"]) > 0
    assert kinds["adeno"] == {1} and kinds["orf"] == {2}
    assert max(kinds["ebola"]) >= 3
    csv = write_em_dataset(tmp_path / "c", n_per_class=1, shape=(96, 96), annotation_format="csv", seed=2)
    assert all(str(p).endswith(".csv") for p in csv["annotation"])
    assert len(read_annotations(csv["annotation"][0])) == csv["particles"][0]
