"""Finite-difference checks (float64, numpy reference, random dy) of the depthwise convolution op."""

import numpy as np
import pytest

from pyminidl.backend.base import Backend
from pyminidl.testing import gradcheck

REF = Backend()

# (x shape, kernel shape (..., C, M), strides, padding, dilation)
CASES = [
    ((2, 5, 4, 2), (3, 2, 2, 3), (2, 1), "same", (1, 1)),
    ((1, 6, 5, 3), (2, 3, 3, 1), (1, 1), "valid", (2, 1)),
    ((1, 4, 4, 2), (5, 5, 2, 2), (1, 1), "same", (1, 1)),  # the kernel wider than the image
    ((2, 7, 3), (3, 3, 2), 1, "causal", 2),
    ((1, 6, 2), (2, 2, 1), 3, "same", 1),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_depthwise_backward_matches_numeric(rng, case):
    x_shape, w_shape, s, pad, d = case
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[-2] * w_shape[-1])
    f = REF.depthwise_conv_forward
    dy = rng.standard_normal(f(x, w, b, s, pad, d).shape)
    dx, dw, db = REF.depthwise_conv_backward(dy, x, w, s, pad, d)
    gradcheck(lambda x_: float((f(x_, w, b, s, pad, d) * dy).sum()), x, dx)
    gradcheck(lambda w_: float((f(x, w_, b, s, pad, d) * dy).sum()), w, dw)
    gradcheck(lambda b_: float((f(x, w, b_, s, pad, d) * dy).sum()), b, db)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_depthwise_is_the_grouped_convolution(rng, case):
    # The same operator as conv_forward with groups = C and the kernel (..., 1, C * M).
    x_shape, w_shape, s, pad, d = case
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    grouped = w.reshape(w_shape[:-2] + (1, w_shape[-2] * w_shape[-1]))
    y = REF.depthwise_conv_forward(x, w, None, s, pad, d)
    np.testing.assert_allclose(y, REF.conv_forward(x, grouped, None, s, pad, d, x_shape[-1]), rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = REF.depthwise_conv_backward(dy, x, w, s, pad, d, has_bias=False)
    dx2, dw2, _ = REF.conv_backward(dy, x, grouped, s, pad, d, x_shape[-1])
    assert db is None
    np.testing.assert_allclose(dx, dx2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, dw2.reshape(w_shape), rtol=1e-12, atol=1e-12)
