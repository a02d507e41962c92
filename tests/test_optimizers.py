"""Optimizers vs hand-written NumPy versions of Keras 3's update rules."""

import math

import numpy as np
import pytest

import pyminidl
from pyminidl import optimizers
from pyminidl.testing import assert_close


def _run(opt, steps, rng, shape=(3, 4)):
    """Apply ``steps`` random gradients to a float64 parameter; return (param history, grads)."""
    p = rng.normal(size=shape)
    p0 = p.copy()
    grads = [rng.normal(size=shape) for _ in range(steps)]
    for g in grads:
        opt.apply([g], [p])
    return p0, p, grads


def test_one_sgd_step_lr1_is_param_minus_gradient(rng):
    p = rng.normal(size=(5,)).astype(np.float32)
    g = rng.normal(size=(5,)).astype(np.float32)
    expect = p - g
    opt = optimizers.SGD(learning_rate=1.0)
    opt.apply([g], [p])
    assert_close(p, expect)
    assert opt.iterations == 1


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.8, True)])
def test_sgd_matches_formula(momentum, nesterov, rng):
    lr = 0.1
    p0, p, grads = _run(optimizers.SGD(lr, momentum=momentum, nesterov=nesterov), 4, rng)
    w, v = p0.copy(), np.zeros_like(p0)
    for g in grads:
        v = momentum * v - lr * g
        w = w + (momentum * v - lr * g if nesterov else v) if momentum else w - lr * g
    assert_close(p, w)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_matches_formula(amsgrad, rng):
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7
    p0, p, grads = _run(optimizers.Adam(lr, amsgrad=amsgrad), 5, rng)
    w, m, v, vhat = p0.copy(), 0 * p0, 0 * p0, 0 * p0
    for t, g in enumerate(grads, start=1):
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        vhat = np.maximum(vhat, v)
        w = w - alpha * m / (np.sqrt(vhat if amsgrad else v) + eps)
    assert_close(p, w)


def test_adamw_decays_before_the_adam_step(rng):
    lr, wd = 0.01, 0.05
    p0, p, grads = _run(optimizers.AdamW(lr, weight_decay=wd), 3, rng)
    w, m, v = p0.copy(), 0 * p0, 0 * p0
    for t, g in enumerate(grads, start=1):
        w = w - w * wd * lr
        m = m + (g - m) * 0.1
        v = v + (g * g - v) * 0.001
        w = w - lr * math.sqrt(1 - 0.999**t) / (1 - 0.9**t) * m / (np.sqrt(v) + 1e-7)
    assert_close(p, w)
    assert optimizers.AdamW().weight_decay == 0.004


@pytest.mark.parametrize("momentum,centered", [(0.0, False), (0.5, False), (0.0, True), (0.3, True)])
def test_rmsprop_matches_formula(momentum, centered, rng):
    lr, rho, eps = 0.01, 0.9, 1e-7
    p0, p, grads = _run(optimizers.RMSprop(lr, momentum=momentum, centered=centered), 4, rng)
    w, vel, mom, avg = p0.copy(), 0 * p0, 0 * p0, 0 * p0
    for g in grads:
        vel = rho * vel + (1 - rho) * g * g
        avg = rho * avg + (1 - rho) * g
        denom = vel - avg * avg + eps if centered else vel + eps
        inc = lr * g / np.sqrt(denom)
        mom = momentum * mom + inc
        w = w - (mom if momentum else inc)
    assert_close(p, w)


def test_adagrad_matches_formula(rng):
    lr = 0.1
    p0, p, grads = _run(optimizers.Adagrad(lr), 4, rng)
    w, acc = p0.copy(), np.full_like(p0, 0.1)
    for g in grads:
        acc = acc + g * g
        w = w - lr * g / np.sqrt(acc + 1e-7)
    assert_close(p, w)


def test_clipnorm_clipvalue_global_clipnorm(rng):
    g1, g2 = rng.normal(size=(3,)) * 10, rng.normal(size=(2,)) * 10
    for kwargs, expect in [
        ({"clipnorm": 1.0}, [g1 / np.linalg.norm(g1), g2 / np.linalg.norm(g2)]),
        ({"clipvalue": 0.5}, [np.clip(g1, -0.5, 0.5), np.clip(g2, -0.5, 0.5)]),
        ({"global_clipnorm": 2.0}, [g * 2.0 / np.sqrt((g1**2).sum() + (g2**2).sum()) for g in (g1, g2)]),
    ]:
        p1, p2 = np.zeros(3), np.zeros(2)
        optimizers.SGD(1.0, **kwargs).apply([g1, g2], [p1, p2])
        assert_close(p1, -expect[0])
        assert_close(p2, -expect[1])
    with pytest.raises(ValueError, match="Only one of"):
        optimizers.SGD(clipnorm=1.0, clipvalue=1.0)


def test_weight_decay_on_sgd_and_exclusion(rng):
    p, q = np.ones(3), np.ones(3)
    g = rng.normal(size=3)
    opt = optimizers.SGD(0.1, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_list=[q])
    opt.apply([g, g], [p, q])
    assert_close(p, 1 - 0.1 * 0.5 - 0.1 * g)
    assert_close(q, 1 - 0.1 * g)


def test_schedule_learning_rate_is_read_at_iterations(rng):
    sched = optimizers.schedules.PiecewiseConstantDecay([1], [1.0, 0.1])
    opt = optimizers.SGD(learning_rate=sched)
    p = np.zeros(2)
    for _ in range(3):
        opt.apply([np.ones(2)], [p])
    assert_close(p, np.full(2, -(1.0 + 1.0 + 0.1)))
    assert opt.learning_rate == pytest.approx(0.1)
    with pytest.raises(TypeError, match="not settable"):
        opt.learning_rate = 0.5


def test_learning_rate_settable_and_slots_keyed_by_variable(rng):
    opt = optimizers.Adam()
    opt.learning_rate = 0.5
    assert opt.learning_rate == 0.5
    a, b = np.zeros(2), np.zeros(3)
    opt.apply([np.ones(2), None], [a, b])
    assert len(opt.variables) == 2  # m and v of `a` only (None gradient skipped)
    assert np.all(b == 0)


def test_float32_params_stay_float32(rng):
    p = rng.normal(size=(4,)).astype(np.float32)
    optimizers.Adam().apply([rng.normal(size=(4,))], [p])
    assert p.dtype == np.float32


@pytest.mark.parametrize("name,cls", [("sgd", optimizers.SGD), ("SGD", optimizers.SGD), ("adam", optimizers.Adam),
                                      ("Adam", optimizers.Adam), ("ADAMW", optimizers.AdamW),
                                      ("rmsprop", optimizers.RMSprop), ("RMSprop", optimizers.RMSprop),
                                      ("adagrad", optimizers.Adagrad)])
def test_get_is_case_insensitive(name, cls):
    assert type(optimizers.get(name)) is cls


def test_get_unknown_lists_valid_names():
    with pytest.raises(ValueError, match="Valid names: 'SGD', 'Adam', 'AdamW', 'RMSprop', 'Adagrad'"):
        optimizers.get("adamax2")


def test_keras_defaults_and_config_round_trip():
    assert optimizers.SGD().learning_rate == 0.01
    adam = optimizers.Adam()
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon, adam.amsgrad) == (0.001, 0.9, 0.999, 1e-7, False)
    rms = optimizers.RMSprop()
    assert (rms.learning_rate, rms.rho, rms.momentum, rms.epsilon, rms.centered) == (0.001, 0.9, 0.0, 1e-7, False)
    ada = optimizers.Adagrad()
    assert (ada.learning_rate, ada.initial_accumulator_value, ada.epsilon) == (0.001, 0.1, 1e-7)
    opt = optimizers.RMSprop(learning_rate=optimizers.schedules.ExponentialDecay(0.1, 10, 0.5), momentum=0.2)
    again = optimizers.get(optimizers.serialize(opt))
    assert again.get_config() == opt.get_config()
    with pytest.raises(ValueError, match="momentum"):
        optimizers.SGD(momentum=1.5)


def test_apply_gradients_and_backends(backend, rng):
    p = rng.normal(size=(3,)).astype(np.float32)
    g = rng.normal(size=(3,)).astype(np.float32)
    expect = p - g
    with pyminidl.backend.use_backend(backend.name):
        pa, ga = backend.asarray(p.copy()), backend.asarray(g)
        opt = optimizers.SGD(1.0)
        opt.apply_gradients([(ga, pa)])
        assert_close(backend.to_numpy(pa), expect)


def test_schedules_import_path():
    from pyminidl.optimizers.schedules import CosineDecay  # noqa: F401  (as `keras.optimizers.schedules`)


def test_optimizers_is_a_real_package_with_a_schedules_submodule():
    # The submodule is found by the import system, not planted in sys.modules under another name
    import importlib.util

    from pyminidl.optimizers import schedules

    assert hasattr(optimizers, "__path__")
    assert schedules.__name__ == "pyminidl.optimizers.schedules"
    assert importlib.util.find_spec("pyminidl.optimizers.schedules").origin == schedules.__file__


@pytest.mark.parametrize("cls", ["ExponentialDecay", "InverseTimeDecay", "CosineDecay"])
@pytest.mark.parametrize("steps", [0, -3, None])
def test_decay_schedules_reject_non_positive_decay_steps(cls, steps):
    from pyminidl.optimizers import schedules

    kwargs = {} if cls == "CosineDecay" else {"decay_rate": 0.5}
    with pytest.raises(ValueError, match="decay_steps"):
        getattr(schedules, cls)(0.1, decay_steps=steps, **kwargs)


def test_one_multi_tensor_update_per_step_and_weight_decay_group(monkeypatch):
    from pyminidl.backend import get_backend

    be = get_backend()
    calls = []
    real = type(be).adam_update_multi

    def counting(self, params, *args, **kwargs):
        calls.append(len(params))
        return real(self, params, *args, **kwargs)

    monkeypatch.setattr(type(be), "adam_update_multi", counting)
    ps = [np.ones((3, 2), np.float32), np.ones(2, np.float32), np.ones(4, np.float32)]
    gs = [np.full_like(p, 0.5) for p in ps]
    opt = optimizers.Adam(0.1)
    opt.apply(gs, ps)
    assert calls == [3]
    calls.clear()
    decayed = optimizers.AdamW(0.1, weight_decay=0.1)
    decayed.exclude_from_weight_decay(var_list=[ps[1]])
    decayed.apply(gs, ps)
    assert sorted(calls) == [1, 2]


def test_a_subclass_rule_still_runs_per_variable():
    seen = []

    class Logged(optimizers.SGD):
        def _update(self, be, var, grad, lr, weight_decay, key):
            seen.append(var.shape)
            super()._update(be, var, grad, lr, weight_decay, key)

    ps = [np.ones(3, np.float32), np.ones((2, 2), np.float32)]
    Logged(0.1).apply([np.ones_like(p) for p in ps], ps)
    assert seen == [(3,), (2, 2)]
    np.testing.assert_allclose(ps[0], 0.9)
