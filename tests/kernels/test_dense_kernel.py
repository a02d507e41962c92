"""Dense helpers (dense_forward, dense_backward, bias_add, bias_grad) against the reference."""

import numpy as np
import pytest

import pyminidl
from pyminidl.backend._compat import _C
from pyminidl.backend.base import Backend
from pyminidl.testing import assert_close

DTYPES = [np.float32, np.float64]
# (batch, in, units): batch 1, primes, tails, the MNIST MLP's layers.
SHAPES = [(1, 1, 1), (1, 7, 3), (5, 1, 17), (17, 65, 7), (128, 784, 256), (128, 256, 10), (33, 257, 65)]


def _f8(*arrays):
    return [None if a is None else a.astype(np.float64) for a in arrays]


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,i,u", SHAPES)
def test_dense_forward_matches_reference(fast_backend, ref, rng, n, i, u, dtype, use_bias):
    x = rng.standard_normal((n, i)).astype(dtype)
    w = rng.standard_normal((i, u)).astype(dtype)
    b = rng.standard_normal(u).astype(dtype) if use_bias else None
    got = fast_backend.dense_forward(x, w, b)
    assert got.dtype == dtype
    assert_close(got, ref.dense_forward(*_f8(x, w, b)), k=i)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,i,u", SHAPES)
def test_dense_forward_activation_gives_activation_forward_bits(fast_backend, ref, rng, n, i, u, dtype, activation):
    x = rng.standard_normal((n, i)).astype(dtype)
    w = rng.standard_normal((i, u)).astype(dtype)
    b = rng.standard_normal(u).astype(dtype)
    x[0, 0] = np.nan  # a NaN row: relu's select and the others' must keep it where activation_forward does
    got = _C.dense_forward(x, w, b, activation)
    np.testing.assert_array_equal(got, _C.activation_forward(activation, _C.dense_forward(x, w, b)))
    np.testing.assert_array_equal(fast_backend.dense_forward(x, w, b, activation=activation), got)
    with np.errstate(invalid="ignore"):
        want = ref.dense_forward(*_f8(x, w, b), activation=activation)
    assert_close(got, want, k=i)


def test_dense_forward_rejects_other_activations(fast_backend, ref):
    x, w = np.ones((4, 3), np.float32), np.ones((3, 2), np.float32)
    with pytest.raises(ValueError, match=r"dense_forward: argument 'activation' must be None, 'relu', 'sigmoid' or "
                                         r"'tanh'. Received: 'gelu'"):
        _C.dense_forward(x, w, None, "gelu")
    for be in (fast_backend, ref):
        with pytest.raises(ValueError, match=r"activation must be None, 'relu', 'sigmoid' or 'tanh'. Received: 'elu'"):
            be.dense_forward(x, w, activation="elu")


@pytest.mark.parametrize("has_bias,need_dx", [(True, True), (False, True), (True, False)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,i,u", SHAPES)
def test_dense_backward_matches_reference(fast_backend, ref, rng, n, i, u, dtype, has_bias, need_dx):
    x = rng.standard_normal((n, i)).astype(dtype)
    w = rng.standard_normal((i, u)).astype(dtype)
    dy = rng.standard_normal((n, u)).astype(dtype)
    dx, dw, db = fast_backend.dense_backward(dy, x, w, has_bias, need_dx)
    rdx, rdw, rdb = ref.dense_backward(*_f8(dy, x, w), has_bias, need_dx)
    assert_close(dw, rdw, k=n)
    if need_dx:
        assert_close(dx, rdx, k=u)
    else:
        assert dx is None
    if has_bias:
        assert_close(db, rdb, k=n)
    else:
        assert db is None


@pytest.mark.parametrize("layout", ["fortran", "row_stride", "step_slices"])
def test_dense_non_contiguous_inputs(fast_backend, ref, rng, layout):
    base_x = rng.standard_normal((80, 90)).astype(np.float32)
    base_w = rng.standard_normal((90, 70)).astype(np.float32)
    views = {
        "fortran": lambda a, r, c: np.asfortranarray(a[:r, :c]),
        "row_stride": lambda a, r, c: a[1:r + 1, 3:c + 3],
        "step_slices": lambda a, r, c: a[::2, ::2][:r, :c],
    }[layout]
    x, w, dy = views(base_x, 33, 41), views(base_w, 41, 29), views(base_w, 33, 29)
    b = base_w[0, ::2][:29]
    assert_close(fast_backend.dense_forward(x, w, b), ref.dense_forward(*_f8(x, w, b)), k=41)
    got = fast_backend.dense_backward(dy, x, w)
    for g, r, k in zip(got, ref.dense_backward(*_f8(dy, x, w)), (29, 33, 33)):
        assert_close(g, r, k=k)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,u", [(1, 1), (7, 3), (128, 10), (1000, 257), (3, 1000)])
def test_bias_grad_and_bias_add_match_reference(fast_backend, ref, rng, n, u, dtype):
    dy = rng.standard_normal((n, u)).astype(dtype)
    b = rng.standard_normal(u).astype(dtype)
    assert_close(fast_backend.bias_grad(dy), ref.bias_grad(dy.astype(np.float64)), k=n)
    assert_close(fast_backend.bias_grad(dy.T.copy().T), ref.bias_grad(dy.astype(np.float64)), k=n)
    assert_close(fast_backend.bias_add(dy, b), ref.bias_add(*_f8(dy, b)), k=1)


def test_bias_grad_one_and_two_threads_bit_identical(rng):
    dy = rng.standard_normal((4096, 300)).astype(np.float32)  # above the parallel grain
    pyminidl.config.set_num_threads(1)
    one = _C.bias_grad(dy)
    pyminidl.config.set_num_threads(2)
    np.testing.assert_array_equal(_C.bias_grad(dy), one)


def test_dense_nd_inputs_fall_back_to_reference(fast_backend, ref, rng):
    dy = rng.standard_normal((2, 3, 5)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    assert_close(fast_backend.bias_grad(dy), ref.bias_grad(dy.astype(np.float64)), k=6)
    assert_close(fast_backend.bias_add(dy, b), ref.bias_add(*_f8(dy, b)), k=1)


@pytest.mark.parametrize("n,i,u", [(0, 4, 3), (4, 0, 3), (4, 3, 0)])
def test_dense_empty(n, i, u):
    x = np.ones((n, i), np.float32)
    w = np.ones((i, u), np.float32)
    b = np.arange(u, dtype=np.float32)
    y = _C.dense_forward(x, w, b)
    np.testing.assert_array_equal(y, np.broadcast_to(b, (n, u)))  # I == 0: y = b
    np.testing.assert_array_equal(_C.bias_grad(np.ones((n, u), np.float32)), np.full(u, n, np.float32))


def test_dense_bad_input():
    x, w = np.ones((4, 3), np.float32), np.ones((3, 2), np.float32)
    with pytest.raises(ValueError, match=r"x.shape\[1\] must equal w.shape\[0\]"):
        _C.dense_forward(x, np.ones((4, 2), np.float32), None)
    with pytest.raises(ValueError, match=r"argument 'b' must have shape \(2,\). Received: shape=\(3,\)"):
        _C.dense_forward(x, w, np.ones(3, np.float32))
    with pytest.raises(TypeError, match="argument 'w' must have dtype float32"):
        _C.dense_forward(x, w.astype(np.float64), None)
    with pytest.raises(TypeError, match="argument 'dy' must have dtype float32 or float64"):
        _C.bias_grad(np.ones((2, 2), np.int32))
    with pytest.raises(ValueError, match="argument 'dy' must be 2-D"):
        _C.bias_grad(np.ones(3, np.float32))
    with pytest.raises(ValueError, match=r"b.shape\[0\] must equal x.shape\[1\]"):
        _C.bias_add(x, np.ones(2, np.float32))


# ---------------------------------------------------------------- dense_activation_backward (in place)

ACT_SHAPES = [(1, 1), (1, 7), (5, 17), (33, 65), (128, 256), (300, 129)]


def _act_inputs(rng, name, shape, dtype):
    z = rng.standard_normal(shape).astype(dtype)
    z.flat[:: 7] = 0.0  # relu's kink: the derivative there is 0 (Keras)
    y = Backend().activation_forward(name, z)
    return z, y.astype(dtype), rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ACT_SHAPES)
def test_dense_activation_backward_in_place_matches_reference(fast_backend, ref, rng, name, shape, dtype):
    z, y, dz = _act_inputs(rng, name, shape, dtype)
    want = ref.activation_backward(name, *_f8(dz, z, y))
    got = fast_backend.dense_activation_backward(name, dz, z, y)
    assert got is dz  # written into the incoming gradient: no new array
    assert_close(got, want, k=1)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_dense_activation_backward_same_bits_as_activation_backward(fast_backend, rng, name):
    # The allocating kernel and the in-place one share their formulas, so training with either
    # gives the same weights.
    z, y, dz = _act_inputs(rng, name, (129, 65), np.float32)
    want = fast_backend.activation_backward(name, dz, z, y)
    np.testing.assert_array_equal(fast_backend.dense_activation_backward(name, dz, z, y), want)


@pytest.mark.parametrize("threads", [1, 2])
def test_dense_activation_grad_same_bits_at_any_thread_count(rng, threads):
    z, y, dz = _act_inputs(rng, "tanh", (512, 300), np.float32)  # past the parallel grain
    want = Backend().activation_backward("tanh", dz, z, y)
    pyminidl.config.set_num_threads(threads)
    got = _C.dense_activation_grad("tanh", dz.copy(), y)
    assert_close(got, want.astype(np.float64), k=1)
    np.testing.assert_array_equal(got, _C.dense_activation_grad("tanh", dz.copy(), y))


def test_dense_activation_grad_nan_and_inf(rng):
    z = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0], np.float32)
    dz = np.array([1.0, np.nan, 2.0, np.inf, 1.0, -np.inf], np.float32)
    with np.errstate(invalid="ignore"):  # inf * 0 = NaN, as the reference says
        want = Backend().relu_backward(dz, z, None)
    np.testing.assert_array_equal(_C.dense_activation_grad("relu", dz.copy(), z), want)


def test_dense_activation_backward_falls_back_for_what_it_cannot_overwrite(fast_backend, ref, rng):
    z, y, dz = _act_inputs(rng, "relu", (40, 30), np.float32)
    want = ref.activation_backward("relu", dz, z, y)
    strided = np.repeat(dz, 2, axis=1)[:, ::2]  # same values, not C-contiguous
    np.testing.assert_array_equal(fast_backend.dense_activation_backward("relu", strided, z, y), want)
    frozen = dz.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError):  # the reference writes into dz too: a read-only dz is an error
        fast_backend.dense_activation_backward("relu", frozen, z, y)
    np.testing.assert_array_equal(  # float64 saved tensor with a float32 gradient: the reference
        fast_backend.dense_activation_backward("relu", dz.copy(), z.astype(np.float64), y), want)


def test_dense_activation_grad_rejects_bad_arguments(rng):
    z, y, dz = _act_inputs(rng, "relu", (6, 5), np.float32)
    with pytest.raises(ValueError, match="name must be 'relu', 'sigmoid' or 'tanh'"):
        _C.dense_activation_grad("elu", dz, z)
    with pytest.raises(ValueError, match="must have the same shape"):
        _C.dense_activation_grad("relu", dz, z[:, :4])
    with pytest.raises(TypeError, match="must have the same dtype"):
        _C.dense_activation_grad("relu", dz, z.astype(np.float64))
    with pytest.raises(TypeError, match="float32 or float64"):
        _C.dense_activation_grad("relu", dz.astype(np.int32), z.astype(np.int32))
    with pytest.raises(ValueError, match="must be C-contiguous"):
        _C.dense_activation_grad("relu", np.asfortranarray(dz), z)
    with pytest.raises(ValueError, match="share memory"):
        _C.dense_activation_grad("relu", dz, dz)
    frozen = dz.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _C.dense_activation_grad("relu", frozen, z)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("has_bias", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,i,u", [(1, 1, 1), (7, 3, 65), (128, 256, 128), (33, 17, 257)])
def test_dense_backward_with_activation_matches_reference(fast_backend, ref, rng, name, has_bias, dtype, n, i, u):
    # dy is dL/dy of y = f(z); the op overwrites it with dL/dz (fused with db on the CPU).
    x = rng.standard_normal((n, i)).astype(dtype)
    w = rng.standard_normal((i, u)).astype(dtype)
    z, y, dy = _act_inputs(rng, name, (n, u), dtype)
    y = fast_backend.activation_forward(name, z)  # relu reads y: its mask y > 0 is z > 0
    dz = ref.activation_backward(name, *_f8(dy, z, y))
    got = fast_backend.dense_backward(dy.copy(), x, w, has_bias, True, activation=name, y=y)
    for g, r, k in zip(got, ref.dense_backward(dz, *_f8(x, w), has_bias), (u, n, n)):
        if r is None:
            assert g is None
        else:
            assert g.dtype == dtype
            assert_close(g, r, k=k)
    # The fused pass gives the unfused kernels' bits: the in-place gradient, then bias_grad.
    unfused = fast_backend.dense_backward(fast_backend.dense_activation_backward(name, dy.copy(), y, y), x, w,
                                          has_bias)
    for g, r in zip(got, unfused):
        np.testing.assert_array_equal(g, r)


@pytest.mark.parametrize("threads", [1, 2])
def test_dense_activation_bias_grad_same_bits_at_any_thread_count(rng, threads):
    z, y, dz = _act_inputs(rng, "relu", (300, 700), np.float32)  # past the parallel grain
    want = _C.dense_activation_grad("relu", dz.copy(), z)
    pyminidl.config.set_num_threads(threads)
    got, db = _C.dense_activation_grad("relu", dz.copy(), z, bias_grad=True)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(db, _C.bias_grad(want))
    pyminidl.config.set_num_threads(3 - threads)
    np.testing.assert_array_equal(_C.dense_activation_grad("relu", dz.copy(), z, bias_grad=True)[1], db)


def test_dense_activation_bias_grad_shapes_and_errors(rng):
    z, y, dz = _act_inputs(rng, "tanh", (0, 5), np.float32)
    got, db = _C.dense_activation_grad("tanh", dz, y, bias_grad=True)
    np.testing.assert_array_equal(db, np.zeros(5, np.float32))  # a sum over no rows
    with pytest.raises(ValueError, match="2"):
        _C.dense_activation_grad("relu", np.ones(4, np.float32), np.ones(4, np.float32), bias_grad=True)
    with pytest.raises(ValueError, match="2"):
        _C.dense_activation_grad("relu", np.ones((2, 2, 2), np.float32), np.ones((2, 2, 2), np.float32),
                                 bias_grad=True)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_dense_activation_grad_same_bits_on_every_isa_path(rng, name):
    # float32 runs the baseline, AVX2 or AVX-512 copy (csrc/dense_activation_isa.h); built
    # without FMA contraction, with per-column sums in row order, they agree bit for bit.
    z, y, dz = _act_inputs(rng, name, (67, 131), np.float32)  # tails off every vector width
    saved = z if name == "relu" else y
    saved.flat[::13] = np.nan
    results = []
    for cap in ("baseline", "avx2", "avx512"):  # (conftest restores the capability)
        pyminidl.config.set_cpu_capability(cap)
        results.append((_C.dense_activation_grad(name, dz.copy(), saved),
                        *_C.dense_activation_grad(name, dz.copy(), saved, bias_grad=True)))
    for got in results[1:]:
        for g, r in zip(got, results[0]):
            np.testing.assert_array_equal(g, r)
