"""Fused optimizer updates: CpuBackend vs the reference Backend over several steps, Keras 3
update rules written out in NumPy, threads, and the bindings' validation."""

import numpy as np
import pytest

import pyminidl
from pyminidl.backend import use_backend
from pyminidl.backend._compat import _C
from pyminidl.backend.base import Backend
from pyminidl.testing import assert_close

LARGE = 70001  # above PARALLEL_GRAIN (csrc/common.h) so the OpenMP loops run in parallel
SHAPES = [(1,), (7,), (17, 3), (65,), (257, 5), (LARGE,)]

# (update, hyper-parameters, slot names that are needed). Slots a config does not use are None.
CONFIGS = [
    ("sgd", dict(lr=0.1), ()),
    ("sgd", dict(lr=0.05, momentum=0.9), ("velocity",)),
    ("sgd", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01), ("velocity",)),
    ("adam", dict(lr=1e-3), ("m", "v")),
    ("adam", dict(lr=1e-2, beta_1=0.8, beta_2=0.99, epsilon=1e-6, amsgrad=True, weight_decay=0.004),
     ("m", "v", "vhat")),
    ("rmsprop", dict(lr=1e-3), ("velocity",)),
    ("rmsprop", dict(lr=1e-3, rho=0.8, momentum=0.5, centered=True, weight_decay=0.01),
     ("velocity", "momentum_buf", "average_grad")),
    ("adagrad", dict(lr=0.01, weight_decay=0.1), ("accumulator",)),
]
IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(CONFIGS)]
SLOTS = {"sgd": ("velocity",), "adam": ("m", "v", "vhat"),
         "rmsprop": ("velocity", "momentum_buf", "average_grad"), "adagrad": ("accumulator",)}


def _state(rng, shape, name, needed, dtype=np.float32):
    """A parameter and its slots, as a Keras optimizer holds them after a few steps."""
    state = {"param": rng.standard_normal(shape).astype(dtype)}
    for slot in SLOTS[name]:
        value = None
        if slot in needed:  # second moments are non-negative; the centered average is small
            value = rng.standard_normal(shape).astype(dtype) * 0.1
            if slot in ("v", "vhat", "velocity", "accumulator") and name != "sgd":
                value = np.abs(value) + 0.01
        state[slot] = value
    if "average_grad" in needed:  # a reachable centered state: E[g^2] >= E[g]^2
        state["velocity"] += state["average_grad"] ** 2
    return state


def _apply(be, name, state, grad, hyper, step):
    kwargs = dict(hyper, step=step) if name == "adam" else hyper
    slots = [state[s] for s in SLOTS[name]]
    getattr(be, f"{name}_update")(state["param"], grad, *slots, **kwargs)


def _copy(state, dtype):
    return {k: None if v is None else v.astype(dtype) for k, v in state.items()}


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name,hyper,needed", CONFIGS, ids=IDS)
def test_matches_reference_over_steps_float32(cpu, rng, name, hyper, needed, shape):
    state = _state(rng, shape, name, needed)
    ref = _copy(state, np.float64)
    for step in (1, 2, 3):
        grad = rng.standard_normal(shape).astype(np.float32)
        _apply(cpu, name, state, grad, hyper, step)
        _apply(Backend(), name, ref, grad.astype(np.float64), hyper, step)
        for key, value in state.items():
            if value is not None:
                assert value.dtype == np.float32
                assert_close(value, ref[key], k=step)


@pytest.mark.parametrize("name,hyper,needed", CONFIGS, ids=IDS)
def test_float64_and_strided_inputs_match_reference(cpu, rng, name, hyper, needed):
    state = _state(rng, (9, 14), name, needed, np.float64)
    ref = _copy(state, np.float64)
    for step in (1, 2):
        big = rng.standard_normal((18, 28))
        grad = big[::2, 1::2]  # a strided view: read through a contiguous copy
        _apply(cpu, name, state, grad, hyper, step)
        _apply(Backend(), name, ref, grad.copy(), hyper, step)
    for key, value in state.items():
        if value is not None:
            assert_close(value, ref[key])


@pytest.mark.parametrize("name,hyper,needed", CONFIGS, ids=IDS)
def test_strided_param_takes_the_reference_path(cpu, rng, name, hyper, needed):
    # In-place arguments are never copied: a strided param is updated by the reference code.
    state = _state(rng, (6, 8), name, needed)
    holder = np.zeros((6, 16), np.float32)
    holder[:, ::2] = state["param"]
    view = dict(state, param=holder[:, ::2])
    ref = _copy(state, np.float32)
    grad = rng.standard_normal((6, 8)).astype(np.float32)
    _apply(cpu, name, view, grad, hyper, 1)
    _apply(Backend(), name, ref, grad, hyper, 1)
    np.testing.assert_array_equal(holder[:, ::2], ref["param"])
    assert not holder[:, 1::2].any()


@pytest.mark.parametrize("name,hyper,needed", CONFIGS, ids=IDS)
def test_threads_do_not_change_bits(cpu, rng, name, hyper, needed):
    init = _state(rng, (LARGE,), name, needed)
    grad = rng.standard_normal(LARGE).astype(np.float32)
    results = []
    for n in (1, 2, 2):
        pyminidl.config.set_num_threads(n)
        state = _copy(init, np.float32)
        _apply(cpu, name, state, grad, hyper, 1)
        results.append(state)
    for a, b in zip(results, results[1:]):
        for key in a:
            if a[key] is not None:
                np.testing.assert_array_equal(a[key], b[key])


# ---------------------------------------------------------------- Keras 3 rules, written out

BACKENDS = ["numpy", "cpu"]


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_with_lr_one_is_minus_the_gradient(backend_name, rng, dtype):
    g = rng.standard_normal(33).astype(dtype)
    p = np.zeros(33, dtype)
    with use_backend(backend_name) as be:
        be.sgd_update(p, g, None, lr=1.0)
    np.testing.assert_array_equal(p, -g)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_sgd_nesterov_follows_keras(backend_name, rng):
    p0, m = rng.standard_normal(10), np.zeros(10)
    p, vel = p0.copy(), np.zeros(10)
    lr, mom = 0.1, 0.9
    with use_backend(backend_name) as be:
        for _ in range(4):
            g = rng.standard_normal(10)
            be.sgd_update(p, g, vel, lr, momentum=mom, nesterov=True)
            m = mom * m - lr * g  # Keras 3 SGD.update_step
            p0 = p0 + mom * m - lr * g
            np.testing.assert_allclose(vel, m, rtol=1e-12)
            np.testing.assert_allclose(p, p0, rtol=1e-12)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_adamw_amsgrad_follows_keras(backend_name, rng):
    lr, b1, b2, eps, wd = 0.01, 0.9, 0.999, 1e-7, 0.004
    p0 = rng.standard_normal(12)
    p, m, v, vhat = p0.copy(), np.zeros(12), np.zeros(12), np.zeros(12)
    em, ev, evhat = np.zeros(12), np.zeros(12), np.zeros(12)
    with use_backend(backend_name) as be:
        for t in range(1, 5):
            g = rng.standard_normal(12) * (5.0 if t == 2 else 0.1)  # a large step, so vhat > v later
            be.adam_update(p, g, m, v, vhat, lr, t, b1, b2, eps, amsgrad=True, weight_decay=wd)
            p0 = p0 - lr * wd * p0
            em = b1 * em + (1 - b1) * g
            ev = b2 * ev + (1 - b2) * g * g
            evhat = np.maximum(evhat, ev)
            p0 = p0 - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * em / (np.sqrt(evhat) + eps)
            np.testing.assert_allclose(p, p0, rtol=1e-10)
            np.testing.assert_allclose(vhat, evhat, rtol=1e-10)
    assert np.any(vhat > v)  # amsgrad's max actually mattered


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_centered_rmsprop_with_momentum_follows_keras(backend_name, rng):
    lr, rho, mom, eps = 0.01, 0.9, 0.5, 1e-7
    p0 = rng.standard_normal(8)
    p, vel, buf, avg = p0.copy(), np.zeros(8), np.zeros(8), np.zeros(8)
    ev, eb, ea = np.zeros(8), np.zeros(8), np.zeros(8)
    with use_backend(backend_name) as be:
        for _ in range(4):
            g = rng.standard_normal(8)
            be.rmsprop_update(p, g, vel, buf, avg, lr, rho=rho, momentum=mom, epsilon=eps, centered=True)
            ev = rho * ev + (1 - rho) * g**2
            ea = rho * ea + (1 - rho) * g
            eb = mom * eb + lr * g / np.sqrt(ev - ea**2 + eps)
            p0 = p0 - eb
            np.testing.assert_allclose(p, p0, rtol=1e-10)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_adagrad_follows_keras(backend_name, rng):
    p0 = rng.standard_normal(6)
    p, acc, eacc = p0.copy(), np.full(6, 0.1), np.full(6, 0.1)
    with use_backend(backend_name) as be:
        for _ in range(3):
            g = rng.standard_normal(6)
            be.adagrad_update(p, g, acc, 0.05, epsilon=1e-7)
            eacc = eacc + g * g
            p0 = p0 - 0.05 * g / np.sqrt(eacc + 1e-7)
            np.testing.assert_allclose(p, p0, rtol=1e-12)


def test_nan_gradient_propagates(cpu):
    p, g = np.zeros(3, np.float32), np.array([np.nan, 1.0, np.inf], np.float32)
    m, v, vhat = np.zeros(3, np.float32), np.zeros(3, np.float32), np.zeros(3, np.float32)
    cpu.adam_update(p, g, m, v, vhat, 0.1, 1, amsgrad=True)
    assert np.isnan(p[0]) and np.isnan(vhat[0]) and np.isfinite(p[1])


# ---------------------------------------------------------------- binding validation


def _adam_args(n=4, dtype=np.float32):
    return [np.zeros(n, dtype) for _ in range(5)]  # param, grad, m, v, vhat


def test_binding_rejects_dtype_and_shape_mismatch():
    p, g, m, v, vhat = _adam_args()
    with pytest.raises(TypeError, match="'param' must have dtype float32 or float64. Received: dtype=int64"):
        _C.sgd_update(np.zeros(4, np.int64), np.zeros(4, np.int64), None, 0.1)
    with pytest.raises(TypeError, match="'param' and 'grad' must have the same dtype"):
        _C.sgd_update(p, g.astype(np.float64), None, 0.1)
    with pytest.raises(ValueError, match=r"param.shape=\(4,\), grad.shape=\(5,\)"):
        _C.adagrad_update(p, np.zeros(5, np.float32), m, 0.1)
    with pytest.raises(ValueError, match=r"param.shape=\(4,\), v.shape=\(2, 2\)"):
        _C.adam_update(p, g, m, v.reshape(2, 2), vhat, 0.1, 1)
    with pytest.raises(TypeError, match="'param' and 'm' must have the same dtype"):
        _C.adam_update(p, g, m.astype(np.float64), v, vhat, 0.1, 1)


def test_binding_rejects_aliasing_slots():
    p, g, m, v, vhat = _adam_args()
    with pytest.raises(ValueError, match="'v' and 'm' share memory"):
        _C.adam_update(p, g, m, m, vhat, 0.1, 1)
    with pytest.raises(ValueError, match="'m' and 'param' share memory"):
        _C.adam_update(p, g, p, v, vhat, 0.1, 1)
    with pytest.raises(ValueError, match="'accumulator' and 'grad' share memory"):
        _C.adagrad_update(p, g, g, 0.1)
    with pytest.raises(ValueError, match="'average_grad' and 'velocity' share memory"):
        _C.rmsprop_update(p, g, m, None, m, 0.1, centered=True)
    big = np.zeros(8, np.float32)
    with pytest.raises(ValueError, match="'velocity' and 'param' share memory"):  # partial overlap
        _C.sgd_update(big[:4], g, big[2:6], 0.1, momentum=0.9)
    with pytest.raises(ValueError, match="'param' and 'grad' share memory"):
        _C.sgd_update(p, p, None, 0.1)


def test_binding_rejects_read_only_strided_and_non_array_in_place_args():
    p, g, m, v, vhat = _adam_args()
    ro = np.zeros(4, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="'param' is read-only"):
        _C.sgd_update(ro, g, None, 0.1)
    with pytest.raises(ValueError, match="'vhat' is read-only"):
        _C.adam_update(p, g, m, v, ro, 0.1, 1, amsgrad=True)
    with pytest.raises(ValueError, match="'param' must be C-contiguous"):
        _C.sgd_update(np.zeros(8, np.float32)[::2], g, None, 0.1)
    with pytest.raises(TypeError, match="'param' is updated in place and must be a numpy.ndarray"):
        _C.sgd_update([0.0, 0.0, 0.0, 0.0], g, None, 0.1)
    before = ro.copy()
    with pytest.raises(ValueError):  # validation happens before any write
        _C.adam_update(p, g, m, v, ro, 0.1, 1, amsgrad=True)
    np.testing.assert_array_equal(ro, before)


def test_binding_requires_the_slots_the_options_use():
    p, g, m, v, vhat = _adam_args()
    with pytest.raises(ValueError, match="needs argument 'vhat'"):
        _C.adam_update(p, g, m, v, None, 0.1, 1, amsgrad=True)
    with pytest.raises(ValueError, match="needs argument 'momentum_buf'"):
        _C.rmsprop_update(p, g, v, None, None, 0.1, momentum=0.9)
    with pytest.raises(ValueError, match="needs argument 'average_grad'"):
        _C.rmsprop_update(p, g, v, None, None, 0.1, centered=True)
    _C.adam_update(p, g, m, v, None, 0.1, 1)  # vhat unused without amsgrad
    _C.sgd_update(p, g, None, 0.1, momentum=0.9)  # no velocity: plain SGD, as the reference


@pytest.mark.parametrize("call,match", [
    (lambda a: _C.sgd_update(a[0], a[1], None, -0.1), r"lr must be a finite number in \[0, inf\). Received: lr=-0.1"),
    (lambda a: _C.sgd_update(a[0], a[1], a[2], float("nan")), "Received: lr=nan"),
    (lambda a: _C.sgd_update(a[0], a[1], a[2], 0.1, momentum=1.5), "momentum must be"),
    (lambda a: _C.adam_update(*a, 0.1, 0), "step counts from 1. Received: step=0"),
    (lambda a: _C.adam_update(*a, 0.1, 1, beta_1=1.0), r"beta_1 must be a finite number in \[0, 1\)"),
    (lambda a: _C.adam_update(*a, 0.1, 1, beta_2=-0.1), "beta_2 must be"),
    (lambda a: _C.adam_update(*a, 0.1, 1, epsilon=-1e-7), "epsilon must be"),
    (lambda a: _C.adam_update(*a, 0.1, 1, weight_decay=float("inf")), "weight_decay must be"),
    (lambda a: _C.rmsprop_update(a[0], a[1], a[2], None, None, 0.1, rho=1.0), "rho must be"),
])
def test_binding_rejects_bad_hyper_parameters(call, match):
    args = _adam_args()
    before = [a.copy() for a in args]
    with pytest.raises(ValueError, match=match):
        call(args)
    for a, b in zip(args, before):
        np.testing.assert_array_equal(a, b)


def test_empty_arrays_are_a_no_op():
    p, g, m, v, vhat = _adam_args(0)
    _C.adam_update(p, g, m, v, vhat, 0.1, 1, amsgrad=True)
    assert p.shape == (0,)


# ---------------------------------------------------------------- multi-tensor updates

MULTI_SHAPES = [(1,), (7,), (17, 3), (0,), (257, 5), (LARGE,)]  # a block boundary falls inside tensors


@pytest.mark.parametrize("name,hyper,needed", [c for c in CONFIGS if c[0] in ("sgd", "adam")],
                         ids=[i for i, c in zip(IDS, CONFIGS) if c[0] in ("sgd", "adam")])
@pytest.mark.parametrize("threads", [1, 3])
def test_multi_tensor_update_equals_the_per_variable_updates(cpu, rng, name, hyper, needed, threads):
    # One call over every tensor: bit-identical to one kernel call per tensor, for any thread count
    states = [_state(rng, s, name, needed) for s in MULTI_SHAPES]
    grads = [rng.standard_normal(s).astype(np.float32) for s in MULTI_SHAPES]
    single = [_copy(st, np.float32) for st in states]
    ref = [_copy(st, np.float64) for st in states]
    previous = pyminidl.config.get_num_threads()
    pyminidl.config.set_num_threads(threads)
    try:
        for step in (1, 2):
            for st, g in zip(single, grads):
                _apply(cpu, name, st, g, hyper, step)
            for st, g in zip(ref, grads):
                _apply(Backend(), name, st, g.astype(np.float64), hyper, step)
            lists = {s: None if states[0][s] is None else [st[s] for st in states] for s in SLOTS[name]}
            args = [lists[s] for s in SLOTS[name]]
            kwargs = dict(hyper, step=step) if name == "adam" else hyper
            getattr(cpu, f"{name}_update_multi")([st["param"] for st in states], grads, *args, **kwargs)
    finally:
        pyminidl.config.set_num_threads(previous)
    for st, one, r in zip(states, single, ref):
        for key, value in st.items():
            if value is not None:
                np.testing.assert_array_equal(value, one[key])
                assert_close(value, r[key], k=2)


def test_multi_tensor_update_reaches_one_kernel_call(cpu, rng, monkeypatch):
    from pyminidl.backend import cpu_backend

    calls = []
    real = cpu_backend._C

    class Recorder:
        def __getattr__(self, name):
            calls.append(name)
            return getattr(real, name)

    monkeypatch.setattr(cpu_backend, "_C", Recorder())
    ps = [rng.standard_normal(s).astype(np.float32) for s in [(3, 4), (4,), (9,)]]
    gs, ms, vs = ([np.zeros_like(p) for p in ps] for _ in range(3))
    cpu.adam_update_multi(ps, gs, ms, vs, None, 0.1, 1)
    cpu.sgd_update_multi(ps, gs, None, 0.1)
    assert calls == ["adam_update_multi", "sgd_update_multi"]
    # a strided param (or mixed dtypes) takes the per-variable path
    calls.clear()
    holder = np.zeros((3, 8), np.float32)
    cpu.sgd_update_multi([holder[:, ::2], ps[1]], [gs[0], gs[1]], None, 0.1)
    assert "sgd_update_multi" not in calls


def test_multi_tensor_binding_refuses_cross_tensor_aliasing_and_ragged_lists():
    p = np.ones(10, np.float32)
    z = lambda n: np.zeros(n, np.float32)  # noqa: E731
    with pytest.raises(ValueError, match=r"'params\[0\]' and 'slot 0 of params\[1\]' share memory"):
        _C.adam_update_multi([p[:5], p[5:].copy()], [z(5), z(5)], [z(5), p[:5]], [z(5), z(5)], None, 0.1, 1)
    with pytest.raises(ValueError, match="share memory"):
        _C.sgd_update_multi([p[:6], p[4:]], [z(6), z(6)], None, 0.1)
    with pytest.raises(ValueError, match="one array per param"):
        _C.sgd_update_multi([p], [z(10), z(10)], None, 0.1)
    with pytest.raises(TypeError, match="list of arrays"):
        _C.sgd_update_multi(p, [z(10)], None, 0.1)
    with pytest.raises(ValueError, match=r"'params\[1\]' and 'grads\[1\]' must have the same shape"):
        _C.sgd_update_multi([p, z(3)], [z(10), z(4)], None, 0.1)
    with pytest.raises(ValueError, match="vhats"):
        _C.adam_update_multi([p], [z(10)], [z(10)], [z(10)], None, 0.1, 1, amsgrad=True)
    _C.sgd_update_multi([], [], None, 0.1)  # nothing to update
    np.testing.assert_array_equal(p, 1.0)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_every_isa_path_gives_the_same_bits(cpu, rng, amsgrad):
    # float32 runs the baseline, AVX2 or AVX-512 copy of the SGD/Adam loops (csrc/optim_isa.h);
    # built without FMA contraction they must agree bit for bit, NaN and Inf included.
    shapes = [(1003,), (17, 3), (LARGE,)]
    grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads[0][:3] = [np.nan, np.inf, -np.inf]
    results = []
    for cap in ("baseline", "avx2", "avx512"):
        pyminidl.config.set_cpu_capability(cap)
        states = [_state(np.random.default_rng(7), s, "adam", ("m", "v", "vhat")) for s in shapes]
        sgd = [_state(np.random.default_rng(8), s, "sgd", ("velocity",)) for s in shapes]
        for step in (1, 2):
            cpu.adam_update_multi([s["param"] for s in states], grads, [s["m"] for s in states],
                                  [s["v"] for s in states], [s["vhat"] for s in states], 1e-2, step,
                                  amsgrad=amsgrad, weight_decay=0.004)
            cpu.sgd_update_multi([s["param"] for s in sgd], grads, [s["velocity"] for s in sgd], 0.05,
                                 momentum=0.9, nesterov=amsgrad, weight_decay=0.01)
        results.append([a for s in states + sgd for a in s.values() if a is not None])
    for other in results[1:]:
        for a, b in zip(other, results[0]):
            np.testing.assert_array_equal(a, b)


TINY = np.finfo(np.float32).tiny  # float32's smallest normal


def _subnormal(a):
    return (a != 0) & (np.abs(a) < TINY)


@pytest.mark.parametrize("shape", [(7,), (LARGE,)], ids=str)
@pytest.mark.parametrize("name,hyper,needed", CONFIGS, ids=IDS)
def test_slots_of_a_zero_gradient_never_go_subnormal(cpu, rng, name, hyper, needed, shape):
    # A dead unit's gradient is 0: its slots decay geometrically. NumPy's reach the subnormal
    # range (and stay there); the kernels flush subnormals, so theirs stay normal or 0, within
    # 1.2e-35 of the reference's, and subnormal slots handed in are drained.
    state = _state(rng, shape, name, needed)
    for key in SLOTS[name]:
        if state[key] is not None:
            state[key] *= np.float32(1e-35)  # some steps above the subnormal range
            if key != "vhat":  # a running max: it never decays, so it is never subnormal
                state[key][::3] = np.float32(3e-44)  # some already subnormal
    ref = _copy(state, np.float32)
    grad = np.zeros(shape, np.float32)
    for step in range(1, 61):
        _apply(cpu, name, state, grad, hyper, step)
        _apply(Backend(), name, ref, grad, hyper, step)
    reference_went_subnormal = False
    for key in SLOTS[name]:
        if state[key] is not None:
            assert not _subnormal(state[key]).any(), key
            reference_went_subnormal |= bool(_subnormal(ref[key][1::3]).any())  # decayed into it
            np.testing.assert_allclose(state[key], ref[key], rtol=1e-5, atol=1.2e-35)
    np.testing.assert_allclose(state["param"], ref["param"], rtol=1e-5, atol=1e-30)
    assert reference_went_subnormal or not needed or name == "adagrad"  # adagrad's only grows


def test_the_flush_ends_with_the_update(cpu, rng):
    # The thread's floating-point mode comes back: NumPy after an update keeps IEEE subnormals,
    # on the calling thread whether the update ran on it alone or in a parallel region.
    for n in (7, LARGE):
        state = _state(rng, (n,), "adam", ("m", "v"))
        _apply(cpu, "adam", state, rng.standard_normal(n).astype(np.float32), dict(lr=1e-3), 1)
        assert np.float32(2 * TINY) * np.float32(0.25) == np.float32(0.5 * TINY)
        assert np.nextafter(np.float32(0), np.float32(1)) * np.float32(2) > 0
