"""Variable: a layer weight's one record: its array, its stable path and how training treats it.

The array is a plain backend ``ndarray`` whose identity never changes: ``assign`` (and
``set_weights``, and assigning to a layer attribute such as ``layer.kernel``) copies into it, so
the layer's forward, the trainer's plan and the optimizer always see the same storage. The
``path`` ("dense/kernel") names the weight across a process's life; optimizers key their slots by it.

Example:
    >>> layer = Dense(2); layer.build((None, 3))
    >>> layer._tracked_variables()[0].path
    'dense/kernel'
"""

from pyminidl.backend import get_backend


class Variable:
    """A tracked weight (Keras 3 ``keras.Variable``'s record: ``name``, ``path``, ``trainable``).

    Args:
        value: the backend array (owned, contiguous, writable).
        name: the weight's name within its layer ("kernel").
        path: "<layer name>/<name>", fixed when the weight is created.
        trainable: whether training updates it.
        regularizer: a penalty added to the layer's losses, or None.
        constraint: a projection applied after each update, or None.
    """

    __slots__ = ("name", "path", "value", "trainable", "regularizer", "constraint")

    def __init__(self, value, name, path, trainable=True, regularizer=None, constraint=None):
        self.value, self.name, self.path = value, name, path
        self.trainable, self.regularizer, self.constraint = trainable, regularizer, constraint

    @property
    def shape(self):
        return tuple(self.value.shape)

    @property
    def dtype(self):
        return self.value.dtype

    def assign(self, value):
        """Copy ``value`` into the variable's array (its identity stays).

        Raises:
            ValueError: the shape differs from the variable's.
        """
        be = get_backend()
        new = be.asarray(value)
        if tuple(new.shape) != self.shape:
            raise ValueError(
                f"The shape of the target variable and the shape of the target value in `variable.assign(value)` "
                f"must match. variable.path={self.path!r}, variable.shape={self.shape}, Received: "
                f"value.shape={tuple(new.shape)}."
            )
        self.value[...] = be.asarray(new, dtype=self.value.dtype)
        return self.value

    def numpy(self):
        """A NumPy copy of the value."""
        return get_backend().to_numpy(self.value).copy()

    def __array__(self, dtype=None, copy=None):
        out = get_backend().to_numpy(self.value)
        return out if dtype is None else out.astype(dtype)

    def __repr__(self):
        return f"<Variable path={self.path}, shape={self.shape}, dtype={self.dtype}>"


def key_of(var):
    """The optimizer's key for ``var``: its path when it has one, else the array's identity."""
    path = getattr(var, "path", None)
    return path if path is not None else id(var)


def value_of(var):
    """The array of a Variable, or ``var`` itself when it is already an array."""
    return var.value if type(var) is Variable else var


__all__ = ["Variable"]
