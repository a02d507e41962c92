"""Finite differences vs the REFERENCE backward of the fused softmax cross-entropy (float64,
random dloss): dense soft labels (not summing to 1), sparse classes, label smoothing."""

import numpy as np
import pytest

from pyminidl.backend.base import Backend
from pyminidl.testing import gradcheck


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("n,c", [(1, 1), (1, 4), (5, 3), (6, 9)])
def test_softmax_cross_entropy_backward_matches_finite_differences(rng, sparse, label_smoothing, n, c):
    be = Backend()
    logits = 2.0 * rng.standard_normal((n, c))
    if sparse:
        labels = rng.integers(0, c, n)
    else:  # soft targets whose rows do not sum to 1: the gradient is probs * sum(t) - t
        labels = rng.random((n, c))
    dloss = rng.standard_normal(n)

    def loss(z):
        return float((be.softmax_cross_entropy_forward(z, labels, sparse, label_smoothing)[0] * dloss).sum())

    _, probs = be.softmax_cross_entropy_forward(logits, labels, sparse, label_smoothing)
    dlogits = be.softmax_cross_entropy_backward(dloss, probs, labels, sparse, label_smoothing)
    gradcheck(loss, logits, dlogits, eps=1e-6, rtol=1e-6, atol=1e-8)


def test_loss_is_keras_categorical_crossentropy_from_logits(rng):
    # -sum(t * log_softmax(z)) with Keras's smoothing t * (1 - ls) + ls / C, written out.
    be = Backend()
    z, t = rng.standard_normal((4, 5)), np.eye(5)[[0, 3, 1, 4]]
    ls = 0.2
    target = t * (1 - ls) + ls / 5
    expected = -(target * (z - np.log(np.exp(z).sum(axis=1, keepdims=True)))).sum(axis=1)
    loss, probs = be.softmax_cross_entropy_forward(z, t, label_smoothing=ls)
    np.testing.assert_allclose(loss, expected, rtol=1e-12)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    sparse_loss, _ = be.softmax_cross_entropy_forward(z, np.array([0, 3, 1, 4]), sparse=True, label_smoothing=ls)
    np.testing.assert_allclose(sparse_loss, expected, rtol=1e-12)
