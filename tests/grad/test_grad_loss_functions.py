"""Finite differences (float64) vs each loss's backward, seeded with a random upstream gradient."""

import numpy as np
import pytest

from pyminidl import losses
from pyminidl.backend import use_backend
from pyminidl.testing import numeric_grad


def _targets(kind, rng, shape):
    if kind == "binary":
        return (rng.uniform(size=shape) > 0.5).astype(np.float64)
    if kind == "onehot":
        return np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
    if kind == "sparse":
        return rng.integers(0, shape[-1], shape[:-1])
    if kind == "sparse_ignore":
        y = rng.integers(0, shape[-1], shape[:-1])
        y[0] = 2
        return y
    if kind == "pos":
        return rng.uniform(0.1, 2.0, shape)
    return rng.normal(size=shape)


def _preds(kind, rng, shape):
    if kind == "prob":
        return rng.uniform(0.05, 0.95, shape)
    if kind == "pos":
        return rng.uniform(0.1, 2.0, shape)
    return rng.normal(size=shape) * 1.5


CASES = [
    ("mse", {}, "real", "real"),
    ("mae", {}, "real", "real"),
    ("mape", {}, "pos", "pos"),
    ("msle", {}, "pos", "pos"),
    ("huber", {"delta": 0.7}, "real", "real"),
    ("log_cosh", {}, "real", "real"),
    ("hinge", {}, "binary", "real"),
    ("squared_hinge", {}, "binary", "real"),
    ("categorical_hinge", {}, "onehot", "real"),
    ("kl_divergence", {}, "prob_t", "prob"),
    ("poisson", {}, "pos", "pos"),
    ("cosine_similarity", {}, "real", "real"),
    ("binary_crossentropy", {}, "binary", "prob"),
    ("binary_crossentropy", {"from_logits": True, "label_smoothing": 0.1}, "binary", "real"),
    ("categorical_crossentropy", {}, "onehot", "prob"),
    ("categorical_crossentropy", {"label_smoothing": 0.2}, "onehot", "prob"),
    ("categorical_crossentropy", {"from_logits": True}, "onehot", "real"),
    ("categorical_crossentropy", {"from_logits": True, "axis": 1}, "onehot_axis1", "real"),
    ("sparse_categorical_crossentropy", {}, "sparse", "prob"),
    ("sparse_categorical_crossentropy", {"from_logits": True}, "sparse", "real"),
    ("sparse_categorical_crossentropy", {"from_logits": True, "ignore_class": 2}, "sparse_ignore", "real"),
]


@pytest.mark.parametrize("name,kwargs,t_kind,p_kind", CASES,
                         ids=[f"{c[0]}-{'-'.join(map(str, c[1].values())) or 'default'}" for c in CASES])
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "none"])
def test_loss_backward_matches_finite_differences(name, kwargs, t_kind, p_kind, reduction, rng):
    shape = (5, 4)
    with use_backend("numpy"):
        loss = losses.get({"class_name": type(losses.get(name)).__name__,
                           "config": {**kwargs, "reduction": reduction}})
        if t_kind == "prob_t":
            y_true = rng.uniform(0.05, 0.95, shape)
        elif t_kind == "onehot_axis1":
            y_true = np.eye(shape[0])[rng.integers(0, shape[0], shape[1])].T.copy()
        else:
            y_true = _targets(t_kind, rng, shape)
        y_pred = _preds(p_kind, rng, shape)
        w = rng.uniform(0.2, 1.5, shape[0])
        value, backward = loss.forward(y_true, y_pred, sample_weight=w)
        dvalue = rng.normal(size=np.shape(value)) if reduction == "none" else rng.normal()

        def f(p):
            return float(np.sum(loss(y_true, p, sample_weight=w) * dvalue))

        grad = backward(dvalue)
        assert grad.shape == y_pred.shape
        np.testing.assert_allclose(grad, numeric_grad(f, y_pred.copy(), eps=1e-6), rtol=1e-5, atol=1e-7)


def test_forward_from_logits_backward_matches_finite_differences(rng):
    with use_backend("numpy"):
        z = rng.normal(size=(6, 5))
        y = rng.integers(0, 5, 6)
        loss = losses.SparseCategoricalCrossentropy()
        dvalue = rng.normal()
        _, backward = loss.forward_from_logits(y, z)
        f = lambda z_: loss.forward_from_logits(y, z_)[0] * dvalue  # noqa: E731
        np.testing.assert_allclose(backward(dvalue), numeric_grad(f, z.copy()), rtol=1e-5, atol=1e-8)


def test_rank1_inputs_reduce_to_a_scalar_and_weights_broadcast_like_keras(rng):
    # Keras: bce over (N,) is a scalar mean; sample_weight (N,) then scales it by mean(sample_weight)
    with use_backend("numpy"):
        t = (rng.uniform(size=6) > 0.5).astype(float)
        p = rng.uniform(0.05, 0.95, 6)
        w = rng.uniform(0.2, 2.0, 6)
        loss = losses.BinaryCrossentropy()
        value, backward = loss.forward(t, p, sample_weight=w)
        assert isinstance(value, float)
        ref = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p)) * w.mean()
        np.testing.assert_allclose(value, ref, rtol=1e-12)
        dvalue = rng.normal()
        f = lambda p_: loss(t, p_, sample_weight=w) * dvalue  # noqa: E731
        np.testing.assert_allclose(backward(dvalue), numeric_grad(f, p.copy()), rtol=1e-5, atol=1e-8)
