"""A convolution's relu (or relu6) right before a max pooling runs in the pooling, on the pooled
values (Sequential pairs the layers: FORWARD_OPTIONS.defer_activation / pool_activation): the
activation commutes with the max, so outputs, input gradients, weight gradients and training
are those of the layers run one after the other, bit for bit (on the NumPy reference a
channels_first weight gradient may differ in the last bit: its sums follow the array layouts,
which the Activation layer between changes)."""

import numpy as np
import pytest

import pyminidl
from pyminidl import layers, regularizers
from pyminidl.backend import get_backend
from pyminidl.layers.base import FORWARD_OPTIONS
from pyminidl.models import Sequential
from pyminidl.models.sequential import _deferred_activations


def _grads(model):
    return [np.array(g) for layer in model.layers for g in layer.grads.values()]


def _pair_models(conv, pool, shape, activation):
    """(fused, separate): conv(activation=...) then pool, and conv, Activation, pool, same weights."""
    head = [pyminidl.Input(shape)]
    tail = [pool(), layers.Flatten(), layers.Dense(3)]
    fused = Sequential(head + [conv(activation)] + tail)
    separate = Sequential(head + [conv(None), layers.Activation(activation)] + [pool(), layers.Flatten(),
                                                                                 layers.Dense(3)])
    separate.set_weights(fused.get_weights())
    return fused, separate


def _forward_backward(model, x, dy):
    for layer in model.layers:
        layer.zero_grads()
    y, backward = model.forward(x, training=True)
    return y, backward(dy.copy()), _grads(model)


CASES = [
    # (conv, pool, input shape): 2-D, channels_first, overlapping 'same' windows, 1-D
    (lambda a: layers.Conv2D(5, 3, padding="same", activation=a), lambda: layers.MaxPooling2D(2), (12, 11, 3)),
    (lambda a: layers.Conv2D(4, 3, activation=a, data_format="channels_first"),
     lambda: layers.MaxPooling2D(2, data_format="channels_first"), (3, 9, 10)),
    (lambda a: layers.Conv2D(4, 2, strides=2, activation=a), lambda: layers.MaxPooling2D(3, strides=1, padding="same"),
     (13, 13, 2)),
    (lambda a: layers.Conv1D(6, 3, activation=a), lambda: layers.MaxPooling1D(2), (17, 4)),
]


@pytest.mark.parametrize("activation", ["relu", "relu6"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_deferred_activation_gives_the_same_bits(rng, case, activation):
    conv, pool, shape = CASES[case]
    fused, separate = _pair_models(conv, pool, shape, activation)
    assert _deferred_activations(fused.layers)[0] is not None  # the pair is fused
    assert all(d is None for d in _deferred_activations(separate.layers))  # the Activation layer sits between
    x = (rng.standard_normal((6,) + shape) * 4).astype(np.float32)  # relu6's upper kink is reached
    dy = rng.standard_normal(fused.output_shape[1:]).astype(np.float32)[None].repeat(6, axis=0)
    y, dx, grads = _forward_backward(fused, x, dy)
    ref_y, ref_dx, ref_grads = _forward_backward(separate, x, dy)
    np.testing.assert_array_equal(y, ref_y)
    np.testing.assert_array_equal(dx, ref_dx)
    assert len(grads) == len(ref_grads)
    for g, r in zip(grads, ref_grads):
        if get_backend().name == "numpy":
            np.testing.assert_allclose(g, r, rtol=1e-6, atol=1e-6)
        else:
            np.testing.assert_array_equal(g, r)
    np.testing.assert_array_equal(fused.predict(x, verbose=0), separate.predict(x, verbose=0))
    assert FORWARD_OPTIONS.defer_activation is False and FORWARD_OPTIONS.pool_activation is None  # restored


def test_training_with_the_deferred_activation_matches(rng):
    # Within rounding, not bit for bit: as the model's first layer the fused pair also sums the
    # convolution's weight gradient from the pooled gradient (conv_maxpool_backward), in another order.
    conv, pool, shape = CASES[0]
    x = rng.standard_normal((32,) + shape).astype(np.float32)
    y = rng.integers(0, 3, 32)
    losses, weights = [], []
    for model in _pair_models(conv, pool, shape, "relu"):
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        losses.append(model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history["loss"])
        weights.append(model.get_weights())
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
    for u, v in zip(*weights):
        np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-5)


def test_only_activations_that_commute_with_a_max_are_deferred():
    def pairs(*model_layers):
        return _deferred_activations(list(model_layers))[0]

    class CustomCall(layers.Conv2D):
        def call(self, x):
            return x

    assert pairs(layers.Conv2D(2, 3, activation="relu"), layers.MaxPooling2D()) == ("relu", {})
    assert pairs(layers.Conv2D(2, 3, activation="sigmoid"), layers.MaxPooling2D()) is None
    assert pairs(layers.Conv2D(2, 3, activation="relu"), layers.AveragePooling2D(2)) is None
    assert pairs(layers.Conv2D(2, 3, activation="relu"), layers.GlobalMaxPooling2D()) is None
    assert pairs(layers.Conv2D(2, 3, activation="relu", activity_regularizer=regularizers.L2(0.1)),
                 layers.MaxPooling2D()) is None
    assert pairs(layers.Conv2DTranspose(2, 3, activation="relu"), layers.MaxPooling2D()) is None
    assert pairs(CustomCall(2, 3, activation="relu"), layers.MaxPooling2D()) is None
    assert pairs(layers.Dense(2, activation="relu"), layers.MaxPooling1D(2)) is None
    assert _deferred_activations([layers.Conv2D(2, 3, activation="relu")]) == [None]  # last layer
