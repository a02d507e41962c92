"""BatchNormalization and LayerNormalization (Keras 3), each one fused backend call each way.

BatchNormalization keeps its moving statistics as non-trainable weights (``moving_mean``,
``moving_variance``): training forwards normalise with the batch statistics and update them
in place (``moving = moving * momentum + batch * (1 - momentum)``, the biased batch variance,
as Keras 3); inference forwards (predict, evaluate, ``training=False``) use them. The optimizer
never sees them: only trainable weights get gradients.

Example:
    >>> bn = BatchNormalization()
    >>> bn(np.ones((4, 3), "float32"), training=True).shape
    (4, 3)
"""

import numbers

from pyminidl import initializers, regularizers
from pyminidl.layers.base import InputSpec, Layer


def _check_callable(key, value):
    if value is not None and not callable(value):
        raise ValueError(f"`{key}` must be a callable (w -> projected w) or None. Received: {key}={value!r}")
    return value


def _check_epsilon(layer, epsilon):
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or not epsilon >= 0:
        raise ValueError(f"{layer}: `epsilon` must be a number >= 0. Received: epsilon={epsilon!r}")
    return float(epsilon)


class BatchNormalization(Layer):
    """Normalizes each index of ``axis`` over every other axis: ``gamma * (x - mean) / sqrt(var + epsilon) + beta``.

    Input and output: any shape ``(batch, ..., features)``.

    Args:
        axis: the features axis (int; -1 for channels_last, 1 for channels_first).
        momentum: of the moving statistics' update.
        epsilon: added to the variance.
        center: learn ``beta``; scale: learn ``gamma``.
        beta_initializer, gamma_initializer, moving_mean_initializer, moving_variance_initializer: initializers.
        beta_regularizer, gamma_regularizer: regularizers or None.
        beta_constraint, gamma_constraint: callables applied by ``apply_constraints`` or None.
        synchronized: accepted for Keras compatibility (one process: no effect).

    Raises:
        ValueError: ``renorm=True`` (not supported), a bad ``epsilon``, or ``axis`` out of range for the input.

    Example:
        >>> bn = BatchNormalization(momentum=0.9)
        >>> y = bn(np.random.rand(8, 5).astype("float32"), training=True)   # updates moving_mean/variance
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 renorm=False, renorm_clipping=None, renorm_momentum=0.99, synchronized=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise ValueError(f"BatchNormalization: `axis` must be an integer. Received: axis={axis!r}")
        if renorm:
            raise ValueError("BatchNormalization: renorm=True is not supported. Received: renorm=True")
        self.axis, self.momentum = int(axis), float(momentum)
        self.epsilon = _check_epsilon("BatchNormalization", epsilon)
        self.center, self.scale, self.synchronized = bool(center), bool(scale), bool(synchronized)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = _check_callable("beta_constraint", beta_constraint)
        self.gamma_constraint = _check_callable("gamma_constraint", gamma_constraint)
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None

    def _axis_of(self, input_shape):
        ndim = len(input_shape)
        if not -ndim <= self.axis < ndim:
            raise ValueError(f"Layer {self.name!r} (BatchNormalization): axis={self.axis} is out of range for an "
                             f"input of shape {tuple(input_shape)}")
        return self.axis % ndim

    def build(self, input_shape):
        ax = self._axis_of(input_shape)
        c = input_shape[ax]
        if c is None:
            raise ValueError(f"Layer {self.name!r} (BatchNormalization): axis {self.axis} of the input must be "
                             f"defined. Received: input_shape={tuple(input_shape)}")
        if self.scale:
            self.gamma = self.add_weight("gamma", (c,), self.gamma_initializer, regularizer=self.gamma_regularizer,
                                         constraint=self.gamma_constraint)
        if self.center:
            self.beta = self.add_weight("beta", (c,), self.beta_initializer, regularizer=self.beta_regularizer,
                                        constraint=self.beta_constraint)
        self.moving_mean = self.add_weight("moving_mean", (c,), self.moving_mean_initializer, trainable=False)
        self.moving_variance = self.add_weight("moving_variance", (c,), self.moving_variance_initializer,
                                               trainable=False)
        self.input_spec = InputSpec(ndim=len(input_shape), axes={ax: c})
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _update_moving(self, mean, variance):
        """moving = moving * momentum + batch * (1 - momentum), in place (Keras 3's assign)."""
        m = self.momentum
        self.moving_mean[...] = self.moving_mean * m + mean.astype(self.moving_mean.dtype) * (1.0 - m)
        self.moving_variance[...] = self.moving_variance * m + variance.astype(self.moving_variance.dtype) * (1.0 - m)

    def forward(self, x, training=False):
        be, axis, eps = self.backend, self._axis_of(x.shape), self.epsilon
        gamma, beta = self.gamma, self.beta
        batch_stats = bool(training) and self.trainable  # a frozen layer runs in inference mode, as Keras
        if batch_stats:
            y, mean, variance = be.batch_norm_forward(x, gamma, beta, axis, eps)
            self._update_moving(mean, variance)
        else:  # copies: the moving statistics may move before this backward runs
            mean, variance = self.moving_mean.astype(x.dtype), self.moving_variance.astype(x.dtype)
            y, mean, variance = be.batch_norm_forward(x, gamma, beta, axis, eps, mean, variance)

        def backward(dy):
            dx, dgamma, dbeta = be.batch_norm_backward(dy, x, gamma, mean, variance, axis, eps, batch_stats)
            if gamma is not None:
                self.accumulate_grad("gamma", dgamma)  # dL/dgamma = sum dy * xhat
            if beta is not None:
                self.accumulate_grad("beta", dbeta)  # dL/dbeta = sum dy
            return dx

        return y, backward

    def get_config(self):
        cfg = super().get_config()
        cfg.update({
            "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon, "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
            "moving_variance_initializer": initializers.serialize(self.moving_variance_initializer),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
            "beta_constraint": None, "gamma_constraint": None, "synchronized": self.synchronized,
            "renorm": False, "renorm_clipping": None, "renorm_momentum": 0.99,
        })
        return cfg


class LayerNormalization(Layer):
    """Normalizes each sample over ``axis``: ``gamma * (x - mean) / sqrt(var + epsilon) + beta``.

    Input and output: any shape; ``gamma`` and ``beta`` have the sizes of the normalized axes.

    Args:
        axis: int or list of ints (default -1, the features).
        epsilon: added to the variance.
        center: learn ``beta``; scale: learn ``gamma``.
        rms_scaling: must be False (Keras 3's default; root-mean-square scaling is not supported).
        beta_initializer, gamma_initializer: initializers.
        beta_regularizer, gamma_regularizer: regularizers or None.
        beta_constraint, gamma_constraint: callables or None.

    Raises:
        ValueError: ``rms_scaling=True``, a bad ``epsilon``, or an axis out of range for the input.

    Example:
        >>> LayerNormalization()(np.random.rand(2, 5).astype("float32")).shape
        (2, 5)
    """

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, rms_scaling=False, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        if rms_scaling:
            raise ValueError("LayerNormalization: rms_scaling=True is not supported. Received: rms_scaling=True")
        axes = [axis] if isinstance(axis, numbers.Integral) else list(axis) if isinstance(axis, (list, tuple)) else None
        if not axes or any(isinstance(a, bool) or not isinstance(a, numbers.Integral) for a in axes):
            raise ValueError(f"LayerNormalization: `axis` must be an int or a list of ints. Received: axis={axis!r}")
        self.axis = int(axis) if isinstance(axis, numbers.Integral) else [int(a) for a in axes]
        self.epsilon = _check_epsilon("LayerNormalization", epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = _check_callable("beta_constraint", beta_constraint)
        self.gamma_constraint = _check_callable("gamma_constraint", gamma_constraint)
        self.gamma = self.beta = None

    def _axes_of(self, input_shape):
        """The normalized axes, positive and sorted (the order of gamma's and beta's axes)."""
        ndim, axes = len(input_shape), [self.axis] if isinstance(self.axis, int) else self.axis
        if any(not -ndim <= a < ndim for a in axes) or len({a % ndim for a in axes}) != len(axes):
            raise ValueError(f"Layer {self.name!r} (LayerNormalization): axis={self.axis} is out of range (or "
                             f"repeats an axis) for an input of shape {tuple(input_shape)}")
        return tuple(sorted(a % ndim for a in axes))

    def build(self, input_shape):
        axes = self._axes_of(input_shape)
        shape = tuple(input_shape[a] for a in axes)
        if any(s is None for s in shape):
            raise ValueError(f"Layer {self.name!r} (LayerNormalization): the normalized axes must be defined. "
                             f"Received: input_shape={tuple(input_shape)}")
        if self.scale:
            self.gamma = self.add_weight("gamma", shape, self.gamma_initializer, regularizer=self.gamma_regularizer,
                                         constraint=self.gamma_constraint)
        if self.center:
            self.beta = self.add_weight("beta", shape, self.beta_initializer, regularizer=self.beta_regularizer,
                                        constraint=self.beta_constraint)
        self.input_spec = InputSpec(ndim=len(input_shape), axes={a: input_shape[a] for a in axes})
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x, training=False):
        be, axes, eps, gamma, beta = self.backend, self._axes_of(x.shape), self.epsilon, self.gamma, self.beta
        y, mean, variance = be.layer_norm_forward(x, gamma, beta, axes, eps)

        def backward(dy):
            dx, dgamma, dbeta = be.layer_norm_backward(dy, x, gamma, mean, variance, axes, eps)
            if gamma is not None:
                self.accumulate_grad("gamma", dgamma)  # dL/dgamma = sum over samples of dy * xhat
            if beta is not None:
                self.accumulate_grad("beta", dbeta)  # dL/dbeta = sum over samples of dy
            return dx

        return y, backward

    def get_config(self):
        cfg = super().get_config()
        cfg.update({
            "axis": self.axis, "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
            "rms_scaling": False,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
            "beta_constraint": None, "gamma_constraint": None,
        })
        return cfg
