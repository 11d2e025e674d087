"""The multi-worker epoch (``strategy.run`` steps) computes what ``Model.fit`` computes.

Run here under the default strategy (one replica, in this process); the real two-worker run on
loopback is ``tests/examples/test_multiworker.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from covtool.training.multiworker import MultiWorkerEpochs  # noqa: E402


def _model(seed: int):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model


def _data():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(24, 6)).astype("float32")
    y = (np.argmax(x[:, :3], axis=1)).astype("int32")
    return x, y


@pytest.mark.parametrize("weights", [None, {0: 1.0, 1: 3.0, 2: 0.5}])
def test_one_epoch_matches_fit(weights):
    x, y = _data()
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(6)
    val = tf.data.Dataset.from_tensor_slices((x[:10], y[:10])).batch(6)  # a short last batch

    ref = _model(1)
    hist = ref.fit(ds, validation_data=val, epochs=1, verbose=0, class_weight=weights,
                   shuffle=False).history

    model = _model(1)
    strategy = tf.distribute.get_strategy()
    model.optimizer.build(model.trainable_variables)
    logs = MultiWorkerEpochs(model, strategy).run(ds, 4, val, 2, weights)

    for a, b in zip(ref.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert logs["loss"] == pytest.approx(hist["loss"][0], rel=1e-5)
    assert logs["accuracy"] == pytest.approx(hist["accuracy"][0], abs=1e-6)
    # validation is over all 10 examples, unweighted, as fit's
    probs = model.predict(x[:10], verbose=0)
    expected = -np.log(probs[np.arange(10), y[:10]]).mean()
    assert logs["val_loss"] == pytest.approx(expected, rel=1e-4)
    assert logs["val_accuracy"] == pytest.approx((probs.argmax(1) == y[:10]).mean())
    assert logs["val_loss"] == pytest.approx(hist["val_loss"][0], rel=1e-4)


def test_progress_callback_sees_every_step():
    x, y = _data()
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)

    model = _model(2)
    model.optimizer.build(model.trainable_variables)
    MultiWorkerEpochs(model, tf.distribute.get_strategy()).run(ds, 3, callback=Spy())
    assert seen == [0, 1, 2]
    assert int(model.optimizer.iterations.numpy()) == 3
