"""take_rows (the training loop's batch gather): the C++ kernel against the reference x.take(idx, axis=0)."""

import numpy as np
import pytest

import pyminidl
from pyminidl.backend._compat import _C
from pyminidl.backend.cpu_backend import CpuBackend

pytestmark = pytest.mark.skipif(_C is None, reason="the C++ extension is not built")

DTYPES = [np.float32, np.float64, np.int64, np.int32, np.uint8, np.bool_, np.complex64, np.float16]
# Trailing shapes: a label vector (1-D x), MNIST-like rows (odd widths), images (3-D+).
ROWS = [(), (1,), (7,), (784,), (5, 3), (4, 3, 2)]


def _data(rng, n, tail, dtype):
    x = rng.standard_normal((n,) + tail) * 100
    return (x > 0 if dtype == np.bool_ else x.astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tail", ROWS)
@pytest.mark.parametrize("n,k", [(1, 1), (2, 5), (17, 17), (600, 128), (301, 0)])
def test_take_rows_matches_reference(fast_backend, ref, rng, n, k, tail, dtype):
    x = _data(rng, n, tail, dtype)
    idx = rng.integers(-n, n, size=k)  # negatives count from the end, duplicates repeat
    got = fast_backend.take_rows(x, idx)
    want = ref.take_rows(x, idx)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_take_rows_is_a_permutation_gather_with_copies(rng):
    x = rng.standard_normal((1000, 33)).astype(np.float32)
    perm = rng.permutation(1000)
    got = _C.take_rows(x, perm)
    np.testing.assert_array_equal(got, x[perm])
    got[0] = 0.0  # a copy, not a view: x is untouched
    np.testing.assert_array_equal(x[perm[0]], x.take(perm[:1], axis=0)[0])
    assert not np.shares_memory(got, x)


@pytest.mark.parametrize("threads", [1, 2])
def test_take_rows_same_bytes_at_any_thread_count(rng, threads):
    # 4096 rows of 300 floats: far past the parallel grain, so two threads split the rows.
    x = rng.standard_normal((5000, 300)).astype(np.float32)
    idx = rng.integers(0, 5000, size=4096)
    pyminidl.config.set_num_threads(threads)
    np.testing.assert_array_equal(_C.take_rows(x, idx), x.take(idx, axis=0))


@pytest.mark.parametrize("rows", [21, 128, 300])
def test_take_rows_right_after_a_parallel_region(rng, rows):
    # Right after a 2-thread region (its workers still spin, team.h) a batch from 64 KB on goes
    # over both threads; MNIST-shaped rows, the same bytes as NumPy's take.
    x = rng.standard_normal((2000, 784)).astype(np.float32)
    idx = rng.integers(0, 2000, size=rows)
    a = rng.standard_normal((512, 512)).astype(np.float32)
    pyminidl.config.set_num_threads(2)
    for _ in range(3):
        _C.gemm(a, a, False, False)
        np.testing.assert_array_equal(_C.take_rows(x, idx), x.take(idx, axis=0))


@pytest.mark.parametrize("bad", [10, 11, -11, 2**40, -(2**62)])
def test_take_rows_raises_numpys_index_error(rng, bad):
    x = rng.standard_normal((10, 4)).astype(np.float32)
    idx = np.array([0, 3, bad, 1], dtype=np.int64)
    with pytest.raises(IndexError) as ours:
        _C.take_rows(x, idx)
    with pytest.raises(IndexError) as theirs:
        x.take(idx, axis=0)
    assert str(ours.value) == str(theirs.value)


def test_take_rows_of_an_empty_array():
    x = np.zeros((0, 3), np.float32)
    assert _C.take_rows(x, np.zeros(0, np.int64)).shape == (0, 3)
    with pytest.raises(IndexError, match="out of bounds for axis 0 with size 0"):
        _C.take_rows(x, np.zeros(1, np.int64))


def test_take_rows_rejects_what_it_cannot_copy_bytewise(rng):
    x = rng.standard_normal((10, 4)).astype(np.float32)
    idx = np.arange(3, dtype=np.int64)
    with pytest.raises(TypeError, match="argument 'x' must have a boolean, integer, float or complex dtype"):
        _C.take_rows(np.array([[object()]] * 10, dtype=object), idx)
    with pytest.raises(TypeError, match="argument 'idx' must have dtype int64"):
        _C.take_rows(x, idx.astype(np.int32))
    with pytest.raises(ValueError, match="must be C-contiguous"):
        _C.take_rows(x[:, ::2], idx)
    with pytest.raises(ValueError, match="must be C-contiguous"):
        _C.take_rows(x, np.arange(6, dtype=np.int64)[::2])
    with pytest.raises(ValueError, match="argument 'idx' must be 1-D"):
        _C.take_rows(x, idx.reshape(3, 1))
    with pytest.raises(ValueError, match="at least 1 dimension"):
        _C.take_rows(np.array(1.0, np.float32), idx)


def test_backend_take_rows_falls_back_where_the_kernel_does_not_apply(rng):
    be = CpuBackend()
    x = rng.standard_normal((20, 6)).astype(np.float32)
    for xs, idx in [(x[:, ::2], np.arange(4)), (x, np.arange(4, dtype=np.int32)), (x, np.arange(6).reshape(2, 3)),
                    (x.astype(object), np.arange(4)), (x, [1, 2])]:
        np.testing.assert_array_equal(be.take_rows(xs, idx), np.take(xs, idx, axis=0))
