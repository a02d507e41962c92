"""Dense: build, shapes, weights, config round trip, errors (Keras 3 behaviour)."""

import numpy as np
import pytest

import pyminidl
from pyminidl import layers
from pyminidl.backend.base import ACTIVATIONS


@pytest.fixture(autouse=True)
def _fresh_names():
    layers.clear_session()


def test_build_on_first_call_and_shapes():
    layer = layers.Dense(3)
    assert not layer.built and layer.weights == []
    y = layer(np.ones((8, 4), np.float32))
    assert layer.built and y.shape == (8, 3) and y.dtype == np.float32
    assert [w.shape for w in layer.weights] == [(4, 3), (3,)]
    assert layer.weight_names == ["dense/kernel", "dense/bias"]
    assert layer.count_params() == 15
    assert layer.compute_output_shape((None, 4)) == (None, 3)
    np.testing.assert_array_equal(layer.bias, np.zeros(3))


def test_nd_input_flattens_leading_axes(rng):
    layer = layers.Dense(2, activation="relu")
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    y = layer(x)
    assert y.shape == (2, 3, 2)
    np.testing.assert_allclose(y, np.maximum(x @ layer.kernel + layer.bias, 0), rtol=1e-5, atol=1e-6)


def test_input_dim_and_input_shape_keywords():
    assert layers.Dense(5, input_dim=3)._batch_input_shape == (None, 3)
    assert layers.Dense(5, input_shape=(3,))._batch_input_shape == (None, 3)


def test_auto_names_are_unique():
    names = [layers.Dense(1).name for _ in range(3)]
    assert names == ["dense", "dense_1", "dense_2"]
    assert layers.Dense(1, name="out").name == "out"


def test_no_bias():
    layer = layers.Dense(4, use_bias=False)
    layer.build((None, 2))
    assert len(layer.weights) == 1 and layer.bias is None


def test_wrong_feature_count_is_a_keras_error():
    layer = layers.Dense(2)
    layer(np.zeros((8, 4), np.float32))
    with pytest.raises(ValueError) as err:
        layer(np.zeros((8, 3), np.float32))
    assert str(err.value) == ('Input 0 of layer "dense" is incompatible with the layer: expected axis -1 of '
                              "input shape to have value 4, but received input with shape (8, 3)")


def test_1d_input_rejected():
    with pytest.raises(ValueError, match="expected min_ndim=2, found ndim=1"):
        layers.Dense(2)(np.zeros(3, np.float32))


@pytest.mark.parametrize("units", [0, -1, 2.5, "3", None])
def test_bad_units(units):
    with pytest.raises(ValueError, match="units"):
        layers.Dense(units)


def test_unknown_activation_lists_valid_ones():
    with pytest.raises(ValueError) as err:
        layers.Dense(2, activation="relu7")
    for name in ("relu", "softmax", "log_softmax", "gelu"):
        assert name in str(err.value)


def test_unknown_kwarg():
    with pytest.raises(TypeError, match="Unrecognized keyword arguments passed to Dense: {'unitz': 3}"):
        layers.Dense(2, unitz=3)


@pytest.mark.parametrize("activation", sorted(set(ACTIVATIONS) | {"softmax", "log_softmax", "relu6"}))
def test_every_activation_string(activation, rng):
    layer = layers.Dense(3, activation=activation)
    y = layer(rng.standard_normal((4, 2)).astype(np.float32))
    assert y.shape == (4, 3) and np.isfinite(y).all()
    assert layer.final_activation == activation


def test_callable_activation():
    layer = layers.Dense(2, activation=pyminidl.activations.softmax)
    assert layer.final_activation == "softmax"
    assert layer.get_config()["activation"] == "softmax"


def test_get_config_round_trip(rng):
    layer = layers.Dense(4, activation="tanh", use_bias=False, kernel_initializer="he_normal",
                         kernel_regularizer="l2", name="hidden", trainable=False)
    cfg = layer.get_config()
    assert cfg["units"] == 4 and cfg["activation"] == "tanh" and cfg["use_bias"] is False
    assert cfg["kernel_initializer"]["class_name"] == "HeNormal"
    assert cfg["kernel_regularizer"]["config"] == {"l2": 0.01}
    clone = layers.Dense.from_config(cfg)
    assert clone.get_config() == cfg
    x = rng.standard_normal((2, 3)).astype(np.float32)
    layer(x)
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(x), layer(x))


def test_set_weights_copies_into_existing_arrays():
    layer = layers.Dense(2)
    layer.build((None, 3))
    kernel = layer.kernel
    layer.set_weights([np.ones((3, 2)), np.full(2, 5.0)])
    assert layer.kernel is kernel and layer.weights[0] is kernel
    np.testing.assert_array_equal(kernel, np.ones((3, 2), np.float32))
    assert kernel.dtype == np.float32


def test_set_weights_shape_mismatch_names_layer_and_weight():
    layer = layers.Dense(2, name="d")
    layer.build((None, 3))
    with pytest.raises(ValueError, match=r"Layer 'd' weight 'kernel' has shape \(3, 2\).*\(2, 2\)"):
        layer.set_weights([np.ones((2, 2)), np.ones(2)])
    with pytest.raises(ValueError, match="length 1"):
        layer.set_weights([np.ones((3, 2))])


def test_get_weights_are_copies():
    layer = layers.Dense(2)
    layer.build((None, 3))
    w = layer.get_weights()
    w[0][...] = 9
    assert not (layer.kernel == 9).any()


def test_trainable_flag_moves_weights():
    layer = layers.Dense(2)
    layer.build((None, 3))
    layer.trainable = False
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 2
    assert layer.gradients() == []


def test_count_params_unbuilt_raises():
    with pytest.raises(ValueError, match="isn't built"):
        layers.Dense(2).count_params()


def test_gradients_aligned_and_zero_grads(rng):
    layer = layers.Dense(3)
    x = rng.standard_normal((4, 2)).astype(np.float32)
    y, backward = layer.forward(layer._prepare(x))
    backward(np.ones_like(y))
    backward(np.ones_like(y))
    g = layer.gradients()
    np.testing.assert_allclose(g[1], np.full(3, 8.0))
    layer.zero_grads()
    assert layer.grads == {}
    np.testing.assert_array_equal(layer.gradients()[0], np.zeros((2, 3)))


def test_float64_input_cast_to_layer_dtype(rng):
    layer = layers.Dense(2)
    assert layer(rng.standard_normal((3, 2))).dtype == np.float32
    assert layers.Dense(2, dtype="float64")(np.ones((1, 2), np.float32)).dtype == np.float64


def test_symbolic_call():
    out = layers.Dense(7)(layers.Input((5,)))
    assert isinstance(out, layers.KerasTensor) and out.shape == (None, 7)
