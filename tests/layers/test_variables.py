"""Weights are Variables: one array per weight, a stable path, assignment copies in, optimizer slots by path."""

import numpy as np
import pytest

from pyminidl import optimizers
from pyminidl.layers import Dense
from pyminidl.models import Sequential


def _model():
    model = Sequential([Dense(3, input_dim=4, name="hidden"), Dense(1, name="out")])
    model.compile(optimizer=optimizers.SGD(0.1), loss="mse")
    return model


def test_paths_are_layer_name_slash_weight_name():
    layer = Dense(2, name="dense_p")
    layer.build((None, 3))
    assert [v.path for v in layer._tracked_variables()] == ["dense_p/kernel", "dense_p/bias"]
    assert layer.weight_names == ["dense_p/kernel", "dense_p/bias"]


def test_assigning_kernel_copies_into_the_trained_array(rng):
    model = _model()
    layer = model.layers[0]
    tracked = layer.weights[0]
    layer.kernel = np.zeros((4, 3), "float32")
    assert layer.kernel is tracked and not tracked.any()  # the orphaned-array bug: kernel is the tracked one
    x, y = rng.standard_normal((16, 4)).astype("float32"), rng.standard_normal((16, 1)).astype("float32")
    model.train_on_batch(x, y)
    assert layer.kernel is layer.weights[0]
    assert np.abs(layer.kernel).sum() > 0  # training updated what forward reads


def test_assigning_a_wrong_shape_names_the_path():
    layer = Dense(2, name="dense_shape")
    layer.build((None, 3))
    with pytest.raises(ValueError, match="dense_shape/kernel"):
        layer.kernel = np.zeros((2, 2), "float32")


def test_optimizer_slots_are_keyed_by_path(rng):
    model = _model()
    model.compile(optimizer="adam", loss="mse")
    model.train_on_batch(rng.standard_normal((8, 4)).astype("float32"), np.zeros((8, 1), "float32"))
    state = model.optimizer.slot_state()
    assert sorted(state) == ["hidden/bias", "hidden/kernel", "out/bias", "out/kernel"]
    assert [s.shape for s in state["hidden/kernel"]] == [(4, 3), (4, 3)]  # m, v


def test_exclude_from_weight_decay_by_name(rng):
    model = _model()
    opt = optimizers.SGD(learning_rate=0.5, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_names=["bias"])
    model.compile(optimizer=opt, loss="mse")
    bias = model.layers[0].bias
    bias[...] = 1.0
    x = rng.standard_normal((8, 4)).astype("float32")
    # zero gradient for the hidden bias: the output layer's kernel is zero
    model.layers[1].kernel = np.zeros((3, 1), "float32")
    model.train_on_batch(x, np.zeros((8, 1), "float32"))
    np.testing.assert_array_equal(bias, 1.0)  # no decay applied
    kernel_before = model.layers[0].kernel.copy()
    model.train_on_batch(x, np.zeros((8, 1), "float32"))
    assert np.abs(model.layers[0].kernel).sum() < np.abs(kernel_before).sum()  # the kernel still decays


def test_exclude_from_weight_decay_by_variable():
    opt = optimizers.SGD(learning_rate=1.0, weight_decay=0.5)
    keep, decay = np.ones(3, "float32"), np.ones(3, "float32")
    opt.exclude_from_weight_decay(var_list=[keep])
    opt.apply([np.zeros(3, "float32")] * 2, [keep, decay])
    np.testing.assert_array_equal(keep, 1.0)
    np.testing.assert_allclose(decay, 0.5)


def test_one_optimizer_on_two_variables_with_one_path_is_refused():
    a, b = Dense(2, name="same"), Dense(2, name="same")
    a.build((None, 3))
    b.build((None, 5))
    opt = optimizers.Adam()
    opt.apply([np.zeros((3, 2), "float32")], a._tracked_variables()[:1])
    with pytest.raises(ValueError, match="same/kernel"):
        opt.apply([np.zeros((5, 2), "float32")], b._tracked_variables()[:1])
