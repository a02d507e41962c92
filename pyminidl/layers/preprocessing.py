"""Deterministic preprocessing layers (Keras 3): Rescaling, Resizing, CenterCrop, Normalization.

Each is a linear map of its input, so each backward is exact (dx = A^T dy). Images are NHWC
("channels_last"); a single image (H, W, C) is accepted as Keras does, and ``data_format=
"channels_first"`` moves the channel axis last around the same code.

Example:
    >>> model = Sequential([Input((32, 32, 3)), Rescaling(1 / 255), Resizing(16, 16), Flatten(), Dense(10)])
    >>> model(np.zeros((2, 32, 32, 3), "uint8")).shape
    (2, 10)
"""

import numbers

import numpy as np

from pyminidl.backend import get_backend
from pyminidl.backend import _image_ops as imops
from pyminidl.layers.base import FORWARD_OPTIONS, Layer

_EPSILON = 1e-7  # keras.config.epsilon(): the floor of the standard deviation


def _data_format(value, who):
    value = value or "channels_last"
    if value not in ("channels_last", "channels_first"):
        raise ValueError(f"{who}: `data_format` must be 'channels_last' or 'channels_first'. "
                         f"Received: data_format={value!r}")
    return value


class ImageLayer(Layer):
    """Shared plumbing of the image layers: NHWC batches in, the caller's layout and rank out."""


    def _as_nhwc(self, x):
        """(x as (N, H, W, C), restore) where restore(y) undoes the batching and layout."""
        if x.ndim not in (3, 4):
            raise ValueError(f"{type(self).__name__}: expected images of rank 3 (H, W, C) or 4 (N, H, W, C). "
                             f"Received: shape={tuple(x.shape)}")
        unbatched = x.ndim == 3
        first = getattr(self, "data_format", "channels_last") == "channels_first"
        if unbatched:
            x = x[None]
        if first:
            x = x.transpose(0, 2, 3, 1)

        def restore(y):
            if first:
                y = y.transpose(0, 3, 1, 2)
            return y[0] if unbatched else y

        return x, restore

    def _spatial_shape(self, input_shape, height, width):
        shape = list(input_shape)
        hi = -2 if getattr(self, "data_format", "channels_last") == "channels_first" else -3
        shape[hi], shape[hi + 1] = height, width
        return tuple(shape)

    def _linear(self, x, need_dx, fn, fn_backward):
        """Apply ``fn`` to the NHWC view of x; backward applies ``fn_backward`` (its adjoint) to dy."""
        x4, restore = self._as_nhwc(x)
        y = restore(fn(x4))
        if not need_dx:
            return y, lambda dy: None
        in_shape = x4.shape

        def backward(dy):
            dy4, _ = self._as_nhwc(dy)
            return restore(fn_backward(dy4, in_shape))

        return y, backward


class Rescaling(Layer):
    """y = x * scale + offset (e.g. ``scale=1/255`` brings [0, 255] pixels to [0, 1]).

    Args:
        scale: a float, or one per channel (broadcast against the last axis).
        offset: a float, or one per channel.

    Example:
        >>> Rescaling(1 / 127.5, offset=-1)(np.array([[0, 255]], "uint8"))
        array([[-1.,  1.]], dtype=float32)
    """


    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        for name, v in (("scale", scale), ("offset", offset)):
            try:
                arr = np.asarray(v, dtype=np.float64)
            except (TypeError, ValueError):
                arr = None
            if arr is None or not np.all(np.isfinite(arr)):
                raise ValueError(f"Rescaling: `{name}` must be a finite float or a list of floats. "
                                 f"Received: {name}={v!r}")
        self.scale, self.offset = scale, offset
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x, training=False):
        need_dx = FORWARD_OPTIONS.need_dx  # False as a model's first layer: no input gradient
        xp = get_backend().xp
        scale = xp.asarray(self.scale, dtype=x.dtype)
        offset = xp.asarray(self.offset, dtype=x.dtype)
        y = x * scale + offset
        if not need_dx:
            return y, lambda dy: None
        return y, lambda dy: dy * scale  # dL/dx = dy * scale

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"scale": _plain(self.scale), "offset": _plain(self.offset)})
        return cfg


def _plain(v):
    return v.tolist() if hasattr(v, "tolist") else v


class Resizing(ImageLayer):
    """Resizes images to (height, width), as Keras's Resizing on PyTorch.

    Args:
        height, width: the output size.
        interpolation: "bilinear" (half-pixel centres, no antialias), "nearest" or "area".
        crop_to_aspect_ratio: crop the largest centred window with the target aspect ratio first.
        pad_to_aspect_ratio: pad (with ``fill_value``) to the target aspect ratio first instead.
        fill_mode: "constant" (the only padding mode, as in Keras).
        fill_value: the padding value.
        antialias: False only (Keras's default; no antialiasing filter is implemented).
        data_format: "channels_last" (default) or "channels_first".

    Example:
        >>> Resizing(2, 2)(np.arange(16, dtype="float32").reshape(1, 4, 4, 1))[0, ..., 0]
        array([[ 2.5,  4.5],
               [10.5, 12.5]], dtype=float32)
    """

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False,
                 pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0, antialias=False,
                 data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.height, self.width = imops.check_size((height, width), "Resizing", "(height, width)")
        if interpolation not in imops.RESIZE_INTERPOLATIONS:
            raise ValueError(f"Resizing: `interpolation` must be one of {imops.RESIZE_INTERPOLATIONS}. "
                             f"Received: interpolation={interpolation!r}")
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise ValueError("Only one of `pad_to_aspect_ratio` & `crop_to_aspect_ratio` can be `True`.")
        if fill_mode != "constant":
            raise ValueError(f"Resizing: only fill_mode='constant' is supported. Received: fill_mode={fill_mode!r}")
        if antialias:
            raise ValueError("Resizing: antialias=True is not supported (Keras's default is False). "
                             f"Received: antialias={antialias!r}")
        self.interpolation = interpolation
        self.crop_to_aspect_ratio, self.pad_to_aspect_ratio = bool(crop_to_aspect_ratio), bool(pad_to_aspect_ratio)
        self.fill_mode, self.fill_value, self.antialias = fill_mode, float(fill_value), False
        self.data_format = _data_format(data_format, "Resizing")
        self.built = True

    def compute_output_shape(self, input_shape):
        return self._spatial_shape(input_shape, self.height, self.width)

    def forward(self, x, training=False):
        need_dx = FORWARD_OPTIONS.need_dx  # False as a model's first layer: no input gradient
        return self._linear(x, need_dx, self._apply, self._apply_backward)

    def _apply(self, x):
        return resize_images(get_backend().xp, x, (self.height, self.width), self.interpolation,
                             self.crop_to_aspect_ratio, self.pad_to_aspect_ratio, self.fill_value)

    def _apply_backward(self, dy, in_shape):
        return resize_images_backward(get_backend().xp, dy, in_shape, self.interpolation,
                                      self.crop_to_aspect_ratio, self.pad_to_aspect_ratio)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"height": self.height, "width": self.width, "interpolation": self.interpolation,
                    "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
                    "pad_to_aspect_ratio": self.pad_to_aspect_ratio, "fill_mode": self.fill_mode,
                    "fill_value": self.fill_value, "antialias": self.antialias, "data_format": self.data_format})
        return cfg


def resize_images(xp, x, size, interpolation="bilinear", crop_to_aspect_ratio=False, pad_to_aspect_ratio=False,
                  fill_value=0.0):
    """x: (N, H, W, C) floating; crops or pads to the target aspect ratio when asked, then resizes."""
    th, tw = size
    h, w = x.shape[1:3]
    if crop_to_aspect_ratio:
        top, left, ch, cw = imops.aspect_crop_box(h, w, th, tw)
        x = x[:, top:top + ch, left:left + cw]
    elif pad_to_aspect_ratio:
        top, left, ph, pw = imops.aspect_pad_box(h, w, th, tw)
        canvas = xp.full((x.shape[0], h + 2 * top, w + 2 * left, x.shape[3]), fill_value, dtype=x.dtype)
        canvas[:, top:top + h, left:left + w] = x  # Keras pads both sides by the same amount
        x = canvas
    return get_backend().resize_forward(x, (th, tw), interpolation)


def resize_images_backward(xp, dy, in_shape, interpolation, crop_to_aspect_ratio=False, pad_to_aspect_ratio=False):
    """The adjoint of ``resize_images``: dy (N, th, tw, C) -> dx of ``in_shape``."""
    n, h, w, c = in_shape
    th, tw = dy.shape[1:3]
    if crop_to_aspect_ratio:
        top, left, ch, cw = imops.aspect_crop_box(h, w, th, tw)
        dx = xp.zeros(in_shape, dtype=dy.dtype)
        dx[:, top:top + ch, left:left + cw] = get_backend().resize_backward(dy, (ch, cw), interpolation)
        return dx
    if pad_to_aspect_ratio:
        top, left, _, _ = imops.aspect_pad_box(h, w, th, tw)
        d = get_backend().resize_backward(dy, (h + 2 * top, w + 2 * left), interpolation)
        return d[:, top:top + h, left:left + w]
    return get_backend().resize_backward(dy, (h, w), interpolation)


class CenterCrop(ImageLayer):
    """Crops the central (height, width) window; a smaller input is resized as ``smart_resize`` does.

    Args:
        height, width: the output size.
        data_format: "channels_last" (default) or "channels_first".

    Example:
        >>> CenterCrop(2, 2)(np.arange(16, dtype="float32").reshape(1, 4, 4, 1))[0, ..., 0]
        array([[ 5.,  6.],
               [ 9., 10.]], dtype=float32)
    """

    def __init__(self, height, width, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.height, self.width = imops.check_size((height, width), "CenterCrop", "(height, width)")
        self.data_format = _data_format(data_format, "CenterCrop")
        self.built = True

    def compute_output_shape(self, input_shape):
        return self._spatial_shape(input_shape, self.height, self.width)

    def forward(self, x, training=False):
        need_dx = FORWARD_OPTIONS.need_dx  # False as a model's first layer: no input gradient
        return self._linear(x, need_dx, self._apply, self._apply_backward)

    def _box(self, h, w):
        return (h - self.height) // 2, (w - self.width) // 2

    def _apply(self, x):
        h, w = x.shape[1:3]
        if h < self.height or w < self.width:  # Keras: smart_resize (crop to aspect, bilinear)
            return resize_images(get_backend().xp, x, (self.height, self.width), "bilinear", True)
        top, left = self._box(h, w)
        return x[:, top:top + self.height, left:left + self.width].copy()

    def _apply_backward(self, dy, in_shape):
        xp = get_backend().xp
        h, w = in_shape[1:3]
        if h < self.height or w < self.width:
            return resize_images_backward(xp, dy, in_shape, "bilinear", True)
        top, left = self._box(h, w)
        dx = xp.zeros(in_shape, dtype=dy.dtype)  # dL/dx: dy inside the window, 0 outside
        dx[:, top:top + self.height, left:left + self.width] = dy
        return dx

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"height": self.height, "width": self.width, "data_format": self.data_format})
        return cfg


class Normalization(Layer):
    """y = (x - mean) / max(sqrt(variance), 1e-7) per feature along ``axis`` (Keras 3).

    ``adapt(data)`` computes the mean and the (population) variance of ``data`` over every axis but
    ``axis`` in one streaming pass over its batches, combining them as Keras does (Chan et al.).

    Args:
        axis: the feature axis (int), axes (tuple) or None (one scalar mean and variance).
        mean, variance: given statistics (broadcast to the feature shape); then no ``adapt`` is needed.
        invert: apply the inverse, y = mean + x * std (e.g. to de-normalise predictions).

    Example:
        >>> layer = Normalization()
        >>> layer.adapt(np.array([[0.0, 10.0], [2.0, 30.0]]))
        >>> layer(np.array([[1.0, 20.0]]))   # [[0., 0.]]
    """


    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, numbers.Integral):
            axis = (int(axis),)
        else:
            axis = tuple(int(a) for a in axis)
        self.axis = axis
        if (mean is None) != (variance is None):
            raise ValueError("When setting values directly, both `mean` and `variance` must be set. "
                             f"Received: mean={mean!r} and variance={variance!r}")
        self.input_mean, self.input_variance = mean, variance
        self.invert = bool(invert)
        self.mean = self.variance = None

    def _feature_axes(self, ndim):
        axes = tuple(a % ndim if -ndim <= a < ndim else None for a in self.axis)
        if None in axes:
            raise ValueError(f"Normalization: axis={self.axis} is out of range for input of rank {ndim}.")
        return axes

    def _broadcast_shape(self, shape):
        axes = self._feature_axes(len(shape))
        return tuple(shape[i] if i in axes else 1 for i in range(len(shape)))

    def build(self, input_shape):
        shape = tuple(input_shape)
        bshape = self._broadcast_shape(shape)
        if any(s is None for s in bshape):
            raise ValueError(f"Normalization: the feature axes {self.axis} need known sizes. Received: "
                             f"input_shape={shape}")
        self._bshape = bshape
        self.adapt_mean = self.add_weight(name="mean", shape=bshape, initializer="zeros", trainable=False)
        self.adapt_variance = self.add_weight(name="variance", shape=bshape, initializer="ones", trainable=False)
        if self.input_mean is not None:
            xp = get_backend().xp
            self.adapt_mean[...] = xp.broadcast_to(xp.asarray(self.input_mean, dtype=self.adapt_mean.dtype), bshape)
            self.adapt_variance[...] = xp.broadcast_to(xp.asarray(self.input_variance,
                                                                  dtype=self.adapt_variance.dtype), bshape)
        self.mean, self.variance = self.adapt_mean, self.adapt_variance

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def adapt(self, data, batch_size=None, steps=None):
        """Set ``mean`` and ``variance`` from ``data``: an array, or a Dataset (or iterable) of batches.

        Raises:
            ValueError: no samples in ``data``, or a batch whose feature shape differs from the first.
            TypeError: elements that are tuples (pass ``ds.map(lambda x, y: x)``).
        """
        count, mean, var = 0, None, None
        for step, batch in enumerate(_adapt_batches(data, batch_size)):
            if steps is not None and step >= steps:
                break
            batch = np.asarray(get_backend().to_numpy(batch) if hasattr(batch, "get") else batch, dtype=np.float64)
            if batch.size == 0:
                continue
            axes = self._feature_axes(batch.ndim)
            reduce = tuple(i for i in range(batch.ndim) if i not in axes)
            n = int(np.prod([batch.shape[i] for i in reduce])) if reduce else 1
            b_mean = batch.mean(axis=reduce, keepdims=True)
            b_var = batch.var(axis=reduce, keepdims=True)
            if mean is None:
                count, mean, var = n, b_mean, b_var
                continue
            if b_mean.shape != mean.shape:
                raise ValueError(f"Normalization.adapt: a batch has feature shape {b_mean.shape}, the first "
                                 f"had {mean.shape}. Received batch shape {batch.shape}.")
            count += n
            w = n / count  # the lack-of-fit combination of (mean, var) pairs, Keras's update
            new_mean = mean * (1.0 - w) + b_mean * w
            var = (var + (mean - new_mean) ** 2) * (1.0 - w) + (b_var + (b_mean - new_mean) ** 2) * w
            mean = new_mean
        if mean is None:
            raise ValueError(f"Normalization.adapt: `data` holds no samples, so no mean or variance can be "
                             f"computed. Received: {_describe(data)}")
        self._set_statistics(mean, var)

    def _set_statistics(self, mean, var):
        if not self.built:
            axes = self._feature_axes(mean.ndim)
            self.build(tuple(s if i in axes else None for i, s in enumerate(mean.shape)))
        if tuple(mean.shape) != tuple(self._bshape):
            raise ValueError(f"Normalization.adapt: data with feature shape {mean.shape} does not match the "
                             f"layer's {self._bshape}")
        xp = get_backend().xp
        self.adapt_mean[...] = xp.asarray(mean, dtype=self.adapt_mean.dtype)
        self.adapt_variance[...] = xp.asarray(var, dtype=self.adapt_variance.dtype)

    def forward(self, x, training=False):
        need_dx = FORWARD_OPTIONS.need_dx  # False as a model's first layer: no input gradient
        xp = get_backend().xp
        mean = self.adapt_mean.astype(x.dtype, copy=False)
        std = xp.maximum(xp.sqrt(self.adapt_variance.astype(x.dtype, copy=False)), x.dtype.type(_EPSILON))
        if self.invert:
            y, scale = mean + x * std, std
        else:
            y, scale = (x - mean) / std, 1.0 / std
        if not need_dx:
            return y, lambda dy: None
        return y, lambda dy: dy * scale  # dL/dx = dy / std (dy * std when inverted)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"axis": self.axis[0] if len(self.axis) == 1 else list(self.axis) or None,
                    "invert": self.invert, "mean": _plain(self.input_mean), "variance": _plain(self.input_variance)})
        return cfg


def _describe(data):
    shape = getattr(data, "shape", None)
    return f"{type(data).__name__} with shape {tuple(shape)}" if shape is not None else repr(data)


def _adapt_batches(data, batch_size):
    """Batches of ``data``: an array in chunks (so the float64 copy stays small), else its elements."""
    if isinstance(data, (tuple, dict)):
        raise TypeError("Normalization.adapt takes the features alone (an array or a dataset of arrays). "
                        f"Received a {type(data).__name__}; for (x, y) datasets pass ds.map(lambda x, y: x).")
    if hasattr(data, "shape") and hasattr(data, "ndim"):
        if data.ndim == 0 or data.shape[0] == 0:
            yield data.reshape(0) if data.ndim == 0 else data
            return
        step = int(batch_size) if batch_size else max(1, (1 << 22) // max(1, int(np.prod(data.shape[1:]))))
        for i in range(0, data.shape[0], step):
            yield data[i:i + step]
        return
    if isinstance(data, list):
        yield np.asarray(data)
        return
    for element in data:
        if isinstance(element, (tuple, dict)):
            raise TypeError("Normalization.adapt takes a dataset of feature arrays. Received elements of type "
                            f"{type(element).__name__}; for (x, y) datasets pass ds.map(lambda x, y: x).")
        yield element
