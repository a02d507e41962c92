"""Compiled metrics start fresh, *_on_batch report one batch, EarlyStopping reads a metric's direction (Keras 3)."""

import numpy as np
import pytest

import pyminidl
from pyminidl import callbacks, layers, metrics


def _model(out=3, activation="softmax"):
    pyminidl.utils.set_random_seed(0)
    return pyminidl.models.Sequential([layers.Dense(8, input_dim=4, activation="relu"),
                                       layers.Dense(out, activation=activation)])


def _data(n=60, classes=3):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 4)).astype("float32"), rng.integers(0, classes, n)


def test_metric_object_with_old_state_is_reset_when_compiled():
    x, y = _data()
    acc = metrics.SparseCategoricalAccuracy(name="acc")
    acc.update_state(np.array([0, 0]), np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]))  # stale: 0/2 right
    model = _model()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=[acc])
    _, got = model.evaluate(x, y, verbose=0)
    want = float(np.mean(model.predict(x, verbose=0).argmax(axis=1) == y))
    assert got == pytest.approx(want)


def test_recompiling_with_the_same_metric_object_gives_fresh_numbers():
    x, y = _data()
    acc = metrics.SparseCategoricalAccuracy(name="acc")
    model = _model()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=[acc])
    model.fit(x, y, epochs=2, verbose=0)
    model.compile(pyminidl.optimizers.Adam(1e-4), "sparse_categorical_crossentropy", metrics=[acc])
    _, got = model.evaluate(x[:10], y[:10], verbose=0)
    assert got == pytest.approx(float(np.mean(model.predict(x[:10], verbose=0).argmax(axis=1) == y[:10])))


def test_train_and_test_on_batch_report_this_batch_only():
    x, y = _data()
    model = _model()
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.evaluate(x, y, verbose=0)  # would leak into a running average
    before = model.predict(x[:10], verbose=0)
    loss, acc = model.train_on_batch(x[:10], y[:10])
    want_loss = pyminidl.losses.SparseCategoricalCrossentropy()(y[:10], before)
    assert loss == pytest.approx(want_loss, rel=1e-5)
    assert acc == pytest.approx(float(np.mean(before.argmax(axis=1) == y[:10])))
    loss, _ = model.test_on_batch(x[:10], y[:10])
    after = model.predict(x[:10], verbose=0)
    assert loss == pytest.approx(pyminidl.losses.SparseCategoricalCrossentropy()(y[:10], after), rel=1e-5)


@pytest.mark.parametrize("metric, mode", [(metrics.Recall(name="rec"), "max"), (metrics.AUC(name="roc"), "max"),
                                          (metrics.RootMeanSquaredError(name="r"), "min")])
def test_early_stopping_auto_mode_reads_the_metric_direction(metric, mode):
    x, y = _data(classes=2)
    model = _model(out=1, activation="sigmoid")
    model.compile("sgd", "binary_crossentropy", metrics=[metric])
    stop = callbacks.EarlyStopping(monitor="val_" + metric.name, patience=5)
    model.fit(x, y.astype("float32"), validation_split=0.25, epochs=2, verbose=0, callbacks=[stop])
    assert stop.mode == "auto"
    assert bool(stop.monitor_op(1.0, 0.0)) == (mode == "max")  # is a larger value an improvement?
