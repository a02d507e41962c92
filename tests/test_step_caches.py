"""What the training step reuses between steps goes stale exactly when it should.

``Optimizer.apply`` keeps its grouping of the variables (arrays, keys, slots, weight-decay
groups) while the same variables come back; ``train_on_batch`` skips converting and checking
arrays that are already backend arrays of ``floatx``, and the step reads the layers' penalties only
when a layer holds one. Each test changes one thing the cache depends on between two steps and
checks the second step against the formula.
"""

import numpy as np
import pytest

import pyminidl
from pyminidl import layers, optimizers


def _sgd_step(p, g, lr, decay=0.0):
    return p - lr * decay * p - lr * g


# ---------------------------------------------------------------------------- optimizer plan


def test_exclusion_after_a_step_takes_effect_at_the_next():
    p, q = np.ones(3), np.ones(3)
    g = np.full(3, 0.5)
    opt = optimizers.SGD(0.1, weight_decay=0.5)
    opt.apply([g, g], [p, q])
    np.testing.assert_allclose(q, _sgd_step(np.ones(3), g, 0.1, 0.5))
    opt.exclude_from_weight_decay(var_list=[q])
    before_p, before_q = p.copy(), q.copy()
    opt.apply([g, g], [p, q])
    np.testing.assert_allclose(p, _sgd_step(before_p, g, 0.1, 0.5))
    np.testing.assert_allclose(q, _sgd_step(before_q, g, 0.1))  # no decay any more


def test_weight_decay_set_after_a_step_takes_effect_at_the_next():
    p = np.ones(4)
    g = np.full(4, 0.25)
    opt = optimizers.SGD(0.1)
    opt.apply([g], [p])
    opt.weight_decay = 0.5
    before = p.copy()
    opt.apply([g], [p])
    np.testing.assert_allclose(p, _sgd_step(before, g, 0.1, 0.5))


def test_other_variables_of_the_same_shapes_are_the_ones_updated():
    opt = optimizers.SGD(0.1)
    first = [np.ones(2), np.ones(3)]
    second = [np.zeros(2), np.zeros(3)]
    grads = [np.ones(2), np.ones(3)]
    opt.apply(grads, first)
    opt.apply(grads, second)
    np.testing.assert_allclose(first[0], 0.9)  # one step only
    np.testing.assert_allclose(second[1], -0.1)


def test_none_cast_and_misshapen_gradients_after_a_reused_plan():
    p = np.ones(3, np.float32)
    q = np.ones(2, np.float32)
    opt = optimizers.Adam(0.1)
    opt.apply([np.ones(3, np.float32), np.ones(2, np.float32)], [p, q])
    opt.apply([np.ones(3, np.float32), np.ones(2, np.float32)], [p, q])
    q_before = q.copy()
    opt.apply([np.ones(3, np.float32), None], [p, q])  # None: q skipped this step
    np.testing.assert_array_equal(q, q_before)
    p_before = p.copy()
    opt.apply([np.ones(3, np.float64), np.ones(2, np.float32)], [p, q])  # a float64 gradient is cast
    assert p.dtype == np.float32 and np.all(p < p_before)
    with pytest.raises(ValueError, match=r"Gradient shape \(4,\) does not match variable shape \(3,\)"):
        opt.apply([np.ones(4, np.float32), np.ones(2, np.float32)], [p, q])


def test_slots_of_a_none_gradient_are_created_only_when_it_has_one():
    a, b = np.zeros(2), np.zeros(3)
    opt = optimizers.Adam()
    opt.apply([np.ones(2), None], [a, b])
    opt.apply([np.ones(2), None], [a, b])
    assert len(opt.variables) == 2  # m and v of `a` only
    opt.apply([np.ones(2), np.ones(3)], [a, b])
    assert len(opt.variables) == 4
    assert np.all(b != 0)


# ---------------------------------------------------------------------------- train_on_batch


def _tiny(lr=0.1, **dense):
    pyminidl.utils.set_random_seed(0)
    model = pyminidl.Sequential([layers.Dense(2, input_dim=3, **dense)])
    model.compile(optimizer=optimizers.SGD(lr), loss="mse")
    return model


def _mse_sgd(kernel, bias, x, y, lr):
    """One SGD step of Dense + MSE by hand (float64)."""
    dpred = 2.0 * (x @ kernel + bias - y) / y.size
    return kernel - lr * x.T @ dpred, bias - lr * dpred.sum(0)


def test_set_weights_between_steps_is_what_the_next_step_starts_from(rng):
    model = _tiny()
    x, y = rng.normal(size=(4, 3)).astype("float32"), rng.normal(size=(4, 2)).astype("float32")
    model.train_on_batch(x, y)
    kernel, bias = rng.normal(size=(3, 2)), rng.normal(size=2)
    model.set_weights([kernel, bias])
    model.train_on_batch(x, y)
    want_k, want_b = _mse_sgd(kernel, bias, x.astype(float), y.astype(float), 0.1)
    np.testing.assert_allclose(model.get_weights()[0], want_k, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.get_weights()[1], want_b, rtol=1e-5, atol=1e-6)


def test_trainable_change_and_recompile_between_steps(rng):
    model = _tiny()
    x, y = rng.normal(size=(4, 3)).astype("float32"), rng.normal(size=(4, 2)).astype("float32")
    model.train_on_batch(x, y)
    model.layers[0].trainable = False
    model.compile(optimizer=model.optimizer, loss="mse")  # Keras: trainable takes effect at compile
    frozen = model.get_weights()
    model.train_on_batch(x, y)
    for a, b in zip(frozen, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.layers[0].trainable = True
    model.compile(optimizer=model.optimizer, loss="mse")
    model.train_on_batch(x, y)
    assert not np.array_equal(frozen[0], model.get_weights()[0])


def test_a_new_optimizer_at_recompile_is_the_one_stepping(rng):
    model = _tiny()
    x, y = rng.normal(size=(4, 3)).astype("float32"), rng.normal(size=(4, 2)).astype("float32")
    model.train_on_batch(x, y)
    model.compile(optimizer=optimizers.SGD(0.0), loss="mse")
    before = model.get_weights()
    model.train_on_batch(x, y)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.compile(optimizer=optimizers.SGD(0.5), loss="mse")
    kernel, bias = (w.astype(float) for w in model.get_weights())
    model.train_on_batch(x, y)
    want_k, _ = _mse_sgd(kernel, bias, x.astype(float), y.astype(float), 0.5)
    np.testing.assert_allclose(model.get_weights()[0], want_k, rtol=1e-5, atol=1e-6)


def test_new_batch_sizes_dtypes_and_containers_between_steps(rng):
    model = _tiny()
    x, y = rng.normal(size=(4, 3)).astype("float32"), rng.normal(size=(4, 2)).astype("float32")
    model.train_on_batch(x, y)
    for xb, yb in ((x[:1], y[:1]), (x.astype("float64"), y.astype("float64")), (x.tolist(), y.tolist()),
                   (x.astype("int32"), y)):
        kernel, bias = (w.astype(float) for w in model.get_weights())
        loss = model.train_on_batch(xb, yb)
        xf, yf = np.asarray(xb, dtype=float), np.asarray(yb, dtype=float)
        assert loss == pytest.approx(float(np.mean((xf @ kernel + bias - yf) ** 2)), rel=1e-5)
        want_k, _ = _mse_sgd(kernel, bias, xf, yf, 0.1)
        np.testing.assert_allclose(model.get_weights()[0], want_k, rtol=1e-5, atol=1e-6)
        assert model.get_weights()[0].dtype == np.float32


def test_ready_arrays_are_still_checked(rng):
    model = _tiny()
    x, y = rng.normal(size=(4, 3)).astype("float32"), rng.normal(size=(4, 2)).astype("float32")
    model.train_on_batch(x, y)
    with pytest.raises(ValueError, match="Data cardinality is ambiguous: x sizes: 4, y sizes: 3"):
        model.train_on_batch(x, y[:3])
    with pytest.raises(ValueError, match=r'Input 0 of layer "dense(_\d+)?" is incompatible with the layer: expected axis -1 '
                       r"of input shape to have value 3, but received input with shape \(4, 2\)"):
        model.train_on_batch(x[:, :2], y)
    with pytest.raises(ValueError, match="expected min_ndim=2, found ndim=1. Full shape received: \\(4,\\)"):
        model.train_on_batch(x[:, 0], y)


def test_penalties_reach_the_loss_only_while_a_layer_holds_one(rng):
    model = _tiny(kernel_regularizer=pyminidl.regularizers.L2(0.5))
    x, y = rng.normal(size=(4, 3)).astype("float32"), rng.normal(size=(4, 2)).astype("float32")
    model.train_on_batch(x, y)
    kernel, bias = (w.astype(float) for w in model.get_weights())
    loss = model.train_on_batch(x, y)
    mse = float(np.mean((x @ kernel + bias - y) ** 2))
    assert loss == pytest.approx(mse + 0.5 * float(np.sum(kernel ** 2)), rel=1e-5)

    class SometimesPenalised(layers.Layer):
        """Adds a penalty of 3 on every other call."""

        calls = 0

        def call(self, x):
            type(self).calls += 1
            if type(self).calls % 2:
                self.add_loss(3.0)
            return x

    pyminidl.utils.set_random_seed(0)
    model = pyminidl.Sequential([layers.Dense(2, input_dim=3), SometimesPenalised()])
    model.compile(optimizer=optimizers.SGD(0.0), loss="mse")
    losses = [model.train_on_batch(x, y) for _ in range(3)]
    assert abs(losses[0] - losses[1]) == pytest.approx(3.0, rel=1e-5)  # penalised every other step
    assert losses[2] == pytest.approx(losses[0], rel=1e-5)
