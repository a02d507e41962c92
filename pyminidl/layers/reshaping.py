"""Flatten and Reshape (views of the input with another shape, the batch axis kept); ZeroPadding, Cropping
and UpSampling in 1-D and 2-D."""

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

    # Its dx is its dy reshaped (a view): the layer before may overwrite it when this layer's own dy
    # was fresh (FORWARD_OPTIONS.owns_dy, Sequential's _owned_gradients).
    _passes_dx = True

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


# ---------------------------------------------------------------- padding, upsampling, cropping (issue 9)
# Each moves channels_first input to channels_last, works on the spatial axes 1..rank, and moves back.


def _pairs(value, rank, what, cls_name):
    """``value`` as ``rank`` (before, after) pairs of ints >= 0: an int, ``rank`` ints, or ``rank`` pairs."""
    def bad():
        return ValueError(f"{cls_name}: `{what}` should be an int, a tuple of {rank} ints or a tuple of {rank} "
                          f"tuples of 2 non-negative ints. Received: {what}={value!r}")
    if isinstance(value, int) and not isinstance(value, bool):
        pairs = ((value, value),) * rank
    elif isinstance(value, (list, tuple)) and rank == 1 and len(value) == 2 and all(isinstance(v, int) for v in value):
        pairs = (tuple(value),)
    elif isinstance(value, (list, tuple)) and len(value) == rank:
        pairs = tuple((v, v) if isinstance(v, int) else tuple(v) if isinstance(v, (list, tuple)) else None
                      for v in value)
    else:
        raise bad()
    if any(p is None or len(p) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in p)
           for p in pairs):
        raise bad()
    return tuple((int(a), int(b)) for a, b in pairs)


def _check_format(data_format):
    data_format = data_format or "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError("The `data_format` argument must be one of 'channels_first', 'channels_last'. "
                         f"Received: data_format={data_format!r}")
    return data_format


class _Spatial(Layer):
    """Layout moves shared by the padding, upsampling and cropping layers (rank 1 or 2)."""

    _rank = 2

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _check_format(data_format)
        self.input_spec = InputSpec(ndim=self._rank + 2)
        self.built = True

    def _last(self, x):
        return x if self.data_format == "channels_last" else x.transpose((0,) + tuple(range(2, x.ndim)) + (1,))

    def _back(self, y):
        return y if self.data_format == "channels_last" else y.transpose((0, y.ndim - 1) + tuple(range(1, y.ndim - 1)))

    def _spatial(self, shape):
        return tuple(shape[2:]) if self.data_format == "channels_first" else tuple(shape[1:-1])

    def _with_spatial(self, shape, spatial):
        if self.data_format == "channels_first":
            return (shape[0], shape[1]) + tuple(spatial)
        return (shape[0],) + tuple(spatial) + (shape[-1],)

    def compute_output_shape(self, input_shape):
        return self._with_spatial(input_shape, [None if s is None else self._out(s, k)
                                                for k, s in enumerate(self._spatial(input_shape))])


class ZeroPadding2D(_Spatial):
    """Zeros around each image: ``(batch, rows, cols, channels)`` -> ``(batch, rows + top + bottom, cols + left + right, channels)``.

    Args:
        padding: int, 2 ints (symmetric rows, cols) or ((top, bottom), (left, right)).
        data_format: "channels_last" (default) or "channels_first".

    Example:
        >>> ZeroPadding2D(1)(np.ones((1, 2, 2, 1), "float32")).shape
        (1, 4, 4, 1)
    """

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(data_format, **kwargs)
        self.padding = _pairs(padding, self._rank, "padding", type(self).__name__)

    def _out(self, size, k):
        return size + sum(self.padding[k])

    def forward(self, x, training=False):
        xl = self._last(x)
        spatial = tuple(xl.shape[1:-1])
        out = tuple(s + a + b for s, (a, b) in zip(spatial, self.padding))
        y = self.backend.xp.zeros((xl.shape[0],) + out + (xl.shape[-1],), dtype=x.dtype)
        inner = (slice(None),) + tuple(slice(a, a + s) for s, (a, _) in zip(spatial, self.padding))
        y[inner] = xl
        return self._back(y), lambda dy: self._back(self._last(dy)[inner])  # dL/dx: the unpadded part of dy

    def get_config(self):
        cfg = super().get_config()
        pad = self.padding[0] if self._rank == 1 else self.padding
        cfg.update({"padding": pad, "data_format": self.data_format})
        return cfg


class ZeroPadding1D(ZeroPadding2D):
    """Zeros before and after the steps: ``(batch, steps, features)`` -> ``(batch, steps + left + right, features)``.

    Args:
        padding: int or (left, right).
        data_format: "channels_last" (default) or "channels_first".

    Example:
        >>> ZeroPadding1D(2)(np.ones((1, 3, 4), "float32")).shape
        (1, 7, 4)
    """

    _rank = 1

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(padding, data_format, **kwargs)


class Cropping2D(_Spatial):
    """Crops rows and columns off each image.

    Args:
        cropping: int, 2 ints (symmetric rows, cols) or ((top, bottom), (left, right)).
        data_format: "channels_last" (default) or "channels_first".

    Raises:
        ValueError: cropping that leaves no rows or columns (naming the layer and the shapes).

    Example:
        >>> Cropping2D(((1, 0), (0, 2)))(np.ones((1, 4, 4, 1), "float32")).shape
        (1, 3, 2, 1)
    """

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(data_format, **kwargs)
        self.cropping = _pairs(cropping, self._rank, "cropping", type(self).__name__)

    def _out(self, size, k):
        out = size - sum(self.cropping[k])
        if out < 1:
            raise ValueError(f"Layer {self.name!r} ({type(self).__name__}): cropping={self.cropping} leaves nothing "
                             f"of an input with spatial size {size} on axis {k}")
        return out

    def forward(self, x, training=False):
        self.compute_output_shape(tuple(x.shape))  # the checks, before any slicing
        xl = self._last(x)
        spatial = tuple(xl.shape[1:-1])
        inner = (slice(None),) + tuple(slice(a, s - b) for s, (a, b) in zip(spatial, self.cropping))
        xp, shape, dtype = self.backend.xp, tuple(xl.shape), x.dtype

        def backward(dy):  # dL/dx: dy in the kept cells, zeros in the cropped ones
            dx = xp.zeros(shape, dtype=dtype)
            dx[inner] = self._last(dy)
            return self._back(dx)

        return self._back(xl[inner]), backward

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"cropping": self.cropping[0] if self._rank == 1 else self.cropping})
        if self._rank == 2:
            cfg["data_format"] = self.data_format
        return cfg


class Cropping1D(Cropping2D):
    """Crops steps off the start and end: ``(batch, steps, features)`` -> ``(batch, steps - left - right, features)``.

    Args:
        cropping: int or (left, right).

    Example:
        >>> Cropping1D((1, 2))(np.ones((1, 6, 3), "float32")).shape
        (1, 3, 3)
    """

    _rank = 1

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(cropping, None, **kwargs)


class UpSampling2D(_Spatial):
    """Scales images up by integer factors: rows * size[0], cols * size[1].

    Args:
        size: int or 2 ints.
        data_format: "channels_last" (default) or "channels_first".
        interpolation: "nearest" (repeat each cell) or "bilinear" (half-pixel centres, as Keras's resize).

    Example:
        >>> UpSampling2D(2)(np.ones((1, 3, 3, 1), "float32")).shape
        (1, 6, 6, 1)
    """

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(data_format, **kwargs)
        sizes = (size,) * self._rank if isinstance(size, int) and not isinstance(size, bool) else tuple(size)
        if len(sizes) != self._rank or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
            raise ValueError(f"{type(self).__name__}: `size` must be an int or a tuple of {self._rank} ints >= 1. "
                             f"Received: size={size!r}")
        if interpolation not in ("nearest", "bilinear") or (self._rank == 1 and interpolation != "nearest"):
            raise ValueError(f"{type(self).__name__}: `interpolation` must be 'nearest' or 'bilinear'. "
                             f"Received: interpolation={interpolation!r}")
        self.size, self.interpolation = tuple(int(s) for s in sizes), interpolation

    def _out(self, s, k):
        return s * self.size[k]

    def forward(self, x, training=False):
        xp, xl = self.backend.xp, self._last(x)
        spatial = tuple(xl.shape[1:-1])
        if self.interpolation == "bilinear":  # Keras's resize: half-pixel centres, no antialias
            be, out = self.backend, tuple(s * f for s, f in zip(spatial, self.size))
            y = be.resize_forward(xl, out, "bilinear")
            return self._back(y), lambda dy: self._back(be.resize_backward(self._last(dy), spatial, "bilinear"))
        y = xl
        for axis, f in enumerate(self.size, start=1):
            y = xp.repeat(y, f, axis=axis)

        def backward(dy):  # dL/dx: the sum of dy over each cell's copies
            d = self._last(dy)
            for axis, (s, f) in enumerate(zip(spatial, self.size), start=1):
                d = d.reshape(d.shape[:axis] + (s, f) + d.shape[axis + 1:]).sum(axis=axis + 1)
            return self._back(d)

        return self._back(y), backward

    def get_config(self):
        cfg = super().get_config()
        if self._rank == 1:
            cfg["size"] = self.size[0]
        else:
            cfg.update({"size": self.size, "data_format": self.data_format, "interpolation": self.interpolation})
        return cfg


class UpSampling1D(UpSampling2D):
    """Repeats each step ``size`` times: ``(batch, steps, features)`` -> ``(batch, steps * size, features)``.

    Args:
        size: int.

    Example:
        >>> UpSampling1D(3)(np.ones((1, 2, 4), "float32")).shape
        (1, 6, 4)
    """

    _rank = 1

    def __init__(self, size=2, **kwargs):
        super().__init__(size, None, "nearest", **kwargs)
