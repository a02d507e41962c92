"""Finite-difference checks (float64, numpy backend, random dy) of the convolution ops and layers."""

import numpy as np
import pytest

from pyminidl import layers
from pyminidl.backend import use_backend
from pyminidl.backend.base import Backend
from pyminidl.layers.base import forward_options
from pyminidl.testing import gradcheck

REF = Backend()


@pytest.fixture(autouse=True)
def _numpy_backend():
    with use_backend("numpy"):
        yield


# (x shape, kernel shape, strides, padding, dilation, groups)
OPS = [
    ((2, 5, 4, 2), (3, 2, 2, 3), (2, 1), "same", (1, 1), 1),
    ((1, 6, 5, 4), (2, 3, 2, 4), (1, 2), "valid", (2, 1), 2),
    ((2, 7, 3), (3, 3, 2), 1, "causal", 2, 1),
]


@pytest.mark.parametrize("case", OPS, ids=str)
def test_conv_backward_matches_numeric(rng, case):
    x_shape, w_shape, s, pad, d, g = case
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[-1])
    dy = rng.standard_normal(REF.conv_forward(x, w, b, s, pad, d, g).shape)
    dx, dw, db = REF.conv_backward(dy, x, w, s, pad, d, g)
    gradcheck(lambda x_: float((REF.conv_forward(x_, w, b, s, pad, d, g) * dy).sum()), x, dx)
    gradcheck(lambda w_: float((REF.conv_forward(x, w_, b, s, pad, d, g) * dy).sum()), w, dw)
    gradcheck(lambda b_: float((REF.conv_forward(x, w, b_, s, pad, d, g) * dy).sum()), b, db)


@pytest.mark.parametrize("case", [((1, 3, 2, 2), (3, 3, 3, 2), (2, 2), "same", None),
                                  ((2, 2, 3, 1), (2, 3, 2, 1), (2, 3), "valid", (1, 2)),
                                  ((1, 4, 2), (3, 2, 2), 2, "same", 1)], ids=str)
def test_conv_transpose_backward_matches_numeric(rng, case):
    x_shape, w_shape, s, pad, opad = case
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[-2])
    dy = rng.standard_normal(REF.conv_transpose_forward(x, w, b, s, pad, opad).shape)
    dx, dw, db = REF.conv_transpose_backward(dy, x, w, s, pad, opad)
    f = REF.conv_transpose_forward
    gradcheck(lambda x_: float((f(x_, w, b, s, pad, opad) * dy).sum()), x, dx)
    gradcheck(lambda w_: float((f(x, w_, b, s, pad, opad) * dy).sum()), w, dw)
    gradcheck(lambda b_: float((f(x, w, b_, s, pad, opad) * dy).sum()), b, db)


def _check_layer(layer, x, rng):
    """dx and every weight gradient of ``layer`` against finite differences."""
    layer.build(x.shape)
    for wt in layer.trainable_weights:
        wt[...] = rng.standard_normal(wt.shape) * 0.5  # nonzero bias, kinks of relu off the grid
    y, backward = layer._forward_full(x, False)
    dy = rng.standard_normal(y.shape)
    layer.zero_grads()
    dx = backward(dy)
    grads = layer.gradients()

    def loss(_):
        out, _b = layer._forward_full(x, False)
        return float((out * dy).sum())

    gradcheck(loss, x, dx)
    assert len(grads) == len(layer.trainable_weights)
    for w, g in zip(layer.trainable_weights, grads):
        gradcheck(loss, w, g)


LAYERS = [
    (lambda: layers.Conv2D(3, 3, strides=2, padding="same", activation="tanh", dtype="float64"), (2, 5, 4, 2)),
    (lambda: layers.Conv2D(4, (2, 3), groups=2, dilation_rate=(2, 1), dtype="float64"), (1, 6, 5, 4)),
    (lambda: layers.Conv2D(2, 2, data_format="channels_first", dtype="float64"), (2, 3, 4, 3)),
    (lambda: layers.Conv1D(3, 3, padding="causal", dilation_rate=2, activation="sigmoid", dtype="float64"), (2, 6, 2)),
    (lambda: layers.Conv1D(2, 2, strides=2, data_format="channels_first", dtype="float64"), (1, 3, 7)),
    (lambda: layers.Conv2DTranspose(2, 3, strides=2, padding="same", dtype="float64"), (1, 3, 2, 2)),
    (lambda: layers.Conv2DTranspose(2, (3, 2), strides=(2, 3), output_padding=(1, 2), dtype="float64"), (1, 2, 2, 1)),
    (lambda: layers.Conv1DTranspose(2, 3, strides=2, padding="same", activation="tanh", dtype="float64"), (2, 3, 2)),
    (lambda: layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", dtype="float64"), (1, 4, 3, 2)),
    (lambda: layers.DepthwiseConv1D(2, dtype="float64"), (2, 5, 3)),
    (lambda: layers.SeparableConv2D(3, 2, depth_multiplier=2, activation="tanh", dtype="float64"), (1, 4, 3, 2)),
    (lambda: layers.SeparableConv1D(2, 3, padding="same", dtype="float64"), (1, 5, 2)),
]


@pytest.mark.parametrize("make,x_shape", LAYERS, ids=lambda v: str(v) if isinstance(v, tuple) else None)
def test_conv_layer_gradients(rng, make, x_shape):
    _check_layer(make(), rng.standard_normal(x_shape), rng)


def test_first_layer_skips_dx(rng):
    layer = layers.Conv2D(2, 3, dtype="float64")
    x = rng.standard_normal((1, 4, 4, 1))
    layer.build(x.shape)
    with forward_options(need_dx=False):
        y, backward = layer._forward_full(x, False)
    assert backward(np.ones_like(y)) is None
    assert layer.gradients()[0].shape == (3, 3, 1, 2)
