"""Flatten and Reshape: views of the input with another shape (the batch axis is kept)."""

import math

from pyminidl.layers.base import InputSpec, Layer


class Flatten(Layer):
    """Flattens each sample: ``(batch, d1, d2, ...)`` -> ``(batch, d1 * d2 * ...)``.

    Args:
        data_format: "channels_last" (default) or "channels_first" (NCHW samples are moved to NHWC
            order first, as Keras does, so the flattened features match).

    Example:
        >>> Flatten()(np.zeros((2, 3, 4))).shape
        (2, 12)
    """

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        data_format = data_format or "channels_last"
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError("The `data_format` argument must be one of 'channels_first', 'channels_last'. "
                             f"Received: data_format={data_format!r}")
        self.data_format = data_format
        self.input_spec = InputSpec(min_ndim=1)
        self.built = True

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        size = None if any(s is None for s in rest) else math.prod(rest)
        return (input_shape[0], size)

    def forward(self, x, training=False):
        shape = x.shape
        if self.data_format == "channels_first" and x.ndim > 2:
            perm = (0,) + tuple(range(2, x.ndim)) + (1,)
            inverse = (0, x.ndim - 1) + tuple(range(1, x.ndim - 1))
            y = x.transpose(perm).reshape(shape[0], -1)
            moved = tuple(shape[i] for i in perm)
            return y, lambda dy: dy.reshape(moved).transpose(inverse)
        return x.reshape(shape[0], -1), lambda dy: dy.reshape(shape)

    def get_config(self):
        cfg = super().get_config()
        cfg["data_format"] = self.data_format
        return cfg


class Reshape(Layer):
    """Reshapes each sample to ``target_shape`` (one entry may be -1).

    Args:
        target_shape: the sample shape, without the batch axis.

    Example:
        >>> Reshape((3, -1))(np.zeros((2, 12))).shape
        (2, 3, 4)
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        try:
            target = tuple(int(s) for s in target_shape)
        except (TypeError, ValueError):
            raise ValueError(f"Invalid `target_shape` argument: {target_shape!r}. Expected a tuple of integers."
                             ) from None
        if sum(s == -1 for s in target) > 1 or any(s < -1 or s == 0 for s in target):
            raise ValueError(f"Invalid `target_shape` argument: {target_shape!r}. Expected positive integers "
                             "and at most one -1.")
        self.target_shape = target
        self.built = True

    def _resolve(self, input_shape):
        rest = input_shape[1:]
        if any(s is None for s in rest):
            return tuple(None if s == -1 else s for s in self.target_shape)
        size, known = math.prod(rest), math.prod(s for s in self.target_shape if s != -1)
        if -1 in self.target_shape:
            if known == 0 or size % known:
                raise self._size_error(input_shape)
            return tuple(size // known if s == -1 else s for s in self.target_shape)
        if known != size:
            raise self._size_error(input_shape)
        return self.target_shape

    def _size_error(self, input_shape):
        return ValueError("The total size of the tensor must be unchanged. Received: "
                          f"input_shape={tuple(input_shape[1:])}, target_shape={self.target_shape}")

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self._resolve(input_shape)

    def forward(self, x, training=False):
        shape = x.shape
        y = x.reshape((shape[0],) + self._resolve(tuple(shape)))
        return y, lambda dy: dy.reshape(shape)

    def get_config(self):
        cfg = super().get_config()
        cfg["target_shape"] = list(self.target_shape)
        return cfg
