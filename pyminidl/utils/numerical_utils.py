"""Numerical utilities: one-hot labels, normalisation, global seeding.

Example:
    >>> pyminidl.utils.to_categorical([0, 2], num_classes=3)
    array([[1., 0., 0.],
           [0., 0., 1.]], dtype=float32)
"""

import random as _py_random

import numpy as np

from pyminidl import random as _random


def to_categorical(x, num_classes=None):
    """Integer class vector -> one-hot matrix, as ``keras.utils.to_categorical``.

    Args:
        x: integer labels of any shape; a trailing dimension of 1 is dropped.
        num_classes: number of classes (default: max(x) + 1).

    Returns:
        float32 array of shape ``x.shape + (num_classes,)``.

    Raises:
        ValueError: for negative labels or labels >= num_classes.

    Example:
        >>> to_categorical([1, 0], 2)
        array([[0., 1.], [1., 0.]], dtype=float32)
    """
    x = np.asarray(x)
    if x.dtype.kind == "f" and x.size and not np.all(x == np.floor(x)):
        raise ValueError(f"to_categorical expects integer labels. Received dtype={x.dtype} with fractional values")
    x = x.astype(np.int64)
    input_shape = x.shape
    if x.ndim > 1 and input_shape[-1] == 1:
        input_shape = input_shape[:-1]
    x = x.reshape(-1)
    if num_classes is None:
        num_classes = int(x.max()) + 1 if x.size else 0
    if x.size and (x.min() < 0 or x.max() >= num_classes):
        raise ValueError(f"to_categorical: labels must lie in [0, {num_classes}). "
                         f"Received values from {int(x.min())} to {int(x.max())}")
    out = np.zeros((x.size, num_classes), dtype=np.float32)
    out[np.arange(x.size), x] = 1.0
    return out.reshape(input_shape + (num_classes,))


def normalize(x, axis=-1, order=2):
    """Divide ``x`` by its ``order``-norm along ``axis`` (zero vectors stay zero), as ``keras.utils.normalize``.

    Example:
        >>> normalize(np.array([[3.0, 4.0]]))
        array([[0.6, 0.8]])
    """
    x = np.asarray(x)
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    axis = axis or -1
    return x / np.expand_dims(norm, axis)


def set_random_seed(seed):
    """Seed pyminidl's global generator, NumPy's global one and Python's ``random`` (Keras's rule).

    The same seed and thread count then give bit-identical training.

    Raises:
        ValueError: when seed is not an integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"Expected `seed` argument to be an integer. Received: seed={seed!r} (of type {type(seed)})")
    seed = int(seed)
    _random.seed(seed)
    np.random.seed(seed % 2**32)
    _py_random.seed(seed)

