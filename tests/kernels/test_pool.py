"""Pooling kernels (cpu backend) against the float64 reference: odd shapes, both paddings, strides,
batch 1, non-contiguous views, ties and NaN, thread-count independence, and the binding's checks."""

import numpy as np
import pytest

import pyminidl
from pyminidl.backend._compat import _C
from pyminidl.backend.base import Backend
from pyminidl.testing import assert_close

REF = Backend()
GEOMETRIES = [  # (N, H, W, C), pool, strides, padding
    ((1, 1, 1, 1), (1, 1), (1, 1), "valid"),
    ((2, 7, 9, 3), (2, 2), (2, 2), "valid"),
    ((3, 7, 9, 17), (3, 2), (2, 1), "same"),
    ((1, 5, 5, 65), (5, 5), (1, 1), "same"),
    ((2, 6, 6, 1), (2, 2), (3, 3), "valid"),
    ((1, 1, 13, 7), (1, 3), (1, 2), "same"),
    ((2, 11, 4, 33), (3, 3), (2, 2), "valid"),
    ((1, 4, 4, 5), (7, 7), (3, 1), "same"),
]


def _x(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("shape,pool,strides,padding", GEOMETRIES)
def test_maxpool_matches_reference(cpu, rng, shape, pool, strides, padding):
    x = _x(rng, shape)
    y, argmax = cpu.maxpool_forward(x, pool, strides, padding)
    y_ref, arg_ref = REF.maxpool_forward(x.astype(np.float64), pool, strides, padding)
    np.testing.assert_array_equal(argmax, arg_ref)
    assert argmax.dtype == np.int32
    np.testing.assert_array_equal(y, y_ref.astype(np.float32))  # a max is exact
    dy = _x(rng, y.shape)
    dx = cpu.maxpool_backward(dy, argmax, shape, pool, strides, padding)
    assert_close(dx, REF.maxpool_backward(dy.astype(np.float64), arg_ref, shape, pool, strides, padding),
                 k=pool[0] * pool[1])


@pytest.mark.parametrize("shape,pool,strides,padding", GEOMETRIES)
def test_avgpool_matches_reference(cpu, rng, shape, pool, strides, padding):
    x = _x(rng, shape)
    k = pool[0] * pool[1]
    assert_close(cpu.avgpool_forward(x, pool, strides, padding),
                 REF.avgpool_forward(x.astype(np.float64), pool, strides, padding), k=k)
    dy = _x(rng, REF.avgpool_forward(x, pool, strides, padding).shape)
    assert_close(cpu.avgpool_backward(dy, shape, pool, strides, padding),
                 REF.avgpool_backward(dy.astype(np.float64), shape, pool, strides, padding), k=k)


def test_non_contiguous_input_is_copied(cpu, rng):
    base = _x(rng, (3, 9, 8, 10))
    x = base[:, ::2, :, ::3]  # strided view: (3, 5, 8, 4)
    y, argmax = cpu.maxpool_forward(x, (2, 2), (2, 2), "same")
    np.testing.assert_array_equal(y, REF.maxpool_forward(np.ascontiguousarray(x), (2, 2), (2, 2), "same")[0])
    assert_close(cpu.avgpool_forward(x, (3, 3), (1, 1), "same"),
                 REF.avgpool_forward(x.astype(np.float64), (3, 3), (1, 1), "same"), k=9)


def test_ties_take_the_first_cell_and_nan_propagates(cpu):
    x = np.zeros((1, 2, 2, 2), np.float32)  # channel 0: all equal; channel 1: NaN at the last cell
    x[0, 1, 1, 1] = np.nan
    x[0, 0, 0, 1] = 5.0
    y, argmax = cpu.maxpool_forward(x, (2, 2), (2, 2), "valid")
    assert argmax[0, 0, 0, 0] == 0 and argmax[0, 0, 0, 1] == 3
    assert y[0, 0, 0, 0] == 0.0 and np.isnan(y[0, 0, 0, 1])
    np.testing.assert_array_equal(argmax, REF.maxpool_forward(x, (2, 2), (2, 2), "valid")[1])
    dx = cpu.maxpool_backward(np.ones((1, 1, 1, 2), np.float32), argmax, x.shape, (2, 2), (2, 2), "valid")
    np.testing.assert_array_equal(dx[0, :, :, 0], [[1, 0], [0, 0]])  # the one gradient goes to the first max


@pytest.mark.parametrize("shape,pool,strides", [((2, 12, 12, 37), (12, 12), (12, 12)),
                                                ((1, 11, 12, 48), (10, 11), (1, 1))])
def test_windows_scanned_row_by_row_keep_the_tie_and_nan_rules(cpu, rng, shape, pool, strides):
    # Windows over 16 KiB of channels are scanned one row at a time and the rows merged
    # (csrc/pool_impl.h max_cell): the first max still wins ties across rows, the first NaN
    # wins over numbers, and an earlier NaN over a later one.
    x = rng.integers(0, 3, shape).astype(np.float32)  # many ties, across rows too
    x[0, 5, 3, 0] = x[0, 2, 7, 0] = np.nan  # channel 0: the NaN of the earlier row wins
    x[0, 4, :, 1] = np.nan  # channel 1: a row of NaN
    x[-1, -1, -1, 17] = 9.0  # channel 17 (a full block's second vector): the last cell
    x[-1, :, :, 36] = -1.0  # channel 36 (in the tail block on 37 channels): all tied
    y, argmax = cpu.maxpool_forward(x, pool, strides, "valid")
    y_ref, arg_ref = REF.maxpool_forward(x.astype(np.float64), pool, strides, "valid")
    np.testing.assert_array_equal(argmax, arg_ref)
    np.testing.assert_array_equal(y, y_ref.astype(np.float32))
    if pool == shape[1:3]:
        assert argmax[0, 0, 0, 0] == 2 * shape[2] + 7 and argmax[0, 0, 0, 1] == 4 * shape[2]
        assert argmax[-1, 0, 0, 17] == shape[1] * shape[2] - 1 and argmax[-1, 0, 0, 36] == 0


def test_overlapping_windows_sum_into_shared_cells(cpu, rng):
    x = _x(rng, (2, 9, 9, 6))
    y, argmax = cpu.maxpool_forward(x, (3, 3), (1, 1), "same")
    dy = _x(rng, y.shape)
    dx = cpu.maxpool_backward(dy, argmax, x.shape, (3, 3), (1, 1), "same")
    assert_close(dx, REF.maxpool_backward(dy.astype(np.float64), argmax, x.shape, (3, 3), (1, 1), "same"), k=9)
    np.testing.assert_allclose(dx.sum(), dy.sum(), rtol=1e-4)  # every dy lands somewhere exactly once


@pytest.mark.parametrize("op", ["max", "avg"])
def test_one_and_two_threads_agree_bitwise(cpu, rng, op):
    x = _x(rng, (16, 28, 28, 32))
    results = []
    for threads in (1, 2):
        pyminidl.config.set_num_threads(threads)
        if op == "max":
            y, a = cpu.maxpool_forward(x, (2, 2), (2, 2), "valid")
            dx = cpu.maxpool_backward(y, a, x.shape, (2, 2), (2, 2), "valid")
        else:
            y = cpu.avgpool_forward(x, (3, 3), (2, 2), "same")
            dx = cpu.avgpool_backward(y, x.shape, (3, 3), (2, 2), "same")
        results.append((y, dx))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)  # disjoint outputs, fixed order: no thread dependence


def test_float64_takes_the_reference(cpu, rng):
    x = rng.standard_normal((1, 4, 4, 2))
    y, argmax = cpu.maxpool_forward(x, (2, 2), (2, 2), "valid")
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, REF.maxpool_forward(x, (2, 2), (2, 2), "valid")[0])


@pytest.mark.parametrize("call,match", [
    (lambda x: _C.maxpool_forward(x, (3, 3), (1, 1), "valid"), "output would be empty"),
    (lambda x: _C.maxpool_forward(x, (0, 2), (1, 1), "valid"), "pool_size"),
    (lambda x: _C.avgpool_forward(x, (2, 2), (0, 1), "same"), "strides"),
    (lambda x: _C.avgpool_forward(x, (2, 2), (-1, 1), "same"), "strides"),
    (lambda x: _C.avgpool_forward(x, (2, 2), (1, 1), "full"), "padding"),
    (lambda x: _C.maxpool_forward(x[0], (1, 1), (1, 1), "valid"), "4-D"),
    (lambda x: _C.avgpool_backward(np.zeros((1, 2, 2, 3), np.float32), (1, 2, 2, 2), (1, 1), (1, 1), "valid"),
     "must have shape"),
    (lambda x: _C.maxpool_backward(np.zeros((1, 1, 1, 3), np.float32), np.full((1, 1, 1, 3), 4, np.int32),
                                   (1, 2, 2, 3), (2, 2), (2, 2), "valid"), "outside its pooling window"),
])
def test_binding_refuses_bad_geometry(call, match):
    with pytest.raises(ValueError, match=match):
        call(np.zeros((1, 2, 2, 3), np.float32))


def test_binding_refuses_other_dtypes():
    with pytest.raises(TypeError, match="float32"):
        _C.maxpool_forward(np.zeros((1, 2, 2, 1)), (1, 1), (1, 1), "valid")
    with pytest.raises(TypeError, match="int32"):
        _C.maxpool_backward(np.zeros((1, 1, 1, 1), np.float32), np.zeros((1, 1, 1, 1), np.int64), (1, 2, 2, 1),
                            (2, 2), (2, 2), "valid")


ISAS = ["baseline", "avx2", "avx512"]
# Channel counts around every vector width (4, 8, 16 floats) and their tails; the last is a
# global pool (one window over the image).
ISA_GEOMETRIES = GEOMETRIES + [((2, 6, 5, 31), (2, 3), (1, 2), "same"), ((3, 5, 7, 48), (5, 7), (5, 7), "valid"),
                               ((2, 12, 12, 37), (12, 12), (12, 12), "valid"),  # max scanned row by row
                               ((1, 11, 11, 48), (10, 10), (1, 1), "valid")]


def _pool_all(cpu, x, pool, strides, padding, dy_seed):
    y, argmax = cpu.maxpool_forward(x, pool, strides, padding)
    dy = np.random.default_rng(dy_seed).standard_normal(y.shape).astype(np.float32)
    ya = cpu.avgpool_forward(x, pool, strides, padding)
    return (y, argmax, cpu.maxpool_backward(dy, argmax, x.shape, pool, strides, padding), ya,
            cpu.avgpool_backward(dy, x.shape, pool, strides, padding))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("shape,pool,strides,padding", ISA_GEOMETRIES)
def test_each_isa_path_matches_reference(cpu, rng, isa, shape, pool, strides, padding):
    # The pool kernels run the baseline, AVX2 or AVX-512 copy (csrc/pool_isa.h) as capped here.
    pyminidl.config.set_cpu_capability(isa)
    x = _x(rng, shape)
    y, argmax, dx_max, y_avg, dx_avg = _pool_all(cpu, x, pool, strides, padding, 1)
    x64 = x.astype(np.float64)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    y_ref, arg_ref = REF.maxpool_forward(x64, pool, strides, padding)
    np.testing.assert_array_equal(argmax, arg_ref)
    np.testing.assert_array_equal(y, y_ref.astype(np.float32))
    k = pool[0] * pool[1]
    assert_close(dx_max, REF.maxpool_backward(dy.astype(np.float32).astype(np.float64), arg_ref, shape, pool,
                                              strides, padding), k=k)
    assert_close(y_avg, REF.avgpool_forward(x64, pool, strides, padding), k=k)
    assert_close(dx_avg, REF.avgpool_backward(dy.astype(np.float32).astype(np.float64), shape, pool, strides,
                                              padding), k=k)


@pytest.mark.parametrize("shape,pool,strides,padding", ISA_GEOMETRIES)
def test_every_isa_path_gives_the_same_bits(cpu, rng, shape, pool, strides, padding):
    # Per-channel work in the same order on every path, no FMA contraction: identical bits,
    # NaN and infinities included.
    x = _x(rng, shape)
    x.flat[:: 7] = np.nan
    x.flat[3:: 11] = np.inf
    x.flat[5:: 13] = -np.inf
    results = []
    for isa in ISAS:
        pyminidl.config.set_cpu_capability(isa)
        results.append(_pool_all(cpu, x, pool, strides, padding, 2))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
