"""The recurrent layers' inference path (RNN._infer: predict, evaluate) runs the backend's
*_inference ops (LSTM, SimpleRNN, GRU), which keep no caches, and gives the training forward's
outputs: masks, states, return_state, go_backwards, stateful layers, functional and Sequential
models, both backends."""

import numpy as np
import pytest

import pyminidl
from pyminidl import layers
from pyminidl.backend import get_backend


def _x(n=5, t=7, i=3, seed=0):
    return np.random.default_rng(seed).standard_normal((n, t, i)).astype("float32")


def _spy(monkeypatch, name):
    be, calls = get_backend(), []
    real = getattr(be, name)
    monkeypatch.setattr(be, name, lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


@pytest.mark.parametrize("backend_name", ["cpu", "numpy"])
@pytest.mark.parametrize("cls,op,cfg", [(layers.LSTM, "lstm_inference", {}),
                                        (layers.SimpleRNN, "simple_rnn_inference", {}),
                                        (layers.GRU, "gru_inference", {}),
                                        (layers.GRU, "gru_inference", {"reset_after": False})])
@pytest.mark.parametrize("kw", [{}, {"return_sequences": True}, {"return_state": True}, {"go_backwards": True}])
def test_infer_runs_the_inference_op_and_matches_forward(monkeypatch, backend_name, cls, op, cfg, kw):
    pyminidl.config.set_backend(backend_name)
    layer = cls(6, **cfg, **kw)
    layer.build((None, 7, 3))
    x, mask = _x(), np.random.default_rng(1).random((5, 7)) > 0.3
    want, _ = layer.forward(x, False, mask=mask)
    calls = _spy(monkeypatch, op)
    got = layer._infer(x, mask=mask)
    assert calls == [1]
    for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", [layers.LSTM, layers.SimpleRNN, layers.GRU])
def test_training_forward_keeps_its_backward(cls):
    layer = cls(4, return_sequences=True)
    layer.build((None, 7, 3))
    x = _x()
    y, backward = layer.forward(x, True)
    dx = backward(np.ones_like(y))
    assert dx.shape == x.shape
    np.testing.assert_allclose(layer._infer(x), y, rtol=1e-5, atol=1e-5)


def test_stateful_inference_carries_the_states():
    layer = layers.LSTM(4, stateful=True, return_sequences=True)
    x = _x(n=2)
    first = layer._infer(x)
    states = [s.copy() for s in layer.states]
    second = layer._infer(x)
    ref = layers.LSTM(4, return_sequences=True)
    ref.build((None, 7, 3))
    ref.set_weights(layer.get_weights())
    np.testing.assert_allclose(first, ref(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(second, ref(x, initial_state=states), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rnn,op", [(layers.LSTM, "lstm_inference"), (layers.GRU, "gru_inference")])
@pytest.mark.parametrize("functional", [False, True])
def test_predict_and_evaluate_use_the_inference_op(monkeypatch, functional, rnn, op):
    ids = np.random.default_rng(2).integers(1, 20, (8, 6)).astype("int32")
    ids[:, :2] = 0  # padding: the mask reaches the LSTM
    y = np.random.default_rng(3).random((8, 1)).astype("float32")
    stack = [layers.Embedding(20, 4, mask_zero=True), rnn(5), layers.Dense(1)]
    if functional:
        inp = layers.Input((6,), dtype="int32")
        out = inp
        for layer in stack:
            out = layer(out)
        model = pyminidl.Model(inp, out)
    else:
        model = pyminidl.Sequential([layers.Input((6,), dtype="int32")] + stack)
    model.compile(loss="mse")
    want = model(ids)
    calls = _spy(monkeypatch, op)
    np.testing.assert_allclose(model.predict(ids, verbose=0), want, rtol=1e-5, atol=1e-5)
    model.evaluate(ids, y, verbose=0)
    assert len(calls) == 2
    model.fit(ids, y, epochs=1, verbose=0)  # training still differentiates
    assert len(calls) == 2
