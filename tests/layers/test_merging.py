"""Merge layers: values against NumPy, float64 finite-difference backward, shapes, config, bad input."""

import numpy as np
import pytest

import pyminidl
from pyminidl import layers
from pyminidl.testing import numeric_grad

ELEMENTWISE = [
    (layers.Add, lambda xs: xs[0] + xs[1] + xs[2]),
    (layers.Multiply, lambda xs: xs[0] * xs[1] * xs[2]),
    (layers.Average, lambda xs: (xs[0] + xs[1] + xs[2]) / 3),
    (layers.Maximum, lambda xs: np.maximum(np.maximum(xs[0], xs[1]), xs[2])),
    (layers.Minimum, lambda xs: np.minimum(np.minimum(xs[0], xs[1]), xs[2])),
]


def _check_backward(layer, xs, rng):
    """Finite differences of sum(layer(xs) * dy) against the layer's backward, input by input."""
    y, backward = layer._forward_full(xs)
    dy = rng.standard_normal(y.shape)
    grads = backward(dy)
    for i, x in enumerate(xs):
        def loss(v, i=i):
            trial = list(xs)
            trial[i] = v
            return float((layer._forward_full(trial)[0] * dy).sum())

        np.testing.assert_allclose(grads[i], numeric_grad(loss, x.copy()), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("cls,ref", ELEMENTWISE)
def test_elementwise_values_and_gradients(cls, ref, rng):
    with pyminidl.backend.use_backend("numpy"):
        xs = [rng.standard_normal((3, 5)) for _ in range(3)]
        layer = cls(dtype="float64")
        np.testing.assert_allclose(layer(xs), ref(xs), rtol=1e-12)
        _check_backward(layer, xs, rng)


def test_subtract_and_broadcasting(rng):
    with pyminidl.backend.use_backend("numpy"):
        a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 1))
        layer = layers.Subtract(dtype="float64")
        np.testing.assert_allclose(layer([a, b]), a - b)
        _check_backward(layer, [a, b], rng)  # b's gradient is summed back over the broadcast axis
    with pytest.raises(ValueError, match="exactly 2 inputs"):
        layers.Subtract()([pyminidl.Input((3,))] * 3)


@pytest.mark.parametrize("axis", [-1, 1])
def test_concatenate(axis, rng):
    with pyminidl.backend.use_backend("numpy"):
        xs = [rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4) if axis == 1 else (2, 3, 2))]
        layer = layers.Concatenate(axis=axis, dtype="float64")
        np.testing.assert_array_equal(layer(xs), np.concatenate(xs, axis=axis))
        _check_backward(layer, xs, rng)
    shape = layers.Concatenate(axis=axis)([pyminidl.Input(x.shape[1:]) for x in xs]).shape
    assert shape == (None,) + np.concatenate(xs, axis=axis).shape[1:]


@pytest.mark.parametrize("axes,shapes,normalize", [
    (1, [(4, 6), (4, 6)], False), (1, [(4, 6), (4, 6)], True),
    ((2, 2), [(3, 2, 5), (3, 4, 5)], False), ((1, 2), [(3, 5, 2), (3, 4, 5)], True)])
def test_dot(axes, shapes, normalize, rng):
    with pyminidl.backend.use_backend("numpy"):
        a, b = (rng.standard_normal(s) for s in shapes)
        layer = layers.Dot(axes=axes, normalize=normalize, dtype="float64")
        got = layer([a, b])
        a1, a2 = (axes, axes) if isinstance(axes, int) else axes
        if normalize:
            a = a / np.linalg.norm(a, axis=a1, keepdims=True)
            b = b / np.linalg.norm(b, axis=a2, keepdims=True)
        ref = np.stack([np.tensordot(a[n], b[n], axes=(a1 - 1, a2 - 1)) for n in range(len(a))])
        np.testing.assert_allclose(got, ref.reshape(got.shape), rtol=1e-10)
        _check_backward(layer, [rng.standard_normal(s) for s in shapes], rng)
    sym = layers.Dot(axes=axes)([pyminidl.Input(s[1:]) for s in shapes])
    assert sym.shape == (None,) + got.shape[1:]


def test_functional_forms_and_config():
    a, b = pyminidl.Input((4,)), pyminidl.Input((4,))
    for fn in (layers.add, layers.subtract, layers.multiply, layers.average, layers.maximum, layers.minimum):
        assert fn([a, b]).shape == (None, 4)
    assert layers.concatenate([a, b], axis=-1).shape == (None, 8)
    assert layers.dot([a, b], axes=1).shape == (None, 1)
    for layer in (layers.Concatenate(axis=1), layers.Dot(axes=[1, 2], normalize=True), layers.Add()):
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == dict(layer.get_config(), name=clone.name)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match=r"incompatible shapes. Received shapes \(3,\) and \(4,\)"):
        layers.Add()([pyminidl.Input((3,)), pyminidl.Input((4,))])
    with pytest.raises(ValueError, match="list of inputs"):
        layers.Add()(np.ones((2, 3), "float32"))
    with pytest.raises(ValueError, match="matching shapes except for the concatenation axis"):
        layers.Concatenate(axis=1)([pyminidl.Input((3, 4)), pyminidl.Input((3, 5))])
    with pytest.raises(ValueError, match="axis values 4"):
        layers.Dot(axes=1)([pyminidl.Input((4,)), pyminidl.Input((5,))])
    with pytest.raises(ValueError, match="batch"):
        layers.Dot(axes=0)
