"""Lambda (Keras 3): wraps an ops function as a layer; trains through the ops; never loaded from a file."""

import numpy as np
import pytest

import pyminidl
from pyminidl import layers, ops
from pyminidl.backend import use_backend
from pyminidl.testing import gradcheck


def test_output_arguments_and_shape(rng):
    layer = layers.Lambda(lambda x, power: ops.power(x, power), arguments={"power": 3})
    x = rng.standard_normal((2, 5)).astype("float32")
    np.testing.assert_allclose(layer(x), x ** 3, rtol=1e-6)
    assert layer.compute_output_shape((None, 5)) == (None, 5)
    pooled = layers.Lambda(lambda x: ops.sum(x, axis=-1, keepdims=True), output_shape=(1,))
    assert pooled.compute_output_shape((None, 5)) == (None, 1)


def test_gradient_reaches_the_input_float64(rng):
    layer = layers.Lambda(lambda x: ops.tanh(x) * x, dtype="float64")
    x = rng.standard_normal((3, 4))
    dy = rng.standard_normal((3, 4))
    with use_backend("numpy"):
        _, backward = layer._forward_full(x, False)
        dx = backward(dy)
        gradcheck(lambda _: float((layer._forward_full(x, False)[0] * dy).sum()), x, dx)


def test_trains_inside_a_model(rng):
    x = rng.random((64, 3), dtype=np.float32)
    y = (2.0 * x.sum(axis=1, keepdims=True)).astype("float32")
    model = pyminidl.Sequential([pyminidl.Input((3,)), layers.Dense(4), layers.Lambda(lambda t: t * 2.0),
                                 layers.Dense(1)])
    model.compile(optimizer=pyminidl.optimizers.Adam(0.05), loss="mse")
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=40, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.05 * first


def test_bad_function_and_loading_is_refused():
    with pytest.raises(ValueError, match="must be callable"):
        layers.Lambda(3)
    config = layers.Lambda(np.negative, name="neg").get_config()
    assert config["function"] == "negative"
    with pytest.raises(ValueError, match="never runs code from a file"):
        layers.Lambda.from_config(config)
