"""Finite-difference checks (float64, numpy backend, random dy) of the pooling and normalization
ops and of every layer built on them, batch normalization in training mode included."""

import numpy as np
import pytest

from pyminidl import layers
from pyminidl.backend import use_backend
from pyminidl.backend.base import Backend
from pyminidl.testing import gradcheck

from test_grad_layers import _check_layer

BE = Backend()


@pytest.fixture(autouse=True)
def _numpy_backend():
    with use_backend("numpy"):
        yield


POOLS = [((2, 5, 6, 3), (2, 2), (2, 2), "valid"), ((1, 5, 5, 2), (3, 3), (2, 2), "same"),
         ((2, 4, 7, 2), (3, 2), (1, 2), "same"), ((1, 1, 7, 3), (1, 3), (1, 2), "valid")]


@pytest.mark.parametrize("shape,pool,strides,padding", POOLS)
def test_maxpool_backward(rng, shape, pool, strides, padding):
    x = rng.standard_normal(shape)
    y, argmax = BE.maxpool_forward(x, pool, strides, padding)
    dy = rng.standard_normal(y.shape)
    loss = lambda x_: float((BE.maxpool_forward(x_, pool, strides, padding)[0] * dy).sum())  # noqa: E731
    gradcheck(loss, x, BE.maxpool_backward(dy, argmax, shape, pool, strides, padding))


@pytest.mark.parametrize("shape,pool,strides,padding", POOLS)
def test_avgpool_backward(rng, shape, pool, strides, padding):
    x = rng.standard_normal(shape)
    dy = rng.standard_normal(BE.avgpool_forward(x, pool, strides, padding).shape)
    loss = lambda x_: float((BE.avgpool_forward(x_, pool, strides, padding) * dy).sum())  # noqa: E731
    gradcheck(loss, x, BE.avgpool_backward(dy, shape, pool, strides, padding))


@pytest.mark.parametrize("shape,axis", [((6, 3), -1), ((3, 4, 2, 3), 1), ((5, 2, 3), 0)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_backward(rng, shape, axis, training):
    x = rng.standard_normal(shape) * 2 + 1
    c = shape[axis]
    gamma, beta = rng.standard_normal(c), rng.standard_normal(c)
    stats = () if training else (rng.standard_normal(c), rng.random(c) + 0.5)
    dy = rng.standard_normal(shape)

    def run(x_, g_, b_):
        return BE.batch_norm_forward(x_, g_, b_, axis, 1e-3, *stats)

    _, mean, var = run(x, gamma, beta)
    dx, dgamma, dbeta = BE.batch_norm_backward(dy, x, gamma, mean, var, axis, 1e-3, training)
    gradcheck(lambda x_: float((run(x_, gamma, beta)[0] * dy).sum()), x, dx)
    gradcheck(lambda g_: float((run(x, g_, beta)[0] * dy).sum()), gamma, dgamma)
    gradcheck(lambda b_: float((run(x, gamma, b_)[0] * dy).sum()), beta, dbeta)


@pytest.mark.parametrize("shape,axis", [((4, 5), -1), ((2, 3, 4), (1, 2)), ((3, 4, 2), 1)])
def test_layer_norm_backward(rng, shape, axis):
    x = rng.standard_normal(shape)
    axes = (axis,) if isinstance(axis, int) else axis
    pshape = tuple(shape[a % len(shape)] for a in sorted(a % len(shape) for a in axes))
    gamma, beta = rng.standard_normal(pshape), rng.standard_normal(pshape)
    dy = rng.standard_normal(shape)
    _, mean, var = BE.layer_norm_forward(x, gamma, beta, axis, 1e-3)
    dx, dgamma, dbeta = BE.layer_norm_backward(dy, x, gamma, mean, var, axis, 1e-3)
    run = lambda x_, g_, b_: float((BE.layer_norm_forward(x_, g_, b_, axis, 1e-3)[0] * dy).sum())  # noqa: E731
    gradcheck(lambda x_: run(x_, gamma, beta), x, dx)
    gradcheck(lambda g_: run(x, g_, beta), gamma, dgamma)
    gradcheck(lambda b_: run(x, gamma, b_), beta, dbeta)


LAYERS = [
    (lambda: layers.MaxPooling2D(2, padding="same"), (2, 5, 5, 3)),
    (lambda: layers.MaxPooling2D((2, 3), strides=1, data_format="channels_first"), (1, 2, 4, 5)),
    (lambda: layers.AveragePooling2D(3, strides=2, padding="same"), (2, 5, 6, 2)),
    (lambda: layers.MaxPooling1D(3, strides=2, padding="same"), (2, 7, 3)),
    (lambda: layers.AveragePooling1D(2, data_format="channels_first"), (2, 3, 6)),
    (lambda: layers.GlobalMaxPooling2D(), (2, 3, 4, 3)),
    (lambda: layers.GlobalAveragePooling2D(keepdims=True, data_format="channels_first"), (2, 3, 4, 3)),
    (lambda: layers.GlobalAveragePooling1D(), (2, 5, 3)),
    (lambda: layers.GlobalMaxPooling1D(keepdims=True), (2, 5, 3)),
    (lambda: layers.LayerNormalization(), (3, 4, 5)),
    (lambda: layers.LayerNormalization(axis=[1, 2]), (2, 3, 4)),
    (lambda: layers.ZeroPadding2D(((1, 2), (0, 1))), (2, 3, 3, 2)),
    (lambda: layers.ZeroPadding1D(2, data_format="channels_first"), (2, 3, 4)),
    (lambda: layers.Cropping2D(((1, 0), (1, 1)), data_format="channels_first"), (2, 2, 4, 5)),
    (lambda: layers.Cropping1D((1, 2)), (2, 6, 3)),
    (lambda: layers.UpSampling2D((2, 3)), (2, 2, 3, 2)),
    (lambda: layers.UpSampling2D(2, interpolation="bilinear", data_format="channels_first"), (1, 2, 3, 4)),
    (lambda: layers.UpSampling1D(3), (2, 3, 2)),
]


@pytest.mark.parametrize("make,shape", LAYERS)
def test_layer_gradients(rng, make, shape):
    layer = make()
    layer._dtype = "float64"
    x = rng.standard_normal(shape)
    layer.build(x.shape)
    for w in layer.trainable_weights:
        w[...] = rng.standard_normal(w.shape)
    _check_layer(layer, x, rng)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("axis,shape", [(-1, (6, 3)), (1, (3, 2, 4, 3))])
def test_batch_normalization_layer(rng, training, axis, shape):
    layer = layers.BatchNormalization(axis=axis, dtype="float64")
    layer.build(shape)
    for w in layer.weights:
        w[...] = rng.random(w.shape) + 0.5
    _check_layer(layer, rng.standard_normal(shape), rng, training=training)


@pytest.mark.parametrize("cls,shape", [(layers.SpatialDropout2D, (2, 3, 3, 4)), (layers.SpatialDropout1D, (2, 5, 3))])
def test_spatial_dropout_with_a_fixed_seed(rng, cls, shape):
    x = rng.standard_normal(shape)
    dy = rng.standard_normal(shape)
    run = lambda x_: cls(0.5, seed=3, dtype="float64")._forward_full(x_, True)  # noqa: E731
    _, backward = run(x)
    gradcheck(lambda x_: float((run(x_)[0] * dy).sum()), x, backward(dy))
