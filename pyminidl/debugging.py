"""NaN and Inf located, not only stopped: the first layer whose output or gradient is not finite.

With checking on, every layer's output is checked after its forward and the gradients it
produces (with respect to its input and to its weights) after its backward. The first value
that is NaN or Inf raises ``NonFiniteError`` naming the layer, the pass, the epoch and batch
(during ``fit``) and the first bad position. Off by default; when off, a layer pays one
attribute read per call.

Example:
    >>> pyminidl.debugging.enable_check_numerics()
    >>> model.fit(x, y)                       # or model.fit(x, y, check_numerics=True)
    NonFiniteError: Layer 'dense_1' (Dense), backward pass, epoch 0, batch 3: the gradient ...
"""

import contextlib
import threading

import numpy as np

from pyminidl.backend import get_backend


class NonFiniteError(FloatingPointError):
    """A layer's output or gradient holds NaN or Inf (raised only while checking is on)."""


class _State(threading.local):
    def __init__(self):
        self.enabled = False
        self.where = None  # (epoch, batch) while fit runs a step


STATE = _State()


def enable_check_numerics():
    """Check every layer's output and gradients for NaN/Inf from now on (this thread)."""
    STATE.enabled = True


def disable_check_numerics():
    """Stop checking (the default)."""
    STATE.enabled = False
    STATE.where = None


@contextlib.contextmanager
def check_numerics():
    """Checking on inside the ``with`` block, restored after it."""
    before = STATE.enabled
    STATE.enabled = True
    try:
        yield
    finally:
        STATE.enabled = before
        if not before:
            STATE.where = None


def _first_bad(array):
    """``(index, value)`` of the first non-finite entry, or None when all are finite."""
    be = get_backend()
    if not hasattr(array, "dtype") or array.dtype.kind not in "fc" or bool(be.xp.isfinite(array).all()):
        return None
    host = np.asarray(be.to_numpy(array))
    index = tuple(int(i) for i in np.argwhere(~np.isfinite(host))[0])
    return index, host[index]


def _raise_if_bad(layer, array, stage, what):
    bad = _first_bad(array)
    if bad is None:
        return
    index, value = bad
    where = "" if STATE.where is None else f", epoch {STATE.where[0]}, batch {STATE.where[1]}"
    raise NonFiniteError(
        f"Layer {layer.name!r} ({type(layer).__name__}), {stage} pass{where}: {what} of shape "
        f"{tuple(array.shape)} holds {value} first at index {index}."
    )


def _each(value):
    return value if isinstance(value, (tuple, list)) else (value,)


def checked(layer, y, backward):
    """``(y, backward)`` of a layer's forward, with y checked now and the gradients when backward runs."""
    for i, out in enumerate(_each(y)):
        _raise_if_bad(layer, out, "forward", "the output" if not isinstance(y, (tuple, list)) else f"output {i}")

    def checked_backward(dy):
        dx = backward(dy)
        for i, g in enumerate(_each(dx)):
            if g is not None:
                _raise_if_bad(layer, g, "backward", "the gradient with respect to its input"
                              if not isinstance(dx, (tuple, list)) else f"the gradient with respect to input {i}")
        for name, g in getattr(layer, "grads", {}).items():
            _raise_if_bad(layer, g, "backward", f"the gradient of weight {name!r}")
        return dx

    return y, checked_backward
