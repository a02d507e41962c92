"""A functional model hands its output's mask to the loss and the compiled metrics, as Keras 3 does
(and as Sequential does): Embedding(mask_zero=True) -> LSTM(return_sequences=True) -> Dense inside
keras.Model(inputs, outputs). Values checked against the masked formulas and against the same model
built as Sequential with the same weights (fit, evaluate, train_on_batch, test_on_batch)."""

import numpy as np

import pyminidl
from pyminidl import layers


def _data():
    rng = np.random.default_rng(9)
    x = rng.integers(1, 9, (8, 6)).astype("int32")
    x[:4, 3:] = 0  # post-padding
    x[4:, :2] = 0  # pre-padding
    y = rng.integers(0, 2, (8, 6, 1)).astype("float32")
    return x, y, rng.random(8).astype("float32")


def _stack():
    return [layers.Embedding(10, 4, mask_zero=True), layers.LSTM(3, return_sequences=True),
            layers.Dense(1, activation="sigmoid")]


def _functional():
    inp = layers.Input((6,), dtype="int32")
    out = inp
    for layer in _stack():
        out = layer(out)
    return pyminidl.Model(inp, out)


def _compiled(model):
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy", "mse"],
                  weighted_metrics=["accuracy"])
    return model


def test_functional_output_mask_weighs_the_loss_and_the_metrics():
    x, y, sw = _data()
    model = _compiled(_functional())
    logs = model.evaluate(x, y, sample_weight=sw, batch_size=8, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0)[..., 0].astype("float64")
    mask = (x != 0).astype("float64")
    hit = ((p > 0.5) == (y[..., 0] > 0.5)).astype("float64")
    np.testing.assert_allclose(logs["accuracy"], (hit * mask).sum() / mask.sum(), rtol=1e-6)
    np.testing.assert_allclose(logs["mse"], (((p - y[..., 0]) ** 2) * mask).sum() / mask.sum(), rtol=1e-5)
    weights = mask * sw[:, None]
    np.testing.assert_allclose(logs["weighted_accuracy"], (hit * weights).sum() / weights.sum(), rtol=1e-6)
    bce = -(y[..., 0] * np.log(p) + (1 - y[..., 0]) * np.log(1 - p))
    np.testing.assert_allclose(logs["loss"], (bce * weights).sum() / mask.sum(), rtol=1e-4)


def test_functional_and_sequential_give_the_same_masked_numbers():
    x, y, sw = _data()
    func = _compiled(_functional())
    seq = _compiled(pyminidl.Sequential([layers.Input((6,), dtype="int32")] + _stack()))
    seq.set_weights(func.get_weights())
    logs = {}
    for name, model in (("functional", func), ("sequential", seq)):
        logs[name] = [model.evaluate(x, y, sample_weight=sw, verbose=0, return_dict=True),
                      model.test_on_batch(x, y, return_dict=True),
                      model.train_on_batch(x, y, sample_weight=sw, return_dict=True),
                      model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False).history]
    for got, want in zip(logs["functional"], logs["sequential"]):
        assert got.keys() == want.keys()
        for key in want:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-6, atol=1e-7, err_msg=key)
    for a, b in zip(func.get_weights(), seq.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_a_model_without_a_mask_is_unchanged():
    x, y, _ = _data()
    inp = layers.Input((6,), dtype="int32")
    out = layers.Dense(1)(layers.LSTM(3, return_sequences=True)(layers.Embedding(10, 4)(inp)))
    model = pyminidl.Model(inp, out)
    model.compile(loss="mse")
    loss = model.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(loss, ((model.predict(x, verbose=0) - y) ** 2).mean(), rtol=1e-5)
