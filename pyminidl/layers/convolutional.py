"""Convolution layers: Conv1D/2D, their transposes, DepthwiseConv1D/2D and SeparableConv1D/2D.

Every layer runs channels_last (NHWC) kernels with Keras's kernel layout (..., in, out); a
``data_format='channels_first'`` layer transposes its input to channels_last and its output
back. Each forward is one backend call (two for the separable layers) and the fused
activation, as in Dense; each backward one call per convolution.
"""

import numbers

from pyminidl import activations as activations_module
from pyminidl import initializers, regularizers
from pyminidl.backend import get_backend
from pyminidl.layers._layer_call import PooledGradient
from pyminidl.layers.base import FORWARD_OPTIONS, InputSpec, Layer, _overrides_call

_PADDINGS = ("valid", "same", "causal")

# The built-in activations (as activations._resolve names them) whose derivative the backend
# computes from the output alone, passed as both x and y: relu (without slope or threshold),
# elu and selu are positive exactly where their input is, and sigmoid, tanh and exponential
# read only y. Each maps to its backend kind and parameters.
_OUTPUT_ONLY = {"relu": ("relu", {}), "relu6": ("relu", {"max_value": 6.0}), "elu": ("elu", {}),
                "selu": ("selu", {}), "sigmoid": ("sigmoid", {}), "tanh": ("tanh", {}),
                "exponential": ("exponential", {})}


# Activations that commute with a max in floating point too (monotone, exact: act(max(z)) ==
# max(act(z))) and whose derivative at a window's arg-max reads the pooled value: a max pooling
# after the layer may apply them to its 4x smaller output (Sequential.forward pairs the layers).
_MAX_COMMUTING = ("relu", "relu6")


def _no_release():
    """The release of a dz that holds no buffer of the layer."""


def _int_tuple(value, rank, name, allow_zero=False):
    """Keras's standardize_tuple: an int or `rank` ints, each > 0 (>= 0 with allow_zero)."""
    values = (value,) * rank if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value
    try:
        values = tuple(values)
    except TypeError:
        values = None
    ok = values is not None and len(values) == rank and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and (v >= 0 if allow_zero else v > 0)
        for v in values)
    if not ok:
        need = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"The `{name}` argument must be a tuple of {rank} integers, each {need}. "
                         f"Received {name}={value!r}")
    return tuple(int(v) for v in values)


def _check_callable(**constraints):
    for key, value in constraints.items():
        if value is not None and not callable(value):
            raise ValueError(f"`{key}` must be a callable (w -> projected w) or None. Received: {key}={value!r}")


def _output_length(size, k, s, d, padding):
    """Keras's conv_output_length (None stays None)."""
    if size is None:
        return None
    k_eff = (k - 1) * d + 1
    if padding == "valid":
        return (size - k_eff) // s + 1 if size >= k_eff else 0
    return -(-size // s)


def _transpose_length(size, k, s, d, padding, output_padding):
    """Keras's deconv_output_length (None stays None)."""
    if size is None:
        return None
    k_eff = (k - 1) * d + 1
    if output_padding is None:
        return size * s + max(k_eff - s, 0) if padding == "valid" else size * s
    pad = k_eff // 2 if padding == "same" else 0
    return (size - 1) * s + k_eff - 2 * pad + output_padding


class _BaseConv(Layer):
    """Arguments, shapes and layout shared by every convolution layer (``rank`` spatial axes)."""

    def __init__(self, rank, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 activation=None, use_bias=True, bias_initializer="zeros", bias_regularizer=None,
                 activity_regularizer=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.rank = rank
        self.kernel_size = _int_tuple(kernel_size, rank, "kernel_size")
        self.strides = _int_tuple(strides, rank, "strides")
        self.dilation_rate = _int_tuple(dilation_rate, rank, "dilation_rate")
        self.padding = padding.lower() if isinstance(padding, str) else padding
        if self.padding not in _PADDINGS or (self.padding == "causal" and not self._causal_ok()):
            allowed = "'valid', 'same' or 'causal'" if self._causal_ok() else "'valid' or 'same'"
            raise ValueError(f"The `padding` argument must be one of {allowed}. Received: padding={padding!r}")
        self.data_format = "channels_last" if data_format is None else str(data_format).lower()
        if self.data_format not in ("channels_last", "channels_first"):
            raise ValueError("The `data_format` argument must be one of 'channels_last', 'channels_first'. "
                             f"Received: data_format={data_format!r}")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError("`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                             f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}")
        self.activation = activations_module.get(activation)
        self._act_name, self._act_forward = activations_module._resolve(activation)
        self.use_bias = bool(use_bias)
        self.bias_initializer = initializers.get(bias_initializer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        _check_callable(bias_constraint=bias_constraint)
        self.bias_constraint = bias_constraint
        self.input_spec = InputSpec(min_ndim=rank + 2)
        self.bias = None

    def _causal_ok(self):
        return self.rank == 1 and not getattr(self, "_transposed", False)

    # ------------------------------------------------------------------ layout

    def _channel_axis(self):
        return -1 if self.data_format == "channels_last" else 1

    def _spatial(self, shape):
        return tuple(shape[1:-1]) if self.data_format == "channels_last" else tuple(shape[2:])

    def _nhwc(self, a):
        """channels_first (N, C, *spatial) -> channels_last (N, *spatial, C); channels_last unchanged."""
        return a if self.data_format == "channels_last" else a.transpose((0,) + tuple(range(2, a.ndim)) + (1,))

    def _back(self, a):
        """The inverse of ``_nhwc``."""
        return a if self.data_format == "channels_last" else a.transpose((0, a.ndim - 1) + tuple(range(1, a.ndim - 1)))

    def _shape_out(self, input_shape, spatial_out, channels):
        if self.data_format == "channels_last":
            return (input_shape[0],) + tuple(spatial_out) + (channels,)
        return (input_shape[0], channels) + tuple(spatial_out)

    # ------------------------------------------------------------------ checks

    def _in_channels(self, input_shape):
        if len(input_shape) != self.rank + 2:
            raise ValueError(f"Layer {self.name!r} ({type(self).__name__}) expects inputs of rank {self.rank + 2} "
                             f"(batch, {'spatial..., ' if self.rank > 1 else 'steps, '}channels). "
                             f"Received: input_shape={tuple(input_shape)}")
        channels = input_shape[self._channel_axis()]
        if channels is None:
            raise ValueError(f"The channel dimension of the inputs to {type(self).__name__} layer {self.name!r} "
                             f"should be defined. Received: input_shape={tuple(input_shape)}")
        return int(channels)

    def _check_output(self, input_shape, spatial_out):
        if any(s is not None and s <= 0 for s in spatial_out) or (input_shape[0] == 0):
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}): the output would be empty. Received: "
                f"input_shape={tuple(input_shape)}, kernel_size={self.kernel_size}, strides={self.strides}, "
                f"padding={self.padding!r}, dilation_rate={self.dilation_rate} -> output spatial shape "
                f"{tuple(spatial_out)}")

    def _check_call(self, x):
        """Rank, channel count and output size of a call, before any kernel runs."""
        self.input_spec.check(tuple(x.shape), self.name)
        spatial = self._spatial_out(self._spatial(x.shape))
        self._check_output(tuple(x.shape), spatial)

    def _activate_owned(self, be, z):
        """``_activate`` for a z this call owns (a convolution's new output): an activation whose
        derivative reads only its output runs in place on z, and its backward writes dz into a
        buffer of this layer reused from step to step, so a training step allocates neither.

        Returns ``(y, act_backward)``; ``act_backward(dy) -> (dz, release)``, where ``release()``
        hands the buffer back once dz is no longer read (conv_backward returns new arrays, so dz
        never leaves the layer's backward). Other activations keep ``_activate``'s arrays. With
        ``FORWARD_OPTIONS.defer_activation`` set (``_activation_for_max_pool``), z is returned as it is."""
        if FORWARD_OPTIONS.defer_activation:  # the max pooling after this layer applies it
            return z, None
        fused = _OUTPUT_ONLY.get(self._act_name)
        if fused is None:
            y, act_backward = self._activate(z)
            return y, None if act_backward is None else (lambda dy: (act_backward(dy), _no_release))
        kind, params = fused
        y = be.activation_forward(kind, z, out=z, **params)

        def act_backward(dy):
            d = self.__dict__
            out = d.pop("_dz_buffer", None)  # taken, not shared: a concurrent backward makes its own
            if out is None or type(out) is not type(dy) or out.shape != dy.shape or out.dtype != dy.dtype:
                out = be.xp.empty(dy.shape, dy.dtype)
            # y stands in for x: above the kink y > 0 exactly where x > 0, so the masks are the same
            dz = be.activation_backward(kind, dy, y, y, out=out, **params)
            return dz, lambda: d.__setitem__("_dz_buffer", out)

        return y, act_backward

    def _add_bias(self, units):
        if self.use_bias:
            self.bias = self.add_weight("bias", (units,), self.bias_initializer,
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint)

    def _base_config(self):
        cfg = super().get_config()
        cfg.update({"kernel_size": self.kernel_size, "strides": self.strides, "padding": self.padding,
                    "data_format": self.data_format, "dilation_rate": self.dilation_rate})
        return cfg

    def _tail_config(self, cfg):
        cfg.update({"activation": activations_module.serialize(self.activation), "use_bias": self.use_bias,
                    "bias_initializer": initializers.serialize(self.bias_initializer),
                    "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                    "activity_regularizer": regularizers.serialize(self.activity_regularizer),
                    "bias_constraint": None})
        return cfg

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        self._in_channels(input_shape)
        return self._shape_out(input_shape, self._spatial_out(self._spatial(input_shape)), self._out_channels())


class _Conv(_BaseConv):
    """A (grouped) convolution: Conv1D, Conv2D."""

    def __init__(self, rank, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(rank, kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                         bias_initializer, bias_regularizer, activity_regularizer, bias_constraint, **kwargs)
        if isinstance(filters, bool) or not isinstance(filters, numbers.Integral) or filters <= 0:
            raise ValueError(f"Invalid value for argument `filters`. Expected a strictly positive value. "
                             f"Received filters={filters!r}.")
        self.filters = int(filters)
        if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups <= 0:
            raise ValueError(f"The `groups` argument must be a positive integer. Received: groups={groups!r}")
        self.groups = int(groups)
        if self.filters % self.groups:
            raise ValueError("The number of filters must be evenly divisible by the number of groups. "
                             f"Received: groups={self.groups}, filters={self.filters}.")
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        _check_callable(kernel_constraint=kernel_constraint)
        self.kernel_constraint = kernel_constraint
        self.kernel = None

    def _out_channels(self):
        return self.filters

    def _spatial_out(self, spatial):
        return tuple(_output_length(s, k, st, d, self.padding) for s, k, st, d in
                     zip(spatial, self.kernel_size, self.strides, self.dilation_rate))

    def _can_pool_for(self, pool):
        """Whether this layer may run ``pool`` (the max pooling after it, which applies this layer's
        deferred activation) with its convolution in one call (``FORWARD_OPTIONS.pool_layer``): 2-D,
        both channels_last."""
        return (self.rank == 2 and self.data_format == "channels_last" and getattr(pool, "_rank", None) == 2
                and pool.data_format == "channels_last")

    def _pool_for(self, be, xl, pool, args):
        """The convolution and the max pooling after it in one call (conv_maxpool_forward): a first
        layer's output (12.8 MB for 128 MNIST images) is pooled image by image while it is in cache
        instead of written out and read back, the same bits. Returns the pooled pre-activation and
        leaves ``FORWARD_OPTIONS.pooled`` (its argmax, the convolution's output shape and whether this
        layer's backward takes the pooling's gradient unrouted) to the pooling."""
        z_shape = (xl.shape[0],) + tuple(self._spatial_out(tuple(xl.shape[1:3]))) + (self.filters,)
        pool._output_spatial(z_shape)  # the pooling's own error for an empty output, before any kernel
        (k, s), pad = pool._window(), pool.padding
        pz, argmax = be.conv_maxpool_forward(xl, self.kernel, self.bias, *args, k, s, pad)
        # Without an input gradient to compute, the backward takes the pooling's gradient unrouted
        # (conv_maxpool_backward: the 12.8 MB dz is neither written nor read, nor 3/4 zeros multiplied).
        FORWARD_OPTIONS.pooled = (argmax, z_shape, not FORWARD_OPTIONS.need_dx)
        return pz

    def _activation_for_max_pool(self):
        """``(kind, params)`` of this layer's activation when a max pooling right after it may apply it
        instead (pooling z, then activating the pooled values: the same output, a quarter of the
        activation's passes for 2x2 windows, and the gradient masked before it is routed); None when
        the activation does not commute with a max, an activity regularizer reads the output, or
        another forward (a transposed convolution's, a subclass's call) runs in place of this one."""
        if (type(self).forward is not _Conv.forward or _overrides_call(type(self))
                or self._act_name not in _MAX_COMMUTING or self.activity_regularizer is not None):
            return None
        return _OUTPUT_ONLY[self._act_name]

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        channels = self._in_channels(input_shape)
        if channels % self.groups:
            raise ValueError(f"Layer {self.name!r}: the number of input channels must be evenly divisible by the "
                             f"number of groups. Received groups={self.groups}, but the input has {channels} "
                             f"channels (full input shape is {input_shape}).")
        self._check_output(input_shape, self._spatial_out(self._spatial(input_shape)))
        self.kernel = self.add_weight("kernel", self.kernel_size + (channels // self.groups, self.filters),
                                      self.kernel_initializer, regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self._add_bias(self.filters)
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={self._channel_axis(): channels})
        self.built = True

    def forward(self, x, training=False):
        self._check_call(x)
        be, kernel, bias, need_dx = get_backend(), self.kernel, self.bias, FORWARD_OPTIONS.need_dx
        args = (self.strides, self.padding, self.dilation_rate, self.groups)
        xl = self._nhwc(x)
        pool = FORWARD_OPTIONS.pool_layer
        if pool is not None:
            z, act_backward = self._pool_for(be, xl, pool, args), None  # its activation deferred too
        else:
            z, act_backward = self._activate_owned(be, be.conv_forward(xl, kernel, bias, *args))

        def backward(dy):
            if isinstance(dy, PooledGradient):  # from the pooling this layer pooled for (_pool_for)
                dw, db = be.conv_maxpool_backward(dy.dp, dy.argmax, xl, kernel, *args, *dy.window,
                                                  has_bias=bias is not None)
                self.accumulate_grad("kernel", dw)
                if bias is not None:
                    self.accumulate_grad("bias", db)
                return None  # handed only where no input gradient is needed
            dz, release = (self._nhwc(dy), _no_release) if act_backward is None else act_backward(self._nhwc(dy))
            dx, dw, db = be.conv_backward(dz, xl, kernel, *args, has_bias=bias is not None, need_dx=need_dx)
            release()
            self.accumulate_grad("kernel", dw)  # dL/dW = sum over pixels of patch^T dz
            if bias is not None:
                self.accumulate_grad("bias", db)  # dL/db = sum of dz over batch and pixels
            return None if dx is None else self._back(dx)

        return self._back(z), backward

    def get_config(self):
        cfg = self._base_config()
        cfg = {**{k: cfg[k] for k in ("name", "trainable", "dtype") if k in cfg}, "filters": self.filters,
               **{k: v for k, v in cfg.items() if k not in ("name", "trainable", "dtype")}, "groups": self.groups}
        cfg = self._tail_config(cfg)
        cfg.update({"kernel_initializer": initializers.serialize(self.kernel_initializer),
                    "kernel_regularizer": regularizers.serialize(self.kernel_regularizer), "kernel_constraint": None})
        return cfg


class Conv1D(_Conv):
    """1-D convolution over (batch, steps, channels): ``y = activation(conv1d(x, kernel) + bias)``.

    Args:
        filters: output channels. kernel_size, strides, dilation_rate: an int or a tuple of 1.
        padding: 'valid', 'same' (Keras's: the extra pad goes after) or 'causal' (left pad only).
        data_format: 'channels_last' (batch, steps, channels) or 'channels_first'.
        groups: channel groups (divides the input channels and filters).
        activation, use_bias, *_initializer, *_regularizer, *_constraint: as Dense.

    Kernel: (kernel_size, in_channels / groups, filters).

    Example:
        >>> Conv1D(4, 3, padding="causal")(np.zeros((2, 10, 3), "float32")).shape
        (2, 10, 4)
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(1, filters, kernel_size, strides, padding, data_format, dilation_rate, groups, activation,
                         use_bias, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
                         activity_regularizer, kernel_constraint, bias_constraint, **kwargs)


class Conv2D(_Conv):
    """2-D convolution over (batch, height, width, channels): ``y = activation(conv2d(x, kernel) + bias)``.

    Args:
        filters: output channels. kernel_size, strides, dilation_rate: an int or a tuple of 2.
        padding: 'valid' or 'same' (Keras's: the extra pad goes after).
        data_format: 'channels_last' (batch, height, width, channels) or 'channels_first'.
        groups: channel groups (divides the input channels and filters).
        activation, use_bias, *_initializer, *_regularizer, *_constraint: as Dense.

    Kernel: (kh, kw, in_channels / groups, filters), as Keras stores it.

    Example:
        >>> Conv2D(32, 3, padding="same", activation="relu")(np.zeros((2, 28, 28, 1), "float32")).shape
        (2, 28, 28, 32)
    """

    # Its backward returns a new array (conv_backward's dx) that nothing else holds: a Sequential
    # lets the layer before it overwrite that gradient (FORWARD_OPTIONS.owns_dy; Dense's note).
    _fresh_dx = True

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(2, filters, kernel_size, strides, padding, data_format, dilation_rate, groups, activation,
                         use_bias, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
                         activity_regularizer, kernel_constraint, bias_constraint, **kwargs)


class _ConvTranspose(_Conv):
    """A transposed convolution: the input gradient of a convolution, run forward."""

    _transposed = True

    def __init__(self, rank, filters, kernel_size, strides=1, padding="valid", output_padding=None,
                 data_format=None, dilation_rate=1, **kwargs):
        super().__init__(rank, filters, kernel_size, strides, padding, data_format, dilation_rate, **kwargs)
        self.output_padding = None if output_padding is None else _int_tuple(
            output_padding, rank, "output_padding", allow_zero=True)
        if self.output_padding is not None and any(p >= s for p, s in zip(self.output_padding, self.strides)):
            raise ValueError(f"Strides must be greater than output padding. Received strides={self.strides}, "
                             f"output_padding={self.output_padding}.")

    def _spatial_out(self, spatial):
        pads = self.output_padding or (None,) * self.rank
        return tuple(_transpose_length(s, k, st, d, self.padding, p) for s, k, st, d, p in
                     zip(spatial, self.kernel_size, self.strides, self.dilation_rate, pads))

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        channels = self._in_channels(input_shape)
        self._check_output(input_shape, self._spatial_out(self._spatial(input_shape)))
        self.kernel = self.add_weight("kernel", self.kernel_size + (self.filters, channels), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self._add_bias(self.filters)
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={self._channel_axis(): channels})
        self.built = True

    def forward(self, x, training=False):
        self._check_call(x)
        be, kernel, bias, need_dx = get_backend(), self.kernel, self.bias, FORWARD_OPTIONS.need_dx
        args = (self.strides, self.padding, self.output_padding, self.dilation_rate)
        xl = self._nhwc(x)
        z, act_backward = self._activate(be.conv_transpose_forward(xl, kernel, bias, *args))

        def backward(dy):
            dz = self._nhwc(dy)
            if act_backward is not None:
                dz = act_backward(dz)
            dx, dw, db = be.conv_transpose_backward(dz, xl, kernel, *args, has_bias=bias is not None,
                                                    need_dx=need_dx)
            self.accumulate_grad("kernel", dw)  # dL/dW = sum over pixels of patch(dz)^T x
            if bias is not None:
                self.accumulate_grad("bias", db)
            return None if dx is None else self._back(dx)  # dL/dx = conv(dz, W)

        return self._back(z), backward

    def get_config(self):
        cfg = super().get_config()
        del cfg["groups"]
        out = {}
        for key, value in cfg.items():
            out[key] = value
            if key == "padding":
                out["output_padding"] = self.output_padding
        return out


class Conv1DTranspose(_ConvTranspose):
    """Transposed 1-D convolution (the input gradient of Conv1D, run forward).

    Args:
        filters: output channels. kernel_size, strides, dilation_rate: an int or a tuple of 1.
        padding: 'valid' or 'same'. output_padding: None or an int < strides added after.
        data_format, activation, use_bias, *_initializer, *_regularizer, *_constraint: as Conv1D.

    Kernel: (kernel_size, filters, in_channels). Output length as Keras's deconv_output_length.

    Example:
        >>> Conv1DTranspose(2, 3, strides=2, padding="same")(np.zeros((1, 5, 4), "float32")).shape
        (1, 10, 2)
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(1, filters, kernel_size, strides, padding, output_padding, data_format, dilation_rate,
                         activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
                         bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
                         kernel_constraint=kernel_constraint, bias_constraint=bias_constraint, **kwargs)


class Conv2DTranspose(_ConvTranspose):
    """Transposed 2-D convolution (the input gradient of Conv2D, run forward; "deconvolution").

    Args:
        filters: output channels. kernel_size, strides, dilation_rate: an int or a tuple of 2.
        padding: 'valid' or 'same'. output_padding: None or ints < strides added after.
        data_format, activation, use_bias, *_initializer, *_regularizer, *_constraint: as Conv2D.

    Kernel: (kh, kw, filters, in_channels). Output size as Keras's deconv_output_length.

    Example:
        >>> Conv2DTranspose(8, 3, strides=2, padding="same")(np.zeros((1, 7, 7, 4), "float32")).shape
        (1, 14, 14, 8)
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", output_padding=None,
                 data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(2, filters, kernel_size, strides, padding, output_padding, data_format, dilation_rate,
                         activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
                         bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
                         kernel_constraint=kernel_constraint, bias_constraint=bias_constraint, **kwargs)


class _DepthwiseConv(_BaseConv):
    """Depthwise convolution: one kernel per input channel (``depth_multiplier`` outputs each), the
    backend's depthwise op; with the hooks _build_pointwise, _depthwise_bias and _pointwise it is
    also the first step of the separable layers, so both share one build and one forward."""

    def __init__(self, rank, kernel_size, strides=1, padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(rank, kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                         bias_initializer, bias_regularizer, activity_regularizer, bias_constraint, **kwargs)
        if isinstance(depth_multiplier, bool) or not isinstance(depth_multiplier, numbers.Integral) \
                or depth_multiplier <= 0:
            raise ValueError("Invalid value for argument `depth_multiplier`. Expected a strictly positive value. "
                             f"Received depth_multiplier={depth_multiplier!r}.")
        self.depth_multiplier = int(depth_multiplier)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        _check_callable(depthwise_constraint=depthwise_constraint)
        self.depthwise_constraint = depthwise_constraint
        self.depthwise_kernel = None
        self._channels = None

    def _out_channels(self):
        return None if self._channels is None else self._channels * self.depth_multiplier

    def compute_output_shape(self, input_shape):
        channels = self._in_channels(tuple(input_shape))
        spatial = self._spatial_out(self._spatial(tuple(input_shape)))
        return self._shape_out(tuple(input_shape), spatial, self._final_channels(channels))

    def _final_channels(self, channels):
        return channels * self.depth_multiplier

    _spatial_out = _Conv._spatial_out

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self._channels = self._in_channels(input_shape)
        self._check_output(input_shape, self._spatial_out(self._spatial(input_shape)))
        self.depthwise_kernel = self.add_weight(
            "depthwise_kernel", self.kernel_size + (self._channels, self.depth_multiplier),
            self.depthwise_initializer, regularizer=self.depthwise_regularizer, constraint=self.depthwise_constraint)
        self._build_pointwise()
        self._add_bias(self._final_channels(self._channels))
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={self._channel_axis(): self._channels})
        self.built = True

    def _build_pointwise(self):
        """The weights of the step after the depthwise one: none here (see _SeparableConv)."""

    def _depthwise_bias(self):
        """The bias the depthwise step adds: the layer's own here; the pointwise step's in _SeparableConv."""
        return self.bias

    def _pointwise(self, be, t):
        """(z, backward(dz) -> dt or None) of the step after the depthwise one: the identity here."""
        return t, None

    def forward(self, x, training=False):
        self._check_call(x)
        be, need_dx, dk, bias = get_backend(), FORWARD_OPTIONS.need_dx, self.depthwise_kernel, self._depthwise_bias()
        args = (self.strides, self.padding, self.dilation_rate)
        xl = self._nhwc(x)
        z, pointwise_backward = self._pointwise(be, be.depthwise_conv_forward(xl, dk, bias, *args))
        z, act_backward = self._activate(z)

        def backward(dy):
            dz = self._nhwc(dy)
            if act_backward is not None:
                dz = act_backward(dz)
            if pointwise_backward is not None:
                dz = pointwise_backward(dz)  # dL/dt, t the depthwise output
            dx, ddk, db = be.depthwise_conv_backward(dz, xl, dk, *args, has_bias=bias is not None, need_dx=need_dx)
            self.accumulate_grad("depthwise_kernel", ddk)  # dL/dw[k, c, m] = sum of x(tap k, c) dz[c*M + m]
            if bias is not None:
                self.accumulate_grad("bias", db)
            return None if dx is None else self._back(dx)

        return self._back(z), backward

    def get_config(self):
        cfg = self._base_config()
        head = {k: cfg.pop(k) for k in ("name", "trainable", "dtype") if k in cfg}
        cfg = {**head, "depth_multiplier": self.depth_multiplier, **cfg}
        cfg = self._tail_config(cfg)
        cfg.update({"depthwise_initializer": initializers.serialize(self.depthwise_initializer),
                    "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
                    "depthwise_constraint": None})
        return cfg


class DepthwiseConv1D(_DepthwiseConv):
    """Depthwise 1-D convolution: each input channel convolved with its own ``depth_multiplier`` kernels.

    Args: as DepthwiseConv2D with 1-D kernel_size, strides, dilation_rate.

    Example:
        >>> DepthwiseConv1D(3, depth_multiplier=2)(np.zeros((1, 8, 4), "float32")).shape
        (1, 6, 8)
    """

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(1, kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate, activation,
                         use_bias, depthwise_initializer, bias_initializer, depthwise_regularizer, bias_regularizer,
                         activity_regularizer, depthwise_constraint, bias_constraint, **kwargs)


class DepthwiseConv2D(_DepthwiseConv):
    """Depthwise 2-D convolution: each input channel convolved with its own ``depth_multiplier`` kernels.

    Args:
        kernel_size, strides, dilation_rate: an int or a tuple of 2. padding: 'valid' or 'same'.
        depth_multiplier: outputs per input channel (output channel c * depth_multiplier + j).
        data_format, activation, use_bias: as Conv2D.
        depthwise_initializer, depthwise_regularizer, depthwise_constraint: of the depthwise kernel.

    Kernel ``depthwise_kernel``: (kh, kw, in_channels, depth_multiplier), as Keras.

    Example:
        >>> DepthwiseConv2D(3, padding="same")(np.zeros((1, 8, 8, 4), "float32")).shape
        (1, 8, 8, 4)
    """

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(2, kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate, activation,
                         use_bias, depthwise_initializer, bias_initializer, depthwise_regularizer, bias_regularizer,
                         activity_regularizer, depthwise_constraint, bias_constraint, **kwargs)


class _SeparableConv(_DepthwiseConv):
    """A depthwise convolution followed by a pointwise (1x1) one with the bias and activation."""

    def __init__(self, rank, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 depth_multiplier=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(rank, kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate,
                         activation, use_bias, depthwise_initializer, bias_initializer, depthwise_regularizer,
                         bias_regularizer, activity_regularizer, depthwise_constraint, bias_constraint, **kwargs)
        if isinstance(filters, bool) or not isinstance(filters, numbers.Integral) or filters <= 0:
            raise ValueError(f"Invalid value for argument `filters`. Expected a strictly positive value. "
                             f"Received filters={filters!r}.")
        self.filters = int(filters)
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        _check_callable(pointwise_constraint=pointwise_constraint)
        self.pointwise_constraint = pointwise_constraint
        self.pointwise_kernel = None

    def _final_channels(self, channels):
        return self.filters

    def _build_pointwise(self):
        self.pointwise_kernel = self.add_weight(
            "pointwise_kernel", (1,) * self.rank + (self._channels * self.depth_multiplier, self.filters),
            self.pointwise_initializer, regularizer=self.pointwise_regularizer, constraint=self.pointwise_constraint)

    def _depthwise_bias(self):
        return None

    def _pointwise(self, be, t):
        pk, bias, ones = self.pointwise_kernel, self.bias, (1,) * self.rank
        z = be.conv_forward(t, pk, bias, ones, "valid", ones, 1)

        def backward(dz):
            dt, dpk, db = be.conv_backward(dz, t, pk, ones, "valid", ones, 1, has_bias=bias is not None)
            self.accumulate_grad("pointwise_kernel", dpk)  # dL/dP = t^T dz over pixels
            if bias is not None:
                self.accumulate_grad("bias", db)
            return dt

        return z, backward

    def get_config(self):
        cfg = super().get_config()
        head = {k: cfg.pop(k) for k in ("name", "trainable", "dtype", "depth_multiplier") if k in cfg}
        cfg = {**head, "filters": self.filters, **cfg}
        cfg.update({"pointwise_initializer": initializers.serialize(self.pointwise_initializer),
                    "pointwise_regularizer": regularizers.serialize(self.pointwise_regularizer),
                    "pointwise_constraint": None})
        return cfg


class SeparableConv1D(_SeparableConv):
    """Depthwise-separable 1-D convolution: DepthwiseConv1D, then a pointwise Conv1D with bias and activation.

    Args: as SeparableConv2D with 1-D kernel_size, strides, dilation_rate.

    Example:
        >>> SeparableConv1D(4, 3)(np.zeros((1, 8, 2), "float32")).shape
        (1, 6, 4)
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 depth_multiplier=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(1, filters, kernel_size, strides, padding, data_format, dilation_rate, depth_multiplier,
                         activation, use_bias, depthwise_initializer, pointwise_initializer, bias_initializer,
                         depthwise_regularizer, pointwise_regularizer, bias_regularizer, activity_regularizer,
                         depthwise_constraint, pointwise_constraint, bias_constraint, **kwargs)


class SeparableConv2D(_SeparableConv):
    """Depthwise-separable 2-D convolution: DepthwiseConv2D, then a pointwise (1x1) Conv2D with bias and activation.

    Args:
        filters: output channels of the pointwise step. kernel_size, strides, dilation_rate, padding,
            depth_multiplier: of the depthwise step, as DepthwiseConv2D.
        depthwise_*/pointwise_*: initializer, regularizer and constraint of each kernel.

    Weights: depthwise_kernel (kh, kw, in, depth_multiplier), pointwise_kernel
    (1, 1, in * depth_multiplier, filters), bias (filters,), as Keras.

    Example:
        >>> SeparableConv2D(8, 3, padding="same")(np.zeros((1, 8, 8, 4), "float32")).shape
        (1, 8, 8, 8)
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, pointwise_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, depthwise_constraint=None,
                 pointwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(2, filters, kernel_size, strides, padding, data_format, dilation_rate, depth_multiplier,
                         activation, use_bias, depthwise_initializer, pointwise_initializer, bias_initializer,
                         depthwise_regularizer, pointwise_regularizer, bias_regularizer, activity_regularizer,
                         depthwise_constraint, pointwise_constraint, bias_constraint, **kwargs)


# Keras's aliases.
Convolution1D = Conv1D
Convolution2D = Conv2D
Convolution1DTranspose = Conv1DTranspose
Convolution2DTranspose = Conv2DTranspose
SeparableConvolution1D = SeparableConv1D
SeparableConvolution2D = SeparableConv2D
