"""Input and InputLayer: the symbolic entry point of a model."""

from pyminidl import config
from pyminidl.layers.base import KerasTensor, Layer, _standardize_shape


class InputLayer(Layer):
    """The layer behind ``Input``: holds the input's batch shape; passes data through unchanged.

    Args:
        shape: shape of one sample (no batch axis).
        batch_size: fixed batch size, or None.
        dtype: element type (default ``config.floatx()``).
        batch_shape: the full shape instead of ``shape`` + ``batch_size``.
        name: unique name (default "input_layer", "input_layer_1", ...).
    """

    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None,
                 input_tensor=None, optional=False, name=None, **kwargs):
        shape = kwargs.pop("input_shape", shape)
        batch_shape = kwargs.pop("batch_input_shape", batch_shape)
        super().__init__(name=name, dtype=dtype, **kwargs)
        if shape is not None and batch_shape is not None:
            raise ValueError("You cannot pass both `shape` and `batch_shape` at the same time.")
        if batch_size is not None and batch_shape is not None:
            raise ValueError("You cannot pass both `batch_size` and `batch_shape` at the same time.")
        if shape is None and batch_shape is None:
            raise ValueError("You must pass a `shape` argument.")
        if sparse:
            raise ValueError("pyminidl has no sparse tensors: `sparse=True` is not supported.")
        if batch_shape is None:
            batch_shape = (batch_size,) + _standardize_shape(shape, "shape")
        self.batch_shape = _standardize_shape(batch_shape, "batch_shape")
        self.optional = optional
        self.output = KerasTensor(self.batch_shape, dtype=self._dtype, layer=self)
        self._build_input_shape = self.batch_shape
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x, training=False):
        return x, lambda dy: dy

    def get_config(self):
        return {"batch_shape": list(self.batch_shape), "dtype": self._dtype, "sparse": False,
                "name": self.name}

    def get_build_config(self):
        """None: the batch shape is the config (Keras 3 writes no build_config for an InputLayer)."""
        return None


def Input(shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, name=None, tensor=None,
          optional=False):
    """A symbolic input (a KerasTensor), usable as the first element of ``Sequential``.

    Args:
        shape: shape of one sample, without the batch axis, e.g. ``(784,)``.
        batch_size: optional fixed batch size.
        dtype: element type (default ``config.floatx()``).
        batch_shape: the full shape (instead of shape and batch_size).
        name: name of the InputLayer.

    Returns:
        A KerasTensor of shape ``(batch_size, *shape)``.

    Example:
        >>> x = Input(shape=(4,))
        >>> x.shape
        (None, 4)
    """
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype or config.floatx(), sparse=sparse,
                       batch_shape=batch_shape, input_tensor=tensor, optional=optional, name=name)
    return layer.output
