"""Stateful metrics with the Keras 3 API.

A metric accumulates over batches: ``update_state(y_true, y_pred, sample_weight=None)``,
``result() -> float`` (an array for several thresholds), ``reset_state()``. The
functions (``binary_accuracy``, ...) return per-sample values as Keras's do, and
``MeanMetricWrapper`` averages them. ``resolve("accuracy", loss, y_true_shape, y_pred_shape)``
picks the binary / categorical / sparse-categorical accuracy as Keras does.

Example:
    >>> m = pyminidl.metrics.SparseCategoricalAccuracy()
    >>> m.update_state([1, 0], [[0.2, 0.8], [0.3, 0.7]])
    >>> m.result()
    0.5
"""

import math

from pyminidl import losses as _losses
from pyminidl.backend import get_backend
from pyminidl.config import epsilon, floatx
from pyminidl.losses import squeeze_or_expand_to_same_rank
from pyminidl.saving import serialization_lib


def _xp():
    return get_backend().xp


def _pred(xp, y_pred):
    y_pred = xp.asarray(y_pred)
    return y_pred if y_pred.dtype.kind == "f" else y_pred.astype(floatx())


# ---------------------------------------------------------------------------- functions


def accuracy(y_true, y_pred):
    """Fraction of exactly equal entries, per sample: mean(y_true == y_pred, axis=-1)."""
    xp = _xp()
    y_pred = _pred(xp, y_pred)
    yt, yp = squeeze_or_expand_to_same_rank(xp.asarray(y_true, dtype=y_pred.dtype), y_pred)
    return xp.mean((yt == yp).astype(floatx()), axis=-1)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """mean(y_true == (y_pred > threshold), axis=-1)."""
    xp = _xp()
    y_pred = _pred(xp, y_pred)
    yt, yp = squeeze_or_expand_to_same_rank(xp.asarray(y_true, dtype=y_pred.dtype), y_pred)
    return xp.mean((yt == (yp > threshold)).astype(floatx()), axis=-1)


def _matches(xp, labels, y_pred, squeeze_trailing_one):
    """1.0 where argmax(y_pred) == labels; labels of shape (N, 1) are squeezed (Keras)."""
    if squeeze_trailing_one and labels.ndim == y_pred.ndim and labels.shape[-1] == 1:
        labels = labels[..., 0]
    return (xp.argmax(y_pred, axis=-1) == labels).astype(floatx())


def categorical_accuracy(y_true, y_pred):
    """argmax(y_true, -1) == argmax(y_pred, -1), per sample."""
    xp = _xp()
    y_pred = _pred(xp, y_pred)
    return _matches(xp, xp.argmax(xp.asarray(y_true), axis=-1), y_pred, False)


def sparse_categorical_accuracy(y_true, y_pred):
    """y_true (integer labels, (N,) or (N, 1)) == argmax(y_pred, -1), per sample."""
    xp = _xp()
    y_pred = _pred(xp, y_pred)
    return _matches(xp, xp.asarray(y_true).astype(xp.int64), y_pred, True)


def _in_top_k(xp, labels, y_pred, k):
    """Keras's in_top_k: the label's score is >= the k-th largest score (ties count as in)."""
    classes = y_pred.shape[-1]
    if k >= classes:
        return xp.ones(labels.shape, dtype=floatx())
    kth = -xp.partition(-y_pred, k - 1, axis=-1)[..., k - 1]
    target = xp.take_along_axis(y_pred, labels[..., None].astype(xp.int64), axis=-1)[..., 0]
    return (target >= kth).astype(floatx())


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1.0 where argmax(y_true) is among the k highest scores of y_pred."""
    xp = _xp()
    return _in_top_k(xp, xp.argmax(xp.asarray(y_true), axis=-1), _pred(xp, y_pred), k)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1.0 where the integer label is among the k highest scores of y_pred."""
    xp = _xp()
    y_pred = _pred(xp, y_pred)
    labels = xp.asarray(y_true)
    if labels.ndim == y_pred.ndim and labels.shape[-1] == 1:
        labels = labels[..., 0]
    return _in_top_k(xp, labels, y_pred, k)


# ---------------------------------------------------------------------------- base classes


class Metric:
    """Base class of stateful metrics (Keras 3 ``keras.metrics.Metric``).

    Subclasses implement ``update_state``, ``result`` and ``reset_state``.
    """

    def __init__(self, name=None, dtype=None):
        self.name = name or _losses._snake(type(self).__name__)
        self.dtype = dtype

    def update_state(self, *args, **kwargs):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError

    def reset_state(self):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        """Update with one batch and return the result (Keras's stateless-looking call)."""
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


class Mean(Metric):
    """Weighted mean of the values passed to ``update_state(values, sample_weight=None)``.

    Example:
        >>> m = pyminidl.metrics.Mean()
        >>> m.update_state([1.0, 3.0]); m.result()
        2.0
    """

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.reset_state()

    def reset_state(self):
        self.total = 0.0
        self.count = 0.0

    def update_state(self, values, sample_weight=None):
        xp = _xp()
        values = xp.asarray(values, dtype=floatx() if self.dtype is None else self.dtype)
        if sample_weight is None:
            if values.ndim > 1:
                values = xp.mean(values.reshape(values.shape[0], -1), axis=1)
            self.total += float(xp.sum(values))
            self.count += values.shape[0] if values.ndim else 1
            return
        sw = xp.asarray(sample_weight, dtype=values.dtype)
        values, sw = squeeze_or_expand_to_same_rank(values, sw)
        if values.ndim > sw.ndim:  # reduce values to the weights' rank (Keras)
            values = xp.mean(values, axis=tuple(range(sw.ndim, values.ndim)))
        sw = xp.broadcast_to(sw, values.shape)
        self.total += float(xp.sum(values * sw))
        self.count += float(xp.sum(sw))

    def result(self):
        return self.total / self.count if self.count else 0.0


class MeanMetricWrapper(Mean):
    """Averages ``fn(y_true, y_pred, **kwargs)`` over every sample seen (Keras 3).

    Example:
        >>> m = MeanMetricWrapper(pyminidl.metrics.binary_accuracy, name="acc", threshold=0.5)
    """

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        super().__init__(name=name or getattr(fn, "__name__", "mean_metric_wrapper"), dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs
        for key, value in kwargs.items():  # Keras exposes the arguments: metric.threshold, metric.k
            setattr(self, key, value)

    def update_state(self, y_true, y_pred, sample_weight=None):
        super().update_state(self._fn(y_true, y_pred, **self._fn_kwargs), sample_weight=sample_weight)

    def get_config(self):
        return {**super().get_config(), **self._fn_kwargs}


class _Wrapped(MeanMetricWrapper):
    """What the built-in wrappers share: lower is better, and the config is the arguments (no fn).

    ``_direction`` ("up": higher is better) lets EarlyStopping & co. pick mode="auto" by metric, not by name.
    """

    _direction = "down"

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Accuracy(_Wrapped):
    """How often y_pred equals y_true exactly."""

    _direction = "up"

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(accuracy, name=name, dtype=dtype)


class BinaryAccuracy(_Wrapped):
    """How often (y_pred > threshold) equals the binary label."""

    _direction = "up"

    def __init__(self, threshold=0.5, name="binary_accuracy", dtype=None):
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)


class CategoricalAccuracy(_Wrapped):
    """How often argmax(y_pred) equals argmax(one-hot y_true)."""

    _direction = "up"

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)


class SparseCategoricalAccuracy(_Wrapped):
    """How often argmax(y_pred) equals the integer label."""

    _direction = "up"

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)


class TopKCategoricalAccuracy(_Wrapped):
    """How often the one-hot target is in the top k predictions."""

    _direction = "up"

    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        super().__init__(top_k_categorical_accuracy, name=name, dtype=dtype, k=k)


class SparseTopKCategoricalAccuracy(_Wrapped):
    """How often the integer label is in the top k predictions."""

    _direction = "up"

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None):
        super().__init__(sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=k)


class MeanSquaredError(_Wrapped):
    """Mean of the squared errors."""

    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(_losses.mean_squared_error, name=name, dtype=dtype)


class MeanAbsoluteError(_Wrapped):
    """Mean of the absolute errors."""

    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(_losses.mean_absolute_error, name=name, dtype=dtype)


class MeanAbsolutePercentageError(_Wrapped):
    """Mean absolute percentage error."""

    def __init__(self, name="mean_absolute_percentage_error", dtype=None):
        super().__init__(_losses.mean_absolute_percentage_error, name=name, dtype=dtype)


class MeanSquaredLogarithmicError(_Wrapped):
    """Mean squared logarithmic error."""

    def __init__(self, name="mean_squared_logarithmic_error", dtype=None):
        super().__init__(_losses.mean_squared_logarithmic_error, name=name, dtype=dtype)


class BinaryCrossentropy(_Wrapped):
    """Mean binary cross-entropy."""

    def __init__(self, from_logits=False, label_smoothing=0.0, name="binary_crossentropy", dtype=None):
        super().__init__(_losses.binary_crossentropy, name=name, dtype=dtype, from_logits=from_logits, label_smoothing=label_smoothing)


class CategoricalCrossentropy(_Wrapped):
    """Mean categorical cross-entropy."""

    def __init__(self, from_logits=False, label_smoothing=0.0, name="categorical_crossentropy", dtype=None):
        super().__init__(_losses.categorical_crossentropy, name=name, dtype=dtype, from_logits=from_logits, label_smoothing=label_smoothing)


class SparseCategoricalCrossentropy(_Wrapped):
    """Mean sparse categorical cross-entropy."""

    def __init__(self, from_logits=False, name="sparse_categorical_crossentropy", dtype=None):
        super().__init__(_losses.sparse_categorical_crossentropy, name=name, dtype=dtype, from_logits=from_logits)


class RootMeanSquaredError(Mean):
    """sqrt of the (weighted) mean squared error over every sample seen."""

    _direction = "down"

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        super().update_state(_losses.mean_squared_error(y_true, y_pred), sample_weight)

    def result(self):
        return math.sqrt(super().result())


# ---------------------------------------------------------------------------- confusion-matrix metrics


def _confusion_inputs(xp, y_true, y_pred, sample_weight, class_id=None, top_k=None):
    """Flattened (labels, predictions, weights) after class_id / top_k selection."""
    y_pred = _pred(xp, y_pred)
    y_true = xp.asarray(y_true, dtype=y_pred.dtype)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape. Received: y_true.shape={y_true.shape}, "
                         f"y_pred.shape={y_pred.shape}")
    if sample_weight is None:
        w = xp.ones_like(y_pred)
    else:
        sw = xp.asarray(sample_weight, dtype=y_pred.dtype)
        _, sw = squeeze_or_expand_to_same_rank(y_pred, sw)
        while sw.ndim < y_pred.ndim:
            sw = sw[..., None]
        w = xp.broadcast_to(sw, y_pred.shape)
    if top_k is not None:
        kth = -xp.partition(-y_pred, top_k - 1, axis=-1)[..., top_k - 1: top_k]
        y_pred = xp.where(y_pred >= kth, y_pred, -xp.inf)
    if class_id is not None:
        y_true, y_pred, w = y_true[..., class_id], y_pred[..., class_id], w[..., class_id]
    return y_true.reshape(-1), y_pred.reshape(-1), w.reshape(-1)


class _ThresholdCounts(Metric):
    """Accumulates weighted tp/fp/tn/fn at each threshold, counting ``y_pred > threshold`` as positive."""

    def __init__(self, thresholds, name=None, dtype=None, top_k=None, class_id=None):
        super().__init__(name=name, dtype=dtype)
        self._thresholds_list = [float(t) for t in thresholds]
        self.top_k, self.class_id = top_k, class_id
        self.reset_state()

    def reset_state(self):
        n = len(self._thresholds_list)
        self.true_positives, self.false_positives = [0.0] * n, [0.0] * n
        self.true_negatives, self.false_negatives = [0.0] * n, [0.0] * n

    def update_state(self, y_true, y_pred, sample_weight=None):
        xp = _xp()
        t, p, w = _confusion_inputs(xp, y_true, y_pred, sample_weight, self.class_id, self.top_k)
        thresholds = xp.asarray(self._thresholds_list, dtype=xp.float64)
        # bucket[i] = number of thresholds strictly below p[i]: p[i] is "positive" at thresholds[:bucket]
        bucket = xp.searchsorted(thresholds, p.astype(xp.float64), side="left")
        n = len(self._thresholds_list)
        pos_w = xp.bincount(bucket, weights=(t * w).astype(xp.float64), minlength=n + 1)
        neg_w = xp.bincount(bucket, weights=((1.0 - t) * w).astype(xp.float64), minlength=n + 1)
        # weight predicted positive at threshold j = sum of buckets > j (reverse cumulative sum)
        tp = xp.cumsum(pos_w[::-1])[::-1][1:]
        fp = xp.cumsum(neg_w[::-1])[::-1][1:]
        total_pos, total_neg = float(pos_w.sum()), float(neg_w.sum())
        for j in range(n):
            self.true_positives[j] += float(tp[j])
            self.false_positives[j] += float(fp[j])
            self.false_negatives[j] += total_pos - float(tp[j])
            self.true_negatives[j] += total_neg - float(fp[j])


def _ratio(a, b):
    return a / b if b else 0.0


def _thresholds_arg(thresholds, top_k):
    if thresholds is None:
        return [0.5] if top_k is None else [-1e10]  # Keras: NEG_INF when top_k is set
    return [thresholds] if isinstance(thresholds, (int, float)) else list(thresholds)


class _PrecisionRecall(_ThresholdCounts):
    _direction = "up"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        self.thresholds = thresholds
        self._single = thresholds is None or isinstance(thresholds, (int, float))
        super().__init__(_thresholds_arg(thresholds, top_k), name=name, dtype=dtype, top_k=top_k, class_id=class_id)

    def result(self):
        values = [self._value(j) for j in range(len(self._thresholds_list))]
        return values[0] if self._single else get_backend().xp.asarray(values)

    def get_config(self):
        return {**super().get_config(), "thresholds": self.thresholds, "top_k": self.top_k, "class_id": self.class_id}


class Precision(_PrecisionRecall):
    """tp / (tp + fp), a prediction being positive when y_pred > threshold (default 0.5).

    Args:
        thresholds: a float or a list of floats (result is then an array).
        top_k: count only the top-k predictions of each row as positive.
        class_id: evaluate one class (column) only.

    Example:
        >>> m = pyminidl.metrics.Precision(); m.update_state([0, 1, 1], [0.7, 0.8, 0.1]); m.result()
        0.5
    """

    def _value(self, j):
        return _ratio(self.true_positives[j], self.true_positives[j] + self.false_positives[j])


class Recall(_PrecisionRecall):
    """tp / (tp + fn), a prediction being positive when y_pred > threshold (default 0.5).

    Example:
        >>> m = pyminidl.metrics.Recall(); m.update_state([0, 1, 1], [0.7, 0.8, 0.1]); m.result()
        0.5
    """

    def _value(self, j):
        return _ratio(self.true_positives[j], self.true_positives[j] + self.false_negatives[j])


class AUC(_ThresholdCounts):
    """Area under the ROC (or PR) curve, from counts at ``num_thresholds`` thresholds (Keras 3).

    The thresholds are -eps, 1/(n-1), ..., (n-2)/(n-1), 1+eps; ``summation_method`` is
    "interpolation" (trapezoids; Davis & Goadrich's interpolation for PR), "minoring" or "majoring".

    Example:
        >>> m = pyminidl.metrics.AUC(); m.update_state([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]); m.result()  # ~0.75
    """

    _direction = "up"

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation", name=None, dtype=None,
                 thresholds=None, multi_label=False, num_labels=None, label_weights=None, from_logits=False):
        if multi_label or label_weights is not None:
            raise NotImplementedError("AUC(multi_label=True / label_weights) is not supported by pyminidl yet.")
        curve = str(curve).upper()
        if curve not in ("ROC", "PR"):
            raise ValueError(f'Invalid AUC curve value: "{curve}". Expected values are ["ROC", "PR"]')
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise ValueError(f'Invalid AUC summation method value: "{summation_method}". Expected values are '
                             '["interpolation", "majoring", "minoring"]')
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
            num_thresholds = len(inner) + 2
        else:
            if num_thresholds <= 1:
                raise ValueError(
                    f"Argument `num_thresholds` must be an integer > 1. Received: num_thresholds={num_thresholds}"
                )
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        self.num_thresholds, self.curve, self.summation_method = num_thresholds, curve, summation_method
        self.multi_label, self.num_labels, self.label_weights = multi_label, num_labels, label_weights
        self.from_logits = from_logits
        self._given_thresholds = thresholds
        super().__init__([0.0 - epsilon()] + inner + [1.0 + epsilon()], name=name or "auc", dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        if self.from_logits:
            y_pred = get_backend().sigmoid_forward(_pred(_xp(), y_pred))
        super().update_state(y_true, y_pred, sample_weight)

    def result(self):
        tp, fp = self.true_positives, self.false_positives
        tn, fn = self.true_negatives, self.false_negatives
        n = self.num_thresholds
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolate_pr_auc()
        recall = [_ratio(tp[i], tp[i] + fn[i]) for i in range(n)]
        if self.curve == "ROC":
            x, y = [_ratio(fp[i], fp[i] + tn[i]) for i in range(n)], recall
        else:
            x, y = recall, [_ratio(tp[i], tp[i] + fp[i]) for i in range(n)]
        pick = {"interpolation": lambda a, b: (a + b) / 2.0, "minoring": min, "majoring": max}[self.summation_method]
        return sum((x[i] - x[i + 1]) * pick(y[i], y[i + 1]) for i in range(n - 1))

    def _interpolate_pr_auc(self):
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        total = 0.0
        for i in range(self.num_thresholds - 1):
            dtp = tp[i] - tp[i + 1]
            p0, p1 = tp[i] + fp[i], tp[i + 1] + fp[i + 1]
            slope = _ratio(dtp, max(p0 - p1, 0.0))
            intercept = tp[i + 1] - slope * p1
            ratio = _ratio(p0, max(p1, 0.0)) if p0 > 0 and p1 > 0 else 1.0
            total += _ratio(slope * (dtp + intercept * math.log(ratio)), max(tp[i + 1] + fn[i + 1], 0.0))
        return total

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "num_thresholds": self.num_thresholds, "curve": self.curve,
                "summation_method": self.summation_method, "thresholds": self._given_thresholds,
                "multi_label": self.multi_label, "num_labels": self.num_labels, "label_weights": self.label_weights,
                "from_logits": self.from_logits}


# ---------------------------------------------------------------------------- lookup

_CLASSES = (
    Mean, Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy, TopKCategoricalAccuracy,
    SparseTopKCategoricalAccuracy, MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError, RootMeanSquaredError, BinaryCrossentropy, CategoricalCrossentropy,
    SparseCategoricalCrossentropy, Precision, Recall, AUC,
)
_ALIASES = {
    "accuracy": Accuracy, "acc": Accuracy, "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy, "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError, "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError, "mape": MeanAbsolutePercentageError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError, "msle": MeanSquaredLogarithmicError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError, "rmse": RootMeanSquaredError,
    "root_mean_squared_error": RootMeanSquaredError, "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "precision": Precision, "recall": Recall, "auc": AUC, "mean": Mean,
}
_FUNCTIONS = {
    accuracy: Accuracy, binary_accuracy: BinaryAccuracy, categorical_accuracy: CategoricalAccuracy,
    sparse_categorical_accuracy: SparseCategoricalAccuracy, top_k_categorical_accuracy: TopKCategoricalAccuracy,
    sparse_top_k_categorical_accuracy: SparseTopKCategoricalAccuracy,
}


_FAMILY = serialization_lib.family("metrics", kind="metric",
                                   unknown="Could not interpret metric identifier: {name!r}.")
_FAMILY.register(_CLASSES, aliases=_ALIASES)


def get(identifier):
    """A Metric from a name (Keras class or function name, or alias such as 'mse'), a dict config,
    a Metric, a Metric class or a function ``fn(y_true, y_pred)`` (wrapped in MeanMetricWrapper).

    A string keeps its spelling as the metric's name ('mse' logs as 'mse', as in Keras).

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if identifier is None or isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        metric = get(serialization_lib.deserialize_keras_object(identifier, family=_FAMILY))
        metric.name = identifier
        return metric
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier):
        if identifier in _FUNCTIONS:
            return _FUNCTIONS[identifier]()
        return MeanMetricWrapper(identifier, name=getattr(identifier, "__name__", None))
    raise ValueError(f"Could not interpret metric identifier: {identifier!r}")


def _loss_kind(loss):
    """'binary' / 'categorical' / 'sparse' for the cross-entropy losses, else None."""
    if loss is None:
        return None
    if isinstance(loss, str):
        try:
            loss = _losses.get(loss)
        except ValueError:
            return None
    for cls, kind in ((_losses.BinaryCrossentropy, "binary"), (_losses.SparseCategoricalCrossentropy, "sparse"),
                      (_losses.CategoricalCrossentropy, "categorical")):
        if isinstance(loss, cls) or loss is getattr(_losses, cls.__name__, None):
            return kind
    fn = getattr(loss, "fn", loss)
    return {_losses.binary_crossentropy: "binary", _losses.sparse_categorical_crossentropy: "sparse",
            _losses.categorical_crossentropy: "categorical"}.get(fn) if callable(fn) else None


def resolve(identifier, loss=None, y_true_shape=None, y_pred_shape=None):
    """The Metric for ``identifier`` in a model compiled with ``loss``.

    'accuracy' / 'acc' become binary_accuracy with binary_crossentropy, sparse_categorical_accuracy
    with sparse_categorical_crossentropy, categorical_accuracy with categorical_crossentropy and
    otherwise follow the shapes like Keras 3 (last dim 1 -> binary; integer-label y_true -> sparse;
    else categorical). The name stays the string the user wrote.
    """
    if not (isinstance(identifier, str) and identifier.lower() in ("accuracy", "acc")):
        return get(identifier)
    kind = _loss_kind(loss)
    if kind is None and y_pred_shape is not None and len(y_pred_shape):
        y_true_shape = tuple(y_true_shape) if y_true_shape is not None else tuple(y_pred_shape[:-1])
        if y_pred_shape[-1] == 1:
            kind = "binary"
        elif len(y_true_shape) < len(y_pred_shape) or (len(y_true_shape) and y_true_shape[-1] == 1):
            kind = "sparse"
        else:
            kind = "categorical"
    cls = {"binary": BinaryAccuracy, "sparse": SparseCategoricalAccuracy}.get(kind, CategoricalAccuracy)
    if kind is None and y_pred_shape is not None and len(y_pred_shape) == 1:
        cls = BinaryAccuracy
    return cls(name=identifier)


def serialize(metric):
    """A Metric -> ``{"module", "class_name", "config", "registered_name"}``."""
    return serialization_lib.serialize_keras_object(metric)


def deserialize(config, custom_objects=None):
    """Inverse of ``serialize``: a Metric instance."""
    return get(serialization_lib.deserialize_keras_object(config, custom_objects, _FAMILY))


# Keras function aliases
mse = MSE = _losses.mean_squared_error
mae = MAE = _losses.mean_absolute_error
mean_squared_error = _losses.mean_squared_error
mean_absolute_error = _losses.mean_absolute_error

__all__ = [cls.__name__ for cls in _CLASSES] + [
    "Metric", "MeanMetricWrapper", "get", "resolve", "serialize", "deserialize", "accuracy", "binary_accuracy",
    "categorical_accuracy", "sparse_categorical_accuracy", "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy", "mse", "mae", "mean_squared_error", "mean_absolute_error",
]
