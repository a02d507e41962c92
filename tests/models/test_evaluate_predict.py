"""evaluate / predict / *_on_batch: return types, batching invariance, Keras 3 semantics."""

import numpy as np
import pytest

from pyminidl import optimizers
from pyminidl.layers import Dense
from pyminidl.models import Sequential


def _classifier(rng, features=4, classes=3):
    model = Sequential([Dense(8, activation="tanh", input_dim=features), Dense(classes, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = rng.standard_normal((23, features)).astype(np.float32)
    y = rng.integers(0, classes, 23)
    return model, x, y


@pytest.mark.parametrize("batch_size", [1, 7, 32])
def test_predict_does_not_depend_on_batch_size(rng, batch_size):
    model, x, _ = _classifier(rng)
    reference = model.predict(x, batch_size=23, verbose=0)
    got = model.predict(x, batch_size=batch_size, verbose=0)
    assert isinstance(got, np.ndarray)
    assert got.shape == (23, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.sum(1), 1.0, rtol=1e-5)


def test_predict_builds_the_model_and_accepts_generators(rng):
    model = Sequential([Dense(2, input_dim=3)])
    x = rng.standard_normal((10, 3)).astype(np.float32)
    full = model.predict(x, verbose=0)
    from_gen = model.predict((x[i:i + 4] for i in range(0, 10, 4)), verbose=0)
    np.testing.assert_allclose(from_gen, full, rtol=1e-6)
    with_steps = model.predict(x, batch_size=4, steps=2, verbose=0)
    assert with_steps.shape == (8, 2)
    np.testing.assert_allclose(model.predict_on_batch(x), full, rtol=1e-6)

    lazy = Sequential([Dense(2)])
    assert lazy.predict(x, verbose=0).shape == (10, 2)


def test_evaluate_returns_scalar_without_metrics_list_with_them_and_dict_on_request(rng):
    model, x, y = _classifier(rng)
    result = model.evaluate(x, y, verbose=0)
    assert isinstance(result, list) and len(result) == 2
    loss, accuracy = result
    assert isinstance(loss, float) and 0.0 <= accuracy <= 1.0
    as_dict = model.evaluate(x, y, verbose=0, return_dict=True)
    assert as_dict == {"accuracy": accuracy, "loss": loss}
    assert model.metrics_names == ["loss", "accuracy"]

    plain = Sequential([Dense(1, input_dim=4)])
    plain.compile(optimizer="sgd", loss="mse")
    value = plain.evaluate(x, y.astype(np.float32), verbose=0)
    assert isinstance(value, float)


def test_evaluate_matches_the_loss_of_the_predictions(rng):
    model, x, y = _classifier(rng)
    probs = model.predict(x, verbose=0)
    expected = float(-np.log(probs[np.arange(len(y)), y]).mean())
    accuracy = float((probs.argmax(1) == y).mean())
    for batch_size in (1, 5, 32):
        loss, acc = model.evaluate(x, y, batch_size=batch_size, verbose=0)
        assert loss == pytest.approx(expected, rel=1e-4)
        assert acc == pytest.approx(accuracy)


def test_evaluate_with_sample_weight_and_steps(rng):
    model = Sequential([Dense(1, input_dim=2)])
    model.compile(optimizer="sgd", loss="mse")
    x = rng.standard_normal((8, 2)).astype(np.float32)
    y = rng.standard_normal((8, 1)).astype(np.float32)
    err = ((model.predict(x, verbose=0) - y) ** 2).ravel()
    w = np.arange(8, dtype=np.float32)
    assert model.evaluate(x, y, sample_weight=w, batch_size=8, verbose=0) == pytest.approx(float((err * w).mean()), rel=1e-5)
    # steps=1 with batch_size=4: only the first four samples
    assert model.evaluate(x, y, batch_size=4, steps=1, verbose=0) == pytest.approx(float(err[:4].mean()), rel=1e-5)


def test_train_on_batch_updates_and_reports_running_metrics(rng):
    model, x, y = _classifier(rng)
    before = [w.copy() for w in model.trainable_weights]
    result = model.train_on_batch(x, y)
    assert isinstance(result, list) and len(result) == 2
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.trainable_weights))
    logs = model.train_on_batch(x, y, return_dict=True)
    assert set(logs) == {"loss", "accuracy"}
    assert model.optimizer.iterations == 2
    weighted = model.train_on_batch(x, y, class_weight={0: 1.0, 1: 2.0, 2: 0.5})
    assert np.isfinite(weighted[0])


def test_test_on_batch_does_not_change_weights(rng):
    model, x, y = _classifier(rng)
    before = [w.copy() for w in model.trainable_weights]
    loss, acc = model.test_on_batch(x, y)
    for a, b in zip(before, model.trainable_weights):
        np.testing.assert_array_equal(a, b)
    model.reset_metrics()
    assert model.test_on_batch(x, y, return_dict=True) == {"accuracy": acc, "loss": loss}


def test_trained_classifier_evaluates_consistently(rng):
    model, x, y = _classifier(rng)
    model.compile(optimizer=optimizers.Adam(0.05), loss="sparse_categorical_crossentropy", metrics=["acc"])
    history = model.fit(x, y, epochs=30, batch_size=8, verbose=0)
    assert "acc" in history.history
    loss, acc = model.evaluate(x, y, verbose=0)
    assert loss < history.history["loss"][0]
