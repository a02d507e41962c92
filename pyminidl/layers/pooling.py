"""Pooling layers (Keras 3): max and average pooling in 1-D and 2-D, and their global forms.

Every layer runs on the backend's NHWC ops (``maxpool_forward`` / ``avgpool_forward`` and their
backwards): a 1-D input ``(batch, steps, channels)`` is pooled as ``(batch, 1, steps, channels)``,
a global pool is one window over the whole input, and ``channels_first`` inputs are moved to
channels_last and back.

Example:
    >>> MaxPooling2D(2)(np.zeros((8, 28, 28, 32), "float32")).shape
    (8, 14, 14, 32)
"""

import numbers

from pyminidl.layers._layer_call import PooledGradient
from pyminidl.layers.base import FORWARD_OPTIONS, InputSpec, Layer, _overrides_call

_DATA_FORMATS = ("channels_last", "channels_first")


def _int_tuple(value, n, what, minimum=1):
    """``value`` (an int or n ints) as a tuple of n ints >= ``minimum``, else Keras's ValueError."""
    items = (value,) * n if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value
    try:
        items = tuple(items)
    except TypeError:
        items = None
    ok = items is not None and len(items) == n and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in items)
    if not ok or any(v < minimum for v in items):
        cond = "value > 0" if minimum == 1 else f"value >= {minimum}"
        raise ValueError(f"The `{what}` argument must be a tuple of {n} integers. Received {what}={value!r}, "
                         f"including values that do not satisfy `{cond}`")
    return tuple(int(v) for v in items)


def _data_format(value):
    value = value or "channels_last"
    if value not in _DATA_FORMATS:
        raise ValueError("The `data_format` argument must be one of 'channels_first', 'channels_last'. "
                         f"Received: data_format={value!r}")
    return value


def _out_size(size, k, stride, padding):
    if size is None:
        return None
    if padding == "same":
        return -(-size // stride)
    return (size - k) // stride + 1 if size >= k else 0


class _SpatialLayout:
    """The move between a layer's input layout and the NHWC 4-D arrays the pooling ops take."""

    def _to_nhwc(self, x):
        if self.data_format == "channels_first":
            x = x.transpose((0,) + tuple(range(2, x.ndim)) + (1,))
        return x.reshape(x.shape[0], 1, x.shape[1], x.shape[2]) if self._rank == 1 else x

    def _from_nhwc(self, y4):
        y = y4.reshape(y4.shape[0], y4.shape[2], y4.shape[3]) if self._rank == 1 else y4
        if self.data_format == "channels_first":
            y = y.transpose((0, y.ndim - 1) + tuple(range(1, y.ndim - 1)))
        return y

    def _spatial(self, shape):
        return tuple(shape[2:]) if self.data_format == "channels_first" else tuple(shape[1:-1])

    def _channels(self, shape):
        return shape[1] if self.data_format == "channels_first" else shape[-1]


class _Pooling(_SpatialLayout, Layer):
    """Shared by the max and average pooling layers: the geometry, its checks and the layout."""

    _rank = 2
    _mode = "max"

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        n = self._rank
        self.pool_size = _int_tuple(pool_size, n, "pool_size")
        self.strides = self.pool_size if strides is None else _int_tuple(strides, n, "strides")
        padding = padding.lower() if isinstance(padding, str) else padding
        if padding not in ("valid", "same"):
            raise ValueError(f"The `padding` argument must be a string, one of 'valid', 'same'. "
                             f"Received: padding={padding!r}")
        self.padding = padding
        self.data_format = _data_format(data_format)
        self.input_spec = InputSpec(ndim=n + 2)
        self.built = True

    def _output_spatial(self, input_shape):
        """The output's spatial sizes; a ValueError naming the layer and the shapes when one would be empty."""
        spatial = self._spatial(input_shape)
        out = tuple(_out_size(s, k, st, self.padding) for s, k, st in zip(spatial, self.pool_size, self.strides))
        if any(o is not None and o < 1 for o in out):
            raise ValueError(f"Layer {self.name!r} ({type(self).__name__}): computed output size would be zero or "
                             f"negative. Received: inputs.shape={tuple(input_shape)}, pool_size={self.pool_size}, "
                             f"strides={self.strides}, padding={self.padding}.")
        return out

    def compute_output_shape(self, input_shape):
        out = self._output_spatial(input_shape)
        c = self._channels(input_shape)
        return (input_shape[0], c) + out if self.data_format == "channels_first" else (input_shape[0],) + out + (c,)

    @property
    def _takes_deferred_activation(self):
        """This layer's forward applies the activation the layer before it deferred
        (``FORWARD_OPTIONS.pool_activation``): max pooling's own forward does."""
        return self._mode == "max" and type(self).forward is _Pooling.forward and not _overrides_call(type(self))

    def _window(self):
        """The pool size and strides as the 2-D NHWC ops take them."""
        return ((1,) + self.pool_size, (1,) + self.strides) if self._rank == 1 else (self.pool_size, self.strides)

    def forward(self, x, training=False):
        handed = FORWARD_OPTIONS.pooled  # the convolution before this layer pooled for it (pool_layer)
        if handed is not None:
            FORWARD_OPTIONS.pooled = None
        else:
            self._output_spatial(tuple(x.shape))
        be, (k, s), pad = self.backend, self._window(), self.padding
        x4 = self._to_nhwc(x)
        shape4 = tuple(x4.shape)
        if self._mode == "max":
            takes_gradient = False
            if handed is not None:  # x is the pooled pre-activation, argmax indexes the layer's output
                y4, (argmax, shape4, takes_gradient) = x4, handed
            else:
                y4, argmax = be.maxpool_forward(x4, k, s, pad)
            act = FORWARD_OPTIONS.pool_activation  # the layer before deferred its activation to here
            owned = FORWARD_OPTIONS.owns_dy  # the gradient to come is ours to overwrite
            if act is not None:
                y4 = be.activation_forward(act[0], y4, out=y4, **act[1])

            def backward(dy):  # dL/dx: each dy to the input cell that was its window's max
                dy4 = self._to_nhwc(dy)
                if act is not None:  # y4 stands in for the pooled z: the same mask (relu, relu6)
                    dy4 = be.activation_backward(act[0], dy4, y4, y4, out=dy4 if owned else None, **act[1])
                if takes_gradient:  # the layer before sums its weight gradient from dy4 itself
                    return PooledGradient(dy4, argmax, (k, s, pad))
                return self._from_nhwc(be.maxpool_backward(dy4, argmax, shape4, k, s, pad))
        else:
            y4 = be.avgpool_forward(x4, k, s, pad)

            def backward(dy):  # dL/dx: dy / count spread over each window's input cells
                return self._from_nhwc(be.avgpool_backward(self._to_nhwc(dy), shape4, k, s, pad))

        return self._from_nhwc(y4), backward

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"pool_size": self.pool_size, "padding": self.padding, "strides": self.strides,
                    "data_format": self.data_format})
        return cfg


class MaxPooling2D(_Pooling):
    """Max pooling over 2-D windows: ``(batch, rows, cols, channels)`` -> ``(batch, out_rows, out_cols, channels)``.

    Gradients go to one input cell per window: the first maximum in row-major window order on ties.

    Args:
        pool_size: int or 2 ints, the window.
        strides: int or 2 ints (default ``pool_size``).
        padding: "valid" (windows inside the input) or "same" (out = ceil(size / stride), Keras's padding).
        data_format: "channels_last" (default) or "channels_first".

    Example:
        >>> MaxPooling2D(2)(np.zeros((1, 4, 4, 3), "float32")).shape
        (1, 2, 2, 3)
    """

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, name=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, name, **kwargs)


class AveragePooling2D(_Pooling):
    """Average pooling over 2-D windows (with "same" padding the padded cells are left out of the mean).

    Args:
        pool_size: int or 2 ints, the window.
        strides: int or 2 ints (default ``pool_size``).
        padding: "valid" or "same".
        data_format: "channels_last" (default) or "channels_first".

    Example:
        >>> AveragePooling2D(2)(np.zeros((1, 4, 4, 3), "float32")).shape
        (1, 2, 2, 3)
    """

    _mode = "avg"


class MaxPooling1D(_Pooling):
    """Max pooling over steps: ``(batch, steps, features)`` -> ``(batch, out_steps, features)``.

    Args:
        pool_size: int, the window.
        strides: int (default ``pool_size``).
        padding: "valid" or "same".
        data_format: "channels_last" (default) or "channels_first" (``(batch, features, steps)``).

    Example:
        >>> MaxPooling1D(2)(np.zeros((1, 10, 3), "float32")).shape
        (1, 5, 3)
    """

    _rank = 1

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, name=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, name, **kwargs)


class AveragePooling1D(_Pooling):
    """Average pooling over steps: ``(batch, steps, features)`` -> ``(batch, out_steps, features)``.

    Args:
        pool_size: int, the window.
        strides: int (default ``pool_size``).
        padding: "valid" or "same" (padded steps left out of the mean).
        data_format: "channels_last" (default) or "channels_first".

    Example:
        >>> AveragePooling1D(2)(np.zeros((1, 10, 3), "float32")).shape
        (1, 5, 3)
    """

    _rank = 1
    _mode = "avg"


class _GlobalPooling(_SpatialLayout, Layer):
    """One window over all steps (1-D) or rows and columns (2-D)."""

    _rank = 2
    _mode = "max"

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _data_format(data_format)
        self.keepdims = bool(keepdims)
        self.input_spec = InputSpec(ndim=self._rank + 2)
        self.built = True

    def compute_output_shape(self, input_shape):
        c = self._channels(input_shape)
        if not self.keepdims:
            return (input_shape[0], c)
        ones = (1,) * self._rank
        return (input_shape[0], c) + ones if self.data_format == "channels_first" else (input_shape[0],) + ones + (c,)

    def forward(self, x, training=False):
        if any(s == 0 for s in self._spatial(x.shape)):
            raise ValueError(f"Layer {self.name!r} ({type(self).__name__}) cannot pool an input with no steps or "
                             f"cells. Received: inputs.shape={tuple(x.shape)}")
        be, x4 = self.backend, self._to_nhwc(x)
        shape4 = tuple(x4.shape)
        k = shape4[1:3]  # the whole image: one window, 'valid'
        out_shape = self.compute_output_shape(tuple(x.shape))
        if self._mode == "max":
            y4, argmax = be.maxpool_forward(x4, k, k, "valid")
            grad = lambda dy4: be.maxpool_backward(dy4, argmax, shape4, k, k, "valid")  # noqa: E731
        else:
            y4 = be.avgpool_forward(x4, k, k, "valid")
            grad = lambda dy4: be.avgpool_backward(dy4, shape4, k, k, "valid")  # noqa: E731

        def backward(dy):  # dL/dx: max to each channel's argmax cell, avg spread as dy / (H * W)
            return self._from_nhwc(grad(dy.reshape(y4.shape)))

        return y4.reshape(out_shape), backward

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"data_format": self.data_format, "keepdims": self.keepdims})
        return cfg


class GlobalMaxPooling2D(_GlobalPooling):
    """The max over rows and columns: ``(batch, rows, cols, channels)`` -> ``(batch, channels)``.

    Args:
        data_format: "channels_last" (default) or "channels_first".
        keepdims: keep the pooled axes as size 1 (``(batch, 1, 1, channels)``).

    Example:
        >>> GlobalMaxPooling2D()(np.zeros((2, 5, 5, 3), "float32")).shape
        (2, 3)
    """


class GlobalAveragePooling2D(_GlobalPooling):
    """The mean over rows and columns: ``(batch, rows, cols, channels)`` -> ``(batch, channels)``.

    Args:
        data_format: "channels_last" (default) or "channels_first".
        keepdims: keep the pooled axes as size 1.

    Example:
        >>> GlobalAveragePooling2D()(np.zeros((2, 5, 5, 3), "float32")).shape
        (2, 3)
    """

    _mode = "avg"


class GlobalMaxPooling1D(_GlobalPooling):
    """The max over steps: ``(batch, steps, features)`` -> ``(batch, features)``.

    Args:
        data_format: "channels_last" (default) or "channels_first".
        keepdims: keep the steps axis as size 1.

    Example:
        >>> GlobalMaxPooling1D()(np.zeros((2, 7, 3), "float32")).shape
        (2, 3)
    """

    _rank = 1


class GlobalAveragePooling1D(_GlobalPooling):
    """The mean over steps: ``(batch, steps, features)`` -> ``(batch, features)``.

    Args:
        data_format: "channels_last" (default) or "channels_first".
        keepdims: keep the steps axis as size 1.

    Example:
        >>> GlobalAveragePooling1D()(np.zeros((2, 7, 3), "float32")).shape
        (2, 3)
    """

    _rank = 1
    _mode = "avg"


# Keras's aliases: the same classes under the short names.
MaxPool1D, MaxPool2D = MaxPooling1D, MaxPooling2D
AvgPool1D, AvgPool2D = AveragePooling1D, AveragePooling2D
GlobalMaxPool1D, GlobalMaxPool2D = GlobalMaxPooling1D, GlobalMaxPooling2D
GlobalAvgPool1D, GlobalAvgPool2D = GlobalAveragePooling1D, GlobalAveragePooling2D
