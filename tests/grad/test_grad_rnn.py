"""Finite-difference checks through time (float64, numpy backend, random dy) of the recurrent
layers, Embedding, Masking and the wrappers: masks, go_backwards, return_state, initial_state."""

import numpy as np
import pytest

from pyminidl import layers, ops
from pyminidl.backend import use_backend
from pyminidl.testing import gradcheck


@pytest.fixture(autouse=True)
def _numpy_backend():
    with use_backend("numpy"):
        yield


def _seeds(y, rng):
    return tuple(rng.standard_normal(v.shape) for v in y) if isinstance(y, tuple) else rng.standard_normal(y.shape)


def _dot(y, dy):
    if isinstance(y, tuple):
        return sum(float((a * b).sum()) for a, b in zip(y, dy))
    return float((y * dy).sum())


def _check(layer, x, rng, states=None, training=False, **kwargs):
    """dx (and d initial_state), and every weight gradient, against finite differences."""
    call = dict(kwargs, **({"initial_state": states} if states is not None else {}))
    y, backward = layer._forward_full(x, training, **call)
    dy = _seeds(y, rng)
    layer.zero_grads()
    dx = backward(dy)

    def loss(_):
        return _dot(layer._forward_full(x, training, **call)[0], dy)

    if states is not None:
        dx, dstates = dx
        for s, g in zip(states, dstates):
            gradcheck(loss, s, g)
    if x.dtype.kind == "f":
        gradcheck(loss, x, dx)
    for w, g in zip(layer.trainable_weights, layer.gradients()):
        gradcheck(loss, w, g)


def _x(rng, n=3, t=4, i=2):
    return rng.standard_normal((n, t, i))


def _mask(rng, n=3, t=4):
    mask = np.ones((n, t), bool)
    mask[0, 2:] = False  # post-padding
    mask[1, :2] = False  # pre-padding
    mask[2] = rng.random(t) > 0.5
    return mask


def _layer(cls, **kw):
    layer = cls(3, dtype="float64", **kw)
    if hasattr(layer, "cell") and getattr(layer.cell, "use_bias", False):
        layer.build((None, 4, 2))
        layer.cell.bias[...] = np.random.default_rng(0).standard_normal(layer.cell.bias.shape) * 0.3
    return layer


RECURRENT = [(layers.SimpleRNN, {}), (layers.LSTM, {}), (layers.GRU, {}), (layers.GRU, {"reset_after": False}),
             (layers.LSTM, {"activation": "relu", "recurrent_activation": "hard_sigmoid"}),
             (layers.SimpleRNN, {"activation": "sigmoid", "use_bias": False})]


@pytest.mark.parametrize("cls,kw", RECURRENT)
@pytest.mark.parametrize("return_sequences", [False, True])
def test_recurrent_layers(cls, kw, return_sequences, rng):
    _check(_layer(cls, return_sequences=return_sequences, **kw), _x(rng), rng)


@pytest.mark.parametrize("cls,kw", RECURRENT[:4])
def test_masks_go_backwards_return_state_initial_state(cls, kw, rng):
    layer = _layer(cls, return_sequences=True, return_state=True, go_backwards=True, **kw)
    n_states = 2 if cls is layers.LSTM else 1
    states = [rng.standard_normal((3, 3)) for _ in range(n_states)]
    _check(layer, _x(rng), rng, states=states, mask=_mask(rng))


@pytest.mark.parametrize("cls", [layers.LSTM, layers.GRU])
def test_masked_last_output(cls, rng):
    _check(_layer(cls), _x(rng), rng, mask=_mask(rng))


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional(merge_mode, rng):
    layer = layers.Bidirectional(layers.GRU(3, return_sequences=True, dtype="float64"), merge_mode=merge_mode,
                                 dtype="float64")
    _check(layer, _x(rng), rng, mask=_mask(rng))


@pytest.mark.parametrize("cls", [layers.LSTM, layers.GRU])
def test_bidirectional_initial_state(cls, rng):
    layer = layers.Bidirectional(cls(2, return_sequences=True, return_state=True, dtype="float64"), dtype="float64")
    n_states = 2 if cls is layers.LSTM else 1
    states = [rng.standard_normal((3, 2)) for _ in range(2 * n_states)]  # forward states, then backward
    _check(layer, _x(rng), rng, states=states, mask=_mask(rng))


def test_bidirectional_return_state(rng):
    layer = layers.Bidirectional(layers.LSTM(2, return_state=True, dtype="float64"), dtype="float64")
    _check(layer, _x(rng), rng)


def test_time_distributed_and_masking(rng):
    _check(layers.TimeDistributed(layers.Dense(3, activation="tanh", dtype="float64"), dtype="float64"), _x(rng), rng)
    x = _x(rng)
    x[0, 1] = 0.0  # a masked step: not differentiable in x there (the mask would flip), so checked directly
    masking = layers.Masking(dtype="float64")
    y, backward = masking._forward_full(x, False)
    dy = rng.standard_normal(y.shape)
    keep = np.ones(x.shape[:2] + (1,))
    keep[0, 1] = 0.0
    np.testing.assert_array_equal(backward(dy), dy * keep)
    np.testing.assert_array_equal(y, x * keep)


def test_embedding_repeated_ids(rng):
    layer = layers.Embedding(5, 3, dtype="float64")
    _check(layer, np.array([[1, 1, 4], [0, 1, 1]]), rng)


def _fixed_masks(cell, seeds=(11, 12, 13, 14, 15, 16, 17, 18)):
    """The cell draws the same dropout masks on every call (finite differences need one function)."""
    count = 2 * (1 if cell._kind == "simple_rnn" else cell._gates)  # input and state mask per gate
    draws = iter(range(10**9))
    cell._next_seed = lambda: seeds[next(draws) % count]


@pytest.mark.parametrize("cls,kw", RECURRENT[:4])
def test_recurrent_dropout_in_training_with_fixed_masks(cls, kw, rng):
    layer = _layer(cls, return_sequences=True, return_state=True, go_backwards=True, dropout=0.3,
                   recurrent_dropout=0.4, **kw)
    _fixed_masks(layer.cell)
    n_states = 2 if cls is layers.LSTM else 1
    states = [rng.standard_normal((3, 3)) for _ in range(n_states)]
    _check(layer, _x(rng), rng, states=states, training=True, mask=_mask(rng))


@pytest.mark.parametrize("kw", [{"activation": "gelu"}, {"activation": "elu", "recurrent_activation": "softsign"}])
def test_activations_outside_the_fused_kernels_run_step_by_step(kw, rng):
    layer = _layer(layers.LSTM, return_sequences=True, **kw)
    assert not layer.cell.fused(False)
    _check(layer, _x(rng), rng, mask=_mask(rng))


class _TanhCell(layers.Layer):
    """A custom cell: h_t = tanh(x_t W + h_{t-1} R)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), name="recurrent_kernel")

    def call(self, inputs, states):
        out = ops.tanh(ops.matmul(inputs, self.kernel) + ops.matmul(states[0], self.recurrent_kernel))
        return out, [out]


def test_custom_cell_return_state_and_initial_state_gradient(rng):
    layer = layers.RNN(_TanhCell(3, dtype="float64"), return_sequences=True, return_state=True,
                       go_backwards=True, dtype="float64")
    _check(layer, _x(rng), rng, states=[rng.standard_normal((3, 3))], mask=_mask(rng))
