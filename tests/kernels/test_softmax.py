"""CpuBackend softmax / log_softmax (last axis) vs the reference Backend."""

import numpy as np
import pytest

import pyminidl
from pyminidl.backend._compat import _C
from pyminidl.backend.base import Backend
from pyminidl.testing import assert_close

LARGE_ROWS = 700  # 700 x 65 > PARALLEL_GRAIN (csrc/common.h): the row loop runs in parallel
SHAPES = [(1,), (1, 1), (3, 1), (7,), (1, 17), (5, 65), (2, 257), (3, 4, 7), (LARGE_ROWS, 65), (2, 5000)]
OPS = ["softmax", "log_softmax"]


def _fwd(be, op, x, axis=-1):
    return getattr(be, f"{op}_forward")(x, axis=axis)


def _bwd(be, op, dy, y, axis=-1):
    return getattr(be, f"{op}_backward")(dy, y, axis=axis)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("op", OPS)
def test_forward_backward_match_reference_float32(cpu, rng, op, shape):
    x = (4.0 * rng.standard_normal(shape)).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    y = _fwd(cpu, op, x)
    assert y.dtype == np.float32 and y.shape == shape
    assert_close(y, _fwd(Backend(), op, x.astype(np.float64)), k=shape[-1])
    dx = _bwd(cpu, op, dy, y)
    assert_close(dx, _bwd(Backend(), op, dy.astype(np.float64), y.astype(np.float64)), k=shape[-1])


@pytest.mark.parametrize("op", OPS)
def test_float64_and_strided_views(cpu, rng, op):
    base = 3.0 * rng.standard_normal((20, 40))
    for x in (base, base[::2, 1::3], base.T):  # contiguous, strided, transposed
        dy = rng.standard_normal(x.shape)
        y = _fwd(cpu, op, x)
        assert_close(y, _fwd(Backend(), op, x), k=x.shape[-1])
        assert_close(_bwd(cpu, op, dy, y), _bwd(Backend(), op, dy, y), k=x.shape[-1])
        x32, dy32 = x.astype(np.float32)[..., ::-1], dy.astype(np.float32)[..., ::-1]
        y32 = _fwd(cpu, op, x32)
        assert_close(y32, _fwd(Backend(), op, x32.astype(np.float64)), k=x.shape[-1])
        ref_dx = _bwd(Backend(), op, dy32.astype(np.float64), y32.astype(np.float64))
        assert_close(_bwd(cpu, op, dy32, y32), ref_dx, k=x.shape[-1])


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("axis", [0, 1, -2])
def test_other_axes_fall_back_to_reference(cpu, rng, op, axis):
    x = rng.standard_normal((4, 5, 6)).astype(np.float32)
    got = _fwd(cpu, op, x, axis=axis)
    np.testing.assert_allclose(got, _fwd(Backend(), op, x, axis=axis), rtol=1e-6, atol=1e-7)


def test_last_axis_by_index_uses_the_kernel(cpu, rng):
    x = rng.standard_normal((3, 9)).astype(np.float32)
    np.testing.assert_array_equal(cpu.softmax_forward(x, axis=1), _C.softmax_forward(x))


def test_softmax_rows_sum_to_one_and_survive_large_logits(cpu):
    x = np.array([[1000.0, 0.0, -1000.0], [88.0, 89.0, 90.0], [-1e30, 0.0, 1e30]], np.float32)
    y = cpu.softmax_forward(x)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-6)
    assert np.all(np.isfinite(cpu.log_softmax_forward(x)))


@pytest.mark.parametrize("op", OPS)
def test_nan_inf_propagate_like_reference(cpu, rng, op):
    x = np.array([[np.nan, 0.0, 1.0], [np.inf, 0.0, 1.0], [-np.inf, 0.0, 1.0],
                  [-np.inf, -np.inf, -np.inf], [1.0, 2.0, 3.0]], np.float32)
    with np.errstate(all="ignore"):
        ref = _fwd(Backend(), op, x)
    np.testing.assert_allclose(_fwd(cpu, op, x), ref, rtol=1e-6, atol=1e-7, equal_nan=True)
    assert np.isnan(_fwd(cpu, op, x)[0]).all() and np.isfinite(_fwd(cpu, op, x)[4]).all()


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("at", [3, 20, 47])  # in the first block of 16 lanes, the second, the tail
def test_nan_inf_anywhere_in_a_long_row_like_reference(cpu, op, at):
    x = np.tile(np.linspace(-2.0, 2.0, 50, dtype=np.float32), (4, 1))
    x[0, at], x[1, at], x[2, at] = np.nan, np.inf, -np.inf
    with np.errstate(all="ignore"):
        ref = _fwd(Backend(), op, x.astype(np.float64))
    got = _fwd(cpu, op, x)
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-7, equal_nan=True)
    assert np.isnan(got[:2]).all() and np.isfinite(got[3]).all()


@pytest.mark.parametrize("op", OPS)
def test_threads_do_not_change_bits(cpu, rng, op):
    x = rng.standard_normal((LARGE_ROWS, 65)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    out = []
    for n in (1, 2, 2):
        pyminidl.config.set_num_threads(n)
        y = _fwd(cpu, op, x)
        out.append((y, _bwd(cpu, op, dy, y)))
    for (y1, d1), (y2, d2) in zip(out, out[1:]):
        np.testing.assert_array_equal(y1, y2)
        np.testing.assert_array_equal(d1, d2)


def test_empty_inputs():
    assert _C.softmax_forward(np.zeros((0, 4), np.float32)).shape == (0, 4)
    assert _C.log_softmax_backward(np.zeros((0, 4)), np.zeros((0, 4))).shape == (0, 4)
    with pytest.raises(ValueError, match=r"empty last axis.*shape=\(3, 0\)"):
        _C.softmax_forward(np.zeros((3, 0), np.float32))
    with pytest.raises(ValueError, match="at least 1-D"):
        _C.log_softmax_forward(np.array(1.0, np.float32))


def test_binding_rejects_bad_input():
    a = np.zeros((2, 3), np.float32)
    with pytest.raises(TypeError, match="'x' must have dtype float32 or float64. Received: dtype=int32"):
        _C.softmax_forward(np.zeros((2, 3), np.int32))
    with pytest.raises(TypeError, match="same dtype"):
        _C.softmax_backward(a, a.astype(np.float64))
    with pytest.raises(ValueError, match=r"dy.shape=\(2, 3\), y.shape=\(3, 2\)"):
        _C.log_softmax_backward(a, a.T.copy())


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("cols", [10, 67, 1000])  # the tail alone, blocks of 16 lanes and a tail
def test_every_isa_path_gives_the_same_bits(cpu, rng, op, cols):
    x = (4.0 * rng.standard_normal((33, cols))).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    results = []
    for cap in ("baseline", "avx2", "avx512"):
        pyminidl.config.set_cpu_capability(cap)
        y = _fwd(cpu, op, x)
        results.append((y, _bwd(cpu, op, dy, y)))
    for y, dx in results[1:]:
        np.testing.assert_array_equal(y, results[0][0])
        np.testing.assert_array_equal(dx, results[0][1])
