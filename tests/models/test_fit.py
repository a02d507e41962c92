"""fit: data sources, History, validation, batch semantics, weights and the exact update."""

import math

import numpy as np
import pytest

import pyminidl
from pyminidl import callbacks, optimizers
from pyminidl.layers import Dense
from pyminidl.models import Sequential


def _regression(rng, n=64, features=3):
    x = rng.standard_normal((n, features)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32)[:features] + 0.3).astype(np.float32)
    return x, y


def _linear(features=3, units=1, activation=None):
    return Sequential([Dense(units, activation=activation, input_dim=features)])


class _CountBatches(callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.sizes = []

    def on_train_batch_begin(self, batch, logs=None):
        self.sizes.append(batch)


def test_fit_returns_history_with_one_value_per_epoch(rng):
    x, y = _regression(rng)
    model = _linear()
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, y, epochs=4, verbose=0)
    assert isinstance(history, callbacks.History)
    assert model.history is history
    assert list(history.history) == ["loss"]
    assert history.epoch == [0, 1, 2, 3]
    assert len(history.history["loss"]) == 4
    assert all(isinstance(v, float) for v in history.history["loss"])
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_history_keys_with_metrics_and_validation_are_sorted_train_then_val(rng):
    x = rng.standard_normal((40, 4)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    model = _linear(4, 1, "sigmoid")
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=2, validation_split=0.25, verbose=0)
    assert list(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert all(len(v) == 2 for v in history.history.values())


@pytest.mark.parametrize("n,batch_size,steps", [(100, None, 4), (100, 32, 4), (64, 32, 2), (10, 3, 4), (5, 64, 1), (7, 1, 7)])
def test_steps_per_epoch_is_ceil_of_samples_over_batch_size(rng, n, batch_size, steps):
    x, y = _regression(rng, n)
    model = _linear()
    model.compile(optimizer="sgd", loss="mse")
    counter = _CountBatches()
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, callbacks=[counter])
    assert counter.sizes == list(range(steps)) == list(range(math.ceil(n / (batch_size or 32))))


def test_steps_per_epoch_limits_each_epoch(rng):
    x, y = _regression(rng, 100)
    model = _linear()
    model.compile(optimizer="sgd", loss="mse")
    counter = _CountBatches()
    # 10 batches, 4 per epoch from one stream: the third epoch meets the end of the data after 2
    # steps and ends there with a warning (Keras 3.15 on the same case: 4, 4, 2 steps).
    with pytest.warns(UserWarning, match="ran out of data"):
        model.fit(x, y, batch_size=10, epochs=3, steps_per_epoch=4, verbose=0, callbacks=[counter])
    assert counter.sizes == [0, 1]
    assert model.optimizer.iterations == 10


def test_fit_accepts_lists_and_float64(rng):
    x, y = _regression(rng, 20)
    model = _linear()
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x.astype(np.float64).tolist(), y.tolist(), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert all(w.dtype == np.float32 for w in model.trainable_weights)


class _Batches:
    """A re-iterable, sized source of (x, y) batches: the shape of a pyminidl.data.Dataset."""

    def __init__(self, x, y, batch_size):
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __iter__(self):
        for i in range(0, len(self.x), self.batch_size):
            yield self.x[i:i + self.batch_size], self.y[i:i + self.batch_size]


def test_fit_on_a_reiterable_batch_source_runs_every_epoch(rng):
    x, y = _regression(rng, 50)
    model = _linear()
    model.compile(optimizer=optimizers.SGD(0.05), loss="mse")
    counter = _CountBatches()
    history = model.fit(_Batches(x, y, 16), epochs=3, verbose=0, callbacks=[counter])
    assert len(history.history["loss"]) == 3
    assert counter.sizes == [0, 1, 2, 3]
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_fit_on_a_pyminidl_dataset(rng):
    data = pytest.importorskip("pyminidl.data")
    x, y = _regression(rng, 50)
    ds = data.Dataset.from_tensor_slices((x, y)).batch(16)
    model = _linear()
    model.compile(optimizer=optimizers.SGD(0.05), loss="mse")
    history = model.fit(ds, epochs=3, verbose=0, validation_data=ds)
    assert len(history.history["val_loss"]) == 3
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_fit_on_a_generator_with_steps_per_epoch(rng):
    x, y = _regression(rng, 32)

    def batches():
        while True:
            for i in range(0, 32, 8):
                yield x[i:i + 8], y[i:i + 8]

    model = _linear()
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(batches(), steps_per_epoch=4, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3
    assert model.optimizer.iterations == 12


def test_finite_generator_without_steps_runs_one_epoch_then_warns(rng):
    x, y = _regression(rng, 32)
    gen = ((x[i:i + 8], y[i:i + 8], np.ones(8, np.float32)) for i in range(0, 32, 8))
    model = _linear()
    model.compile(optimizer="sgd", loss="mse")
    with pytest.warns(UserWarning, match="ran out of data"):
        history = model.fit(gen, epochs=3, verbose=0)
    assert history.epoch == [0]
    assert model.optimizer.iterations == 4


def test_validation_split_holds_out_the_last_samples_before_shuffling(rng):
    x, y = _regression(rng, 50)
    model = _linear()
    model.compile(optimizer=optimizers.SGD(0.0), loss="mse")  # lr 0: weights fixed
    history = model.fit(x, y, epochs=1, validation_split=0.2, verbose=0)
    expected_val = model.evaluate(x[40:], y[40:], verbose=0)
    expected_train = model.evaluate(x[:40], y[:40], verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(expected_val, rel=1e-5)
    assert history.history["loss"][0] == pytest.approx(expected_train, rel=1e-5)


def test_validation_data_and_freq(rng):
    x, y = _regression(rng, 30)
    model = _linear()
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    history = model.fit(x, y, epochs=4, validation_data=(x[:10], y[:10]), validation_freq=2, verbose=0)
    assert len(history.history["loss"]) == 4
    assert len(history.history["val_loss"]) == 2
    assert "val_mae" in history.history


def test_initial_epoch(rng):
    x, y = _regression(rng, 16)
    model = _linear()
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, y, epochs=5, initial_epoch=3, verbose=0)
    assert history.epoch == [3, 4]


def test_sgd_step_with_lr_1_moves_weights_by_exactly_minus_the_gradient(rng):
    x = rng.standard_normal((6, 3)).astype(np.float32)
    y = rng.standard_normal((6, 2)).astype(np.float32)
    model = _linear(3, 2)
    model.compile(optimizer=optimizers.SGD(learning_rate=1.0), loss="mse")
    model.build((None, 3))
    kernel, bias = (w.copy() for w in model.trainable_weights)
    # mse = mean((x @ W + b - y)**2) over all 12 elements: dL/dpred = 2 (pred - y) / 12
    dpred = 2.0 * (x @ kernel + bias - y) / y.size
    model.fit(x, y, batch_size=6, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_allclose(model.trainable_weights[0], kernel - x.T @ dpred, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.trainable_weights[1], bias - dpred.sum(0), rtol=1e-5, atol=1e-6)
    # and once more through train_on_batch
    kernel, bias = (w.copy() for w in model.trainable_weights)
    dpred = 2.0 * (x @ kernel + bias - y) / y.size
    model.train_on_batch(x, y)
    np.testing.assert_allclose(model.trainable_weights[0], kernel - x.T @ dpred, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.trainable_weights[1], bias - dpred.sum(0), rtol=1e-5, atol=1e-6)


def test_softmax_cross_entropy_step_is_the_fused_gradient(rng):
    x = rng.standard_normal((5, 4)).astype(np.float32)
    labels = np.array([0, 2, 1, 2, 0])
    model = _linear(4, 3, "softmax")
    model.compile(optimizer=optimizers.SGD(learning_rate=1.0), loss="sparse_categorical_crossentropy")
    model.build((None, 4))
    kernel, bias = (w.astype(np.float64) for w in model.trainable_weights)
    z = x @ kernel + bias
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = (p - np.eye(3)[labels]) / 5
    loss = model.train_on_batch(x, labels)
    assert loss == pytest.approx(float(-np.log(p[np.arange(5), labels]).mean()), rel=1e-5)
    np.testing.assert_allclose(model.trainable_weights[0], kernel - x.T @ dz, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.trainable_weights[1], bias - dz.sum(0), rtol=1e-5, atol=1e-6)


def test_sample_weight_and_class_weight_scale_the_loss(rng):
    x, y = _regression(rng, 8)
    model = _linear()
    model.compile(optimizer=optimizers.SGD(0.0), loss="mse")
    plain = model.fit(x, y, batch_size=8, verbose=0).history["loss"][0]
    doubled = model.fit(x, y, batch_size=8, sample_weight=np.full(8, 2.0), verbose=0).history["loss"][0]
    assert doubled == pytest.approx(2 * plain, rel=1e-5)
    half = np.r_[np.ones(4), np.zeros(4)].astype(np.float32)
    first_half = model.fit(x, y, batch_size=8, sample_weight=half, shuffle=False, verbose=0).history["loss"][0]
    expected = float(((model.predict(x[:4], verbose=0) - y[:4]) ** 2).sum() / 8)
    assert first_half == pytest.approx(expected, rel=1e-5)

    clf = _linear(3, 2, "softmax")
    clf.compile(optimizer=optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    labels = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    base = clf.fit(x, labels, batch_size=8, verbose=0).history["loss"][0]
    weighted = clf.fit(x, labels, batch_size=8, class_weight={0: 3.0, 1: 3.0}, verbose=0).history["loss"][0]
    assert weighted == pytest.approx(3 * base, rel=1e-5)
    only0 = clf.fit(x, labels, batch_size=8, class_weight={0: 1.0, 1: 0.0}, verbose=0).history["loss"][0]
    p = clf.predict(x, verbose=0)
    assert only0 == pytest.approx(float(-np.log(p[labels == 0, 0]).sum() / 8), rel=1e-4)


def test_loss_weights_scale_loss_and_gradient(rng):
    x, y = _regression(rng, 8)
    a, b = _linear(), _linear()
    a.build((None, 3))
    b.build((None, 3))
    b.set_weights(a.get_weights())
    a.compile(optimizer=optimizers.SGD(0.1), loss="mse")
    b.compile(optimizer=optimizers.SGD(0.05), loss="mse", loss_weights=2.0)
    la = a.train_on_batch(x, y)
    lb = b.train_on_batch(x, y)
    assert lb == pytest.approx(2 * la, rel=1e-5)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)


def test_stop_training_from_a_callback_ends_the_epoch_loop(rng):
    x, y = _regression(rng, 16)
    model = _linear()
    model.compile(optimizer="sgd", loss="mse")

    class StopAfterTwo(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.stop_training = True

    history = model.fit(x, y, epochs=10, verbose=0, callbacks=[StopAfterTwo()])
    assert history.epoch == [0, 1]


def test_model_builds_from_the_data_on_first_fit(rng):
    x, y = _regression(rng, 16)
    model = Sequential([Dense(4, activation="relu"), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    assert not model.built
    model.fit(x, y, epochs=1, verbose=0)
    assert model.built
    assert model.trainable_weights[0].shape == (3, 4)


def test_shuffle_is_reproducible_with_the_seed(rng):
    x, y = _regression(rng, 40)
    results = []
    for _ in range(2):
        pyminidl.random.seed(7)
        model = _linear()
        model.compile(optimizer="sgd", loss="mse")
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        results.append(model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_infinite_dataset_needs_steps_per_epoch(rng):
    data = pytest.importorskip("pyminidl.data")
    x, y = _regression(rng, 16)
    ds = data.Dataset.from_tensor_slices((x, y)).batch(4).repeat()
    model = _linear()
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="`steps_per_epoch`"):
        model.fit(ds, epochs=1, verbose=0)
    history = model.fit(ds, epochs=2, steps_per_epoch=3, verbose=0)
    assert model.optimizer.iterations == 6 and len(history.epoch) == 2


def test_reported_loss_includes_regularization_penalties(rng):
    from pyminidl import regularizers

    x, y = _regression(rng, 8)
    model = Sequential([Dense(1, input_dim=3, kernel_regularizer=regularizers.L2(0.1))])
    model.compile(optimizer=optimizers.SGD(0.0), loss="mse")
    kernel = model.trainable_weights[0]
    mse = float(((model.predict(x, verbose=0) - y) ** 2).mean())
    penalty = 0.1 * float((kernel.astype(np.float64) ** 2).sum())
    history = model.fit(x, y, batch_size=8, verbose=0)
    assert history.history["loss"][0] == pytest.approx(mse + penalty, rel=1e-5)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(mse + penalty, rel=1e-5)


def test_dropout_is_active_in_fit_only(rng):
    from pyminidl.layers import Dropout

    x, y = _regression(rng, 32)
    model = Sequential([Dense(16, activation="relu", input_dim=3), Dropout(0.5), Dense(1)])
    model.compile(optimizer=optimizers.SGD(0.0), loss="mse")
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))
    evaluated = model.evaluate(x, y, verbose=0)
    assert model.evaluate(x, y, verbose=0) == evaluated
    trained = model.fit(x, y, batch_size=32, epochs=2, verbose=0).history["loss"]
    assert trained[0] != pytest.approx(evaluated, rel=1e-6)  # a random half of the units dropped


def test_weighted_metrics_use_sample_weight(rng):
    x = rng.standard_normal((8, 3)).astype(np.float32)
    labels = np.array([0, 1] * 4)
    model = _linear(3, 2, "softmax")
    model.compile(optimizer=optimizers.SGD(0.0), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], weighted_metrics=["accuracy"])
    pred = model.predict(x, verbose=0).argmax(1)
    w = np.r_[np.ones(4), np.zeros(4)].astype(np.float32)
    logs = model.fit(x, labels, batch_size=8, sample_weight=w, shuffle=False, verbose=0).history
    assert set(logs) == {"accuracy", "loss", "weighted_accuracy"}
    assert logs["accuracy"][0] == pytest.approx(float((pred == labels).mean()))
    assert logs["weighted_accuracy"][0] == pytest.approx(float((pred == labels)[:4].mean()))
