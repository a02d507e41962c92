"""GEMM: the C++ kernel (through CpuBackend and _C) against the reference Backend.

The reference runs in float64 on the same inputs; every ISA path is forced in turn, and the
blocked kernel's promise that results do not depend on the thread count is checked bit for bit.
"""

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyminidl
from pyminidl.backend._compat import _C
from pyminidl.backend.base import Backend
from pyminidl.testing import assert_close

ISAS = ["baseline", "avx2", "avx512"]
DTYPES = [np.float32, np.float64]
TRANS = [(False, False), (True, False), (False, True), (True, True)]
# (M, N, K): size 1, primes, tails off every MR/NR of every path (6x8, 6x16, 12x32, 16x16,
# dot 8x2 / 4x2 / 2x2), tall-skinny, the Dense shapes, and shapes that reach each path of
# sgemm: small, direct (on C and on C^T, with every shorter tile height of the step-down),
# dot (N <= 12, K >= 128 on AVX2 / 224 on AVX-512; k tails off 16 and 8, odd N) and packed,
# the last with several KC blocks (K = 777 > 2 * 384) and MC blocks (M = 263 > 240).
SHAPES = [
    (1, 1, 1), (1, 7, 3), (3, 1, 17), (7, 3, 1), (17, 65, 7), (65, 17, 257), (13, 31, 29),
    (1, 257, 65), (257, 1, 65), (128, 10, 256), (10, 128, 256), (33, 65, 300), (300, 520, 260),
    (301, 263, 129), (129, 11, 203), (263, 301, 777),
    (9, 12, 241), (17, 3, 400), (5, 1, 300), (2, 10, 129), (128, 10, 128), (10, 300, 128),
    (3, 77, 50), (7, 200, 40), (11, 64, 33),
]


@pytest.fixture(params=ISAS)
def isa(request):
    pyminidl.config.set_cpu_capability(request.param)
    return request.param


def _operands(rng, m, n, k, trans_a, trans_b, dtype):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    return a, b


def _ref_gemm(a, b, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, c=None):
    f8 = np.float64
    c8 = None if c is None else c.astype(f8)
    return Backend().gemm(a.astype(f8), b.astype(f8), trans_a, trans_b, alpha, beta, c8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", TRANS)
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_gemm_matches_reference(isa, fast_backend, rng, m, n, k, trans_a, trans_b, dtype):
    a, b = _operands(rng, m, n, k, trans_a, trans_b, dtype)
    got = fast_backend.to_numpy(fast_backend.gemm(fast_backend.asarray(a), fast_backend.asarray(b),
                                                  trans_a, trans_b))
    assert got.dtype == dtype and got.shape == (m, n)
    assert_close(got, _ref_gemm(a, b, trans_a, trans_b), k=k)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", TRANS)
@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.5, -2.0), (-1.5, 0.0)])
@pytest.mark.parametrize("m,n,k", [(7, 3, 17), (65, 33, 257), (131, 5, 290), (300, 270, 400)])
def test_gemm_alpha_beta_c(isa, fast_backend, rng, m, n, k, alpha, beta, trans_a, trans_b, dtype):
    # The shapes reach every path: small, direct, dot and direct on C^T (131 x 5), packed.
    a, b = _operands(rng, m, n, k, trans_a, trans_b, dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    c_before = c.copy()
    got = fast_backend.gemm(a, b, trans_a, trans_b, alpha, beta, c)
    assert_close(got, _ref_gemm(a, b, trans_a, trans_b, alpha, beta, c), k=k)
    np.testing.assert_array_equal(c, c_before)  # c is an input; the result is a new array


def test_gemm_beta_zero_ignores_nan_in_c(rng):
    a, b = _operands(rng, 40, 50, 60, False, False, np.float32)
    c = np.full((40, 50), np.nan, np.float32)
    got = _C.gemm(a, b, False, False, 1.0, 0.0, c)
    assert np.isfinite(got).all()
    assert_close(got, _ref_gemm(a, b), k=60)


def _views(rng, shape, dtype):
    """Equal-valued arrays of ``shape`` in several memory layouts (all read-only views of one base)."""
    r, c = shape
    base = rng.standard_normal((2 * r + 3, 3 * c + 4)).astype(dtype)
    return {
        "contiguous": np.ascontiguousarray(base[:r, :c]),
        "row_stride": base[1:r + 1, 2:c + 2],              # last axis contiguous, padded rows
        "step_slices": base[::2, ::3][:r, :c],             # no contiguous axis: copied
        "fortran": np.asfortranarray(base[:r, :c]),        # a transposed C array
        "transposed_view": base[2:c + 2, 1:r + 1].T,       # first axis contiguous, padded
        "negative_stride": base[r - 1::-1, :c],            # copied
    }


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", TRANS)
@pytest.mark.parametrize("layout", ["contiguous", "row_stride", "step_slices", "fortran",
                                    "transposed_view", "negative_stride"])
def test_gemm_non_contiguous_inputs(rng, layout, trans_a, trans_b, dtype):
    m, n, k = 37, 45, 53
    a = _views(rng, (k, m) if trans_a else (m, k), dtype)[layout]
    b = _views(rng, (n, k) if trans_b else (k, n), dtype)[layout]
    c = _views(rng, (m, n), dtype)[layout]
    got = _C.gemm(a, b, trans_a, trans_b, 0.75, -1.25, c)
    assert got.flags.c_contiguous
    assert_close(got, _ref_gemm(a, b, trans_a, trans_b, 0.75, -1.25, c), k=k)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n,k", [(300, 520, 260), (128, 10, 256), (10, 600, 700), (61, 67, 71),
                                   (2, 3000, 800), (1000, 3, 1500), (263, 301, 777)])
def test_gemm_one_and_two_threads_bit_identical(isa, rng, m, n, k, dtype):
    # Tile boundaries, KC blocks and the k order never depend on the thread count.
    a, b = _operands(rng, m, n, k, True, False, dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    pyminidl.config.set_num_threads(1)
    one = _C.gemm(a, b, True, False, 1.5, 0.5, c)
    pyminidl.config.set_num_threads(2)
    two = _C.gemm(a, b, True, False, 1.5, 0.5, c)
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("m,n,k", [(128, 128, 128), (96, 96, 96), (128, 64, 64)])
def test_gemm_cold_and_warm_calls_bit_identical(isa, rng, m, n, k):
    # Products of this size run on one thread after a pause (the workers sleep) and on two in a
    # stream of calls (team.h): the bits are the same either way, and the same as one thread's.
    a, b = _operands(rng, m, n, k, False, False, np.float32)
    pyminidl.config.set_num_threads(1)
    one = _C.gemm(a, b, False, False)
    pyminidl.config.set_num_threads(2)
    window_s = _C.build_info()["team_spin_window_us"] * 1e-6
    time.sleep(min(1.0, 3 * window_s + 0.01))
    cold = _C.gemm(a, b, False, False)
    warm = [_C.gemm(a, b, False, False) for _ in range(3)]
    for got in [cold] + warm:
        np.testing.assert_array_equal(got, one)


@pytest.mark.parametrize("rows", [1, 4, 5, 8, 9, 11])
def test_gemm_edge_rows_match_full_tiles_bit_for_bit(isa, rng, rows):
    # The last rows of C (fewer than a tile: the AVX-512 rows kernel, else a scratch tile) get
    # the bits they get inside full tiles: M = 36 + rows against the same rows in M = 72, on
    # the packed path (M N K past the direct path's limit) with several KC blocks.
    a, b = _operands(rng, 72, 512, 2000, False, False, np.float32)
    c = rng.standard_normal((72, 512)).astype(np.float32)
    pyminidl.config.set_num_threads(1)
    full = _C.gemm(a, b, False, False, 1.5, 0.5, c)
    m = 36 + rows
    edge = _C.gemm(np.ascontiguousarray(a[:m]), b, False, False, 1.5, 0.5, np.ascontiguousarray(c[:m]))
    np.testing.assert_array_equal(edge, full[:m])


@pytest.mark.parametrize("rows", [72, 41])
@pytest.mark.parametrize("cols", [1, 4, 15, 16, 17, 20, 31])
def test_gemm_edge_columns_match_full_tiles_bit_for_bit(isa, rng, cols, rows):
    # The last columns of C (fewer than a tile: the cols kernel, else a scratch tile) get the
    # bits they get inside full tiles: N = 448 + cols against the same columns of N = 512 (and
    # the last rows of M = 41 at once), on the packed path (M N K past the direct path's limit)
    # with several KC blocks.
    a, b = _operands(rng, 72, 512, 2000, False, False, np.float32)
    c = rng.standard_normal((72, 512)).astype(np.float32)
    pyminidl.config.set_num_threads(1)
    full = _C.gemm(a, b, False, False, 1.5, 0.5, c)
    n = 448 + cols
    edge = _C.gemm(np.ascontiguousarray(a[:rows]), np.ascontiguousarray(b[:, :n]), False, False, 1.5, 0.5,
                   np.ascontiguousarray(c[:rows, :n]))
    np.testing.assert_array_equal(edge, full[:rows, :n])
    plain = _C.gemm(np.ascontiguousarray(a[:rows]), np.ascontiguousarray(b[:, :n]), False, False)  # beta = 0
    np.testing.assert_array_equal(plain, _C.gemm(a, b, False, False)[:rows, :n])


def test_gemm_run_to_run_bit_identical(isa, rng):
    a, b = _operands(rng, 300, 520, 260, False, True, np.float32)
    pyminidl.config.set_num_threads(2)
    first = _C.gemm(a, b, False, True)
    for _ in range(3):
        np.testing.assert_array_equal(_C.gemm(a, b, False, True), first)


@settings(max_examples=50, deadline=None)
@given(
    m=st.integers(1, 70), n=st.integers(1, 70), k=st.integers(1, 70),
    trans_a=st.booleans(), trans_b=st.booleans(), f64=st.booleans(),
    isa_name=st.sampled_from(ISAS), seed=st.integers(0, 2**32 - 1),
)
def test_gemm_random_shapes(m, n, k, trans_a, trans_b, f64, isa_name, seed):
    rng = np.random.default_rng(seed)
    dtype = np.float64 if f64 else np.float32
    a, b = _operands(rng, m, n, k, trans_a, trans_b, dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    pyminidl.config.set_cpu_capability(isa_name)
    try:
        got = _C.gemm(a, b, trans_a, trans_b, -0.5, 1.5, c)
    finally:
        pyminidl.config.set_cpu_capability("avx512")
    assert_close(got, _ref_gemm(a, b, trans_a, trans_b, -0.5, 1.5, c), k=k)


# ------------------------------------------------------------------ empty and special values


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n,k", [(0, 5, 3), (4, 0, 3), (0, 0, 0), (4, 5, 0)])
def test_gemm_empty(m, n, k, dtype):
    a = np.zeros((m, k), dtype)
    b = np.ones((k, n), dtype)
    got = _C.gemm(a, b)
    assert got.shape == (m, n) and got.dtype == dtype
    np.testing.assert_array_equal(got, np.zeros((m, n), dtype))
    c = np.arange(m * n, dtype=dtype).reshape(m, n)
    np.testing.assert_array_equal(_C.gemm(a, b, beta=2.0, c=c), 2.0 * c)  # K == 0: C = beta C


@pytest.mark.parametrize("isa_name", ISAS)
@pytest.mark.parametrize("m,n,k", [(3, 4, 5), (70, 90, 300)])
def test_gemm_nan_and_inf_propagate(isa_name, m, n, k):
    pyminidl.config.set_cpu_capability(isa_name)
    a = np.ones((m, k), np.float32)
    b = np.ones((k, n), np.float32)
    a[1, 2] = np.nan
    b[3, 2] = np.inf
    got = _C.gemm(a, b)
    ref = _ref_gemm(a, b)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(ref))
    assert np.isnan(got[1]).all() and np.isinf(got[0, 2])


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("a_dtype,b_dtype", [
    (np.int32, np.int32), (np.float16, np.float16), (np.float32, np.float64),
    (np.float64, np.float32), (np.int64, np.float32),
])
def test_gemm_rejects_wrong_dtype(a_dtype, b_dtype):
    with pytest.raises(TypeError, match="dtype"):
        _C.gemm(np.ones((2, 3), a_dtype), np.ones((3, 4), b_dtype))


def test_gemm_rejects_wrong_c_dtype():
    with pytest.raises(TypeError, match="argument 'c'"):
        _C.gemm(np.ones((2, 3), np.float32), np.ones((3, 4), np.float32), beta=1.0,
                c=np.ones((2, 4), np.float64))


@pytest.mark.parametrize("a_shape,b_shape,name", [
    ((3,), (3, 4), "a"), ((2, 3), (3,), "b"), ((2, 2, 3), (3, 4), "a"), ((2, 3), (1, 3, 4), "b"),
])
def test_gemm_rejects_wrong_rank(a_shape, b_shape, name):
    with pytest.raises(ValueError, match=f"argument '{name}' must be 2-D. Received: shape="):
        _C.gemm(np.ones(a_shape, np.float32), np.ones(b_shape, np.float32))


def test_gemm_rejects_mismatched_inner_dimensions():
    msg = r"gemm: inner dimensions differ: op\(a\).shape=\(3, 4\), op\(b\).shape=\(5, 2\)"
    with pytest.raises(ValueError, match=msg):
        _C.gemm(np.ones((3, 4), np.float32), np.ones((5, 2), np.float32))
    with pytest.raises(ValueError, match=msg):
        _C.gemm(np.ones((4, 3), np.float32), np.ones((2, 5), np.float32), True, True)


@pytest.mark.parametrize("c_shape", [(2, 5), (4, 2), (2,), (1, 2, 4)])
def test_gemm_rejects_wrong_c_shape(c_shape):
    with pytest.raises(ValueError, match=r"argument 'c' must have shape \(M, N\)=\(2, 4\)"):
        _C.gemm(np.ones((2, 3)), np.ones((3, 4)), beta=1.0, c=np.ones(c_shape))


# ------------------------------------------------------------------ backend dispatch


def test_backend_gemm_falls_back_for_unsupported_inputs(fast_backend, ref, rng):
    a = rng.integers(-3, 3, (4, 5))
    b = rng.integers(-3, 3, (5, 6))
    np.testing.assert_array_equal(fast_backend.gemm(a, b), ref.gemm(a, b))  # integers
    x = rng.standard_normal((2, 4, 5)).astype(np.float32)  # batched (3-D): the reference
    assert_close(fast_backend.gemm(x, b.astype(np.float32)), ref.gemm(x.astype(np.float64), b), k=5)
    mixed = fast_backend.gemm(a.astype(np.float32), b.astype(np.float64))  # promotes like NumPy
    assert mixed.dtype == np.float64
