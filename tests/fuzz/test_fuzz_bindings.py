"""Fuzzing of every pybind11 entry point of ``pyminidl._C``.

Each case throws hostile arguments at one entry point: any dtype, rank and size (0
included), Fortran/strided/reversed layouts, read-only arrays, aliasing, NaN/Inf, and
out-of-range values. The contract: every call either returns what the NumPy reference
backend returns for the same arguments, or raises ValueError/TypeError. A crash, a hang or
an out-of-bounds access (run under tools/sanitize.sh) fails the run.

PYMINIDL_FUZZ_EXAMPLES sets the cases per entry point (default 150).
"""

import inspect
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyminidl.backend._compat import _C
from pyminidl.backend.base import ACTIVATIONS, Backend
from fuzzlib import CASES, FLOAT_DTYPES, arrays, shapes

REF = Backend()
EXAMPLES = int(os.environ.get("PYMINIDL_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
NOT_FUZZED = {"build_info", "cpu_features", "get_num_threads", "tune_allocator"}  # no arguments to fuzz
SIZES = st.sampled_from([0, 1, 2, 3, 5, 8, 17, 33])
# Mostly in range (so the math is exercised), sometimes out of range or not finite.
HYPER = st.one_of(st.floats(0, 0.999), st.floats(0, 0.999), st.floats(0, 0.999),
                  st.sampled_from([0.0, 1.0, 2.0, -1.0, np.nan, np.inf, 1e30]))


def _rank_off(draw, shape):
    """Usually ``shape``; sometimes a random wrong one."""
    return draw(shapes(0, 3)) if draw(st.integers(0, 5)) == 0 else shape


def _dtype(draw):
    """Mostly a float dtype the kernels take; sometimes one they must refuse."""
    if draw(st.integers(0, 7)) == 0:
        return draw(st.sampled_from([np.int32, np.int64, np.float16, np.bool_]))
    return draw(st.sampled_from(FLOAT_DTYPES))


def _f64(x):
    return None if x is None else np.array(x, dtype=np.float64)


def _in_precision(value, dtype):
    if np.dtype(dtype) not in (np.float32, np.float64):
        return value  # refused by dtype anyway
    with np.errstate(over="ignore"):
        return float(np.asarray(value).astype(dtype))


def _compare(got, want, dtype):
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            _compare(g, w, dtype)
        return
    got = np.asarray(got)
    with np.errstate(over="ignore"):  # a float32 kernel overflows where the float64 reference does
        want = np.asarray(want, dtype=np.float64).astype(dtype).astype(np.float64)
    assert got.shape == want.shape, f"shape {got.shape} != reference {want.shape}"
    finite = want[np.isfinite(want)]
    scale = max(1.0, float(np.abs(finite).max())) if finite.size else 1.0
    rtol = 2e-4 if np.dtype(dtype) == np.float32 else 1e-9
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=rtol, atol=rtol * scale * 10, equal_nan=True)


def _run(name, call, oracle, dtype):
    """The contract of every entry point: the reference's answer, or a clean error."""
    try:
        got = call()
    except (ValueError, TypeError):
        CASES[name]["rejected"] += 1
        return
    assert np.dtype(dtype).kind == "f", f"{name} accepted dtype {np.dtype(dtype)}"
    with np.errstate(all="ignore"):  # NaN/Inf inputs are the point here
        want = oracle()
    _compare(got, want, dtype)
    CASES[name]["accepted"] += 1


def test_every_entry_point_is_fuzzed():
    public = {n for n in dir(_C) if not n.startswith("_") and callable(getattr(_C, n))}
    fuzzed = {n[len("test_fuzz_"):] for n in globals() if n.startswith("test_fuzz_")}
    missing = public - fuzzed - NOT_FUZZED
    assert not missing, f"_C entry points without a fuzz test: {sorted(missing)}"


# ---------------------------------------------------------------- gemm / dense


@FUZZ
@given(data=st.data())
def test_fuzz_gemm(data):
    d = data.draw
    m, k, n = d(SIZES), d(SIZES), d(SIZES)
    ta, tb = d(st.booleans()), d(st.booleans())
    dtype = _dtype(d)
    a = d(arrays(shape=_rank_off(d, (k, m) if ta else (m, k)), dtypes=[dtype]))
    b = d(arrays(shape=_rank_off(d, (n, k) if tb else (k, n)), dtypes=[dtype if d(st.integers(0, 9)) else np.float64]))
    c = d(st.one_of(st.none(), arrays(shape=_rank_off(d, (m, n)), dtypes=[dtype])))
    # Finite alpha/beta: with K == 0 BLAS semantics give beta * C whatever alpha is, where
    # the reference computes alpha * 0 (NaN for alpha = NaN); both are defensible.
    # The kernel takes alpha/beta in the array's precision (1e-90 is 0 in float32).
    alpha, beta = (_in_precision(d(st.floats(-3, 3)), dtype) for _ in range(2))
    _run("gemm", lambda: _C.gemm(a, b, ta, tb, alpha, beta, c),
         lambda: REF.gemm(_f64(a), _f64(b), ta, tb, alpha, beta, _f64(c)), dtype)


@FUZZ
@given(data=st.data())
def test_fuzz_dense_forward(data):
    d = data.draw
    n, i, u = d(SIZES), d(SIZES), d(SIZES)
    dtype = _dtype(d)
    x = d(arrays(shape=_rank_off(d, (n, i)), dtypes=[dtype]))
    w = d(arrays(shape=_rank_off(d, (i, u)), dtypes=[dtype]))
    b = d(st.one_of(st.none(), arrays(shape=_rank_off(d, (u,)), dtypes=[dtype])))
    _run("dense_forward", lambda: _C.dense_forward(x, w, b),
         lambda: REF.dense_forward(_f64(x), _f64(w), _f64(b)), dtype)


@FUZZ
@given(data=st.data())
def test_fuzz_bias_add(data):
    d = data.draw
    n, u = d(SIZES), d(SIZES)
    dtype = _dtype(d)
    x = d(arrays(shape=_rank_off(d, (n, u)), dtypes=[dtype]))
    b = d(arrays(shape=_rank_off(d, (u,)), dtypes=[dtype]))
    _run("bias_add", lambda: _C.bias_add(x, b), lambda: REF.bias_add(_f64(x), _f64(b)), dtype)


@FUZZ
@given(data=st.data())
def test_fuzz_bias_grad(data):
    d = data.draw
    dtype = _dtype(d)
    dy = d(arrays(shape=_rank_off(d, (d(SIZES), d(SIZES))), dtypes=[dtype]))
    _run("bias_grad", lambda: _C.bias_grad(dy), lambda: REF.bias_grad(_f64(dy)), dtype)


# ---------------------------------------------------------------- activations

NAMES = st.sampled_from(list(ACTIVATIONS) + ["softmax", "", "ReLU", "relu6", "nope"])


@st.composite
def _activation_params(draw):
    params = {}
    for key, strat in (("negative_slope", st.floats(-1, 1)), ("max_value", st.floats(-2, 8)),
                       ("threshold", st.floats(-2, 2)), ("alpha", st.floats(0, 3)), ("approximate", st.booleans())):
        if draw(st.booleans()):
            params[key] = draw(st.one_of(strat, st.sampled_from([np.nan, np.inf]) if key != "approximate" else strat))
    return params


def _params_in_precision(params, dtype):
    """The kernels take float parameters in the array's precision (1e-47 is 0 in float32)."""
    return {k: v if isinstance(v, (bool, int)) else _in_precision(v, dtype) for k, v in params.items()}


def _ref_params(name, params, suffix):
    method = getattr(REF, f"{name}_{suffix}")
    accepted = inspect.signature(method).parameters
    return {k: v for k, v in params.items() if k in accepted and v is not None}


@FUZZ
@given(data=st.data())
def test_fuzz_activation_forward(data):
    d = data.draw
    name, dtype = d(NAMES), _dtype(d)
    params = _params_in_precision(d(_activation_params()), dtype)
    x = d(arrays(dtypes=[dtype]))
    _run("activation_forward", lambda: _C.activation_forward(name, x, **params),
         lambda: REF.activation_forward(name, _f64(x), **_ref_params(name, params, "forward")), dtype)


@FUZZ
@given(data=st.data())
def test_fuzz_activation_backward(data):
    d = data.draw
    name, dtype = d(NAMES), _dtype(d)
    params = _params_in_precision(d(_activation_params()), dtype)
    shape = d(shapes(0, 3))
    dy = d(arrays(shape=shape, dtypes=[dtype]))
    x = d(st.one_of(st.none(), arrays(shape=_rank_off(d, shape), dtypes=[dtype])))
    y = d(st.one_of(st.none(), arrays(shape=_rank_off(d, shape), dtypes=[dtype])))
    _run("activation_backward", lambda: _C.activation_backward(name, dy, x, y, **params),
         lambda: REF.activation_backward(name, _f64(dy), _f64(x), _f64(y), **_ref_params(name, params, "backward")),
         dtype)


def _fuzz_row_op(data, name, backward):
    d = data.draw
    dtype = _dtype(d)
    shape = d(shapes(0, 3))
    a = d(arrays(shape=shape, dtypes=[dtype]))
    if not backward:
        _run(name, lambda: getattr(_C, name)(a), lambda: getattr(REF, name)(_f64(a)), dtype)
        return
    y = d(arrays(shape=_rank_off(d, shape), dtypes=[dtype]))
    _run(name, lambda: getattr(_C, name)(a, y), lambda: getattr(REF, name)(_f64(a), _f64(y)), dtype)


@FUZZ
@given(data=st.data())
def test_fuzz_softmax_forward(data):
    _fuzz_row_op(data, "softmax_forward", backward=False)


@FUZZ
@given(data=st.data())
def test_fuzz_softmax_backward(data):
    _fuzz_row_op(data, "softmax_backward", backward=True)


@FUZZ
@given(data=st.data())
def test_fuzz_log_softmax_forward(data):
    _fuzz_row_op(data, "log_softmax_forward", backward=False)


@FUZZ
@given(data=st.data())
def test_fuzz_log_softmax_backward(data):
    _fuzz_row_op(data, "log_softmax_backward", backward=True)


# ---------------------------------------------------------------- fused losses


@st.composite
def _ce_case(draw):
    n, c = draw(SIZES), draw(SIZES)
    dtype, sparse = _dtype(draw), draw(st.booleans())
    logits = draw(arrays(shape=_rank_off(draw, (n, c)), dtypes=[dtype]))
    if sparse:
        seed = draw(st.integers(0, 2**32 - 1))
        labels = np.random.default_rng(seed).integers(-1 if draw(st.integers(0, 5)) == 0 else 0, max(c, 1) + draw(st.integers(0, 1)), size=_rank_off(draw, (n,)))
        labels = labels.astype(draw(st.sampled_from([np.int32, np.int64, np.float32])))
    else:
        labels = draw(arrays(shape=_rank_off(draw, (n, c)), dtypes=[dtype], special=False))
    # Normal floats only: a subnormal smoothing / classes rounds to 0 in float32, and 0 * log(0)
    # is NaN where the float64 reference keeps inf.
    smoothing = draw(st.one_of(st.just(0.0), st.floats(1e-6, 1), st.sampled_from([-0.1, 1.5, np.nan])))
    return logits, labels, sparse, smoothing, dtype


@FUZZ
@given(case=_ce_case())
def test_fuzz_softmax_cross_entropy_forward(case):
    logits, labels, sparse, smoothing, dtype = case
    _run("softmax_cross_entropy_forward", lambda: _C.softmax_cross_entropy_forward(logits, labels, sparse, smoothing),
         lambda: REF.softmax_cross_entropy_forward(_f64(logits), labels, sparse, smoothing), dtype)


@FUZZ
@given(case=_ce_case(), data=st.data())
def test_fuzz_softmax_cross_entropy_backward(case, data):
    probs, labels, sparse, smoothing, dtype = case
    dloss = data.draw(arrays(shape=_rank_off(data.draw, probs.shape[:1]), dtypes=[dtype]))
    _run("softmax_cross_entropy_backward",
         lambda: _C.softmax_cross_entropy_backward(dloss, probs, labels, sparse, smoothing),
         lambda: REF.softmax_cross_entropy_backward(_f64(dloss), _f64(probs), labels, sparse, smoothing), dtype)


# ---------------------------------------------------------------- optimizer updates


@st.composite
def _update_case(draw, slots):
    """param, grad and slot arrays; sometimes aliased, read-only, mis-shaped or wrongly typed."""
    dtype = _dtype(draw)
    shape = draw(shapes(0, 3, sizes=SIZES))
    param = _mostly_contiguous(draw, draw(arrays(shape=shape, dtypes=[dtype])))
    grad = draw(arrays(shape=_rank_off(draw, shape), dtypes=[dtype]))
    arrs = {"param": param, "grad": grad}
    for slot in slots:
        choice = draw(st.integers(0, 15))
        if choice == 0:
            arrs[slot] = param  # aliasing: must be refused, never computed
        elif choice == 1:
            arrs[slot] = None
        else:
            slot_array = np.abs(draw(arrays(shape=_rank_off(draw, shape), dtypes=[dtype])))
            arrs[slot] = _mostly_contiguous(draw, slot_array)
    return arrs, dtype


def _mostly_contiguous(draw, a):
    """In-place arguments must be C-contiguous; make most of them so, or few cases get past the checks."""
    return np.ascontiguousarray(a) if draw(st.integers(0, 4)) else a


def _fuzz_update(name, arrs, dtype, **hyper):
    hyper = _params_in_precision(hyper, dtype) if np.dtype(dtype).kind == "f" else hyper
    before = {k: (None if v is None else np.array(v, dtype=np.float64)) for k, v in arrs.items()}
    aliased = arrs["param"].size > 0 and any(v is arrs["param"] for k, v in arrs.items() if k != "param")

    def call():
        getattr(_C, name)(**arrs, **hyper)
        return tuple(np.array(v) for v in arrs.values() if v is not None)

    def oracle():
        assert not aliased, f"{name} accepted a slot aliasing param"
        ref = dict(before)
        getattr(REF, name)(**ref, **hyper)
        return tuple(v for v in ref.values() if v is not None)

    _run(name, call, oracle, dtype)


@FUZZ
@given(case=_update_case(["velocity"]), lr=HYPER, momentum=HYPER, nesterov=st.booleans(), wd=HYPER)
def test_fuzz_sgd_update(case, lr, momentum, nesterov, wd):
    arrs, dtype = case
    _fuzz_update("sgd_update", arrs, dtype, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=wd)


@FUZZ
@given(case=_update_case(["m", "v", "vhat"]), lr=HYPER, step=st.integers(-1, 10**6), b1=HYPER, b2=HYPER,
       eps=HYPER, amsgrad=st.booleans(), wd=HYPER)
def test_fuzz_adam_update(case, lr, step, b1, b2, eps, amsgrad, wd):
    arrs, dtype = case
    _fuzz_update("adam_update", arrs, dtype, lr=lr, step=step, beta_1=b1, beta_2=b2, epsilon=eps,
                 amsgrad=amsgrad, weight_decay=wd)


@FUZZ
@given(case=_update_case(["velocity", "momentum_buf", "average_grad"]), lr=HYPER, rho=HYPER, momentum=HYPER,
       eps=HYPER, centered=st.booleans(), wd=HYPER)
def test_fuzz_rmsprop_update(case, lr, rho, momentum, eps, centered, wd):
    arrs, dtype = case
    _fuzz_update("rmsprop_update", arrs, dtype, lr=lr, rho=rho, momentum=momentum, epsilon=eps,
                 centered=centered, weight_decay=wd)


@FUZZ
@given(case=_update_case(["accumulator"]), lr=HYPER, eps=HYPER, wd=HYPER)
def test_fuzz_adagrad_update(case, lr, eps, wd):
    arrs, dtype = case
    _fuzz_update("adagrad_update", arrs, dtype, lr=lr, epsilon=eps, weight_decay=wd)


# ---------------------------------------------------------------- core


def _run_setter(name, call):
    try:
        call()
    except (ValueError, TypeError):
        CASES[name]["rejected"] += 1
        return
    CASES[name]["accepted"] += 1


@FUZZ
@given(n=st.one_of(st.integers(-5, 64), st.integers(-(2**70), 2**70)))
def test_fuzz_set_num_threads(n):
    before = _C.get_num_threads()
    try:
        _run_setter("set_num_threads", lambda: _C.set_num_threads(n))
        assert n >= 1 or _C.get_num_threads() == before
    finally:
        _C.set_num_threads(before)


@FUZZ
@given(name=st.one_of(st.text(max_size=12), st.sampled_from(["baseline", "avx2", "avx512"])))
def test_fuzz_set_cpu_capability(name):
    try:
        _run_setter("set_cpu_capability", lambda: _C.set_cpu_capability(name))
    finally:
        _C.set_cpu_capability("avx512")


@FUZZ
@given(isa=st.one_of(st.none(), st.text(max_size=8), st.sampled_from(["baseline", "avx2", "avx512"])))
def test_fuzz_gemm_config(isa):
    _run_setter("gemm_config", lambda: _C.gemm_config(isa))


@FUZZ
@given(threads=st.one_of(st.integers(-3, 3), st.integers(-(2**40), 2**40)),
       seconds=st.one_of(st.floats(max_value=1e-3), st.sampled_from([float("nan"), float("inf"), 11.0, 1e300])))
def test_fuzz_fma_ceiling(threads, seconds):
    # Probes of at most 1 ms (and rejected lengths): the fuzz run stays short.
    _run_setter("fma_ceiling", lambda: _C.fma_ceiling(None, threads, seconds))
