"""The ``out=`` form of activation_forward / activation_backward: in place (out is the input)
and into a separate array, on the cpu backend against its own out-of-place call (same bits)
and against the reference, float32 and float64, with strided inputs and the refusals."""

import numpy as np
import pytest

from pyminidl.backend._compat import _C
from pyminidl.backend.base import ACTIVATIONS, Backend
from pyminidl.testing import assert_close

LARGE = 70001  # above PARALLEL_GRAIN (csrc/common.h): the in-place loops run on every thread

CASES = [(name, {}) for name in ACTIVATIONS] + [
    ("relu", {"negative_slope": 0.125, "max_value": 6.0, "threshold": 0.5}),
    ("relu", {"max_value": 6.0}),
    ("leaky_relu", {"negative_slope": 0.05}),
    ("elu", {"alpha": 0.5}),
    ("gelu", {"approximate": True}),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in p.items())}" if p else n for n, p in CASES]
SHAPES = [(1,), (7,), (17,), (5, 13), (2, 3, 5, 7), (LARGE,)]


def _inputs(rng, shape, dtype):
    x = (3.0 * rng.standard_normal(shape)).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    return x, dy


@pytest.mark.sanitize
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_forward_out_gives_the_bits_of_a_new_output(cpu, rng, name, params, shape, dtype):
    x, _ = _inputs(rng, shape, dtype)
    want = cpu.activation_forward(name, x, **params)
    buf = x.copy()
    got = cpu.activation_forward(name, buf, out=buf, **params)
    assert got is buf
    np.testing.assert_array_equal(got, want)
    out = np.full_like(x, np.nan)
    x_before = x.copy()
    assert cpu.activation_forward(name, x, out=out, **params) is out
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(x, x_before)  # the input of a separate out is only read


@pytest.mark.sanitize
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_backward_out_gives_the_bits_of_a_new_output(cpu, rng, name, params, shape, dtype):
    x, dy = _inputs(rng, shape, dtype)
    y = cpu.activation_forward(name, x, **params)
    want = cpu.activation_backward(name, dy, x, y, **params)
    buf = dy.copy()
    got = cpu.activation_backward(name, buf, x, y, out=buf, **params)
    assert got is buf
    np.testing.assert_array_equal(got, want)
    out = np.full_like(dy, np.nan)
    assert cpu.activation_backward(name, dy, x, y, out=out, **params) is out
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_out_matches_the_float64_reference(cpu, rng, name, params):
    x, dy = _inputs(rng, (3, 17), np.float32)
    ref = Backend()
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    y64 = ref.activation_forward(name, x64, **params)
    buf = x.copy()
    assert_close(cpu.activation_forward(name, buf, out=buf, **params), y64)
    y = cpu.activation_forward(name, x, **params)
    buf = dy.copy()
    assert_close(cpu.activation_backward(name, buf, x, y, out=buf, **params),
                 ref.activation_backward(name, dy64, x64, y.astype(np.float64), **params))


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_reference_out_writes_its_own_result(rng, name, params):
    ref = Backend()
    x, dy = _inputs(rng, (4, 5), np.float64)
    want = ref.activation_forward(name, x, **params)
    buf = x.copy()
    assert ref.activation_forward(name, buf, out=buf, **params) is buf
    np.testing.assert_array_equal(buf, want)
    y = want
    want_dx = ref.activation_backward(name, dy, x, y, **params)
    out = np.empty_like(dy)
    assert ref.activation_backward(name, dy, x, y, out=out, **params) is out
    np.testing.assert_array_equal(out, want_dx)


@pytest.mark.parametrize("name", ["relu", "tanh", "elu", "swish"])
def test_strided_input_and_strided_out(cpu, rng, name):
    """A strided input is copied before the kernel runs; a strided out goes to the reference."""
    base = (3.0 * rng.standard_normal((6, 10))).astype(np.float32)
    x = base[::2, ::3]
    want = cpu.activation_forward(name, np.ascontiguousarray(x))
    out = np.empty(x.shape, np.float32)
    np.testing.assert_array_equal(cpu.activation_forward(name, x, out=out), want)
    strided = np.zeros((6, 10), np.float32)[::2, ::3]
    assert cpu.activation_forward(name, x, out=strided) is strided
    np.testing.assert_allclose(strided, want, rtol=1e-6, atol=1e-6)
    dy = rng.standard_normal((6, 10)).astype(np.float32)[1::2, ::3]
    y = cpu.activation_forward(name, x)
    out = np.empty(x.shape, np.float32)
    np.testing.assert_array_equal(cpu.activation_backward(name, dy, x, y, out=out),
                                  cpu.activation_backward(name, np.ascontiguousarray(dy), x, y))


def test_overlapping_out_is_computed_by_the_reference(cpu, rng):
    """out sharing part of x's memory: the backend answers through the reference (new y, copied in)."""
    buf = (3.0 * rng.standard_normal(33)).astype(np.float32)
    x, out = buf[1:], buf[:-1]
    want = cpu.activation_forward("tanh", x.copy())
    got = cpu.activation_forward("tanh", x, out=out)
    assert got is out
    np.testing.assert_array_equal(got, want)


def test_binding_refuses_a_bad_out():
    x = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    with pytest.raises(TypeError, match="dtype"):
        _C.activation_forward("relu", x, out=np.empty((3, 4), np.float64))
    with pytest.raises(ValueError, match="same shape"):
        _C.activation_forward("relu", x, out=np.empty((4, 3), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        _C.activation_forward("relu", x, out=np.empty((3, 8), np.float32)[:, ::2])
    ro = np.empty((3, 4), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _C.activation_forward("relu", x, out=ro)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        _C.activation_forward("relu", x, out=[0.0] * 12)
    buf = np.zeros(13, np.float32)
    with pytest.raises(ValueError, match="itself or share no memory"):
        _C.activation_forward("relu", buf[1:].reshape(3, 4), out=buf[:-1].reshape(3, 4))
    dy, y = x.copy(), x.copy()
    with pytest.raises(ValueError, match="share memory"):
        _C.activation_backward("tanh", dy, None, y, out=y)
    with pytest.raises(ValueError, match="share memory"):
        _C.activation_backward("relu", dy, x, None, out=x)


def test_reference_refuses_a_mismatched_out():
    ref, x = Backend(), np.linspace(-2, 2, 12).reshape(3, 4)
    with pytest.raises(TypeError, match="dtype"):
        ref.activation_forward("relu", x, out=np.empty((3, 4), np.float32))
    with pytest.raises(ValueError, match="same shape"):
        ref.activation_forward("relu", x, out=np.empty((1, 4)))
    with pytest.raises(ValueError, match="same shape"):
        ref.activation_backward("relu", x, x, None, out=np.empty(12))
