"""Activation, Dropout, Flatten, Reshape, Input/InputLayer contracts."""

import numpy as np
import pytest

import pyminidl
from pyminidl import layers
from pyminidl.layers.base import forward_options


@pytest.fixture(autouse=True)
def _fresh_names():
    layers.clear_session()


def test_activation_layer(rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    layer = layers.Activation("relu")
    np.testing.assert_array_equal(layer(x), np.maximum(x, 0))
    assert layer.weights == [] and layer.count_params() == 0
    assert layer.compute_output_shape((None, 3)) == (None, 3)
    cfg = layer.get_config()
    assert cfg["activation"] == "relu" and cfg["name"] == "activation"
    assert layers.Activation.from_config(cfg).get_config() == cfg
    with pytest.raises(ValueError, match="Could not interpret activation"):
        layers.Activation("nope")


def test_activation_softmax_final_logits(rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    layer = layers.Activation("softmax")
    np.testing.assert_allclose(layer(x).sum(-1), np.ones(2), rtol=1e-6)
    with forward_options(logits=True):
        assert layer._forward_full(x)[0] is x


def test_dropout_training_only():
    x = np.ones((200, 50), np.float32)
    layer = layers.Dropout(0.3, seed=1)
    np.testing.assert_array_equal(layer(x), x)
    y = layer(x, training=True)
    kept = y != 0
    assert 0.6 < kept.mean() < 0.8
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)


def test_dropout_seed_reproducible_and_noise_shape():
    x = np.ones((4, 6), np.float32)
    a = layers.Dropout(0.5, seed=3)(x, training=True)
    b = layers.Dropout(0.5, seed=3)(x, training=True)
    np.testing.assert_array_equal(a, b)
    y = layers.Dropout(0.5, noise_shape=(None, 1), seed=0)(x, training=True)
    assert all(len(set(row)) == 1 for row in y.tolist())


def test_dropout_global_seed():
    x = np.ones((10, 10), np.float32)
    pyminidl.random.seed(5)
    a = layers.Dropout(0.5)(x, training=True)
    pyminidl.random.seed(5)
    b = layers.Dropout(0.5)(x, training=True)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("rate", [-0.1, 1.5, "0.5"])
def test_dropout_bad_rate(rate):
    with pytest.raises(ValueError, match="rate"):
        layers.Dropout(rate)


def test_dropout_config():
    cfg = layers.Dropout(0.25, noise_shape=(None, 1), seed=7).get_config()
    assert (cfg["rate"], cfg["noise_shape"], cfg["seed"]) == (0.25, [None, 1], 7)
    assert layers.Dropout.from_config(cfg).get_config() == cfg


def test_flatten(rng):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    layer = layers.Flatten()
    np.testing.assert_array_equal(layer(x), x.reshape(2, 12))
    assert layer.compute_output_shape((None, 3, 4)) == (None, 12)
    assert layer.compute_output_shape((None, None, 4)) == (None, None)
    assert layers.Flatten.from_config(layer.get_config()).get_config() == layer.get_config()
    x4 = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(layers.Flatten("channels_first")(x4), x4.transpose(0, 2, 3, 1).reshape(2, -1))


def test_reshape(rng):
    x = rng.standard_normal((2, 12)).astype(np.float32)
    layer = layers.Reshape((3, -1))
    assert layer(x).shape == (2, 3, 4)
    assert layer.compute_output_shape((None, 12)) == (None, 3, 4)
    assert layer.get_config()["target_shape"] == [3, -1]
    assert layers.Reshape.from_config(layer.get_config()).target_shape == (3, -1)
    with pytest.raises(ValueError, match="total size of the tensor must be unchanged"):
        layers.Reshape((5,))(x)
    with pytest.raises(ValueError, match="target_shape"):
        layers.Reshape((-1, -1))


def test_input_and_input_layer():
    x = pyminidl.Input(shape=(4,))
    assert isinstance(x, layers.KerasTensor) and x.shape == (None, 4) and x.dtype == "float32"
    assert x.name == x._keras_history.operation.name  # Keras 3: the Input tensor carries its layer's name
    assert isinstance(x._keras_history.operation, layers.InputLayer)
    assert pyminidl.Input((2, 3), batch_size=8).shape == (8, 2, 3)
    layer = layers.InputLayer(shape=(3,), name="inp")
    assert layer.batch_shape == (None, 3) and layer.get_config()["batch_shape"] == [None, 3]
    assert layers.InputLayer.from_config(layer.get_config()).batch_shape == (None, 3)
    with pytest.raises(ValueError, match="shape"):
        layers.InputLayer()
