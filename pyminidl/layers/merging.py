"""Merge layers (Keras 3 ``keras.layers.Add``, ``Concatenate``, ``Dot``, ...): several inputs, one output.

Each takes a list of tensors; its ``forward(xs, training) -> (y, backward)`` returns from
``backward(dy)`` one gradient per input. The elementwise ones broadcast like Keras (batch axis
included), so their gradients are summed back to each input's shape.

Example:
    >>> a, b = Input((4,)), Input((4,))
    >>> Add()([a, b]).shape
    (None, 4)
"""

from pyminidl.layers.base import Layer
from pyminidl.ops import _unbroadcast


def _check_list(layer, input_shape, minimum=1):
    if not isinstance(input_shape, (list, tuple)) or not input_shape or not isinstance(input_shape[0], (list, tuple)):
        raise ValueError(f"A merge layer should be called on a list of inputs. Received: "
                         f"input_shape={input_shape} (not a list of shapes)")
    if len(input_shape) < minimum:
        raise ValueError(f"A `{type(layer).__name__}` layer should be called on a list of at least {minimum} "
                         f"inputs. Received: input_shape={input_shape}")


def _broadcast_shape(shape1, shape2):
    """Keras's elementwise output shape (right-aligned; 1 and None broadcast)."""
    if len(shape1) < len(shape2):
        shape1, shape2 = shape2, shape1
    head, tail = list(shape1[: len(shape1) - len(shape2)]), shape1[len(shape1) - len(shape2):]
    for i, j in zip(tail, shape2):
        if i is None or j is None:
            head.append(None)
        elif i == 1 or j == 1 or i == j:
            head.append(j if i == 1 else i)
        else:
            raise ValueError(f"Inputs have incompatible shapes. Received shapes {shape1} and {shape2}")
    return tuple(head)


class _Merge(Layer):
    """Base of the elementwise merges: ``build`` checks the shapes broadcast, ``_merge`` does the math."""

    supports_masking = True
    _min_inputs = 1

    def build(self, input_shape):
        _check_list(self, input_shape, self._min_inputs)
        self.compute_output_shape(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        _check_list(self, input_shape, self._min_inputs)
        shape = tuple(input_shape[0][1:])
        for other in input_shape[1:]:
            shape = _broadcast_shape(shape, tuple(other[1:]))
        batches = {s[0] for s in input_shape if s[0] is not None}
        return (batches.pop() if len(batches) == 1 else None,) + shape

    def compute_mask(self, inputs, mask=None):
        if mask is None or all(m is None for m in mask):
            return None
        xp = self.backend.xp
        masks = [m for m in mask if m is not None]
        out = masks[0]
        for m in masks[1:]:
            out = xp.logical_and(out, m)
        return out

    def forward(self, x, training=False):
        xs = list(x)
        y, grads = self._merge(xs)

        def backward(dy):
            return [_unbroadcast(g(dy), t.shape) for g, t in zip(grads, xs)]

        return y, backward


class Add(_Merge):
    """Sum of the inputs, elementwise: ``y = x1 + x2 + ...`` (shapes broadcast).

    Example:
        >>> Add()([np.ones((2, 3)), np.ones((2, 3))])[0]
        array([2., 2., 2.], dtype=float32)
    """

    def _merge(self, xs):
        y = xs[0]
        for t in xs[1:]:
            y = y + t
        return y, [lambda dy: dy] * len(xs)  # dL/dxi = dy


class Subtract(_Merge):
    """Difference of exactly two inputs: ``y = x1 - x2``."""

    _min_inputs = 2

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2 or \
                not isinstance(input_shape[0], (list, tuple)):
            raise ValueError("A `Subtract` layer should be called on exactly 2 inputs. "
                             f"Received: input_shape={input_shape}")
        super().build(input_shape)

    def _merge(self, xs):
        if len(xs) != 2:
            raise ValueError(f"A `Subtract` layer should be called on exactly 2 inputs. Received: {len(xs)} inputs")
        return xs[0] - xs[1], [lambda dy: dy, lambda dy: -dy]


class Multiply(_Merge):
    """Product of the inputs, elementwise: ``y = x1 * x2 * ...``."""

    def _merge(self, xs):
        y = xs[0]
        for t in xs[1:]:
            y = y * t

        def grad(i):
            def g(dy):  # dL/dxi = dy * prod_{j != i} xj
                out = dy
                for j, t in enumerate(xs):
                    if j != i:
                        out = out * t
                return out
            return g

        return y, [grad(i) for i in range(len(xs))]


class Average(_Merge):
    """Mean of the inputs, elementwise: ``y = (x1 + ... + xn) / n``."""

    def _merge(self, xs):
        y = xs[0]
        for t in xs[1:]:
            y = y + t
        n = len(xs)
        return y / n, [lambda dy: dy / n] * n  # dL/dxi = dy / n


class _Extreme(_Merge):
    """Elementwise maximum or minimum; ties send the gradient to the first input holding the value."""

    _pick = None

    def _merge(self, xs):
        xp = self.backend.xp
        stacked = xp.stack(xp.broadcast_arrays(*xs), axis=0)
        winner = getattr(xp, self._pick)(stacked, axis=0)  # argmax / argmin: the first on ties
        y = xp.take_along_axis(stacked, winner[None], axis=0)[0]

        def grad(i):
            return lambda dy: xp.where(winner == i, dy, 0).astype(dy.dtype)

        return y, [grad(i) for i in range(len(xs))]


class Maximum(_Extreme):
    """Elementwise maximum of the inputs."""

    _pick = "argmax"


class Minimum(_Extreme):
    """Elementwise minimum of the inputs."""

    _pick = "argmin"


class Concatenate(Layer):
    """Concatenation of the inputs along ``axis`` (their other axes must match).

    Args:
        axis: the axis to join along (default -1, the features).

    Example:
        >>> Concatenate()([Input((4,)), Input((3,))]).shape
        (None, 7)
    """

    supports_masking = True

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def _check(self, input_shape):
        _check_list(self, input_shape)
        shapes = [tuple(s) for s in input_shape]
        ranks = {len(s) for s in shapes}
        axis = self.axis % len(shapes[0]) if len(ranks) == 1 else None
        for s in shapes[1:]:
            same = axis is not None and all(
                a is None or b is None or a == b for k, (a, b) in enumerate(zip(shapes[0], s)) if k != axis)
            if not same:
                raise ValueError("A `Concatenate` layer requires inputs with matching shapes except for the "
                                 f"concatenation axis. Received: input_shape={list(shapes)}")
        return shapes, axis

    def build(self, input_shape):
        self._check(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        shapes, axis = self._check(input_shape)
        out = list(shapes[0])
        sizes = [s[axis] for s in shapes]
        out[axis] = None if any(v is None for v in sizes) else sum(sizes)
        for k in range(len(out)):
            if k != axis and out[k] is None:
                out[k] = next((s[k] for s in shapes if s[k] is not None), None)
        return tuple(out)

    def compute_mask(self, inputs, mask=None):
        if mask is None or all(m is None for m in mask):
            return None
        xp = self.backend.xp
        masks = []
        for x, m in zip(inputs, mask):
            if m is None:
                masks.append(xp.ones(x.shape, dtype=bool))
            elif m.ndim < x.ndim:
                masks.append(xp.broadcast_to(m[..., None], x.shape))
            else:
                masks.append(m)
        return xp.any(xp.concatenate(masks, axis=self.axis), axis=-1)

    def forward(self, x, training=False):
        xp = self.backend.xp
        xs = list(x)
        axis = self.axis % xs[0].ndim
        bounds = [0]
        for t in xs:
            bounds.append(bounds[-1] + t.shape[axis])

        def backward(dy):  # dL/dxi = the slice of dy that xi filled
            index = [slice(None)] * dy.ndim
            out = []
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                index[axis] = slice(lo, hi)
                out.append(dy[tuple(index)])
            return out

        return xp.concatenate(xs, axis=axis), backward

    def get_config(self):
        cfg = super().get_config()
        cfg["axis"] = self.axis
        return cfg


def _l2_normalize(xp, x, axis):
    """x / max(||x||, 1e-6) along ``axis`` (Keras's l2_normalize, epsilon 1e-12 on the squared norm)."""
    norm = xp.sqrt(xp.maximum((x * x).sum(axis=axis, keepdims=True), 1e-12))
    y = x / norm

    def backward(dy):  # d(x/|x|) = (dy - y * <dy, y>) / |x|  (the clamped norm is a constant)
        return (dy - y * (dy * y).sum(axis=axis, keepdims=True)) / norm

    return y, backward


class Dot(Layer):
    """Dot product of two inputs along ``axes``, per sample (Keras's ``batch_dot``).

    Inputs ``(batch, ..., n)``; for 2-D inputs the output is ``(batch, 1)``.

    Args:
        axes: an int, or a pair (one axis of each input), counted with the batch axis.
        normalize: L2-normalise both inputs along ``axes`` first (the product is then the cosine).

    Example:
        >>> Dot(axes=1)([Input((4,)), Input((4,))]).shape
        (None, 1)
    """

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        self._axes_arg = list(axes) if isinstance(axes, (list, tuple)) else axes  # get_config: as given
        if isinstance(axes, int):
            axes = (axes, axes)
        if not isinstance(axes, (list, tuple)) or len(axes) != 2 or not all(isinstance(a, int) for a in axes):
            raise TypeError(f"Invalid type for argument `axes`: it should be an int or a list/tuple of 2 ints. "
                            f"Received: axes={axes!r}")
        if 0 in axes:
            raise ValueError(f"Cannot perform batch_dot over axis 0 (the batch). Received: axes={axes}")
        self.axes = [int(a) for a in axes]
        self.normalize = bool(normalize)

    def _resolved(self, shapes):
        if not isinstance(shapes, (list, tuple)) or len(shapes) != 2 or not isinstance(shapes[0], (list, tuple)):
            raise ValueError(f"A `Dot` layer should be called on a list of 2 inputs. Received: input_shape={shapes}")
        a1, a2 = (a % len(s) for a, s in zip(self.axes, shapes))
        n1, n2 = shapes[0][a1], shapes[1][a2]
        if n1 is not None and n2 is not None and n1 != n2:
            raise ValueError(f"Incompatible input shapes: axis values {n1} (at axis {a1}) != {n2} (at axis {a2}). "
                             f"Full input shapes: {tuple(shapes[0])}, {tuple(shapes[1])}")
        return a1, a2

    def build(self, input_shape):
        self._resolved(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        a1, a2 = self._resolved(input_shape)
        s1, s2 = list(input_shape[0]), list(input_shape[1])
        rest = s1[1:a1] + s1[a1 + 1:] + s2[1:a2] + s2[a2 + 1:]
        return (s1[0],) + tuple(rest or [1])

    def forward(self, x, training=False):
        xp = self.backend.xp
        x1, x2 = x
        a1, a2 = self._resolved([x1.shape, x2.shape])
        back1 = back2 = None
        if self.normalize:
            x1, back1 = _l2_normalize(xp, x1, a1)
            x2, back2 = _l2_normalize(xp, x2, a2)
        m1 = xp.moveaxis(x1, a1, -1)  # (B, ..., K)
        m2 = xp.moveaxis(x2, a2, 1)  # (B, K, ...)
        b, k = m1.shape[0], m1.shape[-1]
        p1, p2 = m1.reshape(b, -1, k), m2.reshape(b, k, -1)
        y = xp.matmul(p1, p2)  # (B, M, N)
        out_shape = (b,) + m1.shape[1:-1] + m2.shape[2:]
        y = y.reshape(out_shape if len(out_shape) > 1 else (b, 1))

        def backward(dy):
            g = dy.reshape(b, p1.shape[1], p2.shape[2])
            d1 = xp.matmul(g, p2.transpose(0, 2, 1)).reshape(m1.shape)  # dL/dP1 = G P2^T
            d2 = xp.matmul(p1.transpose(0, 2, 1), g).reshape(m2.shape)  # dL/dP2 = P1^T G
            d1, d2 = xp.moveaxis(d1, -1, a1), xp.moveaxis(d2, 1, a2)
            if self.normalize:
                d1, d2 = back1(d1), back2(d2)
            return [d1, d2]

        return y, backward

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"axes": self._axes_arg, "normalize": self.normalize})
        return cfg


def add(inputs, **kwargs):
    """Functional form of ``Add``: ``add([x1, x2])``."""
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """Functional form of ``Subtract``."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    """Functional form of ``Multiply``."""
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    """Functional form of ``Average``."""
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    """Functional form of ``Maximum``."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    """Functional form of ``Minimum``."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    """Functional form of ``Concatenate``: ``concatenate([x1, x2], axis=-1)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs, axes=-1, **kwargs):
    """Functional form of ``Dot``: ``dot([x1, x2], axes=1)``."""
    return Dot(axes=axes, **kwargs)(inputs)
