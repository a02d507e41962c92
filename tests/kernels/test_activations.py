"""CpuBackend activations vs the reference Backend: float32 parity (reference in float64
from the same inputs), float64, awkward shapes, strided views, threads, NaN/Inf, bad input."""

import math

import numpy as np
import pytest

import pyminidl
from pyminidl.backend._compat import _C
from pyminidl.backend.base import ACTIVATIONS, Backend
from pyminidl.testing import assert_close

LARGE = 70001  # above PARALLEL_GRAIN (csrc/common.h) so the OpenMP loops run in parallel


def run_with_threads(n, fn):
    pyminidl.config.set_num_threads(n)
    return fn()


# Every activation, with the parametrised ones also at non-default settings (thresholds
# and slopes exactly representable, so float32 and float64 agree on every comparison).
CASES = [(name, {}) for name in ACTIVATIONS] + [
    ("relu", {"negative_slope": 0.125, "max_value": 6.0, "threshold": 0.5}),
    ("relu", {"max_value": 1.5}),
    ("relu", {"negative_slope": 0.25, "threshold": -0.75, "max_value": 2.0}),
    ("relu", {"negative_slope": 0.5, "threshold": 1.0}),
    ("leaky_relu", {"negative_slope": 0.05}),
    ("elu", {"alpha": 0.5}),
    ("gelu", {"approximate": True}),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in p.items())}" if p else n for n, p in CASES]
SHAPES = [(1,), (3,), (7,), (17,), (65,), (257,), (5, 13), (1, 1, 1), (2, 3, 5, 7), (LARGE,)]


def _inputs(rng, shape):
    x = (3.0 * rng.standard_normal(shape)).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    return x, dy


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_forward_matches_reference_float32(cpu, rng, name, params, shape):
    x, _ = _inputs(rng, shape)
    got = cpu.activation_forward(name, x, **params)
    ref = Backend().activation_forward(name, x.astype(np.float64), **params)
    assert got.dtype == np.float32 and got.shape == x.shape
    assert_close(got, ref)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_backward_matches_reference_float32(cpu, rng, name, params, shape):
    x, dy = _inputs(rng, shape)
    y = cpu.activation_forward(name, x, **params)
    got = cpu.activation_backward(name, dy, x, y, **params)
    f64 = [a.astype(np.float64) for a in (dy, x, y)]
    ref = Backend().activation_backward(name, *f64, **params)
    assert got.dtype == np.float32 and got.shape == x.shape
    assert_close(got, ref)


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_float64_matches_reference(cpu, rng, name, params):
    x = 3.0 * rng.standard_normal((7, 65))
    dy = rng.standard_normal(x.shape)
    ref_be = Backend()
    y = cpu.activation_forward(name, x, **params)
    assert y.dtype == np.float64
    assert_close(y, ref_be.activation_forward(name, x, **params))
    dx = cpu.activation_backward(name, dy, x, y, **params)
    assert_close(dx, ref_be.activation_backward(name, dy, x, y, **params))


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_strided_views_match_contiguous(cpu, rng, name, params):
    x, dy = _inputs(rng, (33, 18))
    xv, dyv = x[::3, 1::2], dy.T[1::2, ::3].T  # two different non-contiguous layouts
    assert not xv.flags.c_contiguous and not dyv.flags.c_contiguous
    y = cpu.activation_forward(name, xv, **params)
    assert_close(y, Backend().activation_forward(name, xv.astype(np.float64), **params))
    dx = cpu.activation_backward(name, dyv, xv, y, **params)
    f64 = [a.astype(np.float64) for a in (dyv, xv, y)]
    assert_close(dx, Backend().activation_backward(name, *f64, **params))


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_threads_do_not_change_bits(cpu, rng, name, params):
    x, dy = _inputs(rng, (LARGE,))

    def run():
        y = cpu.activation_forward(name, x, **params)
        return y, cpu.activation_backward(name, dy, x, y, **params)

    y1, dx1 = run_with_threads(1, run)
    y2, dx2 = run_with_threads(2, run)
    y3, dx3 = run_with_threads(2, run)
    for a, b in ((y1, y2), (dx1, dx2), (y2, y3), (dx2, dx3)):
        np.testing.assert_array_equal(a, b)


SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 3.0, -3.0, 100.0, -100.0,
                     1e30, -1e30, 0.5, -0.75, 6.0], dtype=np.float32)


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_nan_inf_propagate_like_reference(cpu, rng, name, params):
    # The reference in float64 from the same float32 inputs, rounded to float32: overflow to
    # inf and NaN must land where it does (the float32 reference would also overflow in
    # intermediates, x**3 in the tanh GELU, where the derivative is finite).
    x = SPECIALS
    dy = rng.standard_normal(x.shape).astype(np.float32)
    with np.errstate(all="ignore"):
        ref_y = Backend().activation_forward(name, x, **params)
        ref_dx = Backend().activation_backward(name, *(a.astype(np.float64) for a in (dy, x, ref_y)), **params)
        ref_dx = ref_dx.astype(np.float32)
    y = cpu.activation_forward(name, x, **params)
    dx = cpu.activation_backward(name, dy, x, ref_y, **params)
    np.testing.assert_allclose(y, ref_y, rtol=1e-5, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert np.isnan(y[0]) or name == "step"  # NaN in, NaN out (the step maps NaN > 0 to 0)


def test_relu_follows_keras():
    # Keras 3 ReLU docstring / ReLU.static_call: x * (x > threshold) above, clipped to
    # [0, max_value], minus negative_slope * relu(threshold - x).
    x = np.array([-10.0, -5.0, 0.0, 5.0, 10.0])
    be = Backend()
    np.testing.assert_array_equal(be.relu_forward(x), [0, 0, 0, 5, 10])
    np.testing.assert_array_equal(be.relu_forward(x, negative_slope=0.5, max_value=10), [-5, -2.5, 0, 5, 10])
    np.testing.assert_array_equal(be.relu_forward(x, max_value=5.0), [0, 0, 0, 5, 5])
    np.testing.assert_array_equal(be.relu_forward(x, threshold=5.0), [0, 0, 0, 0, 10])
    np.testing.assert_array_equal(be.relu_forward(x, negative_slope=0.5, threshold=5.0), [-7.5, -5, -2.5, 0, 10])
    # A negative threshold with max_value: Keras clips the kept values to [0, max_value].
    np.testing.assert_array_equal(be.relu_forward(np.array([-0.5, 3.0]), threshold=-1.0, max_value=2.0), [0, 2])
    np.testing.assert_array_equal(be.relu_forward(np.array([-np.inf, np.inf])), [0, np.inf])
    assert np.isnan(be.relu_forward(np.array([np.nan]))[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_empty_and_scalar_inputs(cpu, dtype):
    e = np.zeros((0, 5), dtype=dtype)
    assert cpu.sigmoid_forward(e).shape == (0, 5)
    assert cpu.relu_backward(e, e, e).shape == (0, 5)
    s = np.array(2.0, dtype=dtype)
    assert cpu.tanh_forward(s).shape == () and cpu.tanh_forward(s) == pytest.approx(np.tanh(2.0), rel=1e-6)


def test_other_dtypes_fall_back_to_reference(cpu):
    x = np.array([-1.0, 0.5, 2.0], dtype=np.float16)
    assert cpu.sigmoid_forward(x).dtype == np.float16
    np.testing.assert_array_equal(cpu.relu_forward(x), Backend().relu_forward(x))


def test_linear_keeps_the_reference_identity(cpu, rng):
    x, dy = _inputs(rng, (4,))
    assert cpu.linear_forward(x) is x and cpu.linear_backward(dy, x, x) is dy


def test_binding_rejects_bad_dtype():
    with pytest.raises(TypeError, match=r"'x' must have dtype float32 or float64. Received: dtype=int64, shape=\(3,\)"):
        _C.activation_forward("relu", np.arange(3))
    with pytest.raises(TypeError, match="float16"):
        _C.activation_forward("tanh", np.zeros(3, np.float16))
    with pytest.raises(TypeError, match="'dy' and 'y' must have the same dtype"):
        _C.activation_backward("tanh", np.zeros(3, np.float32), y=np.zeros(3))


def test_binding_rejects_bad_names_shapes_and_missing_tensors():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="unknown activation 'rleu'. Expected one of 'linear'"):
        _C.activation_forward("rleu", x)
    with pytest.raises(ValueError, match=r"dy.shape=\(2, 3\), x.shape=\(3, 2\)"):
        _C.activation_backward("relu", x, np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="needs argument 'y'"):
        _C.activation_backward("tanh", x, x)
    with pytest.raises(ValueError, match="needs argument 'x'"):
        _C.activation_backward("gelu", x, y=x)


def test_binding_defaults_follow_keras():
    x = np.array([-2.0, 3.0], np.float32)
    np.testing.assert_allclose(_C.activation_forward("leaky_relu", x), [-0.4, 3.0], rtol=1e-6)
    np.testing.assert_array_equal(_C.activation_forward("relu", x), [0.0, 3.0])


def _max_ulp(got, exact):
    spacing = np.spacing(np.abs(exact.astype(np.float32))).astype(np.float64)
    return float(np.max(np.abs(got.astype(np.float64) - exact) / spacing))


@pytest.mark.parametrize("name,lo,hi,bound", [
    ("exponential", -87.0, 88.0, 1.5), ("tanh", -12.0, 12.0, 1.5), ("sigmoid", -80.0, 80.0, 2.5),
    ("swish", -80.0, 80.0, 3.5), ("softplus", -80.0, 80.0, 2.0), ("elu", -20.0, 20.0, 1.5),
])
def test_float32_error_at_most_the_reference(cpu, name, lo, hi, bound):
    # The kernels' own float32 exp/expm1/tanh/log1p (csrc/fastmath.h) must stay within their
    # documented ulp bound or, failing that, be no less accurate than NumPy's float32
    # evaluation of the reference, over the whole useful range.
    x = np.linspace(lo, hi, 100003, dtype=np.float32)
    exact = Backend().activation_forward(name, x.astype(np.float64))
    keep = np.abs(exact) > 1e-30  # normal float32 results
    ours = _max_ulp(cpu.activation_forward(name, x)[keep], exact[keep])
    ref32 = _max_ulp(Backend().activation_forward(name, x)[keep], exact[keep])
    assert ours <= max(bound, ref32), (ours, ref32)


def test_gelu_left_tail_keeps_relative_precision(cpu):
    # Phi(x) below 0 is computed as erfc(|x| / sqrt 2) / 2 (csrc/fastmath.h), not 1 + erf,
    # so exact GELU keeps its relative precision where the reference's float32 form cancels.
    # Exact: x Phi(x) from erfc in double, at u = x / sqrt 2 as rounded in float32 (the
    # formula's first step; the float64 reference itself cancels to 0 below x = -8).
    x = np.linspace(-12.0, -0.5, 50003, dtype=np.float32)
    u = (x / np.float32(np.sqrt(2.0))).astype(np.float64)
    exact = x * 0.5 * np.array([math.erfc(-v) for v in u])
    assert _max_ulp(cpu.gelu_forward(x), exact) <= 3.0


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_every_isa_path_gives_the_same_bits(cpu, rng, name, params):
    # float32 runs the baseline, AVX2 or AVX-512 copy of the kernels (csrc/activations_isa.h);
    # built without FMA contraction, they must agree bit for bit, specials included.
    x = np.concatenate([(3.0 * rng.standard_normal(1003)).astype(np.float32), SPECIALS])
    dy = rng.standard_normal(x.shape).astype(np.float32)
    results = []
    for cap in ("baseline", "avx2", "avx512"):
        pyminidl.config.set_cpu_capability(cap)
        y = cpu.activation_forward(name, x, **params)
        results.append((y, cpu.activation_backward(name, dy, x, y, **params)))
    for y, dx in results[1:]:
        np.testing.assert_array_equal(y, results[0][0])
        np.testing.assert_array_equal(dx, results[0][1])


TAIL_X = np.concatenate([-np.geomspace(1.5, 3e38, 400), np.geomspace(1.5, 3e38, 400)]).astype(np.float32)


@pytest.mark.parametrize("isa", ["baseline", "avx2", "avx512"])
@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_backward_tails_keep_an_infinite_dy_infinite(cpu, name, params, isa):
    # In the tails a float32 derivative can underflow to 0 where the float64 reference's
    # does not (or cancel: 1 + tanh in the tanh GELU, y + alpha in elu/selu); dy = +-inf
    # then gave NaN instead of the reference's +-inf. With dy = 1 the tails stay within
    # float32 rounding of the reference, relative to the largest value.
    pyminidl.config.set_cpu_capability(isa)
    x = TAIL_X
    y = cpu.activation_forward(name, x, **params)
    f64 = lambda a: a.astype(np.float64)  # noqa: E731
    with np.errstate(all="ignore"):
        g = Backend().activation_backward(name, np.ones_like(f64(x)), f64(x), f64(y), **params)
        for inf in (np.inf, -np.inf):
            dx = cpu.activation_backward(name, np.full_like(x, inf), x, y, **params)
            want = np.float32(inf) * np.sign(g)
            nonzero = np.isfinite(g) & (g != 0)
            np.testing.assert_array_equal(dx[nonzero], want[nonzero])
    dx = cpu.activation_backward(name, np.ones_like(x), x, y, **params)
    ok = np.isfinite(g)
    np.testing.assert_allclose(dx[ok], g[ok], rtol=2e-5, atol=1e-7 * max(1.0, np.abs(g[ok]).max()))


def test_one_activation_table():
    # _C.ACTIVATIONS is the C++ dispatch table (csrc/bind_activations.cpp); the reference's
    # ACTIVATIONS, the kernels CpuBackend overrides, and the fuzz tests must name the same set.
    from pyminidl.backend.cpu_backend import CpuBackend

    assert set(_C.ACTIVATIONS) == set(ACTIVATIONS)
    assert len(_C.ACTIVATIONS) == len(set(_C.ACTIVATIONS))
    kernel_backed = {n for n in _C.ACTIVATIONS if f"{n}_forward" in vars(CpuBackend)}
    assert kernel_backed == set(_C.ACTIVATIONS) - {"linear"}  # linear returns x itself


def test_reference_erf_is_vectorised_and_matches_math_erf():
    import math

    from pyminidl.backend.base import Backend

    x = np.concatenate([np.linspace(-7.0, 7.0, 4001), [0.0, 2.5, -2.5, 1e-300, 40.0, np.inf, -np.inf]])
    ref = np.array([math.erf(v) for v in x])
    got = Backend()._erf(x)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-13)
    assert np.isnan(Backend()._erf(np.array([np.nan]))).all()
    x32 = x[:4001].astype(np.float32)
    np.testing.assert_allclose(Backend()._erf(x32), ref[:4001], rtol=0, atol=1e-7)
