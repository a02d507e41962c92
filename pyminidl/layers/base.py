"""Layer: weights, build-on-first-call, forward/backward, config (the Keras 3 surface).

A layer implements ``forward(x, training) -> (y, backward)`` with ``backward(dy) -> dx`` as a
closure next to the math, recording weight gradients with ``accumulate_grad``. A custom layer
may instead implement Keras's ``call(x)`` with ``pyminidl.ops``: the default ``forward`` runs
``call`` on a private GradientTape, so it trains with no backward written by hand.

``Layer`` is composed of one mixin per concern, each in its own module:

- ``_layer_config.ConfigMixin``: recorded constructor arguments, ``get_config`` / ``from_config``;
- ``_layer_weights.WeightsMixin``: ``add_weight``, weight and sublayer tracking, ``weights``;
- ``_layer_gradients.GradientsMixin``: ``accumulate_grad``, ``gradients``, ``losses``;
- ``_layer_shapes.BuildMixin``: build on first call, ``compute_output_shape``;
- ``_layer_call.CallMixin``: ``__call__``, ``call``, ``forward`` and the tape protocol;
- ``_layer_graph.SymbolicMixin``: calls on KerasTensors, ``input`` / ``output``.

This module keeps the constructor, the dtype and trainable properties, and the names other
modules import from here.

Example:
    >>> layer = Dense(3)
    >>> y = layer(np.ones((2, 4), "float32"))   # builds: kernel (4, 3), bias (3,)
    >>> [w.shape for w in layer.weights]
    [(4, 3), (3,)]
"""

from pyminidl._naming import to_snake_case as _snake_case
from pyminidl import regularizers as regularizers_module
from pyminidl.backend import get_backend
from pyminidl.layers._layer_call import (FORWARD_OPTIONS, CallMixin, _call_params, _flat_kwarg_grads,  # noqa: F401
                                         _overrides_call, _tensor_kwarg_names, forward_options)
from pyminidl.layers._layer_config import ConfigMixin, _dtype_name, clear_session, unique_name  # noqa: F401
from pyminidl.layers._layer_gradients import GradientsMixin, clear_grads, gradients_of  # noqa: F401
from pyminidl.layers._layer_graph import KerasHistory, KerasTensor, Node, SymbolicMixin  # noqa: F401
from pyminidl.layers._layer_shapes import (BuildMixin, InputSpec, _standardize_shape, _wrap_build,  # noqa: F401
                                           map_shapes)
from pyminidl.layers._layer_weights import WeightsMixin, weights_created  # noqa: F401


class Layer(CallMixin, SymbolicMixin, BuildMixin, WeightsMixin, GradientsMixin, ConfigMixin):
    """Base class of every layer (Keras 3 ``keras.layers.Layer``).

    Args:
        name: unique name (default: the class name in snake_case, numbered).
        trainable: whether the weights are updated by training.
        dtype: weight and compute dtype (default ``config.floatx()``).
        input_shape: shape of one sample (no batch axis); as the first layer of a Sequential it builds the model.
        input_dim: tf.keras's shorthand for ``input_shape=(input_dim,)``.
        activity_regularizer: a penalty on the layer's output.

    Raises:
        TypeError: an unknown keyword argument.
    """

    # Floating inputs are cast to the layer's dtype (not for Embedding's integer ids).
    _cast_inputs = True
    # Keras 3: a layer that passes its input's mask on unchanged sets this (compute_mask may do more).
    supports_masking = False

    def __init__(self, name=None, trainable=True, dtype=None, input_shape=None, input_dim=None,
                 batch_input_shape=None, batch_size=None, activity_regularizer=None, autocast=True, **kwargs):
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}")
        d = self.__dict__
        d.setdefault("_sublayers", [])
        self.name = name if name is not None else unique_name(_snake_case(type(self).__name__))
        if not isinstance(self.name, str):
            raise TypeError(f"Argument `name` must be a string. Received: name={name!r}")
        self._trainable = bool(trainable)
        self._dtype = _dtype_name(dtype)
        self.built = False
        self._weights_list = []
        self.grads = {}
        self._losses = []
        self._pending_losses = None
        self.input_spec = None
        self._build_input_shape = None
        self.activity_regularizer = regularizers_module.get(activity_regularizer)
        self.autocast = autocast
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_input_shape is not None:
            self._batch_input_shape = _standardize_shape(batch_input_shape)
        elif input_shape is not None:
            self._batch_input_shape = (batch_size,) + _standardize_shape(input_shape)
        else:
            self._batch_input_shape = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "build" in cls.__dict__:  # as Keras: record the build shape and mark built after any build()
            cls.build = _wrap_build(cls.__dict__["build"])

    # ------------------------------------------------------------------ properties

    @property
    def dtype(self):
        return self._dtype

    @property
    def compute_dtype(self):
        return self._dtype

    @property
    def variable_dtype(self):
        return self._dtype

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        for layer in self._sublayers:
            layer.trainable = value

    @property
    def backend(self):
        """The current backend (its ``xp`` is the array module)."""
        return get_backend()

    @property
    def final_activation(self):
        """Name of the activation this layer ends with, or None (layers applying ``_activate`` say)."""
        if "_act_name" not in self.__dict__:
            return None
        return self._act_name or getattr(self.activation, "__name__", None)

    def _activate(self, z):
        """``(activation(z), backward or None)`` for a layer ending in ``self.activation``; a softmax is
        skipped when the model asked for logits (``FORWARD_OPTIONS.logits``)."""
        name = self._act_name
        if name == "linear" or (name == "softmax" and FORWARD_OPTIONS.logits):
            return z, None
        return self._act_forward(z)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"
