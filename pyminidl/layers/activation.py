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

    _forward_flags = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations_module.get(activation)
        self._act_name, self._act_forward = activations_module._resolve(activation)
        self.built = True

    @property
    def final_activation(self):
        return self._act_name or getattr(self.activation, "__name__", None)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x, training=False, final_logits=False, need_dx=True):
        if final_logits and self._act_name == "softmax":
            return x, lambda dy: dy
        return self._act_forward(x)

    def get_config(self):
        cfg = super().get_config()
        cfg["activation"] = activations_module.serialize(self.activation)
        return cfg
