"""Metrics vs hand computations; AUC vs the trapezoid of the exact ROC."""

import numpy as np
import pytest

from pyminidl import losses, metrics


def test_accuracies_by_hand():
    m = metrics.BinaryAccuracy()
    m.update_state([[1], [0], [1], [0]], [[0.7], [0.6], [0.2], [0.1]])
    assert m.result() == pytest.approx(0.5)
    m = metrics.BinaryAccuracy(threshold=0.15)
    m.update_state([1, 0, 1, 0], [0.7, 0.6, 0.2, 0.1])
    assert m.result() == pytest.approx(0.75)
    m = metrics.CategoricalAccuracy()
    m.update_state([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
    assert m.result() == pytest.approx(0.5)
    m = metrics.SparseCategoricalAccuracy()
    m.update_state([[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]])
    m.update_state([0, 0], [[0.9, 0.1, 0.0], [0.2, 0.7, 0.1]])
    assert m.result() == pytest.approx(0.5)
    m.reset_state()
    assert m.result() == 0.0


def test_sample_weight_and_mean():
    m = metrics.SparseCategoricalAccuracy()
    m.update_state([2, 1], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]], sample_weight=[0.7, 0.3])
    assert m.result() == pytest.approx(0.3)
    mean = metrics.Mean(name="loss")
    mean.update_state([1.0, 3.0])
    mean.update_state(5.0)
    assert mean.result() == pytest.approx(3.0)
    mean.update_state([10.0], sample_weight=[2.0])
    assert mean.result() == pytest.approx((9.0 + 20.0) / 5.0)
    assert mean.name == "loss"


def test_top_k():
    y_pred = np.array([[0.1, 0.9, 0.8], [0.05, 0.95, 0.0]])
    m = metrics.TopKCategoricalAccuracy(k=1)
    m.update_state([[0, 0, 1], [0, 1, 0]], y_pred)
    assert m.result() == pytest.approx(0.5)
    m = metrics.SparseTopKCategoricalAccuracy(k=2)
    m.update_state([2, 2], y_pred)
    assert m.result() == pytest.approx(0.5)
    assert metrics.TopKCategoricalAccuracy().k == 5


def test_regression_metrics(rng):
    t, p = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    mse, mae, rmse = metrics.get("mse"), metrics.MeanAbsoluteError(), metrics.RootMeanSquaredError()
    for m in (mse, mae, rmse):
        m.update_state(t[:2], p[:2])
        m.update_state(t[2:], p[2:])
    assert mse.result() == pytest.approx(np.mean((t - p) ** 2))
    assert mae.result() == pytest.approx(np.mean(np.abs(t - p)))
    assert rmse.result() == pytest.approx(np.sqrt(np.mean((t - p) ** 2)))
    assert mse.name == "mse" and mae.name == "mean_absolute_error"


def test_precision_recall(rng):
    t = np.array([0, 1, 1, 1, 0, 1])
    p = np.array([0.7, 0.8, 0.1, 0.6, 0.2, 0.9])
    prec, rec = metrics.Precision(), metrics.Recall()
    prec.update_state(t, p)
    rec.update_state(t, p)
    assert prec.result() == pytest.approx(3 / 4)
    assert rec.result() == pytest.approx(3 / 4)
    multi = metrics.Precision(thresholds=[0.5, 0.75])
    multi.update_state(t, p)
    np.testing.assert_allclose(multi.result(), [3 / 4, 2 / 2])
    w = np.array([1, 2, 1, 1, 1, 1.0])
    wp = metrics.Precision()
    wp.update_state(t, p, sample_weight=w)
    assert wp.result() == pytest.approx(4 / 5)
    cls = metrics.Recall(class_id=1)
    cls.update_state(np.eye(3)[[1, 1, 2]], [[0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.1, 0.7, 0.2]])
    assert cls.result() == pytest.approx(0.5)
    top = metrics.Precision(top_k=1)
    top.update_state([[0, 1, 1]], [[0.5, 0.3, 0.4]])
    assert top.result() == pytest.approx(0.0)
    assert metrics.Precision().result() == 0.0


def _exact_roc_auc(t, p):
    order = np.argsort(-p, kind="stable")
    t = t[order]
    tpr = np.concatenate([[0], np.cumsum(t) / t.sum()])
    fpr = np.concatenate([[0], np.cumsum(1 - t) / (1 - t).sum()])
    return np.trapezoid(tpr, fpr) if hasattr(np, "trapezoid") else np.trapz(tpr, fpr)


def test_auc_close_to_exact_roc(rng):
    t = (rng.uniform(size=500) > 0.6).astype(float)
    p = np.clip(0.35 * t + rng.uniform(size=500) * 0.7, 0, 1)
    m = metrics.AUC()
    m.update_state(t[:250], p[:250])
    m.update_state(t[250:], p[250:])
    assert m.result() == pytest.approx(_exact_roc_auc(t, p), abs=5e-3)
    perfect = metrics.AUC()
    perfect.update_state([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert perfect.result() == pytest.approx(1.0)
    assert metrics.AUC().num_thresholds == 200


def test_auc_pr_and_from_logits(rng):
    t = (rng.uniform(size=300) > 0.5).astype(float)
    p = np.clip(0.4 * t + rng.uniform(size=300) * 0.6, 0, 1)
    pr = metrics.AUC(curve="PR")
    pr.update_state(t, p)
    # average precision, the step-wise PR area, is close to the interpolated one
    order = np.argsort(-p)
    hits = t[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    ap = np.sum(precision * hits) / hits.sum()
    assert pr.result() == pytest.approx(ap, abs=0.03)
    z = rng.normal(size=50)
    tz = (rng.uniform(size=50) > 0.5).astype(float)
    a, b = metrics.AUC(from_logits=True), metrics.AUC()
    a.update_state(tz, z)
    b.update_state(tz, 1 / (1 + np.exp(-z)))
    assert a.result() == pytest.approx(b.result())


def test_resolve_accuracy_like_keras():
    r = metrics.resolve
    assert isinstance(r("accuracy", "binary_crossentropy", (8, 3), (8, 3)), metrics.BinaryAccuracy)
    assert isinstance(r("accuracy", losses.SparseCategoricalCrossentropy(), (8,), (8, 3)),
                      metrics.SparseCategoricalAccuracy)
    assert isinstance(r("accuracy", "categorical_crossentropy", (8, 3), (8, 3)), metrics.CategoricalAccuracy)
    assert isinstance(r("accuracy", "mse", (8, 1), (8, 1)), metrics.BinaryAccuracy)
    assert isinstance(r("acc", None, (8,), (8, 4)), metrics.SparseCategoricalAccuracy)
    assert isinstance(r("acc", None, (8, 1), (8, 4)), metrics.SparseCategoricalAccuracy)
    assert isinstance(r("accuracy", None, (8, 4), (8, 4)), metrics.CategoricalAccuracy)
    assert r("accuracy", "binary_crossentropy").name == "accuracy"
    assert r("acc", "binary_crossentropy").name == "acc"
    assert r("mae", "mse").name == "mae"


def test_get_and_unknown():
    assert isinstance(metrics.get("sparse_categorical_accuracy"), metrics.SparseCategoricalAccuracy)
    assert isinstance(metrics.get(metrics.binary_accuracy), metrics.BinaryAccuracy)
    assert isinstance(metrics.get("AUC"), metrics.AUC)
    with pytest.raises(ValueError, match="Valid names:.*accuracy"):
        metrics.get("acuracy")
    custom = metrics.get(lambda t, p: np.abs(np.asarray(t) - np.asarray(p)))
    custom.update_state([1.0, 2.0], [1.5, 2.0])
    assert custom.result() == pytest.approx(0.25)


def test_config_round_trip():
    m = metrics.BinaryAccuracy(threshold=0.3, name="b")
    assert m.get_config() == {"name": "b", "dtype": None, "threshold": 0.3}
    assert metrics.BinaryAccuracy.from_config(m.get_config()).threshold == 0.3
    a = metrics.AUC(num_thresholds=50, curve="PR")
    assert metrics.AUC.from_config(a.get_config()).get_config() == a.get_config()
