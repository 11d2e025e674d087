"""One training epoch under ``MultiWorkerMirroredStrategy`` with ``strategy.run`` steps.

Why not ``Model.fit``: Keras 3's ``fit`` does not run under this strategy (it reduces a
``PerReplica`` batch eagerly before the first step, then reduces scalar logs along axis 0;
keras-team/keras#20585, tensorflow/tensorflow#72388). The step below is the one TensorFlow documents
for custom loops: each replica computes its examples' weighted loss over the *global* number of
examples, the Keras optimizer sums the replicas' gradients (``apply_gradients`` in a replica context
all-reduces), and the logs are exact sums over all workers divided by global counts.

It matches ``fit``'s semantics where covtool relies on them: class weights multiply each example's
loss and the mean is over examples (Keras's ``sum_over_batch_size``); validation is unweighted;
regularisation losses are added once; a mixed-precision model's loss is scaled and unscaled by its
``LossScaleOptimizer``. ``loss`` and ``accuracy`` in the logs are over all examples of the epoch
(``fit`` averages per-batch means, which differs only on a short last batch).
"""

from __future__ import annotations

SUM = "SUM"


class MultiWorkerEpochs:
    """Distributed train and test steps for one compiled model, traced once and reused per epoch."""

    def __init__(self, model, strategy):
        import keras
        import tensorflow as tf

        self.model = model
        self.strategy = strategy
        self._loss = keras.losses.SparseCategoricalCrossentropy(reduction=None)
        optimizer = model.optimizer

        def replica_train(images, labels, weights):
            ctx = tf.distribute.get_replica_context()
            count = ctx.all_reduce(SUM, tf.cast(tf.shape(labels)[0], tf.float32))
            with tf.GradientTape() as tape:
                probs = model(images, training=True)
                per_example = tf.cast(self._loss(labels, probs), tf.float32) * weights
                loss = tf.math.divide_no_nan(tf.reduce_sum(per_example), count)
                if model.losses:
                    loss += tf.add_n([tf.cast(x, tf.float32) for x in model.losses]) / float(
                        strategy.num_replicas_in_sync)
                scaled = optimizer.scale_loss(loss) if hasattr(optimizer, "scale_loss") else loss
            variables = model.trainable_variables
            grads = tape.gradient(scaled, variables)
            optimizer.apply_gradients(zip(grads, variables))
            return self._sums(labels, probs, per_example)

        def replica_test(images, labels):
            probs = model(images, training=False)
            per_example = tf.cast(self._loss(labels, probs), tf.float32)
            return self._sums(labels, probs, per_example)

        def reduce(values):
            return [strategy.reduce(SUM, v, axis=None) for v in values]

        # the iterator is advanced inside the function: an eager ``next`` on a distributed
        # iterator runs a cross-worker collective per batch (seconds each)
        @tf.function
        def train_step(iterator):
            images, labels, weights = next(iterator)
            return reduce(strategy.run(replica_train, args=(images, labels, weights)))

        @tf.function
        def test_step(iterator):
            images, labels = next(iterator)
            return reduce(strategy.run(replica_test, args=(images, labels)))

        self._train_step, self._test_step = train_step, test_step

    @staticmethod
    def _sums(labels, probs, per_example):
        import tensorflow as tf

        predicted = tf.argmax(probs, axis=-1, output_type=tf.int32)
        correct = tf.cast(tf.equal(predicted, tf.cast(labels, tf.int32)), tf.float32)
        n = tf.cast(tf.shape(labels)[0], tf.float32)
        return tf.reduce_sum(per_example), tf.reduce_sum(correct), n

    def _distribute(self, ds):
        import tensorflow as tf

        options = tf.data.Options()
        # every worker builds the same (seeded) pipeline and keeps its share of each global batch
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return self.strategy.experimental_distribute_dataset(ds.with_options(options))

    def run(self, train_ds, train_steps: int, val_ds=None, val_steps: int = 0,
            class_weights: dict[int, float] | None = None, callback=None) -> dict[str, float]:
        """One epoch: ``train_steps`` batches of ``train_ds`` (then ``val_steps`` of ``val_ds``).

        The step counts are global (the same on every worker). Training batches must be whole
        (``drop_remainder``): a worker whose share of a short last batch were empty would feed
        batch normalisation an empty batch.
        """
        import tensorflow as tf

        table = None
        if class_weights:
            size = max(class_weights) + 1
            table = tf.constant([float(class_weights.get(i, 1.0)) for i in range(size)], tf.float32)

        def with_weights(images, labels):
            if table is None:
                w = tf.ones(tf.shape(labels), tf.float32)
            else:
                w = tf.gather(table, tf.cast(labels, tf.int32))
            return images, labels, w

        if callback is not None:
            callback.on_train_begin()
        iterator = iter(self._distribute(train_ds.map(with_weights)))
        totals = [0.0, 0.0, 0.0]
        for step in range(train_steps):
            totals = [t + float(v) for t, v in zip(totals, self._train_step(iterator))]
            if callback is not None:
                callback.on_train_batch_end(step)
        if callback is not None:
            callback.on_train_end()
        loss, correct, n = totals
        logs = {"accuracy": correct / max(n, 1.0), "loss": loss / max(n, 1.0)}
        if val_ds is not None and val_steps:
            iterator = iter(self._distribute(val_ds))
            totals = [0.0, 0.0, 0.0]
            for _ in range(val_steps):
                totals = [t + float(v) for t, v in zip(totals, self._test_step(iterator))]
            loss, correct, n = totals
            logs.update(val_accuracy=correct / max(n, 1.0), val_loss=loss / max(n, 1.0))
        return logs
