"""Sequential: a linear stack of layers (Keras 3 ``keras.Sequential``)."""

import copy
import functools
import inspect

from pyminidl.layers.base import (FORWARD_OPTIONS, KerasTensor, Layer, Node, _overrides_call,
                                  _standardize_shape)
from pyminidl.layers.input_layer import InputLayer
from pyminidl.models.model import Model
from pyminidl.saving import serialization_lib
from pyminidl.saving.object_registration import CustomObjectScope
from pyminidl.training.trainer import Trainer

_LAYERS = serialization_lib.family("layers")


class Sequential(Model):
    """A stack of layers, each feeding the next; trains with ``compile`` / ``fit``.

    Args:
        layers: list of layers (the first may be ``Input(shape)`` or carry ``input_shape``/``input_dim``).
        trainable: whether training updates the weights.
        name: model name (default "sequential", "sequential_1", ...).

    Example:
        >>> model = Sequential([Input((2,)), Dense(10, activation="relu"), Dense(1)])
        >>> model.compile(optimizer="adam", loss="mse")
        >>> model.summary()
    """

    _cast_inputs = False  # each layer casts to its own dtype
    _nested_data = Trainer._nested_data  # one input array, as before there were graphs


    def __init__(self, layers=None, trainable=True, name=None, **kwargs):
        super().__init__(trainable=trainable, name=name, **kwargs)
        self._layers = []
        self._input_layer = None
        for layer in layers or []:
            self.add(layer, rebuild=False)
        self._maybe_rebuild()

    # ------------------------------------------------------------------ the stack

    @property
    def _sublayers(self):
        """Weights, grads and losses recurse through the stack (the InputLayer has none); read-only:
        the stack changes through ``add`` and ``pop``, so a write is an AttributeError, not lost."""
        return self.__dict__.get("_layers", [])

    @property
    def layers(self):
        """The layers, without the InputLayer (as Keras 3)."""
        return list(self._layers)

    def add(self, layer, rebuild=True):
        """Append ``layer`` (or start the model with an ``Input``).

        Raises:
            ValueError: an Input after other layers, or a layer name already in the model.
        """
        if isinstance(layer, KerasTensor):
            layer = layer._keras_history.operation
        if not isinstance(layer, Layer):
            raise ValueError("Only instances of `keras.Layer` can be added to a Sequential model. "
                             f"Received: {layer} (of type {type(layer)})")
        if isinstance(layer, InputLayer):
            if self._layers or self._input_layer is not None:
                raise ValueError(f"Sequential model '{self.name}' has already been configured to use an input "
                                 "shape; an Input/InputLayer can only be the first layer.")
            self._input_layer = layer
        else:
            names = {l.name for l in self._layers}
            if layer.name in names:
                raise ValueError("All layers added to a Sequential model should have unique names. "
                                 f"Name '{layer.name}' is already the name of a layer in this model. "
                                 "Update the `name` argument to pass a unique name.")
            if not self._layers and self._input_layer is None and layer._batch_input_shape is not None:
                self._input_layer = InputLayer(batch_shape=layer._batch_input_shape, dtype=layer.dtype)
            self._layers.append(layer)
        if rebuild:
            self._maybe_rebuild()

    def get_layer(self, name=None, index=None):
        """The layer called ``name``, or at position ``index`` of ``layers``.

        Raises:
            ValueError: neither or both given, or no such layer.
        """
        if (name is None) == (index is None):
            raise ValueError("Provide either a layer name or layer index at `get_layer`.")
        if index is not None:
            if len(self._layers) <= index:
                raise ValueError(f"Was asked to retrieve layer at index {index} but model only has "
                                 f"{len(self._layers)} layers.")
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: {[l.name for l in self._layers]}.")

    def pop(self, rebuild=True):
        """Remove and return the last layer.

        Raises:
            TypeError: the model has no layers.
        """
        if not self._layers:
            raise TypeError("There are no layers in the model.")
        layer = self._layers.pop()
        self.built = False
        self._invalidate_training_plan()
        if rebuild:
            self._maybe_rebuild()
        return layer

    def _maybe_rebuild(self):
        self.built = False
        self._invalidate_training_plan()
        if self._input_layer is not None and self._layers:
            self.build(self._input_layer.batch_shape)

    # ------------------------------------------------------------------ build and shapes

    def build(self, input_shape=None):
        """Build every layer for ``input_shape`` (batch axis first), propagating shapes.

        Raises:
            ValueError: no layers, no input shape known, or a layer rejects its input shape.
        """
        if not self._layers:
            raise ValueError(f"Sequential model '{self.name}' cannot be built because it has no layers. "
                             "Call `model.add(layer)`.")
        if input_shape is None:
            if self._input_layer is None:
                raise ValueError("You must provide an `input_shape` argument.")
            input_shape = self._input_layer.batch_shape
        shape = _standardize_shape(input_shape)
        if self._input_layer is None:
            self._input_layer = InputLayer(batch_shape=shape, dtype=self.dtype)
        self._build_input_shape = (None,) + shape[1:] if shape else shape
        tensor = self._input_layer.output
        for layer in self._layers:
            layer._maybe_build(shape)
            if layer.input_spec is not None:
                layer.input_spec.check(shape, layer.name)
            out = layer.compute_output_shape(shape)
            _single_output(layer, out if isinstance(out, list) else None)
            shape = tuple(out)
            # the graph of the stack, as Keras 3 records it: layer.output and Model(model.input, ...) work
            out = KerasTensor(shape, dtype=layer.compute_dtype)
            Node(layer, (tensor,), {}, [out])
            tensor = out
        self._output_tensor = tensor
        self.built = True

    def _maybe_build(self, input_shape):
        if not self.built:  # built by a first call: the batch size of that call is not part of the model
            self.build((None,) + tuple(input_shape[1:]))

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self._layers:
            shape = tuple(layer.compute_output_shape(shape))
        return shape

    @property
    def input_shape(self):
        if self._input_layer is None:
            raise AttributeError(f"Sequential model '{self.name}' has no defined input shape yet.")
        return self._input_layer.batch_shape

    @property
    def output_shape(self):
        return self.compute_output_shape(self.input_shape)

    @property
    def inputs(self):
        return None if self._input_layer is None else [self._input_layer.output]

    @property
    def outputs(self):
        return None if not self.built else [self._output_tensor]

    @property
    def input(self):
        """The model's input KerasTensor (once the input shape is known)."""
        if self._input_layer is None:
            raise AttributeError(f"Sequential model '{self.name}' has no defined input yet.")
        return self._input_layer.output

    @property
    def output(self):
        """The model's output KerasTensor (once built)."""
        if not self.built:
            raise AttributeError(f"Sequential model '{self.name}' has no defined output yet (it is not built).")
        return self._output_tensor

    def _summary_output_shape(self):
        return self.output_shape if self._input_layer is not None else None

    # ------------------------------------------------------------------ forward

    @property
    def final_activation(self):
        if not self._layers or _overrides_call(type(self._layers[-1])):
            return None  # a custom call() may wrap the activation: no logits shortcut
        return self._layers[-1].final_activation

    def forward(self, x, training=False):
        """Run every layer; ``backward(dy)`` runs their backwards in reverse and returns dx.

        The model's ``FORWARD_OPTIONS`` reach the layers they concern: ``logits`` the last one,
        ``need_dx=False`` the first one (backward then returns None); the others run with the defaults.
        A convolution whose relu a max pooling right after it can apply defers it there
        (``_deferred_activations``), and a 2-D one pools its output for that pooling in the same
        call (``_fused_pools``).

        Args:
            x: a batch, ``(batch, ...)``.
            training: Dropout and friends are active.

        Returns:
            ``(y, backward)``.
        """
        x = self._prepare(self._adjust_input_rank(x))
        backwards = []
        opts = FORWARD_OPTIONS
        logits, need_dx, owns_dy = opts.logits, opts.need_dx, opts.owns_dy
        last = len(self._layers) - 1
        deferred = _deferred_activations(self._layers)
        pools = _fused_pools(self._layers, deferred)
        owned = _owned_gradients(self._layers)
        mask = None
        try:
            for i, layer in enumerate(self._layers):
                opts.logits, opts.need_dx = logits and i == last, need_dx or i > 0
                opts.owns_dy = owned[i]
                opts.defer_activation = deferred[i] is not None
                opts.pool_activation = deferred[i - 1] if i > 0 else None
                opts.pool_layer = pools[i]
                x_in = x
                x, back = layer._forward_full(x, training, **_mask_kwargs(layer, mask))
                _single_output(layer, x)
                mask = _next_mask(layer, x_in, mask)
                backwards.append(back)
        finally:
            opts.logits, opts.need_dx, opts.owns_dy = logits, need_dx, owns_dy
            opts.defer_activation, opts.pool_activation = False, None
            opts.pool_layer, opts.pooled = None, None
        self._output_mask = mask

        def backward(dy):
            for back in reversed(backwards):
                dy = back(dy)
                if dy is None:
                    break
            return dy

        return x, backward

    def _infer(self, x):
        """Inference: each layer's output replaces its input, so at most two activations are alive."""
        x = self._prepare(self._adjust_input_rank(x))
        mask = None
        for layer in self._layers:
            x_in = x
            x = layer._infer(x, **_mask_kwargs(layer, mask))
            _single_output(layer, x)
            mask = _next_mask(layer, x_in, mask)
        self._output_mask = mask
        return x

    def _adjust_input_rank(self, x):
        """Keras's rank adjustment against the declared input: a missing trailing axis of size 1
        is added ((N,) for input shape (1,)), an extra one of size 1 is dropped."""
        if self._input_layer is None or not hasattr(x, "ndim"):
            return x
        ref = self._input_layer.batch_shape
        if x.ndim == len(ref) - 1 and ref[-1] == 1:
            return x.reshape(x.shape + (1,))
        if x.ndim == len(ref) + 1 and x.shape[-1] == 1:
            return x.reshape(x.shape[:-1])
        return x

    # ------------------------------------------------------------------ summary and config

    def get_config(self):
        layers = ([self._input_layer] if self._input_layer is not None else []) + self._layers
        cfg = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype,
               "layers": [serialization_lib.serialize_keras_object(layer) for layer in layers]}
        if self._input_layer is not None:
            cfg["build_input_shape"] = list(self._input_layer.batch_shape)
        return copy.deepcopy(cfg)

    @classmethod
    def from_config(cls, config_dict, custom_objects=None):
        """A new Sequential from ``get_config``'s output (layer classes resolved as ``layers.deserialize`` does)."""
        with CustomObjectScope(custom_objects or {}):
            return cls._from_layer_configs(dict(config_dict))

    @classmethod
    def _from_layer_configs(cls, config_dict):
        config_dict = dict(config_dict)
        layer_configs = config_dict.pop("layers")
        build_shape = config_dict.pop("build_input_shape", None)
        model = cls(name=config_dict.get("name"), trainable=config_dict.get("trainable", True),
                    dtype=config_dict.get("dtype"))
        for layer_config in layer_configs:
            model.add(serialization_lib.deserialize_keras_object(layer_config, family=_LAYERS), rebuild=False)
        if build_shape is not None and not model.built and model._layers:
            model.build(tuple(build_shape))
        else:
            model._maybe_rebuild()
        return model

    def __repr__(self):
        return f"<Sequential name={self.name}, built={self.built}>"


_LAYERS.register((Sequential,), module="keras")


# ---------------------------------------------------------------- masks (Keras's protocol)
# A layer that creates or transforms a mask (Embedding(mask_zero=True), Masking, an RNN with
# return_sequences) says so in compute_mask; the next layer receives it when its forward takes
# `mask`; a layer without supports_masking drops it. The model's output mask weights the loss.

@functools.lru_cache(maxsize=None)
def _takes_mask(cls):
    try:
        return "mask" in inspect.signature(cls.forward).parameters
    except (TypeError, ValueError):
        return False


def _mask_kwargs(layer, mask):
    return {"mask": mask} if mask is not None and _takes_mask(type(layer)) else {}


def _next_mask(layer, x, mask):
    """Keras 3: the layer's compute_mask decides (the default passes the mask on only with supports_masking)."""
    return layer.compute_mask(x, mask)


def _single_output(layer, y):
    if isinstance(y, (tuple, list)):
        raise ValueError("All layers in a Sequential model should have a single output tensor. For multi-output "
                         f"layers, use the functional API. Layer {layer.name!r} returned {len(y)} outputs.")


def _owned_gradients(layers):
    """Per layer: whether the gradient its backward receives is a fresh array nobody else reads
    (``FORWARD_OPTIONS.owns_dy``). A layer's dy is the dx of the one after it: fresh when that one
    makes it anew (``_fresh_dx``: Dense, Conv2D), or hands on a gradient that was fresh or one it made
    (``_passes_dx``: Flatten's reshape, Dropout's dy or dy * mask). Read from each class's own
    __dict__, so a subclass that changes forward inherits neither."""
    owned = [False] * len(layers)
    for i in range(len(layers) - 2, -1, -1):
        after = type(layers[i + 1]).__dict__
        owned[i] = "_fresh_dx" in after or ("_passes_dx" in after and owned[i + 1])
    return owned


def _fused_pools(layers, deferred):
    """Per layer: the max pooling right after it that it runs together with its own op in one call
    (``FORWARD_OPTIONS.pool_layer``: a convolution whose activation that pooling applies), or None."""
    out = []
    for i, (layer, nxt) in enumerate(zip(layers, layers[1:])):
        can = getattr(layer, "_can_pool_for", None)
        out.append(nxt if deferred[i] is not None and can is not None and can(nxt) else None)
    return out + [None]


def _deferred_activations(layers):
    """Per layer: the ``(kind, params)`` of the activation it leaves to the max pooling right after
    it (``FORWARD_OPTIONS.defer_activation`` / ``pool_activation``), or None. Only activations that
    commute with a max exactly qualify (``_activation_for_max_pool``), so the output is the same."""
    out = []
    for layer, nxt in zip(layers, layers[1:]):
        take = getattr(layer, "_activation_for_max_pool", None)
        out.append(take() if take is not None and getattr(nxt, "_takes_deferred_activation", False) else None)
    return out + [None]
