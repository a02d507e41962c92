"""Dense: y = activation(x @ kernel + bias), one fused backend call each way."""

import numbers

from pyminidl import activations as activations_module
from pyminidl import initializers, regularizers
from pyminidl.backend import get_backend
from pyminidl.layers.base import FORWARD_OPTIONS, InputSpec, Layer


# The activations Backend.dense_activation_backward applies in place.
_IN_PLACE = frozenset(("relu", "sigmoid", "tanh"))


def _positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"Received an invalid value for `{what}`, expected a positive integer. "
                         f"Received: {what}={value!r}")
    return int(value)


class Dense(Layer):
    """Densely connected layer: ``y = activation(x @ kernel + bias)``.

    Input ``(batch, ..., input_dim)`` -> output ``(batch, ..., units)``; leading axes are
    flattened into the batch for one GEMM.

    Args:
        units: output size (positive int).
        activation: name (any of ``activations``), callable or None (linear).
        use_bias: add a bias vector.
        kernel_initializer, bias_initializer: initializers (names or objects).
        kernel_regularizer, bias_regularizer, activity_regularizer: regularizers or None.
        kernel_constraint, bias_constraint: callables applied by ``apply_constraints``.
        **kwargs: Layer arguments (name, trainable, dtype, input_shape, input_dim).

    Example:
        >>> layer = Dense(10, activation="relu", input_dim=2)
        >>> layer(np.zeros((4, 2), "float32")).shape
        (4, 10)
    """

    supports_masking = True  # passes a mask on unchanged (Keras)
    # Its backward returns a new array (the dx GEMM's output) that nothing else holds: a
    # Sequential lets the layer before it overwrite that gradient (FORWARD_OPTIONS.owns_dy).
    # Read from this class's own __dict__, so a subclass that changes forward does not inherit it.
    _fresh_dx = True

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = _positive_int(units, "units")
        self.activation = activations_module.get(activation)
        self._act_name, self._act_forward = activations_module._resolve(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        for key, value in (("kernel_constraint", kernel_constraint), ("bias_constraint", bias_constraint)):
            if value is not None and not callable(value):
                raise ValueError(f"`{key}` must be a callable (w -> projected w) or None. Received: {key}={value!r}")
        self.kernel_constraint = kernel_constraint
        self.bias_constraint = bias_constraint
        self.input_spec = InputSpec(min_ndim=2)
        self.kernel = None
        self.bias = None

    def build(self, input_shape):
        in_dim = input_shape[-1]
        if in_dim is None:
            raise ValueError(f"The last dimension of the input to Dense layer {self.name!r} must be defined. "
                             f"Received: input_shape={tuple(input_shape)}")
        self.kernel = self.add_weight("kernel", (in_dim, self.units), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.units,), self.bias_initializer,
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        self.input_spec = InputSpec(min_ndim=2, axes={-1: in_dim})
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def forward(self, x, training=False):
        be = get_backend()
        x2 = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
        kernel, bias = self.kernel, self.bias
        need_dx = FORWARD_OPTIONS.need_dx
        name = self._act_name
        if name in _IN_PLACE:
            # The activation overwrites the fresh pre-activation inside dense_forward (no second
            # (N, units) array, no pass into cold memory). The backwards read only z then: relu's
            # mask z > 0 is pre > 0 (NaN and -0 included), sigmoid's and tanh's read z anyway.
            z, act_backward = be.dense_forward(x2, kernel, bias, activation=name), None
        else:
            z, act_backward = self._activate(be.dense_forward(x2, kernel, bias))
        y = z if x.ndim == 2 else z.reshape(tuple(x.shape[:-1]) + (self.units,))
        # An incoming gradient nobody else reads takes dL/dz in place (dense_backward's activation,
        # fused with the bias gradient): no new (N, units) array.
        owned = name if name in _IN_PLACE and FORWARD_OPTIONS.owns_dy else None

        def backward(dy):
            dz = dy if dy.ndim == 2 else dy.reshape(-1, self.units)
            if owned is None and name in _IN_PLACE:
                dz = be.activation_backward(name, dz, z, z)
            elif act_backward is not None:
                dz = act_backward(dz)
            dx, dw, db = be.dense_backward(dz, x2, kernel, has_bias=bias is not None, need_dx=need_dx,
                                           activation=owned, y=z)
            self.accumulate_grad("kernel", dw)  # dL/dW = x^T dz
            if bias is not None:
                self.accumulate_grad("bias", db)  # dL/db = sum_n dz
            return None if dx is None else dx.reshape(x.shape)

        return y, backward

    def get_config(self):
        cfg = super().get_config()
        cfg.update({
            "units": self.units,
            "activation": activations_module.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": None,
            "bias_constraint": None,
        })
        if self.activity_regularizer is not None:
            cfg["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return cfg
