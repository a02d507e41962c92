"""Fuzzing of every pybind11 entry point of ``pyminidl._C``.

Each case throws hostile arguments at one entry point: any dtype, rank and size (0
included), Fortran/strided/reversed layouts, read-only arrays, aliasing, NaN/Inf, and
out-of-range values. The contract: every call either returns what the NumPy reference
backend returns for the same arguments, or raises ValueError/TypeError. A crash, a hang or
an out-of-bounds access (run under tools/sanitize.sh) fails the run.

Most cases are a consistent valid argument set, so the kernels run; the rest carry one
hostile class (fuzzlib.Faults); the last test holds each entry point to a floor of cases
that reach the kernel and runs forced any hostile class the run happened not to draw.

PYMINIDL_FUZZ_EXAMPLES sets the cases per entry point (default 150) and makes the run a random
campaign; without it the examples are derandomised, the same on every run (tests/conftest.py).
"""

import inspect
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyminidl.backend._compat import _C
from pyminidl.backend.base import Backend
from fuzzlib import CASES, FLOAT_DTYPES, FORCED, Faults, arrays, shapes

REF = Backend()
EXAMPLES = int(os.environ.get("PYMINIDL_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
NOT_FUZZED = {"build_info", "cpu_features", "get_num_threads", "tune_allocator"}  # no arguments to fuzz
SIZES = st.sampled_from([0, 1, 2, 3, 5, 8, 17, 33])
NONZERO = st.sampled_from([1, 2, 3, 5, 8, 17, 33])
# In range (so the math is exercised); a hostile case takes one out of range or not finite.
HYPER = st.floats(0, 0.999)
BAD_HYPER = st.sampled_from([1.0, 2.0, -1.0, np.nan, np.inf, 1e30])
# The share of cases that reach the kernel, asserted per entry point by the last test.
KERNEL_FLOOR = 0.30


def _shape(f, draw, site, shape):
    """``shape``; a random (mostly wrong) one where this case's fault is the shape of ``site``."""
    return draw(shapes(0, 3)) if f.on("shape", site) else shape


def _dtype(f, draw):
    """A float dtype the kernels take; one they must refuse where the fault is the dtype."""
    if f.on("dtype"):
        return draw(st.sampled_from([np.int32, np.int64, np.float16, np.bool_]))
    return draw(st.sampled_from(FLOAT_DTYPES))


def _other_float(dtype):
    return np.float32 if np.dtype(dtype) == np.float64 else np.float64


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


def _run(name, call, oracle, dtype, faults):
    """The contract of every entry point: the reference's answer, or a clean error."""
    faults.record(name)
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
    f = Faults(d, {"dtype": ["a"], "mixed_dtype": ["b"], "shape": ["a", "b", "c"]})
    m, k, n = d(SIZES), d(SIZES), d(SIZES)
    ta, tb = d(st.booleans()), d(st.booleans())
    dtype = _dtype(f, d)
    a = d(arrays(shape=_shape(f, d, "a", (k, m) if ta else (m, k)), dtypes=[dtype]))
    b = d(arrays(shape=_shape(f, d, "b", (n, k) if tb else (k, n)),
                 dtypes=[_other_float(dtype) if f.on("mixed_dtype") else dtype]))
    c = d(st.one_of(st.none(), arrays(shape=_shape(f, d, "c", (m, n)), dtypes=[dtype])))
    # Finite alpha/beta: with K == 0 BLAS semantics give beta * C whatever alpha is, where
    # the reference computes alpha * 0 (NaN for alpha = NaN); both are defensible.
    # The kernel takes alpha/beta in the array's precision (1e-90 is 0 in float32).
    alpha, beta = (_in_precision(d(st.floats(-3, 3)), dtype) for _ in range(2))
    _run("gemm", lambda: _C.gemm(a, b, ta, tb, alpha, beta, c),
         lambda: REF.gemm(_f64(a), _f64(b), ta, tb, alpha, beta, _f64(c)), dtype, f)


@FUZZ
@given(data=st.data())
def test_fuzz_dense_forward(data):
    d = data.draw
    f = Faults(d, {"dtype": ["x"], "shape": ["x", "w", "b"]})
    n, i, u = d(SIZES), d(SIZES), d(SIZES)
    dtype = _dtype(f, d)
    x = d(arrays(shape=_shape(f, d, "x", (n, i)), dtypes=[dtype]))
    w = d(arrays(shape=_shape(f, d, "w", (i, u)), dtypes=[dtype]))
    b = d(st.one_of(st.none(), arrays(shape=_shape(f, d, "b", (u,)), dtypes=[dtype])))
    _run("dense_forward", lambda: _C.dense_forward(x, w, b),
         lambda: REF.dense_forward(_f64(x), _f64(w), _f64(b)), dtype, f)


@FUZZ
@given(data=st.data())
def test_fuzz_bias_add(data):
    d = data.draw
    f = Faults(d, {"dtype": ["x"], "shape": ["x", "b"]})
    n, u = d(SIZES), d(SIZES)
    dtype = _dtype(f, d)
    x = d(arrays(shape=_shape(f, d, "x", (n, u)), dtypes=[dtype]))
    b = d(arrays(shape=_shape(f, d, "b", (u,)), dtypes=[dtype]))
    _run("bias_add", lambda: _C.bias_add(x, b), lambda: REF.bias_add(_f64(x), _f64(b)), dtype, f)


@FUZZ
@given(data=st.data())
def test_fuzz_bias_grad(data):
    d = data.draw
    f = Faults(d, {"dtype": ["dy"], "shape": ["dy"]})
    dtype = _dtype(f, d)
    dy = d(arrays(shape=_shape(f, d, "dy", (d(SIZES), d(SIZES))), dtypes=[dtype]))
    _run("bias_grad", lambda: _C.bias_grad(dy), lambda: REF.bias_grad(_f64(dy)), dtype, f)


# ---------------------------------------------------------------- activations

NAMES = st.sampled_from(_C.ACTIVATIONS)  # the C++ table
BAD_NAMES = st.sampled_from(["softmax", "", "ReLU", "relu6", "nope"])
ACTIVATION_FAULTS = {"name": ["name"], "dtype": ["x"], "param": ["negative_slope", "max_value", "threshold", "alpha"]}


def _activation_params(f, draw):
    """Some of the parameters, finite; the faulty one NaN or infinite."""
    params = {}
    for key, strat in (("negative_slope", st.floats(-1, 1)), ("max_value", st.floats(-2, 8)),
                       ("threshold", st.floats(-2, 2)), ("alpha", st.floats(0, 3)), ("approximate", st.booleans())):
        if f.on("param", key):
            params[key] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        elif draw(st.booleans()):
            params[key] = draw(strat)
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
    f = Faults(d, {**ACTIVATION_FAULTS, "scalar": ["x"]})
    name, dtype = d(BAD_NAMES if f.on("name") else NAMES), _dtype(f, d)
    params = _params_in_precision(_activation_params(f, d), dtype)
    # A 0-D draw is a NumPy scalar, not an ndarray (refused): a hostile class; valid x is >= 1-D.
    x = d(arrays(dtypes=[dtype], min_rank=0 if f.on("scalar") else 1))
    _run("activation_forward", lambda: _C.activation_forward(name, x, **params),
         lambda: REF.activation_forward(name, _f64(x), **_ref_params(name, params, "forward")), dtype, f)


@FUZZ
@given(data=st.data())
def test_fuzz_activation_backward(data):
    d = data.draw
    f = Faults(d, {**ACTIVATION_FAULTS, "shape": ["x", "y"], "missing": ["x", "y"]})
    name, dtype = d(BAD_NAMES if f.on("name") else NAMES), _dtype(f, d)
    params = _params_in_precision(_activation_params(f, d), dtype)
    shape = d(shapes(0, 3))
    dy = d(arrays(shape=shape, dtypes=[dtype]))
    x = None if f.on("missing", "x") else d(arrays(shape=_shape(f, d, "x", shape), dtypes=[dtype]))
    y = None if f.on("missing", "y") else d(arrays(shape=_shape(f, d, "y", shape), dtypes=[dtype]))
    call = lambda: _C.activation_backward(name, dy, x, y, **params)  # noqa: E731

    def oracle():
        ref_params = _ref_params(name, params, "backward")
        want = REF.activation_backward(name, _f64(dy), _f64(x), _f64(y), **ref_params)
        g = REF.activation_backward(name, np.ones_like(_f64(dy)), _f64(x), _f64(y), **ref_params)
        return _tail_resolved(want, g, dy, call())

    _run("activation_backward", call, oracle, dtype, f)


def _tail_resolved(want, derivative, dy, got):
    """The reference with one difference allowed: where its float64 derivative underflows
    to 0 in a tail (the tanh GELU's 1 + t from x = -7.2, Phi's pdf from x = -38.6) an
    infinite dy gives it 0 * inf = NaN; the kernel, whose derivative keeps its sign there
    (csrc/activations_impl.h, times_tail), gives +-inf: accept that infinity."""
    want, g, got = (np.asarray(a, np.float64) for a in (want, derivative, got))
    lost = np.isnan(want) & np.isinf(np.asarray(dy, np.float64)) & (g == 0) & np.isinf(got)
    return np.where(lost, got, want)


def _fuzz_row_op(data, name, backward):
    d = data.draw
    f = Faults(d, {"dtype": ["x"], "degenerate": ["x"], **({"shape": ["y"]} if backward else {})})
    dtype = _dtype(f, d)
    # Rows over the last axis, which must not be empty (a 0-D array has none).
    shape = d(shapes(0, 2)) + (d(NONZERO),)
    if f.on("degenerate"):
        shape = d(st.sampled_from([(), shape[:-1] + (0,)]))
    a = d(arrays(shape=shape, dtypes=[dtype]))
    if not backward:
        _run(name, lambda: getattr(_C, name)(a), lambda: getattr(REF, name)(_f64(a)), dtype, f)
        return
    y = d(arrays(shape=_shape(f, d, "y", shape), dtypes=[dtype]))
    _run(name, lambda: getattr(_C, name)(a, y), lambda: getattr(REF, name)(_f64(a), _f64(y)), dtype, f)


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
def _ce_case(draw, backward=False):
    f = Faults(draw, {"dtype": ["logits"], "shape": ["logits", "labels"] + (["dloss"] if backward else []),
                      "no_classes": ["logits"], "label_range": ["labels"], "label_dtype": ["labels"],
                      "smoothing": ["label_smoothing"]})
    n, c = draw(SIZES), 0 if f.on("no_classes") else draw(NONZERO)
    dtype = _dtype(f, draw)
    sparse = f.on("label_range") or f.on("label_dtype") or draw(st.booleans())
    logits = draw(arrays(shape=_shape(f, draw, "logits", (n, c)), dtypes=[dtype]))
    if sparse:
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        labels = rng.integers(0, max(c, 1), size=_shape(f, draw, "labels", (n,)))
        if f.on("label_range") and labels.size:
            labels.reshape(-1)[rng.integers(0, labels.size)] = draw(st.sampled_from([-1, c, 2**31 - 1]))
        bad = [np.float32, np.float64, np.int8, np.uint32]
        labels = labels.astype(draw(st.sampled_from(bad if f.on("label_dtype") else [np.int32, np.int64])))
    else:
        labels = draw(arrays(shape=_shape(f, draw, "labels", (n, c)), dtypes=[dtype], special=False))
    # Normal floats only: a subnormal smoothing / classes rounds to 0 in float32, and 0 * log(0)
    # is NaN where the float64 reference keeps inf.
    if f.on("smoothing"):
        smoothing = draw(st.sampled_from([-0.1, 1.5, np.nan, np.inf]))
    else:
        smoothing = draw(st.one_of(st.just(0.0), st.floats(1e-6, 1)))
    dloss = None
    if backward:
        dloss = draw(arrays(shape=_shape(f, draw, "dloss", logits.shape[:1]), dtypes=[dtype]))
    return logits, labels, sparse, smoothing, dtype, dloss, f


@FUZZ
@given(case=_ce_case())
def test_fuzz_softmax_cross_entropy_forward(case):
    logits, labels, sparse, smoothing, dtype, _, f = case
    _run("softmax_cross_entropy_forward", lambda: _C.softmax_cross_entropy_forward(logits, labels, sparse, smoothing),
         lambda: REF.softmax_cross_entropy_forward(_f64(logits), labels, sparse, smoothing), dtype, f)


@FUZZ
@given(case=_ce_case(backward=True))
def test_fuzz_softmax_cross_entropy_backward(case):
    probs, labels, sparse, smoothing, dtype, dloss, f = case
    _run("softmax_cross_entropy_backward",
         lambda: _C.softmax_cross_entropy_backward(dloss, probs, labels, sparse, smoothing),
         lambda: REF.softmax_cross_entropy_backward(_f64(dloss), _f64(probs), labels, sparse, smoothing), dtype, f)


# ---------------------------------------------------------------- optimizer updates


@st.composite
def _update_case(draw, slots, hypers):
    """param, grad, slot arrays and hyper-parameters; in a hostile case one slot aliases param
    or is missing, one in-place array is strided or read-only, one array is mis-shaped, the
    dtype is wrong, or one hyper-parameter is out of range or not finite."""
    inplace = ["param"] + slots
    f = Faults(draw, {"dtype": ["param"], "shape": ["grad"] + slots, "alias": slots, "missing": slots,
                      "layout": inplace, "readonly": inplace, "hyper": list(hypers)})
    dtype = _dtype(f, draw)
    shape = draw(shapes(0, 3, sizes=SIZES))
    arrs = {"param": _inplace(f, "param", draw(arrays(shape=shape, dtypes=[dtype])))}
    arrs["grad"] = draw(arrays(shape=_shape(f, draw, "grad", shape), dtypes=[dtype]))  # any layout: read only
    for slot in slots:
        if f.on("alias", slot):
            arrs[slot] = arrs["param"]  # must be refused, never computed
        elif f.on("missing", slot):
            arrs[slot] = None
        else:
            arrs[slot] = _inplace(f, slot, np.abs(draw(arrays(shape=_shape(f, draw, slot, shape), dtypes=[dtype]))))
    hyper = {}
    for name in hypers:
        if name == "step":
            hyper[name] = draw(st.sampled_from([-1, 0]) if f.on("hyper", name) else st.integers(1, 10**6))
        else:
            hyper[name] = draw(BAD_HYPER if f.on("hyper", name) else HYPER)
    return arrs, dtype, hyper, f


def _inplace(f, arg, a):
    """An array updated in place: a writeable C-contiguous copy, strided or read-only where
    that is this case's fault."""
    a = np.array(a, order="C")
    if f.on("layout", arg) and a.ndim:
        a = np.repeat(a, 2, axis=-1)[..., ::2]
    if f.on("readonly", arg):
        a.setflags(write=False)
    return a


def _fuzz_update(name, case, **flags):
    arrs, dtype, hyper, f = case
    hyper = _params_in_precision(hyper, dtype) if np.dtype(dtype).kind == "f" else hyper
    hyper.update(flags)
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

    _run(name, call, oracle, dtype, f)


@FUZZ
@given(case=_update_case(["velocity"], ["lr", "momentum", "weight_decay"]), nesterov=st.booleans())
def test_fuzz_sgd_update(case, nesterov):
    _fuzz_update("sgd_update", case, nesterov=nesterov)


@FUZZ
@given(case=_update_case(["m", "v", "vhat"], ["lr", "step", "beta_1", "beta_2", "epsilon", "weight_decay"]),
       amsgrad=st.booleans())
def test_fuzz_adam_update(case, amsgrad):
    _fuzz_update("adam_update", case, amsgrad=amsgrad)


@FUZZ
@given(case=_update_case(["velocity", "momentum_buf", "average_grad"],
                         ["lr", "rho", "momentum", "epsilon", "weight_decay"]), centered=st.booleans())
def test_fuzz_rmsprop_update(case, centered):
    _fuzz_update("rmsprop_update", case, centered=centered)


@FUZZ
@given(case=_update_case(["accumulator"], ["lr", "epsilon", "weight_decay"]))
def test_fuzz_adagrad_update(case):
    _fuzz_update("adagrad_update", case)


# ---------------------------------------------------------------- core


@st.composite
def _values(draw, valid, hostile):
    """One value per argument from ``valid`` (dicts of strategies), or from ``hostile`` for
    the faulty one."""
    f = Faults(draw, {"value": list(valid)})
    return {k: draw(hostile[k] if f.on("value", k) else valid[k]) for k in valid}, f


def _run_setter(name, call, faults):
    faults.record(name)
    try:
        call()
    except (ValueError, TypeError):
        CASES[name]["rejected"] += 1
        return
    CASES[name]["accepted"] += 1


ISA_NAMES = st.sampled_from(["baseline", "avx2", "avx512"])


@FUZZ
@given(case=_values({"n": st.integers(1, 64)}, {"n": st.one_of(st.integers(-5, 0), st.integers(-(2**70), 2**70))}))
def test_fuzz_set_num_threads(case):
    (n,), f = case[0].values(), case[1]
    before = _C.get_num_threads()
    try:
        _run_setter("set_num_threads", lambda: _C.set_num_threads(n), f)
        assert n >= 1 or _C.get_num_threads() == before
    finally:
        _C.set_num_threads(before)


@FUZZ
@given(case=_values({"name": ISA_NAMES}, {"name": st.text(max_size=12)}))
def test_fuzz_set_cpu_capability(case):
    name = case[0]["name"]
    try:
        _run_setter("set_cpu_capability", lambda: _C.set_cpu_capability(name), case[1])
    finally:
        _C.set_cpu_capability("avx512")


@FUZZ
@given(case=_values({"isa": st.one_of(st.none(), ISA_NAMES)}, {"isa": st.text(max_size=8)}))
def test_fuzz_gemm_config(case):
    _run_setter("gemm_config", lambda: _C.gemm_config(case[0]["isa"]), case[1])


@FUZZ
@given(case=_values({"threads": st.integers(1, 3), "seconds": st.floats(1e-6, 1e-3)},
                    {"threads": st.one_of(st.integers(-3, 0), st.integers(-(2**40), 2**40)),
                     "seconds": st.one_of(st.floats(max_value=0.0), st.sampled_from([np.nan, np.inf, 11.0, 1e300]))}))
def test_fuzz_fma_ceiling(case):
    # Probes of at most 1 ms (and rejected lengths): the fuzz run stays short.
    args, f = case
    _run_setter("fma_ceiling", lambda: _C.fma_ceiling(None, args["threads"], args["seconds"]), f)


# ---------------------------------------------------------------- image geometry

INTERPOLATIONS = st.sampled_from(["bilinear", "nearest"])
FILL_MODES = st.sampled_from(["reflect", "wrap", "constant", "nearest"])


def _image_dtype(f, draw):
    """float32 (the only dtype of the image kernels); another where the fault is the dtype."""
    return draw(st.sampled_from([np.float64, np.int32, np.float16])) if f.on("dtype") else np.float32


def _out_size(f, draw, site):
    return draw(st.sampled_from([0, -1, -(2**40), 2**25])) if f.on("size", site) else draw(NONZERO)


@FUZZ
@given(data=st.data())
def test_fuzz_resize_forward(data):
    d = data.draw
    f = Faults(d, {"dtype": ["x"], "shape": ["x"], "size": ["height", "width"], "name": ["interpolation"]})
    dtype = _image_dtype(f, d)
    x = d(arrays(shape=_shape(f, d, "x", (d(SIZES), d(NONZERO), d(NONZERO), d(NONZERO))), dtypes=[dtype]))
    height, width = _out_size(f, d, "height"), _out_size(f, d, "width")
    interpolation = d(st.sampled_from(["area", "", "Bilinear"])) if f.on("name") else d(INTERPOLATIONS)
    _run("resize_forward", lambda: _C.resize_forward(x, height, width, interpolation),
         lambda: REF.resize_forward(_f64(x), (height, width), interpolation), dtype, f)


@st.composite
def _transforms(draw, n, f):
    """(n, 8) Keras transforms: modest linear parts and shifts, a slight projective part (k > 0)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    t = np.concatenate([rng.uniform(-2, 2, (n, 2)), rng.uniform(-40, 40, (n, 1)), rng.uniform(-2, 2, (n, 2)),
                        rng.uniform(-40, 40, (n, 1)), rng.uniform(-1e-3, 1e-3, (n, 2)) * draw(st.booleans())],
                       axis=1).astype(np.float32)
    if f.on("value", "transforms") and t.size:
        t.reshape(-1)[rng.integers(t.size)] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return t


@FUZZ
@given(data=st.data())
def test_fuzz_affine_transform_forward(data):
    d = data.draw
    f = Faults(d, {"dtype": ["x", "transforms"], "shape": ["x", "transforms"], "value": ["transforms", "fill_value"],
                   "name": ["interpolation", "fill_mode"]})
    n = d(SIZES)
    x = d(arrays(shape=_shape(f, d, "x", (n, d(NONZERO), d(NONZERO), d(NONZERO))),
                 dtypes=[_image_dtype(f, d) if f.on("dtype", "x") else np.float32]))
    t = d(_transforms(n, f))
    if f.on("shape", "transforms"):
        t = d(arrays(shape=d(shapes(0, 3)), dtypes=[np.float32]))
    if f.on("dtype", "transforms"):
        t = t.astype(d(st.sampled_from([np.float64, np.int32])))
    interpolation = d(st.sampled_from(["bicubic", ""])) if f.on("name", "interpolation") else d(INTERPOLATIONS)
    fill_mode = d(st.sampled_from(["mirror", "Reflect"])) if f.on("name", "fill_mode") else d(FILL_MODES)
    fill_value = d(st.sampled_from([np.nan, np.inf])) if f.on("value", "fill_value") else d(st.floats(-3, 3))
    _run("affine_transform_forward",
         lambda: _C.affine_transform_forward(x, t, interpolation, fill_mode, fill_value),
         lambda: REF.affine_transform_forward(_f64(x), t, interpolation, fill_mode, fill_value), x.dtype, f)


# ---------------------------------------------------------------- pooling and normalization (issue 9)
# The kernels take float32 only: valid cases are float32, a dtype fault draws any other type.

POOL_SIZES = st.sampled_from([1, 2, 3, 5, 8])
BAD_GEOMETRY = st.sampled_from([0, -1, -3])


def _dtype32(f, draw):
    if f.on("dtype"):
        return draw(st.sampled_from([np.float64, np.int32, np.float16, np.bool_]))
    return np.float32


def _pool_geometry(f, d):
    """pool_size, strides, padding: valid (>= 1, 'valid'/'same') or one of them hostile."""
    pool = [d(st.integers(1, 3)), d(st.integers(1, 3))]
    strides = [d(st.integers(1, 3)), d(st.integers(1, 3))]
    padding = d(st.sampled_from(["valid", "same"]))
    if f.on("geometry", "pool_size"):
        pool[d(st.integers(0, 1))] = d(BAD_GEOMETRY)
    if f.on("geometry", "strides"):
        strides[d(st.integers(0, 1))] = d(BAD_GEOMETRY)
    if f.on("geometry", "padding"):
        padding = d(st.sampled_from(["full", "SAME", ""]))
    return tuple(pool), tuple(strides), padding


POOL_FAULTS = {"dtype": ["x"], "shape": ["x"], "geometry": ["pool_size", "strides", "padding"]}


def _pool_input(f, d, dtype):
    shape = (d(st.sampled_from([0, 1, 2])), d(POOL_SIZES), d(POOL_SIZES), d(st.sampled_from([0, 1, 3, 17])))
    return d(arrays(shape=_shape(f, d, "x", shape), dtypes=[dtype]))


@FUZZ
@given(data=st.data())
def test_fuzz_maxpool_forward(data):
    d = data.draw
    f = Faults(d, POOL_FAULTS)
    dtype = _dtype32(f, d)
    x, (pool, strides, padding) = _pool_input(f, d, dtype), _pool_geometry(f, d)
    _run("maxpool_forward", lambda: _C.maxpool_forward(x, pool, strides, padding),
         lambda: REF.maxpool_forward(_f64(x), pool, strides, padding), dtype, f)


@FUZZ
@given(data=st.data())
def test_fuzz_avgpool_forward(data):
    d = data.draw
    f = Faults(d, POOL_FAULTS)
    dtype = _dtype32(f, d)
    x, (pool, strides, padding) = _pool_input(f, d, dtype), _pool_geometry(f, d)
    _run("avgpool_forward", lambda: _C.avgpool_forward(x, pool, strides, padding),
         lambda: REF.avgpool_forward(_f64(x), pool, strides, padding), dtype, f)


def _pool_backward_case(f, d, dtype):
    """input_shape, geometry, dy (and the argmax of a real forward); faults strike one of them."""
    shape = (d(st.sampled_from([0, 1, 2])), d(POOL_SIZES), d(POOL_SIZES), d(st.sampled_from([0, 1, 3, 17])))
    pool, strides, padding = _pool_geometry(f, d)
    seed = np.random.default_rng(d(st.integers(0, 2**32 - 1)))
    try:
        y, argmax = REF.maxpool_forward(seed.standard_normal(shape), pool, strides, padding)
        out = y.shape
    except ValueError:  # an empty output or a hostile geometry: any dy, the binding must refuse
        out, argmax = (1, 1, 1, 1), np.zeros((1, 1, 1, 1), np.int32)
    if f.on("input_shape"):
        shape = d(st.sampled_from([(1, 2, 2), (-1, 2, 2, 1), (1, -2, 2, 1), (1, 2, 2, 1, 1)]))
    dy = d(arrays(shape=_shape(f, d, "dy", out), dtypes=[dtype]))
    return shape, (pool, strides, padding), dy, argmax


POOL_BACKWARD_FAULTS = {"dtype": ["dy"], "shape": ["dy"], "geometry": ["pool_size", "strides", "padding"],
                        "input_shape": ["input_shape"]}


@FUZZ
@given(data=st.data())
def test_fuzz_maxpool_backward(data):
    d = data.draw
    f = Faults(d, {**POOL_BACKWARD_FAULTS, "argmax": ["value", "dtype"]})
    dtype = _dtype32(f, d)
    shape, (pool, strides, padding), dy, argmax = _pool_backward_case(f, d, dtype)
    if f.on("argmax", "value") and argmax.size:
        argmax = argmax.copy()
        argmax.reshape(-1)[d(st.integers(0, argmax.size - 1))] = d(st.sampled_from([-1, 2**31 - 1, 10**6]))
    if f.on("argmax", "dtype"):
        argmax = argmax.astype(d(st.sampled_from([np.int64, np.float32, np.uint32])))
    _run("maxpool_backward", lambda: _C.maxpool_backward(dy, argmax, shape, pool, strides, padding),
         lambda: REF.maxpool_backward(_f64(dy), argmax, shape, pool, strides, padding), dtype, f)


@FUZZ
@given(data=st.data())
def test_fuzz_avgpool_backward(data):
    d = data.draw
    f = Faults(d, POOL_BACKWARD_FAULTS)
    dtype = _dtype32(f, d)
    shape, (pool, strides, padding), dy, _ = _pool_backward_case(f, d, dtype)
    _run("avgpool_backward", lambda: _C.avgpool_backward(dy, shape, pool, strides, padding),
         lambda: REF.avgpool_backward(_f64(dy), shape, pool, strides, padding), dtype, f)


NORM_FAULTS = {"dtype": ["x"], "shape": ["gamma", "beta", "mean", "variance", "dy"], "axis": ["axis"],
               "epsilon": ["epsilon"]}
BAD_EPS = st.sampled_from([np.nan, np.inf, -1.0])


def _norm_common(f, d):
    dtype = _dtype32(f, d)
    shape = d(shapes(1, 4, sizes=st.sampled_from([0, 1, 2, 3, 5, 17])))
    eps = d(BAD_EPS) if f.on("epsilon") else d(st.floats(1e-3, 0.1))
    return dtype, shape, eps


def _param(f, d, site, shape, dtype, optional=True, positive=False):
    if optional and d(st.booleans()):
        return None
    a = d(arrays(shape=_shape(f, d, site, shape), dtypes=[dtype]))
    return np.abs(a) + 0.1 if positive and a.dtype.kind == "f" else a


def _bn_case(f, d):
    dtype, shape, eps = _norm_common(f, d)
    axis = d(st.integers(-len(shape), len(shape) - 1))
    if f.on("axis"):
        axis = d(st.sampled_from([len(shape), -len(shape) - 1, 7]))
    c = (shape[axis],) if -len(shape) <= axis < len(shape) else (1,)
    x = d(arrays(shape=shape, dtypes=[dtype]))
    return dtype, x, axis, eps, c


@FUZZ
@given(data=st.data())
def test_fuzz_batch_norm_forward(data):
    d = data.draw
    f = Faults(d, NORM_FAULTS)
    dtype, x, axis, eps, c = _bn_case(f, d)
    gamma, beta = _param(f, d, "gamma", c, dtype), _param(f, d, "beta", c, dtype)
    given_stats = d(st.booleans())
    mean = _param(f, d, "mean", c, dtype, optional=False) if given_stats else None
    var = _param(f, d, "variance", c, dtype, optional=False, positive=True) if given_stats else None
    _run("batch_norm_forward", lambda: _C.batch_norm_forward(x, gamma, beta, axis, eps, mean, var),
         lambda: REF.batch_norm_forward(_f64(x), _f64(gamma), _f64(beta), axis, eps, _f64(mean), _f64(var)), dtype, f)


@FUZZ
@given(data=st.data())
def test_fuzz_batch_norm_backward(data):
    d = data.draw
    f = Faults(d, NORM_FAULTS)
    dtype, x, axis, eps, c = _bn_case(f, d)
    dy = d(arrays(shape=_shape(f, d, "dy", x.shape), dtypes=[dtype]))
    gamma = _param(f, d, "gamma", c, dtype)
    mean = _param(f, d, "mean", c, dtype, optional=False)
    var = _param(f, d, "variance", c, dtype, optional=False, positive=True)
    training = d(st.booleans())
    _run("batch_norm_backward", lambda: _C.batch_norm_backward(dy, x, gamma, mean, var, axis, eps, training),
         lambda: REF.batch_norm_backward(_f64(dy), _f64(x), _f64(gamma), _f64(mean), _f64(var), axis, eps, training),
         dtype, f)


def _ln_case(f, d):
    """x, its trailing normalized axes (a shuffled list, some negative), the gamma and statistics shapes."""
    dtype, shape, eps = _norm_common(f, d)
    k = d(st.integers(1, len(shape)))
    # mostly non-empty rows (an empty normalized axis is a refused case of its own)
    shape = shape[:len(shape) - k] + tuple(d(st.sampled_from([0, 1, 2, 3, 5, 5, 17, 17])) for _ in range(k))
    axes = [a - len(shape) if d(st.booleans()) else a for a in range(len(shape) - k, len(shape))]
    axes = d(st.permutations(axes))
    if f.on("axis"):
        axes = d(st.sampled_from([[len(shape)], [0, 0], [-len(shape) - 1], []]))
        if len(shape) >= 2 and d(st.booleans()):
            axes = [0]  # not trailing: the binding refuses, the reference would compute
    pshape = tuple(shape[len(shape) - k:])
    stat = tuple(shape[:len(shape) - k]) + (1,) * k
    return dtype, d(arrays(shape=shape, dtypes=[dtype])), list(axes), eps, pshape, stat


@FUZZ
@given(data=st.data())
def test_fuzz_layer_norm_forward(data):
    d = data.draw
    f = Faults(d, NORM_FAULTS)
    dtype, x, axes, eps, pshape, _ = _ln_case(f, d)
    gamma, beta = _param(f, d, "gamma", pshape, dtype), _param(f, d, "beta", pshape, dtype)
    _run("layer_norm_forward", lambda: _C.layer_norm_forward(x, gamma, beta, axes, eps),
         lambda: REF.layer_norm_forward(_f64(x), _f64(gamma), _f64(beta), axes, eps), dtype, f)


@FUZZ
@given(data=st.data())
def test_fuzz_layer_norm_backward(data):
    d = data.draw
    f = Faults(d, NORM_FAULTS)
    dtype, x, axes, eps, pshape, stat = _ln_case(f, d)
    dy = d(arrays(shape=_shape(f, d, "dy", x.shape), dtypes=[dtype]))
    gamma = _param(f, d, "gamma", pshape, dtype)
    mean = _param(f, d, "mean", stat, dtype, optional=False)
    var = _param(f, d, "variance", stat, dtype, optional=False, positive=True)
    _run("layer_norm_backward", lambda: _C.layer_norm_backward(dy, x, gamma, mean, var, axes, eps),
         lambda: REF.layer_norm_backward(_f64(dy), _f64(x), _f64(gamma), _f64(mean), _f64(var), axes, eps), dtype, f)


# ---------------------------------------------------------------- the floor (runs last)


def test_a_share_of_cases_reaches_every_kernel():
    """Runs after the fuzz tests above (pytest keeps the order of definition). Each entry
    point must have run its kernel (matched the reference) in at least KERNEL_FLOOR of its
    cases, and every hostile class it declares must have been thrown at it: neither can
    fade unnoticed. The counts come from the run of the fuzz tests above (fuzzlib.CASES)."""
    counted = {n: c for n, c in CASES.items() if c["accepted"] + c["rejected"] >= 50}
    if not counted:
        pytest.skip("fewer than 50 fuzz cases per entry point ran before this test")
    low = {n: f"{c['accepted']} of {c['accepted'] + c['rejected']}" for n, c in counted.items()
           if c["accepted"] < KERNEL_FLOOR * (c["accepted"] + c["rejected"])}
    assert not low, f"entry points whose kernel ran in under {KERNEL_FLOOR:.0%} of the cases: {low}"
    # The derandomised run leaves a few classes of an entry point undrawn: run those forced
    # (every case takes that class), so each class meets the contract in every run.
    for name, c in counted.items():
        for kind in [k for k, v in c["faults"].items() if v == 0]:
            FORCED[0] = kind
            try:
                globals()[f"test_fuzz_{name}"]()
            finally:
                FORCED[0] = None
            assert c["faults"][kind] > 0, f"{name}: no case took the hostile class {kind!r}"
