"""Speed of the training input pipeline and of training the custom CNN.

1. Images/s of covtool's tf.data pipeline (parallel decode of 16-bit TIFF/PNG, per-image
   standardisation, COVID-CTset augmentation: flips, rotation 0-360, zoom 5 %, shift 5 %) next to
   the seeds' approach measured in the same run: a Keras ``ImageDataGenerator``-style loop that
   reads, augments (``scipy.ndimage.affine_transform``, as ImageDataGenerator's
   ``apply_affine_transform`` does) and standardises one image at a time in Python.
2. Training images/s of ``custom`` at 256x256 (a few steps, batch 14), to show whether the
   pipeline can keep up with training on this machine.
3. **covtool's training loop against plain Keras** (issue 19): training images/s of DenseNet-169
   (the COVID-CT recipe's pooled head) and JCS at 224 and 480, ``covtool train`` (through its
   function: the per-epoch ``fit``, dropout reseeding, checkpoints and history every epoch, images
   decoded from disk every epoch: the default ``--cache none``) against ``model.fit`` on the same
   model, built and compiled the same way, on the same images decoded once and held in memory (the
   fastest a plain Keras script gets), in the same run. Both without augmentation, so the loop is
   what differs. Speed is the images over the time of the epochs after the first (the first
   traces the graph); covtool's time includes its checkpoint writes, also reported alone. Goal: covtool >= 0.95x.
   With ``--manifest`` the rows are real (for instance COVID-CT merged with the Inf-Net masks,
   docs/ingest.md); by default generated 512x512 RGB slices, half with a lesion mask.

Parts 1-2: generated data. Usage:

    python benchmarks/bench_train.py [--part pipeline|loop|all] [--n 256] [--size 256] [--steps 6]
        [--models densenet169,jcs] [--sizes 224,480] [--images 32] [--loop-batch 8]
        [--epochs 3] [--manifest MANIFEST] [--cache none|memory]
        [--covtool-first] [--loop-rounds N] [--same-process] [--epoch-speeds]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def make_data(folder: Path, n: int, size: int) -> Path:
    from covtool.core.imageio import write_image

    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        img = rng.normal(1500, 300, (size, size)).clip(0, 5000).astype(np.uint16)
        name = f"img{i}.tif" if i % 2 else f"img{i}.png"
        write_image(folder / name, img)
        rows.append({"id": f"img{i}", "path": name, "label": "ab"[i % 2], "split": "train"})
    path = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def baseline_batches(paths: list[str], batch: int, rng: np.random.Generator):
    """ImageDataGenerator-style: one image at a time, random affine in scipy, then standardise."""
    from scipy import ndimage

    from covtool.core.imageio import read_image

    for start in range(0, len(paths), batch):
        out = []
        for p in paths[start:start + batch]:
            x = read_image(p).astype(np.float32)
            h, w = x.shape
            if rng.random() < 0.5:
                x = x[:, ::-1]
            if rng.random() < 0.5:
                x = x[::-1, :]
            theta = np.deg2rad(rng.uniform(-360, 360))
            zx, zy = rng.uniform(0.95, 1.05, 2)
            tx, ty = rng.uniform(-0.05, 0.05, 2) * (h, w)
            c, s = math.cos(theta), math.sin(theta)
            m = np.array([[c * zx, -s * zy], [s * zx, c * zy]])
            centre = np.array([h, w]) / 2 - 0.5
            offset = centre - m @ centre + (tx, ty)
            x = ndimage.affine_transform(x, m, offset=offset, order=1, mode="nearest")
            x = (x - x.mean()) / max(x.std(), 1 / math.sqrt(x.size))
            out.append(x[..., None])
        yield np.stack(out)


def make_ct_data(folder: Path, n: int) -> Path:
    """``n`` generated 512x512 RGB 'slices' (a bright disc on black), half with a lesion mask."""
    import cv2

    rng = np.random.default_rng(0)
    rows = []
    yy, xx = np.mgrid[:512, :512]
    for i in range(n):
        img = np.zeros((512, 512), np.uint8)
        cv2.circle(img, (256, 256), 200, 120, -1)
        img = np.clip(img + rng.normal(0, 20, img.shape), 0, 255).astype(np.uint8)
        name = f"ct{i}.png"
        cv2.imwrite(str(folder / name), np.dstack([img] * 3))
        row = {"id": f"ct{i}", "path": name, "label": ("COVID", "NonCOVID")[i % 2],
               "split": "train", "mask": ""}
        if i % 2 == 0:
            mask = ((yy - 200) ** 2 + (xx - 300) ** 2 < 40 ** 2).astype(np.uint8) * 255
            cv2.imwrite(str(folder / f"ct{i}-mask.png"), mask)
            row["mask"] = f"ct{i}-mask.png"
        rows.append(row)
    path = folder / "ct.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def pick_rows(manifest: Path, n: int, folder: Path) -> Path:
    """The first ``n`` training rows of a real manifest, half of them with a mask where it has
    masks (so JCS trains both losses), written as a manifest of absolute paths."""
    from covtool.core.manifest import read_manifest

    df = read_manifest(manifest)  # path columns come back absolute
    df = df[df["split"].astype(str) == "train"].copy()
    # classes interleaved (a, b, a, b, ...), so any head of the rows has every class
    df = df.iloc[np.argsort(df.groupby("label").cumcount().to_numpy(), kind="stable")]
    if "mask" in df.columns:
        has = df["mask"].fillna("").astype(str).str.strip() != ""
        df = pd.concat([df[has].head(n // 2), df[~has].head(n - min(n // 2, int(has.sum())))])
    df = df.head(n)
    path = folder / "rows.csv"
    df.to_csv(path, index=False)
    return path


def _loop_side(side: str, model_name: str, size: int, manifest: str, opts: dict, tmp: str
               ) -> tuple[float, float, float, list[float]]:
    """One side of part 3 for one model and size: ``side`` is ``"fit"`` (plain ``model.fit`` on
    the images held in memory) or ``"covtool"`` (``covtool train``'s function). Returns images/s
    (:func:`_rate`), checkpoint seconds per epoch, seconds per epoch, and the epochs' images/s. Run in a fresh process by :func:`loop_part` (see there)."""
    import keras

    from covtool.core.manifest import read_manifest
    from covtool.models import ModelConfig, build_model
    from covtool.models.build import ZOO_NAMES
    from covtool.training import rundir
    from covtool.training import train as train_mod
    from covtool.training.config import PipelineConfig, TrainConfig
    from covtool.training.dataset import make_dataset
    from covtool.training.losses import compile_args
    from covtool.training.table import image_table

    df = read_manifest(Path(manifest))
    head = "pooled" if model_name in ZOO_NAMES else "dense"   # jcs, custom: their own
    cfg = TrainConfig(model=ModelConfig(name=model_name, weights="none", head=head),
                      pipeline=PipelineConfig(input_size=size, cache=opts["cache"]),
                      batch_size=opts["batch"], epochs=opts["epochs"], optimizer="adam", seed=0)
    resolved = train_mod.resolve(cfg, df)
    if side == "fit":
        table = image_table(df, list(resolved.classes), masks=model_name == "jcs")
        xs, ys, ms = [], [], []
        for x, y in make_dataset(table, resolved.pipeline, opts["batch"]):
            xs.append(x.numpy())
            if model_name == "jcs":
                ys.append(y[0].numpy())
                ms.append(y[1].numpy())
            else:
                ys.append(y.numpy())
        x, y = np.concatenate(xs), np.concatenate(ys)
        target = (y, np.concatenate(ms)) if ms else y
        keras.utils.set_random_seed(0)
        model = build_model(resolved.model)
        steps = math.ceil(len(x) / opts["batch"])
        model.compile(optimizer=train_mod.make_optimizer(resolved, steps), **compile_args(model_name))
        stamps: list[float] = []
        mark = keras.callbacks.LambdaCallback(
            on_epoch_begin=lambda e, logs: None if stamps else stamps.append(time.perf_counter()),
            on_epoch_end=lambda e, logs: stamps.append(time.perf_counter()))
        model.fit(x, target, batch_size=opts["batch"], epochs=opts["epochs"], shuffle=True,
                  verbose=0, callbacks=[mark])
        speeds = list(len(x) / np.diff(stamps))
        return _rate(len(x), np.diff(stamps)), 0.0, float(np.median(np.diff(stamps)[1:])), speeds

    saving = {"s": 0.0}
    # the checkpoint's cost to the loop: the values' snapshot (the files are written by a
    # background thread while the next epoch trains) and any wait for that thread
    inner = rundir.snapshot

    def timed(*a, **k):
        t = time.perf_counter()
        try:
            return inner(*a, **k)
        finally:
            saving["s"] += time.perf_counter() - t
    rundir.snapshot = timed
    inner_wait = rundir.CheckpointWriter.wait

    def timed_wait(self):
        t = time.perf_counter()
        try:
            return inner_wait(self)
        finally:
            saving["s"] += time.perf_counter() - t
    rundir.CheckpointWriter.wait = timed_wait

    class Clock(train_mod.TrainDisplay):
        def __init__(self):
            self.times, self.saving = [time.perf_counter()], [0.0]

        def epoch(self, row):
            self.times.append(time.perf_counter())
            self.saving.append(saving["s"])

    n = len(df)
    clock = Clock()
    train_mod.train(df, Path(tmp) / f"run-{model_name}-{size}", cfg, display=clock, force=True)
    speeds = list(n / np.diff(clock.times))
    return (_rate(n, np.diff(clock.times)), float(np.median(np.diff(clock.saving)[1:])),
            float(np.median(np.diff(clock.times)[1:])), speeds)


def _rate(images: int, epoch_seconds) -> float:
    """Images/s over the epochs after the first (it traces the graph): their images over their
    time. Not the median epoch: on the 2-core machine an epoch takes one of two times (about
    2.3 or 3.7 DenseNet-169 images/s at 224, in plain ``model.fit`` too), and a median of a few
    epochs jumps to whichever time most of them had."""
    later = np.asarray(epoch_seconds, dtype=float)[1:]
    return float(images * len(later) / later.sum())


def loop_part(args) -> None:
    """Part 3: covtool's training loop against plain ``model.fit`` (see the module's docstring).

    Each side runs in a fresh Python process (``spawn``), as a ``covtool train`` command or a
    Keras script does: in one process, a model built after another trains slower, whichever
    side it is (JCS at 224 on 2 cores: 4.7 images/s for the first model of the process, 2.3 for
    the later ones, ``keras.backend.clear_session()`` or not), which made the side run second
    look slow. ``--same-process`` runs both in this process, to see that effect.
    """
    import multiprocessing

    from covtool.models.build import ZOO_NAMES

    print(f"covtool train vs plain model.fit, {args.images} images per epoch, batch "
          f"{args.loop_batch}, {args.epochs} epochs (speed: images/s of epochs 2-{args.epochs} together), "
          f"no augmentation, covtool --cache {args.cache}, "
          f"{'rows of ' + str(args.manifest) if args.manifest else 'generated data'}, "
          f"{'both sides in this process' if args.same_process else 'each side in a fresh process'}:")
    print(f"  {'model':<22} {'size':>4} {'model.fit':>10} {'covtool':>10} {'ratio':>6} "
          f"{'checkpoints':>12}  goal >= 0.95x")
    opts = {"cache": args.cache, "batch": args.loop_batch, "epochs": args.epochs}
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        manifest = (pick_rows(Path(args.manifest), args.images, Path(tmp)) if args.manifest
                    else make_ct_data(Path(tmp), args.images))

        def side(kind: str, model_name: str, size: int):
            call = (kind, model_name, size, str(manifest), opts, tmp)
            if args.same_process:
                out = _loop_side(*call)
                import keras
                keras.backend.clear_session()
                return out
            with ctx.Pool(1) as pool:
                return pool.apply(_loop_side, call)

        for model_name in args.models.split(","):
            for size in (int(s) for s in args.sizes.split(",")):
                # rounds taking turns (--loop-rounds; the first round's order is --covtool-first):
                # the machine's state drifts
                bases, runs = [], []
                for r in range(args.loop_rounds):
                    if args.covtool_first == (r % 2 == 0):
                        runs.append(side("covtool", model_name, size))
                        bases.append(side("fit", model_name, size))
                    else:
                        bases.append(side("fit", model_name, size))
                        runs.append(side("covtool", model_name, size))
                base = float(np.median([b[0] for b in bases]))
                ours, saved, epoch_s = (float(np.median([o[k] for o in runs])) for k in range(3))
                if args.loop_rounds > 1:
                    print(f"    rounds: model.fit {', '.join(f'{b[0]:.2f}' for b in bases)}; covtool "
                          f"{', '.join(f'{o[0]:.2f}' for o in runs)} (their medians below)", flush=True)
                if args.epoch_speeds:
                    for name, got in (("model.fit", bases), ("covtool", runs)):
                        for b in got:
                            print(f"    {name} epochs: {', '.join(f'{v:.2f}' for v in b[3])} images/s")
                ratio = ours / base
                label = f"{model_name}" + (" (pooled head)" if model_name in ZOO_NAMES else "")
                print(f"  {label:<22} {size:>4} {base:>8.2f}/s {ours:>8.2f}/s {ratio:>5.2f}x "
                      f"{saved:>6.2f} s/ep ({100 * saved / epoch_s:.0f} %)  "
                      f"{'met' if ratio >= 0.95 else 'NOT met'}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=("pipeline", "loop", "all"), default="all")
    ap.add_argument("--models", default="densenet169,jcs")
    ap.add_argument("--sizes", default="224,480")
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--loop-batch", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--manifest", default=None)
    ap.add_argument("--cache", default="none", help="covtool's --cache in part 3 (none, memory)")
    ap.add_argument("--loop-rounds", type=int, default=1,
                    help="part 3: rounds per configuration, the two sides taking turns")
    ap.add_argument("--covtool-first", action="store_true",
                    help="part 3: run covtool before model.fit (the default is after)")
    ap.add_argument("--same-process", action="store_true",
                    help="part 3: both sides in this process (the default: each in a fresh one)")
    ap.add_argument("--epoch-speeds", action="store_true",
                    help="part 3: print every epoch's images/s")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=14)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.part in ("pipeline", "all"):
        pipeline_part(args)
    if args.part in ("loop", "all"):
        loop_part(args)


def pipeline_part(args) -> None:
    """Parts 1 and 2."""

    import tensorflow as tf

    from covtool.core.manifest import read_manifest
    from covtool.training.config import AUGMENT_PRESETS, PipelineConfig
    from covtool.training.dataset import cached_base, make_dataset
    from covtool.training.table import image_table

    print(f"TensorFlow {tf.__version__}; CPU cores visible: {os.cpu_count()}; "
          f"GPUs: {len(tf.config.list_physical_devices('GPU'))}")
    with tempfile.TemporaryDirectory() as tmp:
        manifest = make_data(Path(tmp), args.n, args.size)
        df = read_manifest(manifest)
        table = image_table(df, ["a", "b"])
        cfg = PipelineConfig((args.size, args.size))
        aug = AUGMENT_PRESETS["covid-ctset"]

        ccfg = PipelineConfig((args.size, args.size), cache="memory")
        cbase = cached_base(table, ccfg)

        def run_pipeline(epoch: int, cached: bool = False) -> float:
            t = time.perf_counter()
            count = 0
            for x, _ in make_dataset(table, ccfg if cached else cfg, args.batch, augment=aug,
                                     shuffle=True, epoch=epoch, base=cbase if cached else None):
                count += int(x.shape[0])
            return count / (time.perf_counter() - t)

        def run_baseline(epoch: int) -> float:
            rng = np.random.default_rng(epoch)
            t = time.perf_counter()
            count = sum(b.shape[0] for b in baseline_batches(table.paths, args.batch, rng))
            return count / (time.perf_counter() - t)

        run_pipeline(0)  # trace once
        run_pipeline(0, cached=True)  # fills the cache (a run of 50 epochs decodes once)
        # interleaved rounds, best of each: a busy machine slows all three alike
        ours, cached, base = [], [], []
        for r in range(1, args.rounds + 1):
            ours.append(run_pipeline(r))
            base.append(run_baseline(r))
            cached.append(run_pipeline(r, cached=True))
        ours, cached, base = max(ours), max(cached), max(base)
        print(f"input pipeline, {args.n} images {args.size}x{args.size} 16-bit, COVID-CTset augmentation "
              f"(best of {args.rounds} interleaved rounds):")
        print(f"  covtool tf.data            {ours:8.1f} images/s   (speed-up {ours / base:.1f}x)")
        print(f"  covtool tf.data, --cache   {cached:8.1f} images/s   (speed-up {cached / base:.1f}x; epochs after the first)")
        print(f"  ImageDataGenerator-style   {base:8.1f} images/s")
        goal = "met" if ours >= 3 * base else "NOT met"
        print(f"  goal >= 3x the baseline: {goal} ({ours / base:.1f}x; cached {cached / base:.1f}x)")

        import keras

        from covtool.models import ModelConfig, build_model

        model = build_model(ModelConfig(name="custom", input_shape=(args.size, args.size, 1), classes=14))
        model.compile(optimizer=keras.optimizers.Nadam(1e-4), loss="sparse_categorical_crossentropy")
        x = np.random.default_rng(1).normal(size=(args.batch, args.size, args.size, 1)).astype("float32")
        y = np.arange(args.batch) % 14
        model.train_on_batch(x, y)  # trace
        t = time.perf_counter()
        for _ in range(args.steps):
            model.train_on_batch(x, y)
        train_ips = args.steps * args.batch / (time.perf_counter() - t)
        print(f"training custom ({args.size}x{args.size}, batch {args.batch}, {args.steps} steps):")
        print(f"  {train_ips:8.1f} images/s  -> the pipeline is {ours / train_ips:.1f}x faster than "
              f"training consumes{' (never the bottleneck)' if ours > train_ips else ' (BOTTLENECK)'}")


if __name__ == "__main__":
    main()
