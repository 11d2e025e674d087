"""Grad-CAM over a manifest as a runner stage (:mod:`covtool.core.stage`).

One item is one image row; its outputs (``<id>.png``, the overlay, and with ``npy`` the heatmap
``<id>.npy``) are checked before any work and taken back on failure. Images are classified and
explained in batches of ``batch_size``: :meth:`ExplainStage.run` queues a row and its batch is
computed when full, the last one in :meth:`ExplainStage.finish`. Each image is read on its own
in :meth:`ExplainStage.load` (covtool's decoder, the row's symmetry, the run's channels and
size, as the run's input pipeline prepares it): an unreadable one is that row's error (with
``skip_bad`` its error row; the batch goes on without it), never a whole batch's.
"""

from __future__ import annotations

from pathlib import Path

from covtool.core.errors import ParameterError
from covtool.core.manifest import Row
from covtool.core.stage import Plan, Stage


class ExplainStage(Stage):
    """Grad-CAM heatmaps of a trained run at ``layer`` (default: the last convolutional layer of the backbone, ``gradcam.default_layer``),
    for the predicted class or ``class_name``.

    Each output row: ``path`` the overlay PNG, ``heatmap`` the ``.npy`` (or empty), ``source``
    the image explained, ``label`` (the row's, where it is one of the model's classes), ``pred``,
    ``explained_class``, ``prob`` (of the explained class), ``layer``.
    """

    name = "explain"
    columns = ("heatmap", "pred", "explained_class", "prob", "layer")

    def __init__(self, run: Path, outdir: Path, layer: str | None = None, class_name: str | None = None,
                 npy: bool = False, alpha: float = 0.4, batch_size: int = 8, force: bool = False):
        from covtool.training import rundir
        from covtool.training.config import TrainConfig

        if not 0.0 <= alpha <= 1.0:
            raise ParameterError("alpha", f"must be in [0, 1], got {alpha}")
        if batch_size < 1:
            raise ParameterError("batch_size", f"must be at least 1, got {batch_size}")
        # the classes come from config.json: a bad class is named before TensorFlow starts
        self.classes = list(TrainConfig.from_dict(rundir.read_config(run)).classes)
        if class_name is not None and class_name not in self.classes:
            raise ParameterError("class_name", f"{class_name!r} is not one of the model's classes "
                                               f"({', '.join(self.classes)})")
        self.run_dir, self.outdir, self.layer, self.class_name = Path(run), Path(outdir), layer, class_name
        self.npy, self.alpha, self.batch_size, self.force = npy, alpha, batch_size, force
        self.pending: list[tuple[Row, dict, Plan, object]] = []

    def plan(self, row: Row) -> Plan:
        iid = row.text("id")
        outs = [self.outdir / f"{iid}.png"] + ([self.outdir / f"{iid}.npy"] if self.npy else [])
        return Plan(outputs=outs, inputs=[row.path()])

    def start(self) -> None:
        from covtool.evaluation.predict import load_run
        from covtool.explain.gradcam import check_target, default_layer

        self.config, self.model = load_run(self.run_dir)
        self.target = self.layer or default_layer(self.model)
        check_target(self.model, self.target)

    def load(self, row: Row, plan: Plan, advance):
        """The row's image as the model takes it before normalisation (float32 (H, W, C))."""
        from covtool.core.manifest import Table
        from covtool.evaluation.predict import prepare_array
        from covtool.training.readers import oriented
        from covtool.training.table import image_table

        table = image_table(Table(list(row), [row], row.manifest).frame(), self.classes,
                            require_label=False)  # the row's symmetry, checked
        path = str(table.paths[0])
        img = oriented(path, table.flips[0], table.turns[0], self.config.pipeline.channels)
        return prepare_array(img, self.config.pipeline, path=path)

    def run(self, row: Row, plan: Plan, loaded, advance):
        values: dict = {"id": row.text("id")}
        self.pending.append((row, values, plan, loaded))
        if len(self.pending) >= self.batch_size:
            self.flush()
        return [values]

    def finish(self) -> None:
        self.flush()

    def flush(self) -> None:
        """Explain the queued rows as one batch and fill in their output rows."""
        import numpy as np
        import tensorflow as tf

        from covtool.core.atomic import atomic_path
        from covtool.core.imageio import write_image
        from covtool.explain.gradcam import gradcam, overlay
        from covtool.training.dataset import normalise

        if not self.pending:
            return
        x = np.asarray(normalise(tf.stack([img for *_, img in self.pending]), self.config.pipeline))
        cls = None if self.class_name is None else self.classes.index(self.class_name)
        heat, probs = gradcam(self.model, x, cls, self.target)
        for j, (row, values, plan, _) in enumerate(self.pending):
            pred = int(np.argmax(probs[j]))
            shown = pred if cls is None else cls
            write_image(plan.outputs[0], overlay(x[j], heat[j], self.alpha), force=self.force)
            heat_path = ""
            if self.npy:
                heat_path = str(plan.outputs[1])
                with atomic_path(plan.outputs[1], force=self.force) as tmp, open(tmp, "wb") as fh:
                    np.save(fh, heat[j].astype(np.float32))
            label = row.text("label")
            values.update(path=str(plan.outputs[0]), heatmap=heat_path, source=str(row.path()),
                          label=label if label in self.classes else "", pred=self.classes[pred],
                          explained_class=self.classes[shown], prob=float(probs[j, shown]),
                          layer=self.target)
        self.pending = []

