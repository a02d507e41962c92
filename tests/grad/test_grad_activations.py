"""Finite differences vs the REFERENCE backward of every activation, softmax and log_softmax
(float64, random dy; inputs kept away from kinks where the derivative is not defined)."""

import numpy as np
import pytest

from pyminidl.backend.base import ACTIVATIONS, Backend
from pyminidl.testing import gradcheck

CASES = [(name, {}) for name in ACTIVATIONS] + [
    ("relu", {"negative_slope": 0.1, "max_value": 2.0, "threshold": 0.5}),
    ("relu", {"negative_slope": 0.3, "threshold": -1.0, "max_value": 2.5}),
    ("leaky_relu", {"negative_slope": 0.05}),
    ("elu", {"alpha": 0.5}),
    ("gelu", {"approximate": True}),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in p.items())}" if p else n for n, p in CASES]


def _away_from_kinks(rng, shape, params):
    """Uniform in (-4, 4), resampled until no entry lies within 0.05 of a kink."""
    kinks = [0.0, -3.0, 3.0, params.get("threshold", 0.0)]
    if params.get("max_value") is not None:
        kinks.append(params["max_value"])
    x = rng.uniform(-4.0, 4.0, shape)
    while True:
        near = np.min([np.abs(x - k) for k in kinks], axis=0) < 0.05
        if not near.any():
            return x
        x[near] = rng.uniform(-4.0, 4.0, near.sum())


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_activation_backward_matches_finite_differences(rng, name, params):
    be = Backend()
    x = _away_from_kinks(rng, (3, 7), params)
    dy = rng.standard_normal(x.shape)

    def loss(x_):
        return float((be.activation_forward(name, x_, **params) * dy).sum())

    y = be.activation_forward(name, x, **params)
    dx = be.activation_backward(name, dy, x.copy(), y, **params)
    gradcheck(loss, x, dx, eps=1e-6, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape,axis", [((4, 7), -1), ((1, 1), -1), ((5, 3), 0), ((2, 3, 4), 1)])
def test_softmax_backward_matches_finite_differences(rng, op, shape, axis):
    be = Backend()
    fwd, bwd = getattr(be, f"{op}_forward"), getattr(be, f"{op}_backward")
    x = 3.0 * rng.standard_normal(shape)
    dy = rng.standard_normal(shape)

    def loss(x_):
        return float((fwd(x_, axis=axis) * dy).sum())

    dx = bwd(dy, fwd(x, axis=axis), axis=axis)
    gradcheck(loss, x, dx, eps=1e-6, rtol=1e-6, atol=1e-8)
