"""Finite differences vs the REFERENCE dense_activation_backward (the in-place dL/dz of the fused
Dense backward), float64, random dy, z kept away from relu's kink."""

import numpy as np
import pytest

from pyminidl.backend.base import Backend
from pyminidl.testing import gradcheck


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (5, 2)])
def test_dense_activation_backward_matches_finite_differences(rng, name, shape):
    be = Backend()
    z = rng.uniform(-3.0, 3.0, shape)
    z[np.abs(z) < 0.05] = 0.5
    dy = rng.standard_normal(shape)

    def loss(z_):
        return float((be.activation_forward(name, z_) * dy).sum())

    dz = dy.copy()
    got = be.dense_activation_backward(name, dz, z.copy(), be.activation_forward(name, z))
    assert got is dz
    gradcheck(loss, z, got, eps=1e-6, rtol=1e-6, atol=1e-8)
