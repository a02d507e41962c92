"""Finite-difference checks (float64, numpy backend, random dy) of every layer's backward."""

import numpy as np
import pytest

import pyminidl
from pyminidl import layers, ops, regularizers
from pyminidl.backend import use_backend
from pyminidl.backend.base import ACTIVATIONS
from pyminidl.testing import gradcheck
from pyminidl.layers.base import forward_options


@pytest.fixture(autouse=True)
def _numpy_backend():
    with use_backend("numpy"):
        yield


def _check_layer(layer, x, rng, training=False, final_logits=False):
    """dx and every weight gradient of ``layer`` (incl. its penalties) against finite differences."""
    with forward_options(logits=final_logits):
        y, backward = layer._forward_full(x, training)
    dy = rng.standard_normal(y.shape)
    layer.zero_grads()
    dx = backward(dy)
    weights = layer.trainable_weights
    grads = layer.gradients()

    def loss(_):
        with forward_options(logits=final_logits):
            out, _b = layer._forward_full(x, training)
        return float((out * dy).sum()) + sum(layer.losses)

    gradcheck(loss, x, dx)
    assert len(grads) == len(weights)
    for w, g in zip(weights, grads):
        gradcheck(loss, w, g)


_ALL_ACTIVATIONS = sorted(set(ACTIVATIONS) | {"softmax", "log_softmax", "relu6"})


@pytest.mark.parametrize("activation", _ALL_ACTIVATIONS)
def test_dense_every_activation(activation, rng):
    layer = layers.Dense(5, activation=activation, dtype="float64")
    x = rng.standard_normal((4, 3))
    layer.build(x.shape)
    layer.bias[...] = rng.standard_normal(5) * 0.1
    _check_layer(layer, x, rng)


@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_with_and_without_bias(use_bias, rng):
    layer = layers.Dense(7, activation="tanh", use_bias=use_bias, dtype="float64")
    _check_layer(layer, rng.standard_normal((5, 3)), rng)
    assert len(layer.trainable_weights) == (2 if use_bias else 1)


def test_dense_nd_input(rng):
    layer = layers.Dense(4, activation="sigmoid", dtype="float64")
    _check_layer(layer, rng.standard_normal((2, 3, 5)), rng)


def test_dense_final_logits_skips_softmax(rng):
    layer = layers.Dense(4, activation="softmax", dtype="float64")
    x = rng.standard_normal((3, 2))
    with forward_options(logits=True):
        logits, _ = layer._forward_full(x)
    np.testing.assert_allclose(logits, x @ layer.kernel + layer.bias)
    _check_layer(layer, x, rng, final_logits=True)


def test_dense_relu_params_callable(rng):
    act = lambda z: pyminidl.activations.relu(z, negative_slope=0.1, max_value=1.5, threshold=0.2)  # noqa: E731
    layer = layers.Dense(6, activation=act, dtype="float64")
    _check_layer(layer, rng.standard_normal((4, 3)), rng)


def test_dense_custom_ops_activation(rng):
    layer = layers.Dense(3, activation=lambda z: ops.multiply(ops.tanh(z), ops.square(z)), dtype="float64")
    _check_layer(layer, rng.standard_normal((4, 2)), rng)


@pytest.mark.parametrize("activation", ["relu", "softmax", "log_softmax", "gelu", "elu"])
def test_activation_layer(activation, rng):
    _check_layer(layers.Activation(activation, dtype="float64"), rng.standard_normal((3, 2, 4)), rng)


@pytest.mark.parametrize("noise_shape", [None, (None, 1)])
def test_dropout_fixed_mask(rng, monkeypatch, noise_shape):
    layer = layers.Dropout(0.4, noise_shape=noise_shape, dtype="float64")
    monkeypatch.setattr(layer, "_next_seed", lambda: 1234)  # every forward of the check: one mask
    _check_layer(layer, rng.standard_normal((4, 6)), rng, training=True)


def test_dropout_inference_is_identity(rng):
    _check_layer(layers.Dropout(0.5, dtype="float64"), rng.standard_normal((3, 4)), rng, training=False)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_flatten(data_format, rng):
    _check_layer(layers.Flatten(data_format=data_format, dtype="float64"), rng.standard_normal((2, 3, 4, 5)), rng)


def test_reshape(rng):
    _check_layer(layers.Reshape((-1, 3), dtype="float64"), rng.standard_normal((2, 4, 3, 2)), rng)


@pytest.mark.parametrize("reg", [regularizers.L1(0.05), regularizers.L2(0.03), regularizers.L1L2(0.02, 0.04)])
def test_dense_regularizers(reg, rng):
    layer = layers.Dense(3, kernel_regularizer=reg, bias_regularizer=reg, activity_regularizer=reg,
                         bias_initializer="random_normal", dtype="float64")
    x = rng.standard_normal((4, 5))
    _check_layer(layer, x, rng)
    assert len(layer.losses) == 3


@pytest.mark.parametrize("reg", [regularizers.L1(0.05), regularizers.L2(0.03), regularizers.L1L2(0.02, 0.04)])
def test_regularizer_gradient_method(reg, rng):
    w = rng.standard_normal((3, 4))
    gradcheck(lambda w_: reg(w_), w, reg.gradient(w))


class _Affine(layers.Layer):
    """A custom layer written only with call() and ops."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal", name="w")
        self.b = self.add_weight(shape=(self.units,), initializer="random_normal", name="b")
        self.scale = self.add_weight(shape=(), initializer="ones", name="scale")

    def call(self, x):
        h = ops.add(ops.matmul(x, self.w), self.b)
        h = ops.multiply(ops.tanh(h), self.scale)
        return ops.concatenate([h, ops.square(h)], axis=-1)


def test_custom_call_layer(rng):
    layer = _Affine(3, dtype="float64")
    _check_layer(layer, rng.standard_normal((4, 2)), rng)
    assert [w.shape for w in layer.trainable_weights] == [(2, 3), (3,), ()]


class _Block(layers.Layer):
    """A call()-based layer with a Dense sublayer and an add_loss penalty."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inner = layers.Dense(3, activation="tanh", dtype="float64")
        self.outer = layers.Dense(2, dtype="float64")

    def call(self, x, training=None):
        h = self.inner(x)
        self.add_loss(ops.multiply(0.1, ops.sum(ops.square(h))))
        return ops.add(self.outer(h), ops.sum(x, axis=-1, keepdims=True))


def test_custom_layer_with_sublayers_and_add_loss(rng):
    block = _Block(dtype="float64")
    _check_layer(block, rng.standard_normal((5, 4)), rng)
    assert len(block.trainable_weights) == 4
    assert len(block.losses) == 1


def test_sequential_end_to_end(rng):
    model = pyminidl.Sequential([
        layers.Input((2, 3), dtype="float64"),
        layers.Flatten(dtype="float64"),
        layers.Dense(5, activation="relu", kernel_regularizer="l2", dtype="float64"),
        layers.Dropout(0.0, dtype="float64"),
        layers.Reshape((5, 1), dtype="float64"),
        layers.Dense(2, activation="softmax", dtype="float64"),
    ])
    x = rng.standard_normal((4, 2, 3))
    _check_layer(model, x, rng, training=True)
    _check_layer(model, x, rng, final_logits=True)


class _DoubledDense(layers.Dense):
    """A Dense subclass overriding call() around super().call()."""

    def call(self, x):
        return ops.multiply(super().call(ops.square(x)), 2.0)


def test_builtin_subclass_overriding_call(rng):
    layer = _DoubledDense(3, activation="tanh", dtype="float64")
    x = rng.standard_normal((4, 2))
    _check_layer(layer, x, rng)
    np.testing.assert_allclose(layer(x), 2 * np.tanh((x * x) @ layer.kernel + layer.bias))
