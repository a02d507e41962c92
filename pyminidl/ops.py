"""Differentiable ops on plain arrays, and the GradientTape that records them.

Each op is one function returning ``(y, backward)``: ``backward(dy)`` gives one gradient per
tensor input (None where the op has none), written right beside the forward math. The
``@_op`` decorator turns it into the public function: outside any tape it only computes;
inside a ``GradientTape`` whose tracked values feed it, it also records ``backward``.

Arrays are plain ndarrays, so a tape tracks values by ``id()`` and holds a reference to every
array it recorded, which keeps those ids unique while the tape lives. Gradients are summed
back to each input's shape, so broadcasting needs no care in the ops themselves.

While a tape records, op outputs (and the ``y_pred`` a custom loss receives, and the input a
custom layer's ``call`` receives) are ``_Traced`` views: NumPy arithmetic on them
(``y_true - y_pred``, ``2.0 * x``, ``x.mean()``) runs through these ops and is recorded, as
arithmetic on Keras tensors is. A NumPy function with no gradient here still computes, but
the tape's ``gradient`` then raises a ValueError naming it rather than drop part of a gradient.

Example:
    >>> x = np.array([1.0, 2.0])
    >>> with pyminidl.GradientTape() as tape:
    ...     tape.watch(x)
    ...     y = ops.sum(ops.square(x))
    >>> tape.gradient(y, x)
    array([2., 4.])
"""

import builtins
import functools
import math
import numbers
import threading

import numpy as np

from pyminidl import config
from pyminidl.backend import get_backend

_state = threading.local()


def _tapes():
    """The stack of active tapes of this thread."""
    if not hasattr(_state, "tapes"):
        _state.tapes = []
    return _state.tapes


class _suspend_tapes:
    """Hide the active tapes (a layer records one node for its whole forward, not its inner ops)."""

    def __enter__(self):
        self._saved = _tapes()
        _state.tapes = []

    def __exit__(self, *exc):
        _state.tapes = self._saved


def recording():
    """True while at least one GradientTape is recording in this thread."""
    return bool(_tapes())


class GradientTape:
    """Records differentiable ops so that gradients can be computed (as ``tf.GradientTape``).

    Args:
        persistent: allow more than one call to ``gradient``.
        watch_accessed_variables: watch the trainable weights of any layer called on the tape.

    Example:
        >>> with GradientTape() as tape:
        ...     tape.watch(w)
        ...     loss = ops.mean(ops.square(ops.matmul(x, w)))
        >>> dw = tape.gradient(loss, w)
    """

    def __init__(self, persistent=False, watch_accessed_variables=True):
        self.persistent = persistent
        self.watch_accessed_variables = watch_accessed_variables
        self._tracked = {}  # id -> array (watched, or produced by a recorded op)
        self._nodes = []  # (output, inputs, backward), in execution order
        self._untracked = []  # NumPy functions applied to recorded values that have no gradient
        self._used = False

    def __enter__(self):
        _tapes().append(self)
        return self

    def __exit__(self, *exc):
        stack = _tapes()
        if self in stack:
            stack.remove(self)

    def watch(self, x):
        """Track ``x`` (an array, or a list of arrays) as a source."""
        for t in x if isinstance(x, (list, tuple)) else [x]:
            self._tracked[id(t)] = t

    def watched_variables(self):
        """The arrays passed to ``watch`` or watched automatically."""
        produced = {id(node[0]) for node in self._nodes}
        return [t for i, t in self._tracked.items() if i not in produced]

    def _tracks(self, x):
        return id(x) in self._tracked

    def _record(self, y, inputs, backward):
        if any(id(t) in self._tracked for t in inputs):
            self._tracked[id(y)] = y
            self._nodes.append((y, inputs, backward))

    def gradient(self, target, sources, output_gradients=None, unconnected_gradients="none"):
        """d(sum(target))/d(source) for each source (a list in, a list out).

        Args:
            target: an array computed on this tape.
            sources: an array or a list/tuple of arrays.
            output_gradients: the gradient seeding ``target`` (default: ones).
            unconnected_gradients: "none" (None for unconnected sources) or "zero".

        Returns:
            The gradient of each source, with the source's shape.

        Raises:
            RuntimeError: a second call on a non-persistent tape.
        """
        if self._used and not self.persistent:
            raise RuntimeError(
                "A non-persistent GradientTape can only be used to compute one set of gradients. "
                "Use GradientTape(persistent=True) to call gradient() more than once."
            )
        if self._untracked:
            raise ValueError(
                f"numpy.{self._untracked[0]} was applied to a value recorded by this GradientTape, and pyminidl has "
                "no gradient for it, so the gradient would be wrong. Use the pyminidl.ops (keras.ops) function."
            )
        if unconnected_gradients not in ("none", "zero"):
            raise ValueError(f"unconnected_gradients must be 'none' or 'zero'. Received: {unconnected_gradients!r}")
        self._used = True
        single = not isinstance(sources, (list, tuple))
        src = [sources] if single else list(sources)
        grads = self._backprop(target, output_gradients)
        out = []
        for s in src:
            g = grads.get(id(s))
            if g is None and unconnected_gradients == "zero":
                g = get_backend().xp.zeros_like(s)
            out.append(g)
        return out[0] if single else out

    def _backprop(self, target, output_gradients):
        xp = get_backend().xp
        targets = list(target) if isinstance(target, (list, tuple)) else [target]
        seeds = (list(output_gradients) if isinstance(output_gradients, (list, tuple))
                 else [output_gradients] * len(targets))
        grads = {}
        for t, seed in zip(targets, seeds):  # several targets: the gradient of their sum
            t = _as_tensor(t)
            seed = xp.ones_like(t) if seed is None else _unbroadcast(xp.asarray(seed, dtype=t.dtype), t.shape)
            grads[id(t)] = seed if id(t) not in grads else grads[id(t)] + seed
        for y, inputs, backward in reversed(self._nodes):
            dy = grads.get(id(y))
            if dy is None:
                continue
            for x, dx in zip(inputs, backward(dy)):
                if dx is None or not self._tracks(x):
                    continue
                dx = _unbroadcast(dx, x.shape)
                prev = grads.get(id(x))
                grads[id(x)] = dx if prev is None else prev + dx  # fan-out: a value used twice
        return grads


def _unbroadcast(g, shape):
    """Sum ``g`` down to ``shape`` (undo NumPy broadcasting)."""
    g = get_backend().xp.asarray(g)
    if g.shape == tuple(shape):
        return g
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def _as_tensor(x):
    """Arrays pass through unchanged (their id is their identity); lists become arrays.

    Python numbers stay numbers so that NumPy's weak scalar typing keeps float32 float32.
    """
    if isinstance(x, numbers.Number) or x is None:
        return x
    xp = get_backend().xp
    if isinstance(x, xp.ndarray):
        return x
    return xp.asarray(x)


def _record(y, inputs, backward):
    """Record an op's node on every active tape that tracks one of its inputs."""
    for tape in _tapes():
        tape._record(y, inputs, backward)


class _Traced(np.ndarray):
    """A NumPy view whose arithmetic, while a tape records, runs through the recorded ops."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if recording():
            route = _UFUNC_ROUTES.get((ufunc.__name__, method))
            if route is not None:
                return route(inputs, kwargs)
            if ufunc.__name__ not in _NO_GRADIENT:
                _note_untracked(ufunc.__name__, inputs)  # computes, but gradient() will refuse
        if "out" in kwargs:
            kwargs["out"] = tuple(_plain(o) for o in kwargs["out"])
        return getattr(ufunc, method)(*(_plain(x) for x in inputs), **kwargs)


def _note_untracked(name, inputs):
    """A recorded value went through NumPy code with no gradient here: the tapes tracking it
    can no longer give a correct gradient, and say so when asked for one."""
    for tape in _tapes():
        if any(id(x) in tape._tracked for x in inputs):
            tape._untracked.append(name)


def _plain(x):
    """``x`` as a plain ndarray view when it is _Traced; anything else unchanged."""
    return x.view(np.ndarray) if type(x) is _Traced else x


def _traced(x):
    """A _Traced view of a NumPy array (other backends' arrays are returned unchanged)."""
    return x.view(_Traced) if type(x) is np.ndarray else x


def _binary(op):
    # in-place forms (x /= 2, NumPy's own mean) pass out=...; the recorded op returns a new value instead
    return lambda inputs, kwargs: op(*inputs)


def _unary(op):
    return lambda inputs, kwargs: op(inputs[0])


def _reduce_sum(inputs, kwargs):
    return sum(inputs[0], axis=kwargs.get("axis", 0), keepdims=kwargs.get("keepdims", False))


_NO_GRADIENT = frozenset((
    "greater", "greater_equal", "less", "less_equal", "equal", "not_equal", "logical_and", "logical_or",
    "logical_not", "logical_xor", "isnan", "isinf", "isfinite", "sign", "floor", "ceil", "rint", "trunc",
    "signbit", "bitwise_and", "bitwise_or", "invert",
))


def _op(n_tensors=1):
    """Turn ``fn(*tensors, *static, **kw) -> (y, backward)`` into a public op returning y.

    The first ``n_tensors`` positional arguments are the op's inputs (all of them when None);
    ``backward(dy)`` returns one gradient per input, or None where there is none.
    """

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            n = len(args) if n_tensors is None else n_tensors
            tensors = [_as_tensor(a) for a in args[:n]]
            # the math runs on plain views: arithmetic inside an op must not record again
            y, backward = fn(*[_plain(t) for t in tensors], *args[n:], **kwargs)
            y = _plain(get_backend().xp.asarray(y))
            if any(y is t for t in tensors):
                y = y.view()  # a new object, so the output has its own id on the tape
            if _tapes():
                y = _traced(y)
                _record(y, tensors, backward)
            return y

        wrapper.forward = fn
        return wrapper

    return decorate


def _xp():
    return get_backend().xp


# ---------------------------------------------------------------------- conversion


def convert_to_tensor(x, dtype=None):
    """An array of the current backend (floats stay as given; lists become arrays)."""
    return get_backend().asarray(x, dtype=dtype)


def convert_to_numpy(x):
    """Any backend array -> numpy.ndarray."""
    return get_backend().to_numpy(x)


def shape(x):
    """The shape of ``x`` as a tuple."""
    return tuple(_as_tensor(x).shape)


# ---------------------------------------------------------------------- elementwise binary


@_op(2)
def add(x1, x2):
    """y = x1 + x2 (broadcasting)."""
    def backward(dy):
        return dy, dy  # dL/dx1 = dL/dx2 = dy
    return x1 + x2, backward


@_op(2)
def subtract(x1, x2):
    """y = x1 - x2 (broadcasting)."""
    def backward(dy):
        return dy, -dy
    return x1 - x2, backward


@_op(2)
def multiply(x1, x2):
    """y = x1 * x2 (broadcasting)."""
    def backward(dy):
        return dy * x2, dy * x1  # dL/dx1 = dy * x2, dL/dx2 = dy * x1
    return x1 * x2, backward


@_op(2)
def divide(x1, x2):
    """y = x1 / x2 (broadcasting)."""
    def backward(dy):
        return dy / x2, -dy * x1 / (x2 * x2)  # d(a/b)/db = -a / b**2
    return x1 / x2, backward


true_divide = divide


@_op(2)
def power(x1, x2):
    """y = x1 ** x2 (broadcasting)."""
    xp = _xp()
    y = xp.power(x1, x2)

    def backward(dy):
        dx1 = dy * x2 * xp.power(x1, x2 - 1)  # d(a**b)/da = b a**(b-1)
        dx2 = None
        if isinstance(x2, xp.ndarray):
            safe = xp.where(x1 > 0, x1, 1)
            dx2 = dy * y * xp.log(safe)  # d(a**b)/db = a**b log a (for a > 0)
        return dx1, dx2

    return y, backward


@_op(2)
def maximum(x1, x2):
    """y = max(x1, x2) elementwise; ties send the gradient to x1."""
    xp = _xp()
    pick = x1 >= x2

    def backward(dy):
        return xp.where(pick, dy, 0), xp.where(pick, 0, dy)

    return xp.maximum(x1, x2), backward


@_op(2)
def minimum(x1, x2):
    """y = min(x1, x2) elementwise; ties send the gradient to x1."""
    xp = _xp()
    pick = x1 <= x2

    def backward(dy):
        return xp.where(pick, dy, 0), xp.where(pick, 0, dy)

    return xp.minimum(x1, x2), backward


@_op(3)
def where(condition, x1, x2):
    """y = x1 where condition else x2; no gradient for ``condition``."""
    xp = _xp()
    cond = xp.asarray(condition, dtype=bool)

    def backward(dy):
        return None, xp.where(cond, dy, 0), xp.where(cond, 0, dy)

    return xp.where(cond, x1, x2), backward


@_op(3)
def clip(x, x_min, x_max):
    """y = min(max(x, x_min), x_max); the gradient passes where x is inside [x_min, x_max]."""
    xp = _xp()
    inside = (x >= x_min) & (x <= x_max)

    def backward(dy):
        return xp.where(inside, dy, 0), None, None

    return xp.clip(x, x_min, x_max), backward


# ---------------------------------------------------------------------- elementwise unary


@_op()
def negative(x):
    """y = -x."""
    return -x, lambda dy: (-dy,)


@_op()
def square(x):
    """y = x**2."""
    return x * x, lambda dy: (2 * dy * x,)  # dL/dx = 2 x dy


@_op()
def sqrt(x):
    """y = sqrt(x)."""
    y = _xp().sqrt(x)
    return y, lambda dy: (dy / (2 * y),)  # dL/dx = dy / (2 sqrt x)


@_op()
def exp(x):
    """y = exp(x)."""
    y = _xp().exp(x)
    return y, lambda dy: (dy * y,)


@_op()
def log(x):
    """y = log(x) (natural)."""
    return _xp().log(x), lambda dy: (dy / x,)


@_op()
def log1p(x):
    """y = log(1 + x)."""
    return _xp().log1p(x), lambda dy: (dy / (1 + x),)


@_op()
def abs(x):  # noqa: A001 (Keras name)
    """y = |x|; the gradient at 0 is 0."""
    xp = _xp()
    return xp.abs(x), lambda dy: (dy * xp.sign(x),)


absolute = abs


@_op()
def sign(x):
    """y = sign(x); flat, so the gradient is 0."""
    xp = _xp()
    return xp.sign(x), lambda dy: (xp.zeros_like(dy),)


@_op()
def cast(x, dtype):
    """y = x as ``dtype``; the gradient is cast back to x's dtype."""
    return x.astype(dtype), lambda dy: (dy.astype(x.dtype),)


# ---------------------------------------------------------------------- activations


def _activation(name, x, **params):
    """A backend activation pair as an op (shared by ops.relu, activations.elu, ...)."""
    return _activation_op(x, name, **params)


@_op()
def _activation_op(x, name, **params):
    be = get_backend()
    y = be.activation_forward(name, x, **params)
    return y, lambda dy: (be.activation_backward(name, dy, x, y, **params),)


def relu(x):
    """y = max(x, 0)."""
    return _activation("relu", x)


def relu6(x):
    """y = min(max(x, 0), 6)."""
    return _activation("relu", x, max_value=6.0)


def sigmoid(x):
    """y = 1 / (1 + exp(-x))."""
    return _activation("sigmoid", x)


def tanh(x):
    """y = tanh(x)."""
    return _activation("tanh", x)


def elu(x, alpha=1.0):
    """y = x if x > 0 else alpha (exp(x) - 1)."""
    return _activation("elu", x, alpha=alpha)


def selu(x):
    """Scaled ELU."""
    return _activation("selu", x)


def softplus(x):
    """y = log(1 + exp(x))."""
    return _activation("softplus", x)


def softsign(x):
    """y = x / (1 + |x|)."""
    return _activation("softsign", x)


def silu(x):
    """y = x sigmoid(x)."""
    return _activation("silu", x)


swish = silu


def gelu(x, approximate=True):
    """Gaussian error linear unit (Keras ops default: the tanh approximation)."""
    return _activation("gelu", x, approximate=approximate)


def leaky_relu(x, negative_slope=0.2):
    """y = x if x >= 0 else negative_slope x."""
    return _activation("leaky_relu", x, negative_slope=negative_slope)


def hard_sigmoid(x):
    """y = clip(x / 6 + 1/2, 0, 1)."""
    return _activation("hard_sigmoid", x)


@_op()
def softmax(x, axis=-1):
    """y = exp(x) / sum(exp(x)) along ``axis``."""
    be = get_backend()
    y = be.softmax_forward(x, axis=axis)
    return y, lambda dy: (be.softmax_backward(dy, y, axis=axis),)


@_op()
def log_softmax(x, axis=-1):
    """y = x - logsumexp(x) along ``axis``."""
    be = get_backend()
    y = be.log_softmax_forward(x, axis=axis)
    return y, lambda dy: (be.log_softmax_backward(dy, y, axis=axis),)


# ---------------------------------------------------------------------- linear algebra


def _gemm_operands(name, x1, x2):
    """``dot``'s contraction of x1's last axis with x2's second-to-last (its only one when 1-D) as
    one 2-D product ``a @ b``: x1's other axes become rows, x2's columns. Returns (a, b, y's shape)."""
    k = x1.shape[-1]
    kb = x2.shape[0] if x2.ndim == 1 else x2.shape[-2]
    if k != kb:
        raise ValueError(f"{name}: the last axis of x1 ({k}) must match the contracted axis of x2 ({kb}). "
                         f"Received: x1.shape={x1.shape}, x2.shape={x2.shape}")
    a = x1.reshape(math.prod(x1.shape[:-1]), k)  # explicit sizes: -1 is ambiguous when k is 0
    if x2.ndim == 1:
        return a, x2.reshape(k, 1), x1.shape[:-1]
    b = _xp().moveaxis(x2, -2, 0).reshape(k, math.prod(x2.shape[:-2]) * x2.shape[-1]) if x2.ndim > 2 else x2
    return a, b, x1.shape[:-1] + x2.shape[:-2] + x2.shape[-1:]


def _gemm_product(name, x1, x2):
    """y = x1 . x2 through the backend's gemm (one 2-D product each way), and its backward."""
    be = get_backend()
    a, b, shape = _gemm_operands(name, x1, x2)
    y = be.gemm(a, b).reshape(shape)

    def backward(dy):
        g = be.xp.asarray(dy).reshape(a.shape[0], b.shape[1])
        dx1 = be.gemm(g, b, trans_b=True).reshape(x1.shape)  # dL/da = dy @ b^T
        db = be.gemm(a, g, trans_a=True)  # dL/db = a^T @ dy, summed over every row x1 contributed
        if x2.ndim > 2:  # back from (K, rest) to x2's layout
            db = be.xp.moveaxis(db.reshape((x2.shape[-2],) + x2.shape[:-2] + x2.shape[-1:]), 0, -2)
        return dx1, db.reshape(x2.shape)

    return y, backward


@_op(2)
def matmul(x1, x2):
    """y = x1 @ x2 (NumPy semantics, batched over leading axes)."""
    if x1.ndim >= 1 and 1 <= x2.ndim <= 2:  # a plain 2-D product once x1's leading axes are rows
        return _gemm_product("matmul", x1, x2)
    xp = _xp()  # a batched x2: one product per batch entry

    def backward(dy):
        a = x1[None, :] if x1.ndim == 1 else x1
        g = xp.expand_dims(dy, -2) if x1.ndim == 1 else dy
        da = xp.matmul(g, xp.swapaxes(x2, -1, -2))  # dL/da = dy @ b^T
        db = xp.matmul(xp.swapaxes(a, -1, -2), g)  # dL/db = a^T @ dy
        if x1.ndim == 1:
            da = _unbroadcast(da, a.shape).reshape(x1.shape)
        return da, db

    return xp.matmul(x1, x2), backward


def dot(x1, x2):
    """NumPy's dot: matmul for 1-D/2-D operands; a product when one is a scalar."""
    t1, t2 = _as_tensor(x1), _as_tensor(x2)
    if isinstance(t1, numbers.Number) or isinstance(t2, numbers.Number) or t1.ndim == 0 or t2.ndim == 0:
        return multiply(t1, t2)
    if t1.ndim <= 2 and t2.ndim <= 2:
        return matmul(t1, t2)
    return _dot_nd(t1, t2)


@_op(2)
def _dot_nd(x1, x2):
    # N-D dot sums the last axis of x1 with the second-to-last of x2: always one 2-D product
    return _gemm_product("dot", x1, x2)


@_op()
def transpose(x, axes=None):
    """y = x with its axes permuted (reversed by default)."""
    xp = _xp()
    perm = tuple(reversed(range(x.ndim))) if axes is None else tuple(a % x.ndim for a in axes)
    inverse = tuple(sorted(range(x.ndim), key=lambda i: perm[i]))
    return xp.transpose(x, perm), lambda dy: (xp.transpose(dy, inverse),)


@_op()
def reshape(x, newshape):
    """y = x with shape ``newshape`` (one -1 allowed)."""
    return x.reshape(newshape), lambda dy: (dy.reshape(x.shape),)


@_op()
def expand_dims(x, axis):
    """Insert a size-1 axis at ``axis``."""
    xp = _xp()
    return xp.expand_dims(x, axis), lambda dy: (dy.reshape(x.shape),)


@_op()
def squeeze(x, axis=None):
    """Remove size-1 axes (all of them, or ``axis``)."""
    xp = _xp()
    return xp.squeeze(x, axis=axis), lambda dy: (dy.reshape(x.shape),)


def concatenate(xs, axis=0):
    """Join arrays along an existing ``axis``."""
    return _concatenate(*xs, axis=axis)


@_op(None)
def _concatenate(*xs, axis=0):
    xp = _xp()
    cuts, total = [], 0
    for x in xs[:-1]:
        total += x.shape[axis]
        cuts.append(total)
    return xp.concatenate(xs, axis=axis), lambda dy: tuple(xp.split(dy, cuts, axis=axis))


def stack(xs, axis=0):
    """Join arrays along a new ``axis``."""
    return _stack(*xs, axis=axis)


@_op(None)
def _stack(*xs, axis=0):
    xp = _xp()
    y = xp.stack(xs, axis=axis)
    return y, lambda dy: tuple(xp.take(dy, i, axis=axis) for i in range(len(xs)))


# ---------------------------------------------------------------------- reductions


def _expand_reduced(dy, x, axis, keepdims):
    """Reshape a reduced gradient so it broadcasts against ``x``."""
    if keepdims or axis is None:
        return dy if keepdims else dy.reshape((1,) * x.ndim) if x.ndim else dy
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return _xp().expand_dims(dy, tuple(a % x.ndim for a in axes))


@_op()
def sum(x, axis=None, keepdims=False):  # noqa: A001 (Keras name)
    """y = sum of x over ``axis`` (all axes by default)."""
    xp = _xp()
    y = xp.sum(x, axis=axis, keepdims=keepdims)
    return y, lambda dy: (xp.broadcast_to(_expand_reduced(dy, x, axis, keepdims), x.shape),)


@_op()
def mean(x, axis=None, keepdims=False):
    """y = mean of x over ``axis`` (all axes by default)."""
    xp = _xp()
    y = xp.mean(x, axis=axis, keepdims=keepdims)
    count = x.size // builtins.max(1, y.size) if x.size else 1

    def backward(dy):
        return (xp.broadcast_to(_expand_reduced(dy, x, axis, keepdims), x.shape) / count,)

    return y, backward


def _extreme(fn, x, axis, keepdims):
    xp = _xp()
    y = fn(x, axis=axis, keepdims=keepdims)

    def backward(dy):
        yk = _expand_reduced(y, x, axis, keepdims)
        hit = (x == yk)
        # ties share the gradient equally (a subgradient; matches TF's reduce_max)
        share = (hit / xp.sum(hit, axis=axis, keepdims=True)).astype(x.dtype, copy=False)
        return (share * _expand_reduced(dy, x, axis, keepdims),)

    return y, backward


@_op()
def max(x, axis=None, keepdims=False):  # noqa: A001 (Keras name)
    """y = max of x over ``axis``; the gradient goes to the maxima."""
    return _extreme(_xp().max, x, axis, keepdims)


@_op()
def min(x, axis=None, keepdims=False):  # noqa: A001 (Keras name)
    """y = min of x over ``axis``; the gradient goes to the minima."""
    return _extreme(_xp().min, x, axis, keepdims)


amax, amin = max, min


def var(x, axis=None, keepdims=False):
    """Variance over ``axis`` (population, as Keras): mean((x - mean(x))**2)."""
    centred = subtract(x, mean(x, axis=axis, keepdims=True))
    return mean(square(centred), axis=axis, keepdims=keepdims)


def std(x, axis=None, keepdims=False):
    """Standard deviation over ``axis``: sqrt(var(x))."""
    return sqrt(var(x, axis=axis, keepdims=keepdims))


def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) over ``axis``, shifted by the max for stability (its gradient is softmax(x))."""
    x = _as_tensor(x)
    xp = _xp()
    shift = xp.max(x, axis=axis, keepdims=True)  # a constant: d/dx of the result does not depend on it
    y = add(log(sum(exp(subtract(x, shift)), axis=axis, keepdims=True)), shift)
    return y if keepdims else reshape(y, xp.sum(xp.zeros_like(x), axis=axis).shape)


# ---------------------------------------------------------------------- no gradient


def argmax(x, axis=-1, keepdims=False):
    """Index of the largest value along ``axis`` (not differentiable)."""
    return _xp().argmax(_as_tensor(x), axis=axis, keepdims=keepdims)


def argmin(x, axis=-1, keepdims=False):
    """Index of the smallest value along ``axis`` (not differentiable)."""
    return _xp().argmin(_as_tensor(x), axis=axis, keepdims=keepdims)


def zeros(shape, dtype=None):
    """An array of zeros (default dtype ``config.floatx()``)."""
    return _xp().zeros(shape, dtype=dtype or config.floatx())


def ones(shape, dtype=None):
    """An array of ones (default dtype ``config.floatx()``)."""
    return _xp().ones(shape, dtype=dtype or config.floatx())


def zeros_like(x, dtype=None):
    """Zeros with the shape (and dtype) of ``x``."""
    return _xp().zeros_like(_as_tensor(x), dtype=dtype)


def ones_like(x, dtype=None):
    """Ones with the shape (and dtype) of ``x``."""
    return _xp().ones_like(_as_tensor(x), dtype=dtype)


__all__ = [
    "GradientTape", "convert_to_tensor", "convert_to_numpy", "shape", "add", "subtract", "multiply",
    "divide", "true_divide", "power", "maximum", "minimum", "where", "clip", "negative", "square",
    "sqrt", "exp", "log", "log1p", "abs", "absolute", "sign", "cast", "relu", "relu6", "sigmoid",
    "tanh", "elu", "selu", "softplus", "softsign", "silu", "swish", "gelu", "leaky_relu",
    "hard_sigmoid", "softmax", "log_softmax", "matmul", "dot", "transpose", "reshape",
    "expand_dims", "squeeze", "concatenate", "stack", "sum", "mean", "max", "min", "amax", "amin", "var", "std",
    "logsumexp", "argmax", "argmin", "zeros", "ones", "zeros_like", "ones_like",
]


# NumPy ufuncs on _Traced values, routed to the recorded ops above.
_UFUNC_ROUTES = {
    ("add", "__call__"): _binary(add), ("subtract", "__call__"): _binary(subtract),
    ("multiply", "__call__"): _binary(multiply), ("true_divide", "__call__"): _binary(divide),
    ("divide", "__call__"): _binary(divide), ("power", "__call__"): _binary(power),
    ("maximum", "__call__"): _binary(maximum), ("minimum", "__call__"): _binary(minimum),
    ("matmul", "__call__"): _binary(matmul), ("negative", "__call__"): _unary(negative),
    ("square", "__call__"): _unary(square), ("sqrt", "__call__"): _unary(sqrt), ("exp", "__call__"): _unary(exp),
    ("log", "__call__"): _unary(log), ("log1p", "__call__"): _unary(log1p), ("absolute", "__call__"): _unary(abs),
    ("tanh", "__call__"): _unary(tanh), ("add", "reduce"): _reduce_sum,
}
