"""Activation: applies an activation function elementwise (softmax along the last axis)."""

from pyminidl import activations as activations_module
from pyminidl.layers.base import Layer


class Activation(Layer):
    """Applies ``activation`` to its input; the output has the input's shape.

    Args:
        activation: a name from ``pyminidl.activations``, or a callable.

    Example:
        >>> Activation("relu")(np.array([[-1.0, 2.0]]))
        array([[0., 2.]])
    """

    supports_masking = True  # passes a mask on unchanged (Keras)

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations_module.get(activation)
        self._act_name, self._act_forward = activations_module._resolve(activation)
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x, training=False):
        y, backward = self._activate(x)
        return y, (backward or (lambda dy: dy))

    def get_config(self):
        cfg = super().get_config()
        cfg["activation"] = activations_module.serialize(self.activation)
        return cfg
