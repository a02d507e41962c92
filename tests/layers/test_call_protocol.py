"""Keras 3's call protocol: unknown arguments are a TypeError, training/mask reach only layers that take them."""

import numpy as np
import pytest

from pyminidl import ops
from pyminidl.layers import Dense, Layer


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="bogus_kwarg"):
        Dense(3)(np.ones((2, 4), "float32"), bogus_kwarg=123)


def test_extra_positional_is_a_type_error():
    with pytest.raises(TypeError, match="positional"):
        Dense(3)(np.ones((2, 4), "float32"), 5)


def test_inputs_keyword_and_missing_input():
    assert Dense(3)(inputs=np.ones((2, 4), "float32")).shape == (2, 3)
    with pytest.raises(TypeError, match="without an input"):
        Dense(3)()


class _Scaled(Layer):
    def call(self, x, scale=1.0, mask=None):
        self.seen_mask = mask
        return ops.multiply(x, scale)


def test_call_keywords_reach_call_and_mask_only_when_accepted():
    layer = _Scaled()
    x = np.ones((2, 3), "float32")
    np.testing.assert_array_equal(layer(x, scale=3.0, mask="m", training=True), 3.0)
    assert layer.seen_mask == "m"  # accepted: passed on
    np.testing.assert_array_equal(layer(x, 2.0), 2.0)  # positional extras reach call() too
    Dense(2)(x, mask=np.ones(2, bool))  # Dense takes no mask: dropped, as Keras does
    with pytest.raises(TypeError, match="nope"):
        layer(x, nope=1)


def test_call_keywords_are_differentiated_through_the_tape():
    layer = _Scaled()
    x = np.ones((2, 3), "float32")
    with ops.GradientTape() as tape:
        tape.watch(x)
        y = ops.sum(layer(x, scale=4.0))
    np.testing.assert_array_equal(tape.gradient(y, x), 4.0)
