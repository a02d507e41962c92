"""The fused Dense backward overwrites its incoming gradient only when the model hands it a
fresh array nobody else reads (FORWARD_OPTIONS.owns_dy, set by Sequential after a Dense)."""

import numpy as np
import pytest

import pyminidl
from pyminidl import layers
from pyminidl.layers.base import FORWARD_OPTIONS
from pyminidl.models import Model, Sequential


def _grads(model):
    return [np.array(g) for layer in model.layers for g in layer.grads.values()]


def _mlp(activation, seed=0):
    pyminidl.utils.set_random_seed(seed)
    return Sequential([layers.Dense(17, activation=activation, input_dim=9), layers.Dense(13, activation=activation),
                       layers.Dense(5)])


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_sequential_in_place_backward_gives_the_reference_gradients(rng, activation):
    x = rng.standard_normal((11, 9)).astype(np.float32)
    dy = rng.standard_normal((11, 5)).astype(np.float32)
    model = _mlp(activation)
    model(x)
    _, backward = model.forward(x, training=True)
    dx = backward(dy.copy())
    fast = _grads(model)
    with pyminidl.backend.use_backend("numpy"):  # the reference: allocating, float32 as given
        ref_model = _mlp(activation)
        ref_model(x)
        ref_model.set_weights(model.get_weights())
        for layer in ref_model.layers:
            layer.zero_grads()
        _, ref_backward = ref_model.forward(x, training=True)
        ref_dx = ref_backward(dy.copy())
    for g, r in zip(fast, _grads(ref_model)):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-4, atol=1e-5)


def _ownership_probe(seen):
    """A layer class that notes FORWARD_OPTIONS.owns_dy in ``seen`` at each forward and passes dy on."""

    class Probe(layers.Layer):
        def forward(self, x, training=False):
            seen.append(FORWARD_OPTIONS.owns_dy)
            return x, lambda dy: dy

    return Probe


def test_sequential_marks_ownership_only_after_a_dense(rng):
    seen = []
    Probe = _ownership_probe(seen)

    model = Sequential([layers.Dense(4, input_dim=3), Probe(), layers.Dense(4), Probe(), layers.Activation("relu"),
                        Probe()])
    x = rng.standard_normal((2, 3)).astype(np.float32)
    model(x)  # built (a plain call runs with the defaults)
    seen.clear()
    model.forward(x, training=True)
    assert seen == [True, False, False]  # before a Dense; before an Activation; the last layer
    assert FORWARD_OPTIONS.owns_dy is False  # restored after the forward


def test_ownership_passes_through_a_flatten_and_comes_from_a_conv2d(rng):
    seen = []
    Probe = _ownership_probe(seen)

    model = Sequential([layers.Input((6, 6, 2)), Probe(), layers.Conv2D(3, 3), Probe(), layers.Flatten(),
                        layers.Dense(2), Probe(), layers.Flatten(), Probe(), layers.Flatten(), layers.Activation("relu")])
    x = rng.standard_normal((2, 6, 6, 2)).astype(np.float32)
    model(x)  # built (a plain call runs with the defaults)
    seen.clear()
    model.forward(x, training=True)
    # before a Conv2D; before a Flatten before a Dense; before a Flatten the Probe's own dy reaches
    # (not fresh: the Probe passes its dy on); before a Flatten before an Activation
    assert seen == [True, True, False, False]


@pytest.mark.parametrize("training", [True, False])
def test_a_dense_before_a_dropout_owns_its_gradient_and_trains_the_same(rng, training):
    seen = []
    Probe = _ownership_probe(seen)

    model = Sequential([layers.Input((6,)), Probe(), layers.Dropout(0.3), layers.Dense(5), Probe(),
                        layers.Dropout(0.3, seed=2)])
    x = rng.standard_normal((4, 6)).astype(np.float32)
    model(x)
    seen.clear()
    _, backward = model.forward(x, training=training)
    assert seen == [True, False]  # a Dropout after a Dense hands on a fresh gradient; the last one's is the caller's
    dy = rng.standard_normal((4, 5)).astype(np.float32)
    kept = dy.copy()
    backward(dy)
    np.testing.assert_array_equal(dy, kept)


def test_a_pooling_overwrites_only_a_gradient_it_owns(rng):
    # The max pooling applies the convolution's deferred relu to its dy in place when the layer
    # after it made that dy anew (a Conv2D, a Flatten before a Dense), else into a new array.
    x = rng.standard_normal((2, 8, 8, 1)).astype(np.float32)
    model = Sequential([layers.Input((8, 8, 1)), layers.Conv2D(2, 3, padding="same", activation="relu"),
                        layers.MaxPooling2D(2), layers.Conv2D(2, 3, padding="same", activation="relu"),
                        layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(3)])
    ref = Sequential([layers.Input((8, 8, 1)), layers.Conv2D(2, 3, padding="same"), layers.Activation("relu"),
                      layers.MaxPooling2D(2), layers.Conv2D(2, 3, padding="same"), layers.Activation("relu"),
                      layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(3)])
    ref.set_weights(model.get_weights())
    dy = rng.standard_normal((2, 3)).astype(np.float32)
    results = []
    for m in (model, ref):
        for layer in m.layers:
            layer.zero_grads()
        _, backward = m.forward(x, training=True)
        kept = dy.copy()
        dx = backward(dy)
        np.testing.assert_array_equal(dy, kept)  # the caller's gradient is never written
        results.append((dx, _grads(m)))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5, atol=1e-6)
    for g, r in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)


def test_a_gradient_two_branches_share_is_not_overwritten(rng):
    # Add's backward hands the same dy array to both branches: neither Dense may write into it.
    inp = layers.Input((6,))
    out = layers.Add()([layers.Dense(5, activation="relu")(inp), layers.Dense(5, activation="tanh")(inp)])
    model = Model(inp, out)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    dy = rng.standard_normal((4, 5)).astype(np.float32)
    _, backward = model.forward(x, training=True)
    kept = dy.copy()
    backward(dy)
    np.testing.assert_array_equal(dy, kept)


def test_a_direct_forward_never_overwrites_the_callers_gradient(rng):
    layer = layers.Dense(3, activation="relu")
    x = rng.standard_normal((4, 2)).astype(np.float32)
    layer(x)
    _, backward = layer.forward(x, training=True)
    dy = rng.standard_normal((4, 3)).astype(np.float32)
    kept = dy.copy()
    backward(dy)
    np.testing.assert_array_equal(dy, kept)


@pytest.mark.parametrize("owns_dy", [False, True])
def test_relu_applied_in_place_keeps_the_pre_activation_mask(owns_dy):
    """The activation overwrites the pre-activation, so relu's backward reads its output: the
    mask y > 0 must be pre > 0 at 0, -0, NaN and both signs, on either backward path."""
    pre = np.array([[0.0, -0.0, np.nan, 2.5, -3.0, 1e-30]], dtype=np.float32)
    layer = layers.Dense(6, activation="relu", kernel_initializer="zeros")
    layer.build((None, 3))
    layer.bias[...] = pre[0]  # x = 0: the pre-activation is the bias
    dy = np.arange(1, 7, dtype=np.float32)[None, :]
    FORWARD_OPTIONS.owns_dy = owns_dy
    try:
        y, backward = layer.forward(np.zeros((1, 3), np.float32), training=True)
    finally:
        FORWARD_OPTIONS.owns_dy = False
    backward(dy.copy())
    np.testing.assert_array_equal(y, np.where(pre > 0, pre, np.where(np.isnan(pre), pre, 0)))
    ref = pyminidl.backend.base.Backend().relu_backward(dy, pre, None)  # dL/db = dL/dpre, one row
    np.testing.assert_array_equal(layer.grads["bias"], ref[0])
