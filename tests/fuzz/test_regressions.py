"""Bugs the fuzz harness found, pinned so they stay fixed."""

import numpy as np
import pytest

from pyminidl.backend._compat import _C


@pytest.mark.parametrize("c", [np.float64(1.0), np.float32(1.0), 1.0, [[1.0]]])
def test_gemm_optional_c_that_is_not_an_ndarray_is_converted_not_misread(c):
    # A NumPy scalar passed as `c` was cast straight to an ndarray and its header read out
    # of bounds (ASan: heap-buffer-overflow in pybind11::array::ndim).
    a = np.ones((1, 1))
    if np.ndim(c) == 2:
        np.testing.assert_array_equal(_C.gemm(a, a, beta=1.0, c=c), [[2.0]])
    else:
        with pytest.raises((ValueError, TypeError), match="argument 'c'"):
            _C.gemm(a, a, beta=1.0, c=c)


def test_gemm_optional_c_of_a_non_numeric_type_is_a_type_error():
    with pytest.raises(TypeError, match="argument 'c'"):
        _C.gemm(np.ones((1, 1)), np.ones((1, 1)), beta=1.0, c="x")


def test_dense_forward_scalar_bias_is_a_clean_error():
    with pytest.raises(ValueError, match=r"argument 'b' must have shape \(1,\)"):
        _C.dense_forward(np.ones((1, 1)), np.ones((1, 1)), np.float64(2.0))


@pytest.mark.parametrize("param", ["negative_slope", "max_value", "threshold", "alpha"])
def test_activation_nan_parameter_is_refused(param):
    # relu(max_value=NaN) returned x from the kernel and NaN from the reference.
    with pytest.raises(ValueError, match=f"parameter '{param}' must not be NaN"):
        _C.activation_forward("relu", np.ones(3, np.float32), **{param: float("nan")})


# ---- found by a review of the bindings (each crashed the process or broke the contract)

def _run_isolated(code):
    """Run ``code`` in a fresh interpreter: a regression here would kill the test process."""
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(__file__))


@pytest.mark.parametrize("threads, m, n, k", [(3, 24, 32, 6000), (4, 36, 32, 6000), (7, 72, 32, 4000)])
def test_gemm_with_more_threads_than_row_tiles(threads, m, n, k):
    # The thread grid gave some threads zero rows and the packed path divided by zero (SIGFPE).
    code = f"""
import numpy as np
from pyminidl import _C
_C.set_num_threads({threads})
rng = np.random.default_rng(0)
a, b = rng.random(({m}, {k}), dtype=np.float32), rng.random(({k}, {n}), dtype=np.float32)
got = _C.gemm(a, b)
assert np.allclose(got, a.astype(np.float64) @ b, rtol=1e-4), "wrong values"
print("ok")
"""
    out = _run_isolated(code)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_uncopyable_huge_zero_stride_views_raise_instead_of_crashing():
    # array_t::ensure() returned a null handle (error cleared) that was dereferenced (SIGSEGV),
    # or raised "RuntimeError: error_already_set called while Python error indicator not set".
    code = """
import numpy as np
from numpy.lib.stride_tricks import as_strided
from pyminidl import _C
z = np.zeros(1, np.float32)
U = 2**40
calls = [
    lambda: _C.bias_add(as_strided(z, (0, U), (0, 4)), as_strided(z, (U,), (0,))),
    lambda: _C.dense_forward(np.zeros((0, 0), np.float32), as_strided(z, (0, U), (0, 4)), as_strided(z, (U,), (0,))),
    lambda: _C.gemm(as_strided(z, (2**40, 1), (0, 0)), np.zeros((1, 0), np.float32)),
    lambda: _C.activation_forward("relu", as_strided(z, (2**30, 2**30), (0, 0))),
]
for call in calls:
    try:
        call()
    except (MemoryError, ValueError):
        pass
print("ok")
"""
    out = _run_isolated(code)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_set_num_threads_refuses_a_team_openmp_cannot_create():
    with pytest.raises(ValueError, match="set_num_threads: n must be <="):
        _C.set_num_threads(50000)


def test_pickled_arrays_reach_the_kernels():
    # dtype was compared by identity: arrays from pickle (multiprocessing loaders) were refused.
    import pickle

    x = pickle.loads(pickle.dumps(np.linspace(-3, 3, 20, dtype=np.float32).reshape(4, 5)))
    np.testing.assert_allclose(_C.activation_forward("relu", x), np.maximum(x, 0))
    p = pickle.loads(pickle.dumps(np.ones(5, np.float32)))
    _C.sgd_update(p, np.ones(5, np.float32), None, 0.5)
    np.testing.assert_allclose(p, 0.5)


def test_big_endian_floats_take_the_reference_path():
    from pyminidl.backend.cpu_backend import CpuBackend

    x = np.linspace(-3, 3, 6).astype(">f4")
    np.testing.assert_allclose(CpuBackend().sigmoid_forward(x), 1 / (1 + np.exp(-x.astype(np.float64))), rtol=1e-6)
    with pytest.raises(TypeError, match="dtype float32"):
        _C.activation_forward("sigmoid", x)


def test_cpu_backend_sends_broadcasting_inputs_to_the_reference():
    # The kernels need exact shapes; the reference broadcasts like NumPy. CpuBackend used to
    # pass such inputs to _C, which raised where the reference answers.
    from pyminidl.backend.base import Backend
    from pyminidl.backend.cpu_backend import CpuBackend

    cpu, ref = CpuBackend(), Backend()
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((4, 5)).astype(np.float32), rng.standard_normal((4, 5)).astype(np.float32)
    row = rng.standard_normal((1, 5)).astype(np.float32)
    cases = [
        lambda be: be.gemm(x, x, trans_b=True, beta=1.0, c=row[:, :4]),
        lambda be: be.bias_add(x, np.ones(1, np.float32)),
        lambda be: be.relu_backward(dy, row, None),
        lambda be: be.sigmoid_backward(dy, None, row),
        lambda be: be.softmax_backward(dy, row),
    ]
    for case in cases:
        np.testing.assert_allclose(case(cpu), case(ref), rtol=1e-6)
    p_cpu, p_ref = np.ones((4, 5), np.float32), np.ones((4, 5), np.float32)
    cpu.sgd_update(p_cpu, row[0], None, 0.1)
    ref.sgd_update(p_ref, row[0], None, 0.1)
    np.testing.assert_allclose(p_cpu, p_ref)


@pytest.mark.parametrize("isa", ["baseline", "avx2", "avx512"])
@pytest.mark.parametrize("m, n", [(1, 1), (3, 10), (16, 5)])
def test_long_reductions_are_blocked(isa, m, n):
    # The unpacked paths kept one float32 running sum over all of K: relative error ~1e-4 at
    # K = 1e6. Long reductions now take the packed path, which adds K in blocks.
    import pyminidl

    pyminidl.config.set_cpu_capability(isa)
    rng = np.random.default_rng(0)
    k = 1_000_000
    a = rng.random((m, k), dtype=np.float32)
    b = rng.random((k, n), dtype=np.float32)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(_C.gemm(a, b), ref, rtol=2e-5)  # was 1.4e-4 on avx2 at (1, 1)


@pytest.mark.parametrize("isa", ["baseline", "avx2", "avx512"])
def test_approximate_gelu_backward_keeps_its_left_tail(isa):
    # 1 + tanh(z) and 1 - tanh(z)**2 cancelled to 0 in float32 from x = -5.3 on: the
    # derivative became 0 and dy = inf gave NaN where the reference gives -inf.
    import pyminidl

    pyminidl.config.set_cpu_capability(isa)
    dy = np.array([np.inf, 1, 1, 1], np.float32)
    x = np.array([-5.3566937, -4, -6, -10], np.float32)
    got = _C.activation_backward("gelu", dy, x, None, approximate=True)
    assert got[0] == -np.inf
    np.testing.assert_allclose(got[1:3], [-3.35123e-04, -7.70998e-10], rtol=1e-5)
    assert -1e-35 < got[3] < 0  # -2.76e-36: the float64 reference's own 1 + t is 0 here


def test_alias_check_spans_strided_and_reversed_views():
    # The alias check took a view's bytes as [data, data + nbytes): a strided grad spanning a
    # slot's memory passed, and a reversed one (data at its last element) was refused or not
    # depending on where the allocator had put the slot next to it.
    base = np.zeros(12)
    with pytest.raises(ValueError, match="'velocity' and 'grad' share memory"):
        _C.sgd_update(np.zeros(6), base[::2], base[6:], lr=0.1, momentum=0.9)
    block = np.zeros(12)
    grad, velocity = block[5::-1], block[6:]  # adjacent, disjoint: grad's data pointer is block[5]
    param = np.zeros(6)
    _C.sgd_update(param, grad, velocity, lr=0.1, momentum=0.9)
    np.testing.assert_array_equal(param, 0.0)
