"""Weight and activity regularizers (Keras 3): a penalty ``reg(x)`` and its gradient ``reg.gradient(x)``.

Example:
    >>> reg = regularizers.L2(0.01)
    >>> reg(np.ones((2, 2)))
    0.04
"""

from pyminidl import ops
from pyminidl.backend import get_backend
from pyminidl.saving import serialization_lib


def _check(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"Value for argument `{name}` must be a non-negative float. Received: {name}={value!r}")
    return float(value)


class Regularizer(serialization_lib.ConfigMixin):
    """Base class: ``__call__(x) -> float`` penalty and ``gradient(x) -> array`` d(penalty)/dx."""

    def __call__(self, x):
        raise NotImplementedError

    def gradient(self, x):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError


class L1L2(Regularizer):
    """penalty = l1 * sum(|x|) + l2 * sum(x**2)."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _check("l1", l1)
        self.l2 = _check("l2", l2)

    def __call__(self, x):
        xp = get_backend().xp
        penalty = 0.0
        if self.l1:
            penalty += self.l1 * float(xp.sum(xp.abs(x)))
        if self.l2:
            penalty += self.l2 * float(xp.sum(x * x))
        return penalty

    def gradient(self, x):
        xp = get_backend().xp
        g = xp.zeros_like(x)
        if self.l1:
            g = g + self.l1 * xp.sign(x)  # d|x|/dx = sign(x) (0 at 0)
        if self.l2:
            g = g + (2.0 * self.l2) * x  # d(x**2)/dx = 2x
        return g.astype(x.dtype, copy=False)

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """penalty = l1 * sum(|x|)."""

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """penalty = l2 * sum(x**2)."""

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


l1, l2, l1_l2 = L1, L2, L1L2
_FAMILY = serialization_lib.family("regularizers", kind="regularizer")
_FAMILY.register((L1, L2, L1L2), aliases={"l1": L1, "l2": L2, "l1_l2": L1L2})


def serialize(regularizer):
    """``{"module", "class_name", "config", "registered_name"}`` as Keras 3 writes it (None stays None)."""
    return serialization_lib.serialize_keras_object(regularizer)


def deserialize(config, custom_objects=None):
    """Inverse of ``serialize`` (a name gives a default instance)."""
    return serialization_lib.deserialize_instance(config, custom_objects, _FAMILY)


def get(identifier):
    """A regularizer from None, a name ('l1', 'l2', 'l1_l2'), a config dict, an instance or a callable.

    Raises:
        ValueError: an unknown identifier.
    """
    return serialization_lib.get_object(identifier, _FAMILY, Regularizer)


def _gradient(regularizer, x):
    """d(penalty)/dx for a Regularizer, or through a GradientTape for a plain callable."""
    if hasattr(regularizer, "gradient"):
        return regularizer.gradient(x)
    with ops._suspend_tapes(), ops.GradientTape() as tape:
        tape.watch(x)
        penalty = regularizer(x)
    g = tape.gradient(penalty, x)
    return get_backend().xp.zeros_like(x) if g is None else g
