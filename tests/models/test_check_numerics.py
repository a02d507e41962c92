"""NaN/Inf located at the first layer that makes it, on the way forward or back (pyminidl.debugging)."""

import numpy as np
import pytest

import pyminidl
from pyminidl import debugging, layers


class _Explode(pyminidl.Layer):
    """Identity forward; its backward turns one gradient entry into NaN."""

    def forward(self, x, training=False):
        def backward(dy):
            dx = dy.copy()
            dx[1, 2] = np.nan
            return dx

        return x, backward


def _model(*middle):
    model = pyminidl.Sequential([pyminidl.Input((4,)), layers.Dense(4, name="first"), *middle,
                                 layers.Dense(3, name="last")])
    model.compile(optimizer="sgd", loss="mse")
    return model


def _data():
    rng = np.random.default_rng(0)
    return rng.random((16, 4), dtype=np.float32), rng.random((16, 3), dtype=np.float32)


def test_forward_nan_names_the_layer_batch_and_position():
    x, y = _data()
    model = _model(layers.Lambda(lambda t: t * float("nan"), name="not_a_number"))
    with pytest.raises(debugging.NonFiniteError,
                       match=r"'not_a_number' \(Lambda\), forward pass, epoch 0, batch 0: the output .* first at "
                             r"index \(0, 0\)"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, check_numerics=True)
    assert not debugging.STATE.enabled  # fit's argument does not leave checking on


def test_backward_nan_names_the_layer_and_the_gradient():
    x, y = _data()
    model = _model(_Explode(name="explode"))
    with debugging.check_numerics():
        with pytest.raises(debugging.NonFiniteError,
                           match=r"'explode' \(_Explode\), backward pass, epoch 0, batch 0: the gradient with "
                                 r"respect to its input of shape \(8, 4\) holds nan first at index \(1, 2\)"):
            model.fit(x, y, batch_size=8, epochs=1, verbose=0)


def test_inf_weight_gradient_is_named():
    x, y = _data()
    model = _model()
    model.build((None, 4))
    y = y.copy()
    y[3, 1] = np.inf  # the loss gradient is inf for one sample: the last Dense's kernel gradient first
    with pytest.raises(debugging.NonFiniteError, match=r"'last' \(Dense\), backward pass.*"):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, check_numerics=True)


def test_off_by_default_and_predict_is_checked_when_on():
    x, _ = _data()
    model = _model(layers.Lambda(lambda t: t + float("inf"), name="divide"))
    assert not debugging.STATE.enabled
    assert not np.isfinite(model.predict(x, verbose=0)).all()  # unchecked: no error
    debugging.enable_check_numerics()
    try:
        with pytest.raises(debugging.NonFiniteError, match=r"'divide' \(Lambda\), forward pass: the output"):
            model.predict(x, verbose=0)
    finally:
        debugging.disable_check_numerics()
