"""Finite-difference checks (float64, random dy) of Conv1D/Conv2D with every built-in
activation: the output-only ones run in place on the convolution's output and differentiate
from y alone (y standing in for x), the others keep the input; both backends."""

import numpy as np
import pytest

from pyminidl import layers
from pyminidl.backend import use_backend
from pyminidl.layers._layer_call import forward_options
from pyminidl.testing import gradcheck

# relu6 and elu reach their kinks / branches: inputs spread over [-8, 8] cover y = 6 and y < 0.
ACTIVATIONS = ["relu", "relu6", "elu", "selu", "sigmoid", "tanh", "exponential", "gelu", "swish", "linear"]


def _check(layer, x, rng, need_dx=True):
    with forward_options(need_dx=need_dx):  # need_dx=False: a first layer's backward, no dx
        y, backward = layer._forward_full(x, True)
    dy = rng.standard_normal(y.shape)
    layer.zero_grads()
    dx = backward(dy)
    grads = layer.gradients()

    def loss(_):
        out, _b = layer._forward_full(x, True)
        return float((out * dy).sum())

    if need_dx:
        gradcheck(loss, x, dx)
    else:
        assert dx is None
    for w, g in zip(layer.trainable_weights, grads):
        gradcheck(loss, w, g)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_conv2d_activation_gradients(rng, activation, backend):
    with use_backend(backend):
        layer = layers.Conv2D(3, 2, padding="same", activation=activation, dtype="float64")
        x = 2.0 * rng.standard_normal((2, 4, 3, 2))
        layer.build(x.shape)
        scale = 0.3 if activation == "exponential" else 2.0  # e^z of a wide z swamps the differences
        layer.kernel = scale * rng.standard_normal(layer.kernel.shape)  # copied into the weight
        _check(layer, x, rng)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "selu"])
def test_conv1d_channels_first_activation_gradients(rng, activation, backend):
    with use_backend(backend):
        layer = layers.Conv1D(2, 3, activation=activation, data_format="channels_first", dtype="float64")
        _check(layer, rng.standard_normal((2, 3, 6)), rng)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("activation", ["relu", "relu6"])
@pytest.mark.parametrize("need_dx", [True, False])
def test_conv2d_pooled_in_one_call_gradients(rng, activation, backend, need_dx):
    # A Sequential runs the convolution and the max pooling after it as one call
    # (conv_maxpool_forward) and the pooling applies the convolution's activation; without dx the
    # pooling hands its gradient to the convolution unrouted (conv_maxpool_backward).
    import pyminidl

    with use_backend(backend):
        model = pyminidl.Sequential([layers.Conv2D(3, 3, padding="same", activation=activation, dtype="float64"),
                                     layers.MaxPooling2D(2, dtype="float64")])
        x = 4.0 * rng.standard_normal((2, 6, 5, 1))
        model.build(x.shape)
        conv = model.layers[0]
        conv.kernel = 2.0 * rng.standard_normal(conv.kernel.shape)
        _check(model, x, rng, need_dx)
