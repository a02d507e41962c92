"""Losses with the Keras 3 API: classes, functions, aliases and reductions.

Every loss is a forward/backward pair. The public functions (``mean_squared_error``,
...) return the per-sample values as Keras's do; ``Loss.__call__`` reduces them
(``"sum_over_batch_size"`` by default) with an optional ``sample_weight``; and
``Loss.forward(y_true, y_pred, sample_weight) -> (value, backward)`` is what the
trainer calls: ``backward(dvalue=1.0)`` returns dvalue/dy_pred with y_pred's shape.

Example:
    >>> loss = pyminidl.losses.MeanSquaredError()
    >>> loss([[0.0, 1.0]], [[1.0, 1.0]])
    0.5
"""

import math
import warnings

from pyminidl._naming import to_snake_case
from pyminidl.backend import get_backend
from pyminidl.ops import GradientTape, _traced
from pyminidl.config import epsilon, floatx
from pyminidl.saving import serialization_lib

REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)
_LOG2 = math.log(2.0)


# ---------------------------------------------------------------------------- shape helpers


def squeeze_or_expand_to_same_rank(x1, x2, expand_rank_1=True):
    """Keras's rule: when ranks differ by one and the longer one ends in 1, align them."""
    r1, r2 = x1.ndim, x2.ndim
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = x2[..., None]
        else:
            x1 = x1[..., 0]
    elif r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = x1[..., None]
        else:
            x2 = x2[..., 0]
    return x1, x2


def _as_pred(y_pred, xp):
    y_pred = xp.asarray(y_pred)
    if y_pred.dtype.kind != "f":
        y_pred = y_pred.astype(floatx())
    return y_pred


def _prepare(name, y_true, y_pred, same_shape=True):
    """Cast y_true to y_pred's dtype, align ranks as Keras does and check the shapes."""
    xp = get_backend().xp
    y_pred = _as_pred(y_pred, xp)
    y_true = xp.asarray(y_true, dtype=y_pred.dtype)
    yt, yp = squeeze_or_expand_to_same_rank(y_true, y_pred)
    if same_shape and yt.shape != yp.shape:
        raise ValueError(
            f"{name}: y_true and y_pred must have the same shape (up to a trailing 1). "
            f"Received: y_true.shape={tuple(y_true.shape)}, y_pred.shape={tuple(y_pred.shape)}"
        )
    return xp, yt, yp, y_pred.shape


def _dcol(xp, dvalues, dtype, axis=-1):
    """dvalues expanded back over the reduced axis; a float (unweighted mean) stays a float."""
    if isinstance(dvalues, float):
        return dvalues
    return xp.expand_dims(xp.asarray(dvalues, dtype=dtype), axis)


def _mean_last(xp, elem, grad):
    """values = mean(elem, -1); backward scales grad (d elem/d y_pred) by d / n."""
    n = elem.shape[-1] if elem.ndim else 1
    # sum / n is xp.mean's own arithmetic, without its Python wrapper (several us per training step)
    values = elem.sum(axis=-1) / n if elem.ndim else xp.mean(elem, axis=-1)

    def backward(dvalues):
        g = grad() if callable(grad) else grad
        return g * (_dcol(xp, dvalues, g.dtype) / n)

    return values, backward


# ---------------------------------------------------------------------------- element losses
# Each _fwd_<loss>(xp, y_true, y_pred, **kw) -> (values, backward(dvalues) -> dy_pred), on
# already-aligned arrays; values have y_pred's shape without the reduced axis.


def _fwd_mse(xp, yt, yp):
    diff = yp - yt
    # dL/dy_pred = 2 (y_pred - y_true) / n
    return _mean_last(xp, diff * diff, lambda: 2.0 * diff)


def _fwd_mae(xp, yt, yp):
    diff = yp - yt
    # dL/dy_pred = sign(y_pred - y_true) / n
    return _mean_last(xp, xp.abs(diff), lambda: xp.sign(diff))


def _fwd_mape(xp, yt, yp):
    denom = xp.maximum(xp.abs(yt), epsilon())
    diff = yp - yt
    # dL/dy_pred = 100 sign(y_pred - y_true) / max(|y_true|, eps) / n
    return _mean_last(xp, 100.0 * xp.abs(diff / denom), lambda: 100.0 * xp.sign(diff) / denom)


def _fwd_msle(xp, yt, yp):
    eps = epsilon()
    clipped = xp.maximum(yp, eps)
    diff = xp.log(clipped + 1.0) - xp.log(xp.maximum(yt, eps) + 1.0)
    # dL/dy_pred = 2 diff / (max(y_pred, eps) + 1) where y_pred > eps, else 0
    return _mean_last(xp, diff * diff, lambda: 2.0 * diff / (clipped + 1.0) * (yp > eps))


def _fwd_huber(xp, yt, yp, delta=1.0):
    err = yp - yt
    abs_err = xp.abs(err)
    elem = xp.where(abs_err <= delta, 0.5 * err * err, delta * abs_err - 0.5 * delta * delta)
    # dL/dy_pred = clip(err, -delta, delta) / n
    return _mean_last(xp, elem.astype(yp.dtype, copy=False), lambda: xp.clip(err, -delta, delta))


def _fwd_log_cosh(xp, yt, yp):
    x = yp - yt
    elem = x + xp.logaddexp(0.0, -2.0 * x) - _LOG2
    # d logcosh(x)/dx = tanh(x)
    return _mean_last(xp, elem.astype(yp.dtype, copy=False), lambda: xp.tanh(x))


def _one_hot(xp, labels, classes, dtype):
    """(..., classes) one-hot rows of integer ``labels`` (a comparison: CuPy-safe, no scatter)."""
    return (labels[..., None] == xp.arange(classes)).astype(dtype)


def _hinge_labels(xp, yt):
    """Keras converts {0, 1} labels to {-1, 1}; other labels are used as given."""
    if bool(xp.all((yt == 0) | (yt == 1))):
        return 2.0 * yt - 1.0
    return yt


def _fwd_hinge(xp, yt, yp):
    yt = _hinge_labels(xp, yt)
    margin = xp.maximum(1.0 - yt * yp, 0.0)
    # dL/dy_pred = -y_true where the margin is active
    return _mean_last(xp, margin, lambda: -yt * (margin > 0))


def _fwd_squared_hinge(xp, yt, yp):
    yt = _hinge_labels(xp, yt)
    margin = xp.maximum(1.0 - yt * yp, 0.0)
    # dL/dy_pred = -2 y_true max(1 - y_true y_pred, 0)
    return _mean_last(xp, margin * margin, lambda: -2.0 * yt * margin)


def _fwd_categorical_hinge(xp, yt, yp):
    pos = xp.sum(yt * yp, axis=-1)
    masked = (1.0 - yt) * yp
    neg = xp.max(masked, axis=-1)
    values = xp.maximum(neg - pos + 1.0, 0.0)

    def backward(dvalues):
        # d neg/dy_pred = (1 - y_true) at the argmax; d pos/dy_pred = y_true
        onehot = _one_hot(xp, xp.argmax(masked, axis=-1), yp.shape[-1], yp.dtype)
        active = (values > 0) * xp.asarray(dvalues, dtype=yp.dtype)
        return active[..., None] * (onehot * (1.0 - yt) - yt)

    return values, backward


def _fwd_kl_divergence(xp, yt, yp):
    eps = epsilon()
    t = xp.clip(yt, eps, 1.0)
    p = xp.clip(yp, eps, 1.0)
    values = xp.sum(t * xp.log(t / p), axis=-1)

    def backward(dvalues):
        # dL/dy_pred = -t / p inside the clip range, 0 outside
        inside = (yp >= eps) & (yp <= 1.0)
        return _dcol(xp, dvalues, yp.dtype) * (-t / p) * inside

    return values, backward


def _fwd_poisson(xp, yt, yp):
    eps = epsilon()
    # dL/dy_pred = (1 - y_true / (y_pred + eps)) / n
    return _mean_last(xp, yp - yt * xp.log(yp + eps), lambda: 1.0 - yt / (yp + eps))


def _l2_scale(xp, x, axis):
    """Keras's ops.normalize(order=2): x * min(rsqrt(sum x^2), 1 / eps)."""
    sq = xp.sum(x * x, axis=axis, keepdims=True)
    with_floor = sq > epsilon() ** 2
    inv = xp.where(with_floor, 1.0 / xp.sqrt(xp.maximum(sq, epsilon() ** 2)), 1.0 / epsilon())
    return inv.astype(x.dtype, copy=False), with_floor


def _fwd_cosine_similarity(xp, yt, yp, axis=-1):
    inv_t, _ = _l2_scale(xp, yt, axis)
    inv_p, scaled = _l2_scale(xp, yp, axis)
    t, p = yt * inv_t, yp * inv_p
    values = -xp.sum(t * p, axis=axis)

    def backward(dvalues):
        d = _dcol(xp, dvalues, yp.dtype, axis)
        # For ||y_pred|| > eps: d(-t.p)/dy_pred = -(t - p (t.p)) / ||y_pred||; below, p = y_pred / eps.
        cos = xp.sum(t * p, axis=axis, keepdims=True)
        return d * xp.where(scaled, -(t - p * cos) * inv_p, -t * inv_p)

    return values, backward


def _fwd_binary_crossentropy(xp, yt, yp, from_logits=False, label_smoothing=0.0, axis=-1):
    if label_smoothing:
        yt = yt * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        # max(x, 0) - x t + log(1 + exp(-|x|)), stable for any x
        elem = xp.maximum(yp, 0.0) - yp * yt + xp.log1p(xp.exp(-xp.abs(yp)))
        grad = lambda: get_backend().sigmoid_forward(yp) - yt  # noqa: E731
    else:
        eps = epsilon()
        p = xp.clip(yp, eps, 1.0 - eps)
        elem = -(yt * xp.log(p) + (1.0 - yt) * xp.log(1.0 - p))
        # dL/dp = (p - t) / (p (1 - p)); the clip passes no gradient outside [eps, 1 - eps]
        grad = lambda: (p - yt) / (p * (1.0 - p)) * ((yp >= eps) & (yp <= 1.0 - eps))  # noqa: E731
    elem = elem.astype(yp.dtype, copy=False)
    if axis in (-1, yp.ndim - 1):
        return _mean_last(xp, elem, grad)
    n = elem.shape[axis]
    values = xp.mean(elem, axis=axis)
    return values, lambda dvalues: grad() * _dcol(xp, dvalues, yp.dtype, axis) / n


def _fwd_categorical_crossentropy(xp, yt, yp, from_logits=False, label_smoothing=0.0, axis=-1):
    moved = axis not in (-1, yp.ndim - 1)
    if moved:
        yt, yp = xp.moveaxis(yt, axis, -1), xp.moveaxis(yp, axis, -1)
    if label_smoothing:
        yt = yt * (1.0 - label_smoothing) + label_smoothing / yp.shape[-1]
    if from_logits:
        values, backward = _softmax_ce(xp, yt, yp, sparse=False)
    else:
        values, backward = _probs_ce(xp, yt, yp)
    if not moved:
        return values, backward
    return values, lambda dvalues: xp.moveaxis(backward(dvalues), -1, axis)


def _softmax_ce(xp, labels, logits, sparse, label_smoothing=0.0):
    """Fused softmax + cross-entropy through the backend on (rows, classes)."""
    be = get_backend()
    lead, classes = logits.shape[:-1], logits.shape[-1]
    z = logits.reshape(-1, classes)
    lab = labels.reshape(-1) if sparse else labels.reshape(-1, classes)
    loss, probs = be.softmax_cross_entropy_forward(z, lab, sparse=sparse, label_smoothing=label_smoothing)

    def backward(dvalues):
        if isinstance(dvalues, float):
            d = xp.full(z.shape[0], dvalues, dtype=logits.dtype)
        else:
            d = xp.ascontiguousarray(xp.broadcast_to(xp.asarray(dvalues, dtype=logits.dtype), lead).reshape(-1))
        dz = be.softmax_cross_entropy_backward(d, probs, lab, sparse=sparse, label_smoothing=label_smoothing)
        return dz.reshape(logits.shape)

    backward.probs = probs  # the softmax the kernel computed: the trainer's metrics read it
    return loss.reshape(lead), backward


def _probs_ce(xp, yt, yp):
    """Keras's probability path: renormalise over the last axis, clip to [eps, 1 - eps], -sum t log p."""
    eps = epsilon()
    total = xp.sum(yp, axis=-1, keepdims=True)
    p = yp / total
    pc = xp.clip(p, eps, 1.0 - eps)
    values = -xp.sum(yt * xp.log(pc), axis=-1)

    def backward(dvalues):
        # dL/dp = -t / p inside the clip; through p = y / S: dy = (dp - sum(dp p)) / S
        dp = (-yt / pc) * ((p >= eps) & (p <= 1.0 - eps))
        dp = dp * _dcol(xp, dvalues, yp.dtype)
        return (dp - xp.sum(dp * p, axis=-1, keepdims=True)) / total

    return values, backward


def _sparse_labels(name, xp, y_true, y_pred):
    """Integer labels with y_pred's leading shape (a trailing 1 is squeezed), range-checked."""
    y_true = xp.asarray(y_true)
    if y_true.ndim == y_pred.ndim and y_true.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    if y_true.shape != y_pred.shape[:-1]:
        raise ValueError(
            f"{name}: y_true must hold integer class indices with shape y_pred.shape[:-1]. "
            f"Received: y_true.shape={tuple(y_true.shape)}, y_pred.shape={tuple(y_pred.shape)}"
        )
    if y_true.dtype.kind == "f" and y_true.size and bool(xp.any(y_true != xp.floor(y_true))):
        raise ValueError(f"{name}: y_true must hold integer class indices. Received non-integer values.")
    return y_true.astype(xp.int64, copy=False)


def _fwd_sparse_categorical_crossentropy(xp, labels, yp, from_logits=False):
    classes = yp.shape[-1]
    if labels.size:
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= classes:
            raise ValueError(f"sparse_categorical_crossentropy: labels must lie in [0, {classes}). "
                             f"Received values from {low} to {high}")
    if from_logits:
        return _softmax_ce(xp, labels, yp, sparse=True)
    return _probs_ce(xp, _one_hot(xp, labels, classes, yp.dtype), yp)


# ---------------------------------------------------------------------------- reduction


def _sum_to(xp, g, shape):
    """Sum a broadcast gradient back to ``shape``."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _align_weights(xp, values, sample_weight):
    """sample_weight aligned to the per-sample values as Keras does ((N,) also fits (N, T))."""
    sw = xp.asarray(sample_weight, dtype=values.dtype)
    values_a, sw = squeeze_or_expand_to_same_rank(values, sw)
    if values_a.shape != values.shape:  # values ended in 1 and sw had one rank less
        sw = sw[..., None]
    while 0 < sw.ndim < values.ndim and sw.shape[0] == values.shape[0]:
        sw = sw[..., None]
    try:
        xp.broadcast_shapes(values.shape, sw.shape)
    except ValueError:
        raise ValueError(
            f"sample_weight's shape {tuple(xp.shape(sample_weight))} does not fit the per-sample "
            f"losses of shape {tuple(values.shape)}"
        ) from None
    return sw


def _reduce(xp, values, sample_weight, mask, reduction):
    """Keras's reduce_weighted_values: weight, then sum / (number of elements or of weights)."""
    weights = None
    if mask is not None:
        weights = mask.astype(values.dtype)
        if reduction in ("sum_over_batch_size", "mean"):
            weights = weights * (weights.size / (float(xp.sum(weights)) + epsilon()))
    if sample_weight is not None:
        sw = _align_weights(xp, values, sample_weight)
        weights = sw if weights is None else weights * sw
    weighted = values if weights is None else values * weights
    unreduced = reduction in ("none", None)
    if unreduced:
        scale, out = 1.0, weighted
    else:
        if reduction == "sum" or weighted.ndim == 0:
            divisor = 1.0
        elif reduction == "mean_with_sample_weight" and weights is not None:
            divisor = float(xp.sum(xp.broadcast_to(weights, weighted.shape)))
        else:
            divisor = float(weighted.size)
        scale = 1.0 / divisor if divisor else 0.0
        out = float(weighted.sum()) * scale

    def backward(dvalue=1.0):
        if weights is None and not unreduced and isinstance(dvalue, (int, float)):
            return float(dvalue) * scale  # uniform: the element backwards broadcast a float
        d = xp.asarray(dvalue, dtype=values.dtype) * scale
        if weights is not None:
            d = d * weights
        d = xp.broadcast_to(d, weighted.shape)
        return d if d.shape == values.shape else _sum_to(xp, d, values.shape)

    return out, backward


# ---------------------------------------------------------------------------- classes


class Loss:
    """Base class of losses (Keras 3 ``keras.losses.Loss``).

    Subclasses implement ``call(y_true, y_pred)`` (per-sample values) with ``pyminidl.ops``,
    which a GradientTape differentiates; built-in losses override
    ``_forward_values(y_true, y_pred) -> (values, backward, mask)`` with their own backward.

    Args:
        name: the loss's name.
        reduction: "sum_over_batch_size" (default), "sum", "mean", "mean_with_sample_weight" or "none".
        dtype: accepted for Keras compatibility (computations use y_pred's dtype).

    Example:
        >>> loss = pyminidl.losses.MeanAbsoluteError(reduction="sum")
        >>> loss([[1.0, 2.0]], [[1.0, 4.0]])
        1.0
    """

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        if reduction not in REDUCTIONS:
            raise ValueError(
                f"Invalid value for argument `reduction`. Expected one of {REDUCTIONS}. "
                f"Received: reduction={reduction!r}"
            )
        self.name = name if name is not None else to_snake_case(type(self).__name__)
        self.reduction = reduction
        self.dtype = dtype

    def call(self, y_true, y_pred):
        """Per-sample loss values (before sample weighting and reduction); subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement call(y_true, y_pred).")

    def _forward_values(self, y_true, y_pred):
        """(values, backward(dvalues) -> dy_pred, mask); by default ``call`` differentiated on a GradientTape."""
        return _taped(self.name, self.call, y_true, y_pred, align=False)

    def __call__(self, y_true, y_pred, sample_weight=None):
        return self.forward(y_true, y_pred, sample_weight, _need_grad=False)[0]

    def forward(self, y_true, y_pred, sample_weight=None, _need_grad=True):
        """Returns (value, backward); ``backward(dvalue=1.0)`` -> dvalue/dy_pred (y_pred's shape)."""
        return self._finish(self._forward_values(y_true, y_pred), y_pred, sample_weight)

    def _finish(self, values_backward_mask, y_pred, sample_weight):
        values, value_backward, mask = values_backward_mask
        xp = get_backend().xp
        value, reduce_backward = _reduce(xp, values, sample_weight, mask, self.reduction)
        pred_shape = xp.shape(y_pred)

        def backward(dvalue=1.0):
            grad = value_backward(reduce_backward(dvalue))
            return grad if grad.shape == pred_shape else grad.reshape(pred_shape)

        probs = getattr(value_backward, "probs", None)
        backward.probs = None if probs is None else probs.reshape(pred_shape)
        return value, backward

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _taped(name, fn, y_true, y_pred, align):
    """Run a user loss ``fn`` on a GradientTape, so losses written with ``pyminidl.ops`` train."""
    xp = get_backend().xp
    y_pred = _as_pred(y_pred, xp)
    y_true = xp.asarray(y_true, dtype=y_pred.dtype)
    if align:
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    tape = GradientTape()
    y_pred = _traced(y_pred)  # so `y_true - y_pred` in the user's loss is recorded too
    with tape:
        tape.watch(y_pred)
        values = fn(y_true, y_pred)
    values = values if isinstance(values, xp.ndarray) else xp.asarray(values)  # keep the recorded object

    def backward(dvalues):
        seed = xp.broadcast_to(xp.asarray(dvalues, dtype=values.dtype), values.shape)
        grad = tape.gradient(values, y_pred, output_gradients=seed)
        if grad is None:
            raise ValueError(
                f"The loss {name!r} gave no gradient with respect to y_pred: write it with pyminidl.ops "
                "functions (ops.subtract, ops.multiply, ...: arithmetic operators on plain arrays are not "
                "recorded), or implement _forward_values(y_true, y_pred)."
            )
        return grad

    return values, backward, None


class LossFunctionWrapper(Loss):
    """Wraps a loss function ``fn(y_true, y_pred, **kwargs)`` as a Loss (Keras 3).

    The built-in functions bring their backward; any other callable is differentiated on a
    ``GradientTape``, so it must be written with ``pyminidl.ops`` (as Keras losses use ``keras.ops``).
    """

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, dtype=None, **kwargs):
        super().__init__(name=name or getattr(fn, "__name__", "loss"), reduction=reduction, dtype=dtype)
        self.fn = fn
        self._fn_kwargs = kwargs
        for key, value in kwargs.items():  # Keras exposes the arguments: loss.from_logits, loss.axis
            setattr(self, key, value)

    def call(self, y_true, y_pred):
        return self._forward_values(y_true, y_pred)[0]

    def forward(self, y_true, y_pred, sample_weight=None, _need_grad=True):
        mean_form = _MEAN_OF_ALL.get(self.fn)
        if mean_form is not None and sample_weight is None and self.reduction in _UNWEIGHTED_MEANS:
            result = mean_form(self.name, y_true, y_pred)
            if result is not None:
                return result
        return super().forward(y_true, y_pred, sample_weight, _need_grad)

    def _forward_values(self, y_true, y_pred):
        if self.fn in _FORWARDS:
            return _FORWARDS[self.fn](self.name, y_true, y_pred, **self._fn_kwargs)
        return _taped(self.name, lambda t, p: self.fn(t, p, **self._fn_kwargs), y_true, y_pred, align=True)

    def get_config(self):
        config = super().get_config()
        if type(self) is LossFunctionWrapper:  # the built-in subclasses know their function
            config["fn"] = serialization_lib.serialize_keras_object(self.fn)
        config.update(self._fn_kwargs)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        fn = config.pop("fn", None)
        if cls is LossFunctionWrapper:
            return cls(serialization_lib.deserialize_keras_object(fn, family=_FAMILY), **config)
        return cls(**config)


def _elementwise(forward, loss_name):
    """Wrap an _fwd_ on aligned same-shape arrays as (name, y_true, y_pred, **kw) -> (values, bwd, mask)."""

    def run(name, y_true, y_pred, **kwargs):
        xp, yt, yp, shape = _prepare(name or loss_name, y_true, y_pred)
        values, backward = forward(xp, yt, yp, **kwargs)
        return values, backward, None

    return run


def _run_categorical(name, y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    if isinstance(axis, bool):
        raise ValueError(f"`axis` must be of type `int`. Received: axis={axis} of type {type(axis)}")
    xp, yt, yp, shape = _prepare(name, y_true, y_pred)
    if yp.ndim == 0 or yp.shape[-1] == 1:
        warnings.warn(
            "In loss categorical_crossentropy, expected y_pred.shape to be (batch_size, num_classes) "
            f"with num_classes > 1. Received: y_pred.shape={tuple(yp.shape)}. Consider using "
            "'binary_crossentropy' if you only have 2 classes.",
            SyntaxWarning,
            stacklevel=4,
        )
    values, backward = _fwd_categorical_crossentropy(xp, yt, yp, from_logits, label_smoothing, axis)
    return values, backward, None


def _run_sparse(name, y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    xp = get_backend().xp
    yp = _as_pred(y_pred, xp)
    if axis not in (-1, yp.ndim - 1):
        yp = xp.moveaxis(yp, axis, -1)
    labels = _sparse_labels(name, xp, y_true, yp)
    mask = None
    if ignore_class is not None:
        mask = labels != ignore_class
        labels = xp.where(mask, labels, 0)
    values, backward = _fwd_sparse_categorical_crossentropy(xp, labels, yp, from_logits)
    if mask is not None:
        values = xp.where(mask, values, 0.0).astype(yp.dtype, copy=False)
        inner = backward
        backward = lambda dvalues: inner(xp.where(mask, dvalues, 0.0))  # noqa: E731
    if axis not in (-1, yp.ndim - 1):
        moved = backward
        backward = lambda dvalues: xp.moveaxis(moved(dvalues), -1, axis)  # noqa: E731
    return values, backward, mask


def mean_squared_error(y_true, y_pred):
    """mean((y_true - y_pred)**2, axis=-1). Returns (batch,) for (batch, d) inputs."""
    return _FORWARDS[mean_squared_error]("mean_squared_error", y_true, y_pred)[0]


def mean_absolute_error(y_true, y_pred):
    """mean(|y_true - y_pred|, axis=-1)."""
    return _FORWARDS[mean_absolute_error]("mean_absolute_error", y_true, y_pred)[0]


def mean_absolute_percentage_error(y_true, y_pred):
    """100 * mean(|(y_true - y_pred) / max(|y_true|, eps)|, axis=-1)."""
    return _FORWARDS[mean_absolute_percentage_error]("mean_absolute_percentage_error", y_true, y_pred)[0]


def mean_squared_logarithmic_error(y_true, y_pred):
    """mean((log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1))**2, axis=-1)."""
    return _FORWARDS[mean_squared_logarithmic_error]("mean_squared_logarithmic_error", y_true, y_pred)[0]


def huber(y_true, y_pred, delta=1.0):
    """mean(0.5 e**2 if |e| <= delta else delta (|e| - delta / 2), axis=-1), e = y_pred - y_true."""
    return _FORWARDS[huber]("huber_loss", y_true, y_pred, delta=delta)[0]


def log_cosh(y_true, y_pred):
    """mean(log(cosh(y_pred - y_true)), axis=-1)."""
    return _FORWARDS[log_cosh]("log_cosh", y_true, y_pred)[0]


def hinge(y_true, y_pred):
    """mean(max(1 - y_true * y_pred, 0), axis=-1); {0, 1} labels become {-1, 1}."""
    return _FORWARDS[hinge]("hinge", y_true, y_pred)[0]


def squared_hinge(y_true, y_pred):
    """mean(max(1 - y_true * y_pred, 0)**2, axis=-1); {0, 1} labels become {-1, 1}."""
    return _FORWARDS[squared_hinge]("squared_hinge", y_true, y_pred)[0]


def categorical_hinge(y_true, y_pred):
    """max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)."""
    return _FORWARDS[categorical_hinge]("categorical_hinge", y_true, y_pred)[0]


def kl_divergence(y_true, y_pred):
    """sum(t * log(t / p), axis=-1) with t, p clipped to [eps, 1]."""
    return _FORWARDS[kl_divergence]("kl_divergence", y_true, y_pred)[0]


def poisson(y_true, y_pred):
    """mean(y_pred - y_true * log(y_pred + eps), axis=-1)."""
    return _FORWARDS[poisson]("poisson", y_true, y_pred)[0]


def cosine_similarity(y_true, y_pred, axis=-1):
    """-sum(l2_normalize(y_true) * l2_normalize(y_pred), axis)."""
    return _FORWARDS[cosine_similarity]("cosine_similarity", y_true, y_pred, axis=axis)[0]


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """mean(-(t log p + (1 - t) log(1 - p)), axis), p clipped to [eps, 1 - eps] (or sigmoid of logits)."""
    return _FORWARDS[binary_crossentropy]("binary_crossentropy", y_true, y_pred, from_logits=from_logits,
                                          label_smoothing=label_smoothing, axis=axis)[0]


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """-sum(t * log p, axis): p = y_pred renormalised and clipped, or softmax(y_pred) with from_logits."""
    return _run_categorical("categorical_crossentropy", y_true, y_pred, from_logits, label_smoothing, axis)[0]


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    """-log p[y_true] with integer labels y_true of shape y_pred.shape[:-1]."""
    return _run_sparse("sparse_categorical_crossentropy", y_true, y_pred, from_logits, ignore_class, axis)[0]


def _mse_mean_of_all(name, y_true, y_pred):
    """(value, backward) of an unweighted mean squared error: the mean of the per-sample means is the
    mean over all elements (every sample has the same length), one dot product instead of two
    reductions and their backwards (a regression step's loss: several us per step). Equal to the
    general form within rounding; None for a scalar or empty y_pred, which the general form handles."""
    xp, yt, yp, pred_shape = _prepare(name, y_true, y_pred)
    if yp.ndim == 0 or yp.size == 0:
        return None
    diff = yp - yt
    flat = diff.reshape(-1)
    n = flat.size
    value = float(xp.dot(flat, flat)) / n

    def backward(dvalue=1.0):
        # dL/dy_pred = 2 (y_pred - y_true) / n, times the upstream scalar
        if isinstance(dvalue, (int, float)):
            grad = diff * (2.0 * float(dvalue) / n)
        else:
            grad = diff * (xp.asarray(dvalue, dtype=diff.dtype) * (2.0 / n))
        return grad if grad.shape == pred_shape else grad.reshape(pred_shape)

    backward.probs = None
    return value, backward


# The reductions that, without weights or a mask, divide the sum of all values by their count.
_UNWEIGHTED_MEANS = ("sum_over_batch_size", "mean", "mean_with_sample_weight")

_FORWARDS = {
    mean_squared_error: _elementwise(_fwd_mse, "mean_squared_error"),
    mean_absolute_error: _elementwise(_fwd_mae, "mean_absolute_error"),
    mean_absolute_percentage_error: _elementwise(_fwd_mape, "mean_absolute_percentage_error"),
    mean_squared_logarithmic_error: _elementwise(_fwd_msle, "mean_squared_logarithmic_error"),
    huber: _elementwise(_fwd_huber, "huber_loss"),
    log_cosh: _elementwise(_fwd_log_cosh, "log_cosh"),
    hinge: _elementwise(_fwd_hinge, "hinge"),
    squared_hinge: _elementwise(_fwd_squared_hinge, "squared_hinge"),
    categorical_hinge: _elementwise(_fwd_categorical_hinge, "categorical_hinge"),
    kl_divergence: _elementwise(_fwd_kl_divergence, "kl_divergence"),
    poisson: _elementwise(_fwd_poisson, "poisson"),
    cosine_similarity: _elementwise(_fwd_cosine_similarity, "cosine_similarity"),
    binary_crossentropy: _elementwise(_fwd_binary_crossentropy, "binary_crossentropy"),
    categorical_crossentropy: _run_categorical,
    sparse_categorical_crossentropy: _run_sparse,
}

# Losses whose unweighted mean has a shorter form (LossFunctionWrapper.forward takes it).
_MEAN_OF_ALL = {mean_squared_error: _mse_mean_of_all}


class MeanSquaredError(LossFunctionWrapper):
    """Mean of squared errors.

    Example:
        >>> MeanSquaredError()([[0.0, 1.0]], [[1.0, 1.0]])
        0.5
    """

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", dtype=None):
        super().__init__(mean_squared_error, reduction=reduction, name=name, dtype=dtype)


class MeanAbsoluteError(LossFunctionWrapper):
    """Mean of absolute errors."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error", dtype=None):
        super().__init__(mean_absolute_error, reduction=reduction, name=name, dtype=dtype)


class MeanAbsolutePercentageError(LossFunctionWrapper):
    """Mean absolute percentage error."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_percentage_error", dtype=None):
        super().__init__(mean_absolute_percentage_error, reduction=reduction, name=name, dtype=dtype)


class MeanSquaredLogarithmicError(LossFunctionWrapper):
    """Mean squared logarithmic error."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_logarithmic_error", dtype=None):
        super().__init__(mean_squared_logarithmic_error, reduction=reduction, name=name, dtype=dtype)


class Huber(LossFunctionWrapper):
    """Huber loss: quadratic for errors up to ``delta``, linear beyond."""

    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name="huber_loss", dtype=None):
        super().__init__(huber, reduction=reduction, name=name, dtype=dtype, delta=delta)


class LogCosh(LossFunctionWrapper):
    """Logarithm of the hyperbolic cosine of the error."""

    def __init__(self, reduction="sum_over_batch_size", name="log_cosh", dtype=None):
        super().__init__(log_cosh, reduction=reduction, name=name, dtype=dtype)


class Hinge(LossFunctionWrapper):
    """Hinge loss; {0, 1} labels are mapped to {-1, 1}."""

    def __init__(self, reduction="sum_over_batch_size", name="hinge", dtype=None):
        super().__init__(hinge, reduction=reduction, name=name, dtype=dtype)


class SquaredHinge(LossFunctionWrapper):
    """Squared hinge loss."""

    def __init__(self, reduction="sum_over_batch_size", name="squared_hinge", dtype=None):
        super().__init__(squared_hinge, reduction=reduction, name=name, dtype=dtype)


class CategoricalHinge(LossFunctionWrapper):
    """Categorical hinge loss."""

    def __init__(self, reduction="sum_over_batch_size", name="categorical_hinge", dtype=None):
        super().__init__(categorical_hinge, reduction=reduction, name=name, dtype=dtype)


class KLDivergence(LossFunctionWrapper):
    """Kullback-Leibler divergence."""

    def __init__(self, reduction="sum_over_batch_size", name="kl_divergence", dtype=None):
        super().__init__(kl_divergence, reduction=reduction, name=name, dtype=dtype)


class Poisson(LossFunctionWrapper):
    """Poisson loss."""

    def __init__(self, reduction="sum_over_batch_size", name="poisson", dtype=None):
        super().__init__(poisson, reduction=reduction, name=name, dtype=dtype)


class CosineSimilarity(LossFunctionWrapper):
    """Negative cosine similarity along ``axis``."""

    def __init__(self, axis=-1, reduction="sum_over_batch_size", name="cosine_similarity", dtype=None):
        super().__init__(cosine_similarity, reduction=reduction, name=name, dtype=dtype, axis=axis)


class BinaryCrossentropy(LossFunctionWrapper):
    """Binary cross-entropy over {0, 1} (or soft) labels.

    Example:
        >>> BinaryCrossentropy()([[1.0]], [[0.8]])  # -log(0.8)
    """

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="binary_crossentropy", dtype=None):
        super().__init__(binary_crossentropy, reduction=reduction, name=name, dtype=dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing, axis=axis)


class _FusedSoftmaxMixin:
    def forward_from_logits(self, y_true, logits, sample_weight=None):
        """(value, backward) of this loss applied to softmax(logits), fused in the backend.

        The trainer calls this when the model ends in softmax: ``backward`` returns dvalue/dlogits.
        """
        kwargs = dict(self._fn_kwargs, from_logits=True)
        return self._finish(_FORWARDS[self.fn](self.name, y_true, logits, **kwargs), logits, sample_weight)


class CategoricalCrossentropy(_FusedSoftmaxMixin, LossFunctionWrapper):
    """Categorical cross-entropy over one-hot (or soft) labels.

    Example:
        >>> CategoricalCrossentropy()([[0, 1]], [[0.2, 0.8]])  # -log(0.8)
    """

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="categorical_crossentropy", dtype=None):
        super().__init__(categorical_crossentropy, reduction=reduction, name=name, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)


class SparseCategoricalCrossentropy(_FusedSoftmaxMixin, LossFunctionWrapper):
    """Categorical cross-entropy over integer labels (``ignore_class``: labels equal to it do not count).

    Example:
        >>> SparseCategoricalCrossentropy()([1], [[0.2, 0.8]])  # -log(0.8)
    """

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size",
                 name="sparse_categorical_crossentropy", dtype=None):
        super().__init__(sparse_categorical_crossentropy, reduction=reduction, name=name, dtype=dtype,
                         from_logits=from_logits, ignore_class=ignore_class)


# Keras 2 names kept by many scripts
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kullback_leibler_divergence = kl_divergence
logcosh = log_cosh
bce = BCE = binary_crossentropy

_CLASSES = (
    MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredLogarithmicError,
    Huber, LogCosh, Hinge, SquaredHinge, CategoricalHinge, KLDivergence, Poisson, CosineSimilarity,
    BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy,
)
_FUNCTION_TO_CLASS = {
    mean_squared_error: MeanSquaredError, mean_absolute_error: MeanAbsoluteError,
    mean_absolute_percentage_error: MeanAbsolutePercentageError,
    mean_squared_logarithmic_error: MeanSquaredLogarithmicError, huber: Huber, log_cosh: LogCosh,
    hinge: Hinge, squared_hinge: SquaredHinge, categorical_hinge: CategoricalHinge,
    kl_divergence: KLDivergence, poisson: Poisson, cosine_similarity: CosineSimilarity,
    binary_crossentropy: BinaryCrossentropy, categorical_crossentropy: CategoricalCrossentropy,
    sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
}
_ALIASES = {
    "mse": mean_squared_error, "mae": mean_absolute_error, "mape": mean_absolute_percentage_error,
    "msle": mean_squared_logarithmic_error, "kld": kl_divergence, "kullback_leibler_divergence": kl_divergence,
    "logcosh": log_cosh, "huber_loss": huber, "bce": binary_crossentropy,
}


def _names():
    names = {fn.__name__: cls for fn, cls in _FUNCTION_TO_CLASS.items()}
    names.update({alias: _FUNCTION_TO_CLASS[fn] for alias, fn in _ALIASES.items()})
    names.update({alias.upper(): cls for alias, cls in list(names.items()) if alias in _ALIASES and len(alias) <= 4})
    return names


# A name gives the class (``get`` instantiates it), as a function name does in Keras's compile.
_FAMILY = serialization_lib.family("losses", kind="loss", unknown="Could not interpret loss identifier: {name!r}.")
_FAMILY.register(_CLASSES, aliases=_names())


def serialize(loss):
    """A Loss (or a loss function) -> ``{"module", "class_name", "config", "registered_name"}``."""
    return serialization_lib.serialize_keras_object(loss)


def deserialize(config, custom_objects=None):
    """Inverse of ``serialize``: a Loss instance."""
    obj = serialization_lib.deserialize_keras_object(config, custom_objects, _FAMILY)
    return get(obj) if callable(obj) and not isinstance(obj, Loss) else obj


def get(identifier):
    """A Loss from a string (Keras name or alias), a dict config, a Loss, a Loss class or a callable.

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if identifier is None or isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, (str, dict)):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        if identifier in _FUNCTION_TO_CLASS:
            return _FUNCTION_TO_CLASS[identifier]()
        return LossFunctionWrapper(identifier)
    raise ValueError(f"Could not interpret loss identifier: {identifier!r}")


__all__ = [
    "Loss", "LossFunctionWrapper", "get", "serialize", "deserialize", "REDUCTIONS",
    *[cls.__name__ for cls in _CLASSES], *[fn.__name__ for fn in _FUNCTION_TO_CLASS],
    "mse", "mae", "mape", "msle", "kld", "kullback_leibler_divergence", "logcosh", "bce",
    "MSE", "MAE", "MAPE", "MSLE", "KLD", "BCE",
]
