"""Keras 3's customisation hooks: train_step / test_step / predict_step / compute_loss."""

import numpy as np

from pyminidl import ops
from pyminidl.layers import Dense, Input
from pyminidl.models import Sequential


class _TapeModel(Sequential):
    """The "customize what happens in fit()" idiom of the Keras guide."""

    steps = 0

    def train_step(self, data):
        x, y = data[0], data[1]
        with ops.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        type(self).steps += 1
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
        return self.compute_metrics(x, y, y_pred)


def _data(rng):
    x = rng.standard_normal((64, 3)).astype("float32")
    return x, (x @ np.array([[1.0], [-2.0], [0.5]], "float32")).astype("float32")


def test_fit_runs_an_overriding_train_step_and_converges(rng):
    x, y = _data(rng)
    model = _TapeModel([Input((3,)), Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    history = model.fit(x, y, epochs=20, batch_size=16, verbose=0)
    assert _TapeModel.steps == 80
    assert history.history["loss"][-1] < 0.1 * history.history["loss"][0]
    assert set(history.history) == {"loss", "mae"}


def test_compute_loss_matches_the_default_step(rng):
    x, y = _data(rng)
    a = Sequential([Input((3,)), Dense(1)])
    b = _TapeModel([Input((3,)), Dense(1)])
    b.set_weights(a.get_weights())
    for m in (a, b):
        m.compile(optimizer="sgd", loss="mse")
        m.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)


def test_overriding_test_and_predict_steps(rng):
    class Model(Sequential):
        def test_step(self, data):
            return {"seen": float(len(data[0]))}

        def predict_step(self, data):
            return self(data[0]) * 0 + 7

    x, y = _data(rng)
    model = Model([Input((3,)), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    assert model.evaluate(x, y, batch_size=64, verbose=0, return_dict=True) == {"seen": 64.0}
    np.testing.assert_array_equal(model.predict(x, verbose=0), 7)
    np.testing.assert_array_equal(model.predict_step((x,)), 7)  # public hook callable directly


def test_default_train_step_is_public_and_returns_logs(rng):
    x, y = _data(rng)
    model = Sequential([Input((3,)), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    logs = model.train_step((x, y))
    assert set(logs) == {"loss"} and logs["loss"] > 0
