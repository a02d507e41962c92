"""Lambda: wraps a function of ``pyminidl.ops`` as a layer (Keras 3 ``keras.layers.Lambda``)."""

import inspect

from pyminidl.layers.base import Layer


class Lambda(Layer):
    """A layer whose ``call`` is ``function(inputs, **arguments)``; gradients come from ``pyminidl.ops``.

    Args:
        function: a callable of the input, written with ``pyminidl.ops`` (``keras.ops``) so it trains.
        output_shape: the output shape without the batch axis, or a callable of the input shape
            (default: found by running ``function`` on zeros).
        mask: a mask to return from ``compute_mask``, or a callable ``(inputs, mask) -> mask``.
        arguments: keyword arguments passed to ``function``.

    Example:
        >>> layer = Lambda(lambda x: pyminidl.ops.square(x))
        >>> layer(np.array([[2.0, 3.0]], "float32"))
        array([[4., 9.]], dtype=float32)
    """

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise ValueError(f"Lambda: `function` must be callable. Received: function={function!r}")
        self.function = function
        self.arguments = dict(arguments or {})
        self.mask = mask
        self._output_shape = output_shape
        self._takes_mask = "mask" in inspect.signature(function).parameters if _has_signature(function) else False
        self._takes_training = "training" in inspect.signature(function).parameters if _has_signature(function) \
            else False
        self.built = True

    def call(self, inputs, mask=None, training=None):
        kwargs = dict(self.arguments)
        if self._takes_mask:
            kwargs["mask"] = mask
        if self._takes_training:
            kwargs["training"] = training
        return self.function(inputs, **kwargs)

    def compute_output_shape(self, input_shape):
        if self._output_shape is None:
            return super().compute_output_shape(input_shape)
        if callable(self._output_shape):
            return tuple(self._output_shape(tuple(input_shape)))
        return (tuple(input_shape)[0],) + tuple(self._output_shape)

    def compute_mask(self, inputs, mask=None):
        return self.mask(inputs, mask) if callable(self.mask) else self.mask

    def get_config(self):
        cfg = super().get_config()
        name = getattr(self.function, "__name__", repr(self.function))
        cfg.update({"function": name, "output_shape": None if callable(self._output_shape) else self._output_shape,
                    "arguments": self.arguments})
        return cfg

    @classmethod
    def from_config(cls, config_dict):
        """Refused: rebuilding the function from a file would run code taken from it (Keras's safe mode)."""
        raise ValueError(
            f"Lambda layer {config_dict.get('name')!r} (function {config_dict.get('function')!r}) cannot be "
            "loaded: its function is code, and pyminidl never runs code from a file. Write the computation as a "
            "custom layer class and pass it in `custom_objects`."
        )


def _has_signature(function):
    try:
        inspect.signature(function)
        return True
    except (TypeError, ValueError):
        return False
