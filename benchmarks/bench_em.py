"""Speed of ``covtool rescale`` and ``covtool crop`` against a plain baseline, in the same run.

Data (generated): one 2048x2048 uint16 TEM-like image at 0.5 nm/px with 200 centre annotations,
as the TEM virus benchmark's larger microscope gives. Rescaling to 1 nm/px halves it (Lanczos-3,
antialiased); cropping cuts 200 patches of 256x256 from the rescaled image with mirror padding.

Baseline: scikit-image ``resize`` (bicubic spline, Gaussian antialiasing) for the rescale, and
per patch ``numpy.pad(image, 128, mode='symmetric')`` then a slice for the crop: the obvious
code. covtool: the separable Lanczos-3 of ``covtool.em.resample`` and ``crop_patch`` (slicing for
inner patches, mirrored index arrays only at the border). Both in memory (no file I/O), one
source image at a time; plus the full file path (read, rescale, write; read, crop, write) of the
command line's library. Single-threaded BLAS/OpenCV.

    python benchmarks/bench_em.py [--size 2048] [--annotations 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from covtool.core.imageio import write_image  # noqa: E402
from covtool.em.annotations import Particle, write_annotations  # noqa: E402
from covtool.em.patches import crop_patch, patch_centres, patch_origin  # noqa: E402
from covtool.em.pipeline import crop_file, rescale_file  # noqa: E402
from covtool.em.resample import lanczos3_resize  # noqa: E402
from covtool.synth.em import DEFAULT_CLASSES, render_em_image  # noqa: E402


def best(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def baseline_rescale(img: np.ndarray, scale: float) -> np.ndarray:
    from skimage.transform import resize

    shape = (round(img.shape[0] * scale), round(img.shape[1] * scale))
    out = resize(img, shape, order=3, anti_aliasing=True, preserve_range=True)
    return np.clip(np.rint(out), 0, 65535).astype(img.dtype)


def baseline_crop(img: np.ndarray, centres, size: int) -> list[np.ndarray]:
    half = size // 2
    out = []
    for c in centres:
        padded = np.pad(img, half, mode="symmetric")
        x0, y0 = patch_origin(c.x, c.y, size)
        out.append(padded[y0 + half:y0 + half + size, x0 + half:x0 + half + size].copy())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--annotations", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    cls = DEFAULT_CLASSES[1]
    t = time.perf_counter()
    em = render_em_image(cls, (args.size, args.size), 0.5, 6, seed=0)
    rng = np.random.default_rng(1)
    pts = rng.uniform(0, args.size - 1, (args.annotations, 2))   # some within 128 px of the border
    particles = [Particle(p[None, :], (i + 1,)) for i, p in enumerate(pts)]
    img = em.image
    print(f"data: {args.size}x{args.size} {img.dtype} at 0.5 nm/px, {args.annotations} annotations "
          f"(generated in {time.perf_counter() - t:.1f} s)")
    mp = img.size / 1e6
    scale = 0.5

    t_ours, small = best(lambda: lanczos3_resize(img, scale), args.repeat)
    t_base, small_b = best(lambda: baseline_rescale(img, scale), args.repeat)
    print(f"rescale  covtool Lanczos-3 : {mp / t_ours:7.1f} MP/s ({t_ours * 1e3:6.0f} ms)  -> {small.shape}")
    print(f"rescale  baseline skimage  : {mp / t_base:7.1f} MP/s ({t_base * 1e3:6.0f} ms)  "
          f"covtool is {t_base / t_ours:.1f}x")

    from covtool.em.annotations import scale_particles

    centres = patch_centres(scale_particles(particles, scale))
    n = len(centres)
    t_ours, patches = best(lambda: [crop_patch(small, c.x, c.y, 256) for c in centres], args.repeat)
    t_base, patches_b = best(lambda: baseline_crop(small, centres, 256), args.repeat)
    same = all(np.array_equal(a, b) for a, b in zip(patches, patches_b))
    print(f"crop     covtool           : {n / t_ours:7.0f} patches/s ({t_ours * 1e3:6.1f} ms)")
    print(f"crop     baseline np.pad   : {n / t_base:7.0f} patches/s ({t_base * 1e3:6.1f} ms)  "
          f"covtool is {t_base / t_ours:.1f}x; identical patches: {same}")

    tracemalloc.start()
    lanczos3_resize(img, scale)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"memory   rescale peak (numpy allocations): {peak / 2**20:.0f} MiB for a "
          f"{img.nbytes / 2**20:.0f} MiB source image")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_image(tmp / "src.tif", img)
        write_annotations(tmp / "src.txt", particles)
        t = time.perf_counter()
        rescale_file(tmp / "src.tif", tmp / "src.txt", 0.5, 1.0, tmp / "r.tif", tmp / "r.txt")
        t_r = time.perf_counter() - t
        t = time.perf_counter()
        made = crop_file(tmp / "r.tif", tmp / "r.txt", lambda c: tmp / "p" / f"{c.object}.tif")
        t_c = time.perf_counter() - t
        print(f"files    rescale read+resample+write: {mp / t_r:.1f} MP/s; "
              f"crop read+cut+write: {len(made) / t_c:.0f} patches/s")


if __name__ == "__main__":
    main()
