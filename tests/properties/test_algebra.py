"""Properties stated as algebra, checked on every backend (hypothesis-driven shapes).

These do not compare against the reference: they state what must hold for any correct
implementation (linearity, transpose identities, softmax invariants, additivity of
gradients), so they also catch a reference and a kernel that are wrong the same way.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyminidl.backend import use_backend
from pyminidl.testing import assert_close

BACKENDS = ["numpy", "cpu"]
dims = st.integers(min_value=1, max_value=40)
seeds = st.integers(min_value=0, max_value=2**31 - 1)
SETTINGS = settings(max_examples=25, deadline=None)


def _rand(rng, *shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("name", BACKENDS)
@SETTINGS
@given(m=dims, k=dims, n=dims, seed=seeds)
def test_gemm_is_linear_in_a(name, m, k, n, seed):
    rng = np.random.default_rng(seed)
    a1, a2, b = _rand(rng, m, k, dtype=np.float64), _rand(rng, m, k, dtype=np.float64), _rand(rng, k, n, dtype=np.float64)
    with use_backend(name) as be:
        lhs = be.gemm(2.0 * a1 + a2, b)
        rhs = 2.0 * be.gemm(a1, b) + be.gemm(a2, b)
    assert_close(lhs, rhs, k=k)


@pytest.mark.parametrize("name", BACKENDS)
@SETTINGS
@given(m=dims, k=dims, n=dims, seed=seeds)
def test_gemm_transpose_identity(name, m, k, n, seed):
    # (A B)^T = B^T A^T, with the transposes taken by the kernel's flags.
    rng = np.random.default_rng(seed)
    a, b = _rand(rng, m, k), _rand(rng, k, n)
    with use_backend(name) as be:
        ab = be.gemm(a, b)
        bt_at = be.gemm(b, a, trans_a=True, trans_b=True)
    assert_close(bt_at, ab.T.astype(np.float64), k=k)


@pytest.mark.parametrize("name", BACKENDS)
@SETTINGS
@given(m=dims, k=dims, n=dims, seed=seeds, alpha=st.floats(-2, 2), beta=st.floats(-2, 2))
def test_gemm_alpha_beta_compose(name, m, k, n, seed, alpha, beta):
    rng = np.random.default_rng(seed)
    a, b, c = _rand(rng, m, k, dtype=np.float64), _rand(rng, k, n, dtype=np.float64), _rand(rng, m, n, dtype=np.float64)
    with use_backend(name) as be:
        got = be.gemm(a, b, alpha=alpha, beta=beta, c=c)
        want = alpha * be.gemm(a, b) + beta * c
    assert_close(got, want, k=k)


@pytest.mark.parametrize("name", BACKENDS)
@SETTINGS
@given(rows=dims, cols=st.integers(1, 300), seed=seeds, shift=st.floats(-50, 50))
def test_softmax_rows_sum_to_one_and_ignore_shifts(name, rows, cols, seed, shift):
    rng = np.random.default_rng(seed)
    x = _rand(rng, rows, cols) * 5
    with use_backend(name) as be:
        y = be.to_numpy(be.softmax_forward(x))
        y_shifted = be.to_numpy(be.softmax_forward((x + np.float32(shift)).astype(np.float32)))
    assert np.all(y >= 0)
    assert_close(y.sum(axis=-1), np.ones(rows), k=cols)
    np.testing.assert_allclose(y_shifted, y, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", BACKENDS)
@SETTINGS
@given(rows=dims, cols=st.integers(1, 100), seed=seeds)
def test_log_softmax_is_log_of_softmax(name, rows, cols, seed):
    rng = np.random.default_rng(seed)
    x = _rand(rng, rows, cols, dtype=np.float64) * 3
    with use_backend(name) as be:
        assert_close(be.log_softmax_forward(x), np.log(be.softmax_forward(x)), k=cols)


@pytest.mark.parametrize("name", BACKENDS)
@SETTINGS
@given(n=dims, i=dims, u=dims, seed=seeds)
def test_dense_gradient_of_a_sum_is_the_sum_of_gradients(name, n, i, u, seed):
    # backward is linear in dy: grads(dy1 + dy2) = grads(dy1) + grads(dy2).
    rng = np.random.default_rng(seed)
    x, w = _rand(rng, n, i, dtype=np.float64), _rand(rng, i, u, dtype=np.float64)
    dy1, dy2 = _rand(rng, n, u, dtype=np.float64), _rand(rng, n, u, dtype=np.float64)
    with use_backend(name) as be:
        both = be.dense_backward(dy1 + dy2, x, w)
        one, two = be.dense_backward(dy1, x, w), be.dense_backward(dy2, x, w)
    for g, g1, g2, k in zip(both, one, two, (u, n, n)):
        assert_close(g, g1 + g2, k=k)


@pytest.mark.parametrize("name", BACKENDS)
@SETTINGS
@given(n=st.integers(1, 2000), seed=seeds)
def test_activation_gradient_is_linear_in_dy(name, n, seed):
    rng = np.random.default_rng(seed)
    x = _rand(rng, n, dtype=np.float64)
    dy1, dy2 = _rand(rng, n, dtype=np.float64), _rand(rng, n, dtype=np.float64)
    with use_backend(name) as be:
        for act in ("sigmoid", "tanh", "elu", "gelu", "softplus"):
            y = be.activation_forward(act, x)
            lhs = be.activation_backward(act, dy1 + dy2, x, y)
            rhs = be.activation_backward(act, dy1, x, y) + be.activation_backward(act, dy2, x, y)
            assert_close(lhs, rhs)
