"""Finite-difference checks (float64, random dy) of every op in pyminidl.ops through GradientTape."""

import numpy as np
import pytest

import pyminidl
from pyminidl import activations, ops
from pyminidl.backend import use_backend
from pyminidl.testing import gradcheck


@pytest.fixture(autouse=True)
def _numpy_backend():
    with use_backend("numpy"):
        yield


def _check(fn, *inputs, rng):
    with pyminidl.GradientTape() as tape:
        tape.watch(list(inputs))
        y = fn(*inputs)
    dy = rng.standard_normal(np.shape(y))
    grads = tape.gradient(y, list(inputs), output_gradients=dy)
    for x, g in zip(inputs, grads):
        assert g is not None and g.shape == x.shape
        gradcheck(lambda _: float((np.asarray(fn(*inputs)) * dy).sum()), x, g)


def _pos(rng, *shape):
    return rng.uniform(0.5, 2.0, shape)


BINARY = {
    "add": ops.add, "subtract": ops.subtract, "multiply": ops.multiply, "divide": ops.divide,
    "maximum": ops.maximum, "minimum": ops.minimum, "power": ops.power,
}


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 5)), ((), (2, 3))])
def test_binary_broadcasting(name, shapes, rng):
    a, b = _pos(rng, *shapes[0]), _pos(rng, *shapes[1])
    _check(BINARY[name], a, b, rng=rng)


UNARY = {
    "negative": (ops.negative, None), "square": (ops.square, None), "sqrt": (ops.sqrt, "pos"),
    "exp": (ops.exp, None), "log": (ops.log, "pos"), "log1p": (ops.log1p, "pos"), "abs": (ops.abs, None),
    "relu": (ops.relu, None), "relu6": (ops.relu6, None), "sigmoid": (ops.sigmoid, None),
    "tanh": (ops.tanh, None), "elu": (ops.elu, None), "selu": (ops.selu, None),
    "softplus": (ops.softplus, None), "softsign": (ops.softsign, None), "silu": (ops.silu, None),
    "gelu": (ops.gelu, None), "leaky_relu": (ops.leaky_relu, None), "hard_sigmoid": (ops.hard_sigmoid, None),
    "softmax": (ops.softmax, None), "log_softmax": (ops.log_softmax, None),
    "softmax_axis0": (lambda x: ops.softmax(x, axis=0), None),
    "clip": (lambda x: ops.clip(x, -0.5, 0.7), None),
    "reshape": (lambda x: ops.reshape(x, (4, -1)), None),
    "transpose": (ops.transpose, None),
    "transpose_axes": (lambda x: ops.transpose(x, (1, 0, 2)), None),
    "expand_dims": (lambda x: ops.expand_dims(x, 1), None),
    "squeeze": (lambda x: ops.squeeze(ops.expand_dims(x, 0), 0), None),
    "sum": (ops.sum, None), "sum_axis": (lambda x: ops.sum(x, axis=1), None),
    "sum_keepdims": (lambda x: ops.sum(x, axis=(0, 2), keepdims=True), None),
    "mean": (ops.mean, None), "mean_axis": (lambda x: ops.mean(x, axis=-1), None),
    "max": (ops.max, None), "max_axis": (lambda x: ops.max(x, axis=0, keepdims=True), None),
    "min_axis": (lambda x: ops.min(x, axis=2), None),
    "cast": (lambda x: ops.cast(x, "float64"), None),
    "var": (lambda x: ops.var(x, axis=1), None), "std": (ops.std, None),
    "logsumexp": (lambda x: ops.logsumexp(x, axis=-1), None),
    "logsumexp_keepdims": (lambda x: ops.logsumexp(x, axis=(0, 1), keepdims=True), None),
    "act_relu_params": (lambda x: activations.relu(x, negative_slope=0.1, max_value=0.8, threshold=0.1), None),
    "act_elu_alpha": (lambda x: activations.elu(x, alpha=0.5), None),
    "act_gelu_exact": (activations.gelu, None),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary(name, rng):
    fn, domain = UNARY[name]
    x = _pos(rng, 2, 3, 4) if domain == "pos" else rng.standard_normal((2, 3, 4))
    _check(fn, x, rng=rng)


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 2)),
                                    ((4,), (4, 3)), ((3, 4), (4,)), ((4,), (4,)), ((1, 3, 4), (2, 4, 2)),
                                    ((2, 3, 4), (4,)), ((4,), (2, 4, 3))])
def test_matmul(shapes, rng):
    _check(ops.matmul, rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1]), rng=rng)


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((4,), (4,)), ((2, 3, 4), (4, 5)), ((2, 3, 4), (5, 4, 2)),
                                    ((2, 3, 4), (4,)), ((4,), (2, 4, 3)), ((3, 4), (2, 5, 4, 3))])
def test_dot(shapes, rng):
    a, b = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    np.testing.assert_allclose(ops.dot(a, b), np.dot(a, b))
    _check(ops.dot, a, b, rng=rng)


def test_where_no_grad_for_condition(rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4,))
    cond = rng.random((3, 4)) > 0.5
    _check(lambda a_, b_: ops.where(cond, a_, b_), a, b, rng=rng)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate_and_stack(axis, rng):
    a, b, c = rng.standard_normal((2, 3)), rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    _check(lambda *xs: ops.concatenate(xs, axis=axis), a, b, c, rng=rng)
    _check(lambda *xs: ops.stack(xs, axis=axis), a, b, c, rng=rng)


def test_composite_fan_out(rng):
    """A value used several times (fan-out) and broadcast against a vector."""
    x, v = rng.standard_normal((3, 4)), rng.standard_normal((4,))

    def f(x_, v_):
        h = ops.tanh(ops.add(x_, v_))
        return ops.add(ops.multiply(h, h), ops.divide(x_, ops.add(ops.exp(v_), 1.0)))

    _check(f, x, v, rng=rng)


def test_mean_squared_error_chain(rng):
    w, x, t = rng.standard_normal((4, 2)), rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
    f = lambda w_: ops.mean(ops.square(ops.subtract(ops.matmul(x, w_), t)))  # noqa: E731
    _check(f, w, rng=rng)


def test_float32_in_float32_gradients_out(rng):
    """Ops keep float32 (the training dtype) in their outputs and gradients."""
    for name, (fn, _) in UNARY.items():
        x = rng.uniform(0.5, 2.0, (2, 3, 4)).astype(np.float32)
        with pyminidl.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        assert tape.gradient(y, x).dtype == np.float32, name
    for name, fn in BINARY.items():
        a, b = rng.uniform(0.5, 2.0, (3, 4)).astype(np.float32), rng.uniform(0.5, 2.0, 4).astype(np.float32)
        with pyminidl.GradientTape() as tape:
            tape.watch([a, b])
            y = fn(a, b)
        assert y.dtype == np.float32 and all(g.dtype == np.float32 for g in tape.gradient(y, [a, b])), name
