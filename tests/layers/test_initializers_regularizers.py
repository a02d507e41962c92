"""Initializers (Keras 3 names, defaults, seeds) and regularizers."""

import math

import numpy as np
import pytest

import pyminidl
from pyminidl import activations, initializers, regularizers


@pytest.mark.parametrize("name,cls", [
    ("glorot_uniform", "GlorotUniform"), ("glorot_normal", "GlorotNormal"), ("he_uniform", "HeUniform"),
    ("he_normal", "HeNormal"), ("lecun_uniform", "LecunUniform"), ("lecun_normal", "LecunNormal"),
    ("zeros", "Zeros"), ("ones", "Ones"), ("constant", "Constant"), ("random_normal", "RandomNormal"),
    ("random_uniform", "RandomUniform"), ("truncated_normal", "TruncatedNormal"), ("orthogonal", "Orthogonal"),
])
def test_string_lookup(name, cls):
    init = initializers.get(name)
    assert type(init).__name__ == cls
    assert type(initializers.get(cls)).__name__ == cls
    w = init((30, 20))
    assert w.shape == (30, 20) and w.dtype == np.float32
    assert type(initializers.deserialize(initializers.serialize(init))).__name__ == cls


def test_unknown_initializer():
    with pytest.raises(ValueError, match="glorot_uniform"):
        initializers.get("glorot")


def test_variance_scaling_statistics():
    w = initializers.GlorotUniform(seed=1)((400, 600))
    limit = math.sqrt(6 / 1000)
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.95 * limit
    h = initializers.HeNormal(seed=1)((1000, 500))
    assert abs(h.std() - math.sqrt(2 / 1000)) < 0.003
    assert np.abs(h).max() <= 2 * math.sqrt(2 / 1000) / 0.87962566103423978 + 1e-6
    assert abs(initializers.LecunNormal(seed=0)((2000, 100)).std() - math.sqrt(1 / 2000)) < 0.001


def test_defaults_and_constant():
    assert initializers.RandomNormal().get_config() == {"mean": 0.0, "stddev": 0.05, "seed": None}
    assert initializers.RandomUniform().get_config() == {"minval": -0.05, "maxval": 0.05, "seed": None}
    np.testing.assert_array_equal(initializers.Constant(3.0)((2,)), [3.0, 3.0])


def test_seeded_initializer_repeats_and_global_seed():
    init = initializers.GlorotUniform(seed=42)
    np.testing.assert_array_equal(init((3, 3)), init((3, 3)))
    pyminidl.random.seed(7)
    a = initializers.GlorotUniform()((3, 3))
    pyminidl.random.seed(7)
    np.testing.assert_array_equal(a, initializers.GlorotUniform()((3, 3)))


def test_orthogonal():
    w = initializers.Orthogonal(seed=0)((6, 4)).astype(np.float64)
    np.testing.assert_allclose(w.T @ w, np.eye(4), atol=1e-6)
    w = initializers.Orthogonal(gain=2.0, seed=0)((3, 5)).astype(np.float64)
    np.testing.assert_allclose(w @ w.T, 4 * np.eye(3), atol=1e-5)


def test_float64_dtype():
    assert initializers.get("he_uniform")((2, 2), dtype="float64").dtype == np.float64


def test_regularizers_values_and_strings():
    x = np.array([[1.0, -2.0], [0.5, 0.0]])
    assert regularizers.L1(0.1)(x) == pytest.approx(0.35)
    assert regularizers.L2(0.1)(x) == pytest.approx(0.525)
    assert regularizers.L1L2(0.1, 0.1)(x) == pytest.approx(0.875)
    assert regularizers.get("l1").l1 == 0.01 and regularizers.get("l2").l2 == 0.01
    assert isinstance(regularizers.get("l1_l2"), regularizers.L1L2)
    assert regularizers.get(None) is None
    reg = regularizers.get(regularizers.serialize(regularizers.L2(0.5)))
    assert isinstance(reg, regularizers.L2) and reg.l2 == 0.5
    with pytest.raises(ValueError, match="l1_l2"):
        regularizers.get("l3")
    with pytest.raises(ValueError, match="non-negative"):
        regularizers.L2(-1.0)


def test_activations_module():
    x = np.array([-2.0, 0.5, 8.0])
    np.testing.assert_allclose(activations.relu(x, max_value=6.0), [0.0, 0.5, 6.0])
    np.testing.assert_allclose(activations.relu(x, negative_slope=0.1), [-0.2, 0.5, 8.0])
    np.testing.assert_allclose(activations.relu(x, threshold=1.0), [0.0, 0.0, 8.0])
    np.testing.assert_allclose(activations.softmax(x).sum(), 1.0)
    assert activations.get("relu") is activations.relu
    assert activations.get(None) is activations.linear
    assert activations.serialize(activations.tanh) == "tanh"
    assert activations.serialize(activations.get("gelu")) == "gelu"
    with pytest.raises(ValueError, match="softmax"):
        activations.get("bogus")
