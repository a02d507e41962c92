"""Weight and activity regularizers (Keras 3): a penalty ``reg(x)`` and its gradient ``reg.gradient(x)``.

Example:
    >>> reg = regularizers.L2(0.01)
    >>> reg(np.ones((2, 2)))
    0.04
"""

from pyminidl.backend import get_backend


def _check(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"Value for argument `{name}` must be a non-negative float. Received: {name}={value!r}")
    return float(value)


class Regularizer:
    """Base class: ``__call__(x) -> float`` penalty and ``gradient(x) -> array`` d(penalty)/dx."""

    def __call__(self, x):
        raise NotImplementedError

    def gradient(self, x):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError

    @classmethod
    def from_config(cls, config_dict):
        return cls(**config_dict)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


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


_ALIASES = {"l1": L1, "l2": L2, "l1_l2": L1L2, "L1": L1, "L2": L2, "L1L2": L1L2}
l1, l2, l1_l2 = L1, L2, L1L2


def serialize(regularizer):
    """``{"module", "class_name", "config"}`` as Keras 3 writes it (None stays None)."""
    if regularizer is None:
        return None
    return {"module": "keras.regularizers", "class_name": type(regularizer).__name__,
            "config": regularizer.get_config(), "registered_name": None}


def deserialize(config_dict):
    """Inverse of ``serialize``."""
    return get(config_dict)


def get(identifier):
    """A regularizer from None, a name ('l1', 'l2', 'l1_l2'), a config dict, an instance or a callable.

    Raises:
        ValueError: an unknown identifier.
    """
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, dict):
        cls = _ALIASES.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"Unknown regularizer: {identifier.get('class_name')!r}")
        return cls.from_config(dict(identifier.get("config") or {}))
    if isinstance(identifier, str):
        cls = _ALIASES.get(identifier)
        if cls is None:
            raise ValueError(
                f"Could not interpret regularizer identifier: {identifier!r}. Expected one of 'l1', 'l2', 'l1_l2'."
            )
        return cls()
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret regularizer identifier: {identifier!r}")


def _gradient(regularizer, x):
    """d(penalty)/dx for a Regularizer, or through a GradientTape for a plain callable."""
    if hasattr(regularizer, "gradient"):
        return regularizer.gradient(x)
    from pyminidl import ops

    with ops._suspend_tapes(), ops.GradientTape() as tape:
        tape.watch(x)
        penalty = regularizer(x)
    g = tape.gradient(penalty, x)
    return get_backend().xp.zeros_like(x) if g is None else g
