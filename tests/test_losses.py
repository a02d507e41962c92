"""Losses vs NumPy formulas of Keras 3, with sample weights and every reduction."""

import numpy as np
import pytest

import pyminidl
from pyminidl import losses
from pyminidl.testing import assert_close

EPS = 1e-7


def _np_bce(t, p):
    p = np.clip(p, EPS, 1 - EPS)
    return np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p)), axis=-1)


def _np_cce(t, p):
    p = np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS)
    return -np.sum(t * np.log(p), axis=-1)


def _np_log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _np_hinge_t(t):
    return 2 * t - 1 if np.all((t == 0) | (t == 1)) else t


def _l2n(x):
    return x / np.maximum(np.sqrt((x * x).sum(-1, keepdims=True)), EPS)


FORMULAS = {
    "mean_squared_error": lambda t, p: np.mean((t - p) ** 2, -1),
    "mean_absolute_error": lambda t, p: np.mean(np.abs(t - p), -1),
    "mean_absolute_percentage_error": lambda t, p: 100 * np.mean(np.abs((t - p) / np.maximum(np.abs(t), EPS)), -1),
    "mean_squared_logarithmic_error": lambda t, p: np.mean(
        (np.log(np.maximum(p, EPS) + 1) - np.log(np.maximum(t, EPS) + 1)) ** 2, -1),
    "huber": lambda t, p: np.mean(np.where(np.abs(p - t) <= 1, 0.5 * (p - t) ** 2, np.abs(p - t) - 0.5), -1),
    "log_cosh": lambda t, p: np.mean(np.log(np.cosh(p - t)), -1),
    "hinge": lambda t, p: np.mean(np.maximum(1 - _np_hinge_t(t) * p, 0), -1),
    "squared_hinge": lambda t, p: np.mean(np.maximum(1 - _np_hinge_t(t) * p, 0) ** 2, -1),
    "kl_divergence": lambda t, p: np.sum(np.clip(t, EPS, 1) * np.log(np.clip(t, EPS, 1) / np.clip(p, EPS, 1)), -1),
    "poisson": lambda t, p: np.mean(p - t * np.log(p + EPS), -1),
    "cosine_similarity": lambda t, p: -np.sum(_l2n(t) * _l2n(p), -1),
    "binary_crossentropy": _np_bce,
    "categorical_crossentropy": _np_cce,
    "categorical_hinge": lambda t, p: np.maximum(np.max((1 - t) * p, -1) - np.sum(t * p, -1) + 1, 0),
}


def _inputs(name, rng, shape=(6, 4)):
    t = rng.uniform(0.05, 1.0, shape)
    p = rng.uniform(0.05, 1.0, shape)
    if name in ("binary_crossentropy", "hinge", "squared_hinge"):
        t = (rng.uniform(size=shape) > 0.5).astype(float)
    if name in ("categorical_crossentropy", "categorical_hinge", "kl_divergence"):
        t = np.eye(shape[-1])[rng.integers(0, shape[-1], shape[0])]
    if name in ("mean_squared_error", "mean_absolute_error", "huber", "log_cosh", "cosine_similarity"):
        t, p = rng.normal(size=shape) * 2, rng.normal(size=shape) * 2
    return t, p


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_function_matches_numpy(name, rng):
    t, p = _inputs(name, rng)
    got = getattr(losses, name)(t, p)
    assert_close(got, FORMULAS[name](t, p), k=4)


@pytest.mark.parametrize("name", sorted(FORMULAS))
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none", "mean_with_sample_weight"])
def test_class_reductions_and_sample_weight(name, reduction, rng):
    t, p = _inputs(name, rng)
    w = rng.uniform(0.1, 2.0, t.shape[0])
    loss = losses.get(name)
    loss.reduction = reduction
    per_sample = FORMULAS[name](t, p)
    weighted = per_sample * w
    expect = {
        "sum_over_batch_size": weighted.sum() / weighted.size,
        "sum": weighted.sum(),
        "none": weighted,
        "mean_with_sample_weight": weighted.sum() / w.sum(),
    }[reduction]
    assert_close(np.asarray(loss(t, p, sample_weight=w)), np.asarray(expect), k=4)


def test_default_reduction_is_mean_over_all_elements(rng):
    t, p = rng.normal(size=(3, 5, 2)), rng.normal(size=(3, 5, 2))
    assert_close(np.asarray(losses.MeanSquaredError()(t, p)), np.asarray(np.mean((t - p) ** 2)))
    # per-timestep weights (batch, time)
    w = rng.uniform(size=(3, 5))
    expect = (np.mean((t - p) ** 2, -1) * w).sum() / 15
    assert_close(np.asarray(losses.MeanSquaredError()(t, p, sample_weight=w)), np.asarray(expect))


def test_rank_alignment_as_keras(rng):
    t, p = rng.normal(size=(5,)), rng.normal(size=(5, 1))
    assert_close(np.asarray(losses.mse(t, p)), (t - p[:, 0]) ** 2)
    assert_close(np.asarray(losses.MeanSquaredError()(t, p)), np.asarray(np.mean((t - p[:, 0]) ** 2)))


def test_huber_delta_and_label_smoothing(rng):
    t, p = rng.normal(size=(4, 3)), rng.normal(size=(4, 3)) * 3
    d = 1.7
    e = p - t
    ref = np.mean(np.where(np.abs(e) <= d, 0.5 * e * e, d * np.abs(e) - 0.5 * d * d), -1)
    assert_close(losses.huber(t, p, delta=d), ref)
    assert losses.Huber(delta=d).name == "huber_loss"
    tb = (rng.uniform(size=(4, 3)) > 0.5).astype(float)
    pb = rng.uniform(0.01, 0.99, (4, 3))
    assert_close(losses.binary_crossentropy(tb, pb, label_smoothing=0.2), _np_bce(tb * 0.8 + 0.1, pb))
    tc = np.eye(3)[[0, 2, 1, 1]]
    assert_close(losses.categorical_crossentropy(tc, pb, label_smoothing=0.3), _np_cce(tc * 0.7 + 0.1, pb))


def test_from_logits(rng):
    z = rng.normal(size=(5, 4)) * 3
    tc = np.eye(4)[[0, 3, 1, 2, 2]]
    assert_close(losses.categorical_crossentropy(tc, z, from_logits=True), -np.sum(tc * _np_log_softmax(z), -1))
    assert_close(losses.sparse_categorical_crossentropy([0, 3, 1, 2, 2], z, from_logits=True),
                 -np.sum(tc * _np_log_softmax(z), -1))
    tb = (rng.uniform(size=(5, 4)) > 0.5).astype(float)
    ref = np.mean(tb * np.logaddexp(0, -z) + (1 - tb) * np.logaddexp(0, z), -1)
    assert_close(losses.binary_crossentropy(tb, z, from_logits=True), ref)


def test_sparse_matches_categorical_and_accepts_column_labels(rng):
    p = rng.uniform(0.05, 1, (6, 5))
    y = rng.integers(0, 5, 6)
    ref = _np_cce(np.eye(5)[y], p)
    assert_close(losses.sparse_categorical_crossentropy(y, p), ref)
    assert_close(losses.sparse_categorical_crossentropy(y[:, None], p), ref)
    assert_close(losses.sparse_categorical_crossentropy(y.astype(np.float32), p), ref)


def test_sparse_ignore_class(rng):
    p = rng.uniform(0.05, 1, (6, 5))
    y = np.array([0, 4, 4, 1, 2, 4])
    per = _np_cce(np.eye(5)[np.where(y == 4, 0, y)], p) * (y != 4)
    value = losses.SparseCategoricalCrossentropy(ignore_class=4)(y, p)
    # Keras weights the valid entries by total / (valid + eps)
    assert_close(np.asarray(value), np.asarray(per.sum() * (6 / (3 + EPS)) / 6))


def test_forward_from_logits_matches_softmax_then_loss(rng):
    z = rng.normal(size=(7, 4))
    y = rng.integers(0, 4, 7)
    w = rng.uniform(size=7)
    probs = np.exp(_np_log_softmax(z))
    for loss, labels in ((losses.SparseCategoricalCrossentropy(), y),
                         (losses.CategoricalCrossentropy(), np.eye(4)[y])):
        value, backward = loss.forward_from_logits(labels, z, sample_weight=w)
        assert_close(np.asarray(value), np.asarray(loss(labels, probs, sample_weight=w)), k=4)
        target = np.eye(4)[y]
        assert_close(backward(), (probs - target) * w[:, None] / 7, k=4)


def test_float32_in_float32_out(rng):
    t = rng.normal(size=(4, 3)).astype(np.float32)
    p = rng.normal(size=(4, 3)).astype(np.float32)
    value, backward = losses.MeanSquaredError().forward(t, p)
    assert isinstance(value, float)
    assert backward().dtype == np.float32 and backward().shape == p.shape


@pytest.mark.parametrize("name", ["mse", "binary_crossentropy", "categorical_crossentropy", "huber", "kld"])
def test_bad_shapes_name_loss_and_shapes(name):
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(3, 5\)"):
        losses.get(name)(np.zeros((3, 2)), np.full((3, 5), 0.5))


def test_sparse_bad_shapes_and_labels():
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy.*\\(4,\\).*\\(3, 5\\)"):
        losses.sparse_categorical_crossentropy(np.zeros(4), np.full((3, 5), 0.2))
    with pytest.raises(ValueError, match="labels must lie in"):
        losses.sparse_categorical_crossentropy([0, 5, 1], np.full((3, 5), 0.2))


def test_categorical_single_class_warns_like_keras():
    with pytest.warns(SyntaxWarning, match="binary_crossentropy"):
        losses.categorical_crossentropy(np.ones((2, 1)), np.full((2, 1), 0.5))


def test_get_aliases_names_and_unknown():
    assert losses.get("mse").name == "mean_squared_error"
    for alias, cls in [("mae", losses.MeanAbsoluteError), ("MSE", losses.MeanSquaredError),
                       ("mape", losses.MeanAbsolutePercentageError), ("msle", losses.MeanSquaredLogarithmicError),
                       ("kld", losses.KLDivergence), ("kullback_leibler_divergence", losses.KLDivergence),
                       ("logcosh", losses.LogCosh), ("log_cosh", losses.LogCosh),
                       ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
                       ("CategoricalCrossentropy", losses.CategoricalCrossentropy)]:
        assert isinstance(losses.get(alias), cls), alias
    assert isinstance(losses.get(losses.binary_crossentropy), losses.BinaryCrossentropy)
    with pytest.raises(ValueError, match="Valid names:.*mean_squared_error"):
        losses.get("mean_square_eror")
    assert losses.KLDivergence().name == "kl_divergence"
    assert losses.kullback_leibler_divergence is losses.kl_divergence


def test_config_round_trip():
    loss = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1, reduction="sum", name="cce")
    config = loss.get_config()
    assert config == {"name": "cce", "reduction": "sum", "dtype": None, "from_logits": True,
                      "label_smoothing": 0.1, "axis": -1}
    again = losses.CategoricalCrossentropy.from_config(config)
    assert again.get_config() == config
    assert isinstance(losses.get(losses.serialize(loss)), losses.CategoricalCrossentropy)


def test_bad_reduction():
    with pytest.raises(ValueError, match="reduction"):
        losses.MeanSquaredError(reduction="avg")


def test_custom_losses_written_with_ops_get_gradients(rng):
    from pyminidl import ops

    t, p = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    wrapped = losses.get(lambda y_true, y_pred: ops.mean(ops.square(ops.subtract(y_pred, y_true)), axis=-1))
    value, backward = wrapped.forward(t, p)
    assert_close(np.asarray(value), np.asarray(np.mean((t - p) ** 2)))
    assert_close(backward(), 2 * (p - t) / 6)

    class Scaled(losses.Loss):
        def call(self, y_true, y_pred):
            return ops.multiply(ops.sum(ops.abs(ops.subtract(y_pred, y_true)), axis=-1), 3.0)

    w = rng.uniform(size=3)
    value, backward = Scaled(reduction="sum").forward(t, p, sample_weight=w)
    assert_close(np.asarray(value), np.asarray((np.abs(p - t).sum(-1) * 3 * w).sum()))
    assert_close(backward(), 3 * np.sign(p - t) * w[:, None])
    assert Scaled().name == "scaled"


def test_custom_numpy_loss_is_recorded_through_the_traced_y_pred(rng):
    wrapped = losses.get(lambda t, p: np.mean(np.abs(t - p), axis=-1))
    t, p = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    value, backward = wrapped.forward(t, p)
    assert_close(np.asarray(value), np.asarray(np.mean(np.abs(t - p))))
    np.testing.assert_allclose(backward(), np.sign(p - t) / 6, rtol=1e-12)


def test_custom_numpy_loss_without_a_gradient_evaluates_but_refuses_backward(rng):
    wrapped = losses.get(lambda t, p: np.mean(np.sin(t - p), axis=-1))
    t, p = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    value, backward = wrapped.forward(t, p)
    assert_close(np.asarray(value), np.asarray(np.mean(np.sin(t - p))))
    with pytest.raises(ValueError, match="pyminidl.ops"):
        backward()


def test_runs_on_every_backend(backend, rng):
    t = rng.normal(size=(4, 3)).astype(np.float32)
    p = rng.normal(size=(4, 3)).astype(np.float32)
    with pyminidl.backend.use_backend(backend.name):
        value, backward = losses.MeanSquaredError().forward(backend.asarray(t), backend.asarray(p))
        assert abs(value - float(np.mean((t - p) ** 2))) < 1e-5
        assert_close(backend.to_numpy(backward()), 2 * (p - t) / 12)


def test_custom_loss_with_numpy_operators_trains_like_the_ops_version():
    # `y_true - y_pred` and `10.0 * ...` on the traced y_pred are recorded: nothing is dropped.
    import pyminidl
    from pyminidl import ops

    def with_ops(y_true, y_pred):
        d = ops.subtract(y_true, y_pred)
        return ops.add(ops.square(d), ops.multiply(10.0, ops.abs(d)))

    def with_operators(y_true, y_pred):
        d = y_true - y_pred
        return ops.mean(ops.square(d) + 10.0 * ops.abs(d), axis=-1)

    rng = np.random.default_rng(0)
    y_true = rng.standard_normal((6, 3))
    y_pred = rng.standard_normal((6, 3))
    for fn in (with_ops, with_operators):
        value, backward = pyminidl.losses.get(fn).forward(y_true, y_pred)
        d = y_true - y_pred
        per_elem = 2 * (y_pred - y_true) - 10.0 * np.sign(d)
        np.testing.assert_allclose(backward(), per_elem / (6 * 3), rtol=1e-10)  # sum_over_batch_size


@pytest.mark.parametrize("shapes", [((6, 4), (6, 4)), ((5,), (5, 1)), ((5, 1), (5,)), ((3, 2, 4), (3, 2, 4)),
                                    ((7,), (7,))])
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "mean", "mean_with_sample_weight"])
def test_unweighted_mse_short_form_equals_the_general_form(shapes, reduction, rng):
    """MeanSquaredError without weights takes a one-dot-product form: same value and gradient."""
    t_shape, p_shape = shapes
    t, p = rng.normal(size=t_shape), rng.normal(size=p_shape)
    loss = losses.MeanSquaredError(reduction=reduction)
    general = losses.LossFunctionWrapper(losses.mean_squared_error, reduction=reduction)
    value, backward = loss.forward(t, p)
    value_ref, backward_ref = losses.Loss.forward(general, t, p)
    assert_close(value, value_ref, rtol=1e-12, atol=1e-14)
    for dvalue in (1.0, 0.25, np.float64(3.0), np.asarray(2.0)):
        grad, grad_ref = backward(dvalue), backward_ref(dvalue)
        assert grad.shape == grad_ref.shape == p.shape and grad.dtype == grad_ref.dtype
        assert_close(grad, grad_ref, rtol=1e-12, atol=1e-14)


def test_mse_short_form_keeps_float32_and_leaves_weighted_calls_to_the_general_form(rng):
    t, p = rng.normal(size=(8, 3)).astype(np.float32), rng.normal(size=(8, 3)).astype(np.float32)
    loss = losses.MeanSquaredError()
    value, backward = loss.forward(t.astype(np.int32), p)
    assert isinstance(value, float) and backward(np.float64(2.0)).dtype == np.float32
    sw = rng.uniform(size=8)
    weighted, _ = loss.forward(t, p, sw)
    assert_close(weighted, float(np.sum(np.mean((t - p) ** 2, -1) * sw) / 8), rtol=1e-5)
    empty = np.zeros((0, 3), np.float32)
    assert loss.forward(empty, empty)[0] == 0.0  # an empty batch: the general form
