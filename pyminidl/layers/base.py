"""Layer: weights, build-on-first-call, forward/backward, config (the Keras 3 surface).

A layer implements ``forward(x, training) -> (y, backward)`` with ``backward(dy) -> dx`` as a
closure next to the math, recording weight gradients with ``accumulate_grad``. A custom layer
may instead implement Keras's ``call(x)`` with ``pyminidl.ops``: the default ``forward`` runs
``call`` on a private GradientTape, so it trains with no backward written by hand.

Example:
    >>> layer = Dense(3)
    >>> y = layer(np.ones((2, 4), "float32"))   # builds: kernel (4, 3), bias (3,)
    >>> [w.shape for w in layer.weights]
    [(4, 3), (3,)]
"""

import collections
import functools
import inspect
import json
import math
import threading

from pyminidl import config, debugging, initializers, ops, tree
from pyminidl._naming import to_snake_case as _snake_case
from pyminidl import regularizers as regularizers_module
from pyminidl.backend import get_backend
from pyminidl.variables import Variable

class _ForwardOptions(threading.local):
    """What the model decided for this forward, read by the layers that can use it (others ignore it).

    ``logits``: the layer ending the model stops before its softmax (the trainer fuses softmax and
    cross-entropy). ``need_dx``: nobody reads the input gradient (the model's first layer), so a
    backward may skip computing it and return None. Models set both per layer around each layer's
    forward; a layer's own sublayers run with the defaults.
    """

    logits = False
    need_dx = True


FORWARD_OPTIONS = _ForwardOptions()


class forward_options:
    """Context manager: run a forward with ``logits`` / ``need_dx`` set (restored on exit)."""

    __slots__ = ("_new", "_old")

    def __init__(self, logits=False, need_dx=True):
        self._new = (logits, need_dx)

    def __enter__(self):
        opts = FORWARD_OPTIONS
        self._old = (opts.logits, opts.need_dx)
        opts.logits, opts.need_dx = self._new
        return opts

    def __exit__(self, *exc):
        FORWARD_OPTIONS.logits, FORWARD_OPTIONS.need_dx = self._old


_UIDS = collections.defaultdict(int)
_WEIGHTS_CREATED = [0]  # bumped by every add_weight: lets a trainer notice weights created lazily


def weights_created():
    """How many weights any layer has created so far in this process."""
    return _WEIGHTS_CREATED[0]


def clear_grads(layers):
    """Forget the accumulated gradients of ``layers`` (each layer's dict, emptied in place)."""
    for layer in layers:
        layer.grads.clear()


def gradients_of(slots):
    """The gradients of ``slots`` ([(owner, weight)] as ``_trainable_slots`` gives), zeros where none."""
    xp = get_backend().xp
    out = []
    for owner, w in slots:
        g = owner.grads.get(w.name)
        out.append(xp.zeros_like(w.value) if g is None else g)
    return out


def clear_session():
    """Reset the automatic layer names (the next Dense is "dense" again), as ``keras.backend.clear_session``."""
    _UIDS.clear()


def unique_name(prefix):
    """``prefix``, then ``prefix_1``, ``prefix_2``, ... (Keras's auto-naming)."""
    _UIDS[prefix] += 1
    n = _UIDS[prefix]
    return prefix if n == 1 else f"{prefix}_{n - 1}"


def _standardize_shape(shape, what="input_shape"):
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        shape = tuple(None if s is None else int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"Cannot convert {what} to a shape: {shape!r}") from None
    if any(s is not None and s < 0 for s in shape):
        raise ValueError(f"Negative dimensions are not allowed. Received: {what}={shape}")
    return shape


def _spec_error(layer_name, what, ndim=None, shape=None):
    """InputSpec.check's message: the layer, what was expected and (for a rank) what was found."""
    tail = "" if ndim is None else f"found ndim={ndim}. Full shape received: {shape}"
    return f'Input 0 of layer "{layer_name}" is incompatible with the layer: ' + what + tail


class InputSpec:
    """What a layer accepts: ``ndim``, ``min_ndim``, ``max_ndim`` and fixed ``axes`` ({axis: size})."""

    def __init__(self, ndim=None, min_ndim=None, max_ndim=None, axes=None, shape=None, dtype=None):
        self.ndim, self.min_ndim, self.max_ndim = ndim, min_ndim, max_ndim
        self.axes = dict(axes or {})
        self.shape = None if shape is None else tuple(shape)
        self.dtype = dtype

    def check(self, shape, layer_name):
        """Raise the Keras error when ``shape`` does not fit."""
        ndim = len(shape)
        # the messages are built only on failure: this runs once per layer per training step
        if self.ndim is not None and ndim != self.ndim:
            raise ValueError(_spec_error(layer_name, f"expected ndim={self.ndim}, ", ndim, shape))
        if self.min_ndim is not None and ndim < self.min_ndim:
            raise ValueError(_spec_error(layer_name, f"expected min_ndim={self.min_ndim}, ", ndim, shape))
        if self.max_ndim is not None and ndim > self.max_ndim:
            raise ValueError(_spec_error(layer_name, f"expected max_ndim={self.max_ndim}, ", ndim, shape))
        for axis, value in self.axes.items():
            if value is not None and -ndim <= axis < ndim and shape[axis] not in (value, None):
                raise ValueError(_spec_error(layer_name, f"expected axis {axis} of input shape to have value {value}, "
                                             f"but received input with shape {shape}"))
        if self.shape is not None:
            for want, got in zip(self.shape, shape):
                if want is not None and got is not None and want != got:
                    raise ValueError(_spec_error(layer_name, f"expected shape={self.shape}, found shape={shape}"))


class KerasHistory(collections.namedtuple("KerasHistory", ["operation", "node_index", "tensor_index"])):
    """Where a KerasTensor came from: ``operation._inbound_nodes[node_index].outputs[tensor_index]``."""

    __slots__ = ()


class KerasTensor:
    """A symbolic tensor: a shape (batch None) and a dtype, what ``Input`` and symbolic layer calls return.

    ``_keras_history`` (a KerasHistory) names the layer call (Node) that produced it, so a graph can be
    walked from its outputs back to its inputs.

    Args:
        shape: the full shape, batch axis first (None for an unknown size).
        dtype: the element type.
        name: a unique name ("keras_tensor", "keras_tensor_1", ...).
    """

    def __init__(self, shape, dtype=None, name=None):
        self.shape = _standardize_shape(shape, "shape")
        self.dtype = _dtype_name(dtype)
        self.name = name or unique_name("keras_tensor")
        self._keras_history = KerasHistory(None, 0, 0)

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, sparse=False, name={self.name}>"

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            f"A symbolic KerasTensor ({self.name}, shape={self.shape}) cannot be converted to a NumPy array: it "
            "holds no values. Use it to build a model (`keras.Model(inputs, outputs)`), then call the model on data."
        )


class Node:
    """One call of a layer on symbolic tensors (Keras 3's ``Node``): the graph's vertex.

    Appended to ``operation._inbound_nodes``; each output's ``_keras_history`` points back to it,
    and each inbound layer lists it in ``_outbound_nodes``.

    Args:
        operation: the layer that was called.
        call_args: the positional arguments of the call (the input first).
        call_kwargs: the keyword arguments (tensors among them are inputs too, e.g. ``initial_state``).
        outputs: the output KerasTensors (one, or a list).
    """

    def __init__(self, operation, call_args=(), call_kwargs=None, outputs=()):
        self.operation = operation
        self.args = tuple(call_args)
        self.kwargs = dict(call_kwargs or {})
        self.outputs = tree.flatten(outputs) if outputs is not None else []
        self.input_tensors = [t for t in tree.flatten([list(self.args), self.kwargs]) if isinstance(t, KerasTensor)]
        nodes = operation.__dict__.setdefault("_inbound_nodes", [])
        nodes.append(self)
        for t in self.input_tensors:
            inbound = t._keras_history.operation
            if inbound is not None:
                inbound.__dict__.setdefault("_outbound_nodes", []).append(self)
        index = len(nodes) - 1
        for i, t in enumerate(self.outputs):
            t._keras_history = KerasHistory(operation, index, i)
        self.is_input = not self.input_tensors

    @property
    def output_tensors(self):
        return self.outputs

    @property
    def parent_nodes(self):
        """The nodes whose outputs this one reads."""
        out = []
        for t in self.input_tensors:
            op, index, _ = t._keras_history
            if op is not None:
                out.append(op._inbound_nodes[index])
        return out

    def __repr__(self):
        return f"<Node operation={self.operation.name}, id={id(self)}>"


def _is_shape(value):
    """A shape (a tuple/list of ints and None), as opposed to a structure of shapes."""
    return isinstance(value, (tuple, list)) and all(v is None or isinstance(v, int) for v in value)


def map_shapes(fn, shapes):
    """``fn`` applied to every shape of a (nested) structure of shapes."""
    if _is_shape(shapes):
        return fn(tuple(shapes))
    if isinstance(shapes, dict):
        return {k: map_shapes(fn, v) for k, v in shapes.items()}
    return type(shapes)(map_shapes(fn, s) for s in shapes)


def _tensor_kwarg_names(kwargs, kind):
    """The keyword arguments (not ``mask``) that hold tensors of ``kind`` (an array type or KerasTensor):
    they are inputs of the call, differentiated like the input (``initial_state=[h0, c0]``)."""
    return [k for k, v in kwargs.items()
            if k != "mask" and any(isinstance(leaf, kind) for leaf in tree.flatten(v))]


def _any_symbolic(x, args, kwargs):
    if isinstance(x, KerasTensor):
        return True
    if type(x) in (list, tuple, dict) and any(isinstance(t, KerasTensor) for t in tree.flatten(x)):
        return True
    return bool(args or kwargs) and any(isinstance(t, KerasTensor) for t in tree.flatten([list(args), kwargs]))


def _describe_inputs(x):
    parts = []
    for t in tree.flatten(x):
        if isinstance(t, KerasTensor):
            op = t._keras_history.operation
            parts.append(f"the output of layer '{op.name}' (shape {t.shape})" if op is not None
                         else f"a tensor of shape {t.shape}")
    return ", ".join(parts) or "non-tensor inputs"


def _first_shape(shapes):
    """The first shape of a structure of shapes."""
    while not _is_shape(shapes):
        shapes = next(iter(shapes.values())) if isinstance(shapes, dict) else shapes[0]
    return tuple(shapes)


def _shape_from_config(value):
    """A build_config shape read back from JSON: lists become tuples (a structure of shapes stays a list)."""
    if _is_shape(value):
        return tuple(value)
    if isinstance(value, dict):
        return {k: _shape_from_config(v) for k, v in value.items()}
    return [_shape_from_config(v) for v in value]


def _repacking(node_backward, structure):
    """A tape node's backward receives a tuple of output gradients; a model's backward takes them shaped
    as its outputs (a list or dict)."""
    return lambda dys: node_backward(tree.pack_sequence_as(structure, list(dys)))


def _flat_kwarg_grads(d_kwargs, tensor_kwargs):
    """A backward's keyword gradients, one per array of the tensor keywords (None where none)."""
    if not tensor_kwargs:
        return []
    if len(tensor_kwargs) == 1:
        d_kwargs = [d_kwargs]
    elif isinstance(d_kwargs, dict):
        d_kwargs = list(d_kwargs.values())
    out = []
    for value, grad in zip(tensor_kwargs, d_kwargs):
        n = len(tree.flatten(value))
        flat = [None] * n if grad is None else tree.flatten(grad)
        if len(flat) != n:
            raise ValueError(f"A backward returned {len(flat)} gradients for a keyword input holding {n} arrays.")
        out.extend(flat)
    return out


# Keys Keras 3 writes into layer configs that pyminidl has no use for (dropped when unset).
_KERAS_ONLY_KEYS = ("lora_rank", "lora_alpha", "quantization_config", "ragged", "autocast_policy")


def _dtype_name(dtype):
    """'float32' from None (floatx), a string, a NumPy dtype or Keras 3's serialized DTypePolicy dict."""
    if isinstance(dtype, dict):
        dtype = (dtype.get("config") or {}).get("name")
    return str(getattr(dtype, "name", dtype) or config.floatx())


def _json_able(value):
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


@functools.lru_cache(maxsize=None)
def _call_takes_training(cls):
    params = inspect.signature(cls.call).parameters
    return "training" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _wrap_build(build):
    if getattr(build, "_pmd_wrapped", False):
        return build

    @functools.wraps(build)
    def wrapper(self, input_shape=None, *args, **kwargs):
        if input_shape is not None and self.__dict__.get("_build_input_shape") is None:
            try:
                self._build_input_shape = tuple(input_shape)
            except TypeError:
                pass
        out = build(self, input_shape, *args, **kwargs)
        self.built = True
        return out

    wrapper._pmd_wrapped = True
    return wrapper


@functools.lru_cache(maxsize=None)
def _call_params(cls):
    """What ``__call__`` may pass on beyond the input: (positional names, keyword names, takes *args,
    takes **kwargs), read from ``call`` for call-based layers and from ``forward`` for the others."""
    runs_call = cls.forward is Layer.forward or _overrides_call(cls)
    fn = cls.call if runs_call else cls.forward
    params = list(inspect.signature(fn).parameters.values())[2:]  # self, the input
    kinds = inspect.Parameter
    positional = tuple(p.name for p in params if p.kind is kinds.POSITIONAL_OR_KEYWORD)
    names = frozenset(p.name for p in params if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY))
    return (positional, names, any(p.kind is kinds.VAR_POSITIONAL for p in params),
            any(p.kind is kinds.VAR_KEYWORD for p in params), runs_call)


@functools.lru_cache(maxsize=None)
def _overrides_call(cls):
    """True when ``call`` is defined below the class that defines ``forward`` (e.g. a Dense subclass with
    its own ``call``): then the layer runs ``call`` on a tape instead of the inherited ``forward``."""
    mro = cls.__mro__
    call_owner = next(c for c in mro if "call" in c.__dict__)
    forward_owner = next(c for c in mro if "forward" in c.__dict__)
    return forward_owner is not Layer and mro.index(call_owner) < mro.index(forward_owner)


class Layer:
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
    # The graph: one Node per symbolic call (a list, created by the first Node), and the calls reading
    # this layer's outputs.
    _inbound_nodes = ()
    _outbound_nodes = ()

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        try:  # Keras 3 records simple __init__ arguments, so a subclass needs no get_config
            params = inspect.signature(cls.__init__).parameters
            bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
            auto = {}
            for key, value in list(bound.arguments.items())[1:]:
                kind = params[key].kind
                if kind is inspect.Parameter.VAR_KEYWORD:
                    auto.update(value)
                elif kind is not inspect.Parameter.VAR_POSITIONAL:
                    auto[key] = value
            object.__setattr__(obj, "_auto_config", auto if _json_able(auto) else None)
        except TypeError:
            object.__setattr__(obj, "_auto_config", None)
        return obj

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

    def __setattr__(self, key, value):
        d = self.__dict__
        attrs = d.get("_weight_attrs")
        if attrs is not None and key in attrs and value is not None:
            var = attrs[key]
            if value is not var.value:  # `layer.kernel = array` copies in: training keeps updating what is read
                var.assign(value.value if isinstance(value, Variable) else value)
            return
        ids = d.get("_weight_ids")
        if ids is not None and id(value) in ids and ids[id(value)].value is value:
            d.setdefault("_weight_attrs", {})[key] = ids[id(value)]
        # Track sublayers (also inside a list or tuple), as Keras does, for weights, grads and losses.
        found = [value] if isinstance(value, Layer) else (
            [v for v in value if isinstance(v, Layer)] if isinstance(value, (list, tuple)) else [])
        if found and not key.startswith("_keras"):
            sub = self.__dict__.setdefault("_sublayers", [])
            for layer in found:
                if layer is not self and all(layer is not s for s in sub):
                    sub.append(layer)
        object.__setattr__(self, key, value)

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

    # ------------------------------------------------------------------ weights

    def add_weight(self, *args, **kwargs):
        """Create, register and return a weight array.

        Takes Keras 3's ``add_weight(shape, initializer, dtype, trainable, ..., name=)`` and the
        contract's / tf.keras's ``add_weight(name, shape, initializer, ...)``.

        Args:
            name: unique within the layer ("kernel", "bias").
            shape: tuple of ints.
            initializer: name, Initializer or callable (default glorot_uniform for floats).
            dtype: default the layer's dtype.
            trainable: whether training updates it.
            regularizer: penalty added to the layer's losses.
            constraint: projection applied by ``apply_constraints`` after each update.

        Returns:
            The new array (its identity is stable: ``set_weights`` copies into it).
        """
        order = (("name", "shape", "initializer", "dtype", "trainable", "regularizer", "constraint")
                 if args and isinstance(args[0], str) else
                 ("shape", "initializer", "dtype", "trainable", "autocast", "regularizer", "constraint"))
        if len(args) > len(order):
            raise TypeError(f"add_weight() takes at most {len(order)} positional arguments")
        spec = dict(zip(order, args))
        for key in spec:
            if key in kwargs:
                raise TypeError(f"add_weight() got multiple values for argument {key!r}")
        spec.update(kwargs)
        return self._add_weight(**spec)

    def _add_weight(self, name=None, shape=None, initializer=None, dtype=None, trainable=True, regularizer=None,
                    constraint=None, autocast=True, aggregation="none", overwrite_with_gradient=False):
        shape = () if shape is None else _standardize_shape(shape, "shape")
        if any(s is None for s in shape):
            raise ValueError(f"Weight shapes must be fully defined. Received: shape={shape} for weight {name!r} "
                             f"of layer {self.name!r}")
        dtype = str(getattr(dtype, "name", dtype) or self._dtype)
        init = initializers.get("glorot_uniform" if initializer is None else initializer)
        be = get_backend()
        value = be.asarray(init(shape, dtype=dtype), dtype=dtype).reshape(shape)
        value = be.xp.array(value, dtype=dtype, copy=True, order="C")  # own, C-contiguous (an orthogonal init is F-ordered), writable
        used = {w.name for w in self._weights_list}
        name = name or "variable"
        base, k = name, 0
        while name in used:
            k += 1
            name = f"{base}_{k}"
        var = Variable(value, name, f"{self.name}/{name}", bool(trainable), regularizers_module.get(regularizer),
                       constraint)
        self._weights_list.append(var)
        self.__dict__.setdefault("_weight_ids", {})[id(value)] = var
        _WEIGHTS_CREATED[0] += 1
        return value

    def _own_weights(self):
        return [w for w in self._weights_list if w.trainable] + [w for w in self._weights_list if not w.trainable]

    def _all_layers(self):
        """This layer and every sublayer below it (each once)."""
        out, seen = [], set()
        stack = [self]
        while stack:
            layer = stack.pop(0)
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            out.append(layer)
            stack.extend(layer._sublayers)
        return out

    def _slots(self):
        """[(owner, Variable)] in ``weights`` order (trainable first per layer, then sublayers)."""
        slots, seen = [], set()
        for w in self._own_weights():
            slots.append((self, w))
            seen.add(id(w.value))
        for layer in self._sublayers:
            for owner, w in layer._slots():
                if id(w.value) not in seen:
                    seen.add(id(w.value))
                    slots.append((owner, w))
        return slots

    def _trainable_slots(self):
        if not self._trainable:
            return []
        return [(owner, w) for owner, w in self._slots() if w.trainable and owner._trainable]

    @property
    def weights(self):
        """Every weight array: this layer's (trainable first), then its sublayers'."""
        return [w.value for _, w in self._slots()]

    @property
    def trainable_weights(self):
        return [w.value for _, w in self._trainable_slots()]

    @property
    def non_trainable_weights(self):
        trainable = {id(v) for v in self.trainable_weights}
        return [v for v in self.weights if id(v) not in trainable]

    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights
    variables = weights

    @property
    def weight_names(self):
        """Paths of ``weights``, in order, as "layer_name/weight_name" (fixed when each weight is created)."""
        return [w.path for _, w in self._slots()]

    def _tracked_variables(self):
        """The ``Variable`` records of ``weights`` (same order): array, path, trainable, regularizer."""
        return [w for _, w in self._slots()]

    def get_weights(self):
        """Copies of ``weights`` as NumPy arrays."""
        be = get_backend()
        return [be.to_numpy(v).copy() for v in self.weights]

    def set_weights(self, weights):
        """Copy ``weights`` (a list of arrays in ``weights`` order) into the layer's arrays.

        Raises:
            ValueError: wrong number of arrays, or a shape mismatch (naming layer, weight and shapes).
        """
        slots = self._slots()
        weights = list(weights)
        if len(weights) != len(slots):
            raise ValueError(
                f"You called `set_weights(weights)` on layer '{self.name}' with a weight list of length "
                f"{len(weights)}, but the layer was expecting {len(slots)} weights."
            )
        be = get_backend()
        for (owner, w), new in zip(slots, weights):
            new = be.asarray(new)
            if tuple(new.shape) != tuple(w.value.shape):
                raise ValueError(
                    f"Layer {owner.name!r} weight {w.name!r} has shape {tuple(w.value.shape)}, but the weight "
                    f"passed to set_weights() has shape {tuple(new.shape)}."
                )
        for (_, w), new in zip(slots, weights):
            w.assign(new)

    def count_params(self):
        """Total number of scalars in ``weights``.

        Raises:
            ValueError: the layer is not built.
        """
        if not self.built:
            raise ValueError(
                f"You tried to call `count_params` on layer '{self.name}', but the layer isn't built. "
                "You can build it manually via: `layer.build(input_shape)`."
            )
        return int(sum(math.prod(v.shape) for v in self.weights))

    def apply_constraints(self):
        """Project every constrained weight in place (call after an optimizer step)."""
        for _, w in self._slots():
            if w.constraint is not None:
                w.value[...] = w.constraint(w.value)

    # ------------------------------------------------------------------ gradients and losses

    def accumulate_grad(self, name, g):
        """Add ``g`` to the gradient of weight ``name`` (the only place gradients are summed)."""
        prev = self.grads.get(name)
        self.grads[name] = g if prev is None else prev + g

    def zero_grads(self):
        """Forget every accumulated gradient (this layer and its sublayers)."""
        clear_grads(self._all_layers())

    def gradients(self):
        """Gradients aligned with ``trainable_weights`` (zeros where none was accumulated)."""
        return gradients_of(self._trainable_slots())

    @property
    def losses(self):
        """Penalties of the latest forward: weight regularizers, activity regularizer, add_loss (floats)."""
        out = list(self._losses)
        for layer in self._sublayers:
            out.extend(layer.losses)
        return out

    def add_loss(self, loss):
        """Add a penalty from inside ``call`` (differentiated through the layer's tape)."""
        if self._pending_losses is not None:
            self._pending_losses.append(loss)
        else:
            self._losses.append(float(loss))

    # ------------------------------------------------------------------ build

    def build(self, input_shape):
        """Create the weights for ``input_shape`` (batch axis first); the default has none."""
        self.built = True

    def _maybe_build(self, input_shape):
        # the batch size of the first call is not part of the layer (a shape, or a structure of shapes)
        shape = map_shapes(lambda s: (None,) + s[1:] if s else s, input_shape)
        if self._build_input_shape is None:  # also for layers built in __init__ (Flatten): summary shapes
            self._build_input_shape = shape
        if not self.built:
            self.build(shape)
            self.built = True

    def build_from_config(self, build_config):
        if build_config and build_config.get("input_shape") is not None:
            self._maybe_build(_shape_from_config(build_config["input_shape"]))

    def get_build_config(self):
        if self._build_input_shape is not None:
            return {"input_shape": self._build_input_shape}
        return None

    def compute_output_shape(self, input_shape):
        """Output shape for ``input_shape`` (or a structure of them); the default runs ``call`` on zeros (batch 1)."""
        xp = get_backend().xp
        zeros = map_shapes(lambda s: xp.zeros(tuple(1 if d is None else d for d in s), dtype=self._dtype),
                           input_shape)
        y = self.__call__(zeros)
        batch = _first_shape(input_shape)[0] if _first_shape(input_shape) else None
        shapes = [(batch,) + tuple(t.shape[1:]) for t in tree.flatten(y)]
        return shapes if isinstance(y, (list, tuple)) else shapes[0]

    def compute_mask(self, inputs, mask=None):
        """The mask of the output: the input's when ``supports_masking``, else None (Keras 3)."""
        return mask if self.supports_masking else None

    def _summary_output_shape(self):
        """The output shape shown by ``summary`` (None when unknown)."""
        if not self.built or self._build_input_shape is None:
            return None
        try:
            return self.compute_output_shape(self._build_input_shape)
        except (NotImplementedError, ValueError, TypeError):
            return None

    def _prepare(self, x):
        """Array conversion, dtype cast, build on first call and the input-spec check."""
        if type(x) in (list, tuple, dict):
            return self._prepare_nested(x)
        be = get_backend()  # _convert_input, inlined: this runs once per layer per step
        if not isinstance(x, be.xp.ndarray):
            x = be.asarray(x)
        if self._cast_inputs and self.autocast and x.dtype != self._dtype and x.dtype.kind in "fiub":
            x = x.astype(self._dtype)
        if not self.built or self._build_input_shape is None:
            if self.input_spec is not None:  # e.g. min_ndim, before build reads the shape
                self.input_spec.check(tuple(x.shape), self.name)
            self._maybe_build(tuple(x.shape))
        if self.input_spec is not None:
            self.input_spec.check(tuple(x.shape), self.name)
        return x

    def _convert_input(self, x):
        be = get_backend()
        if not isinstance(x, be.xp.ndarray):
            x = be.asarray(x)
        if self._cast_inputs and self.autocast and x.dtype != self._dtype and x.dtype.kind in "fiub":
            x = x.astype(self._dtype)
        return x

    def _prepare_nested(self, x):
        """Several inputs (a list, tuple or dict of arrays: merge layers, models with several inputs)."""
        x = tree.map_structure(self._convert_input, x)
        if not self.built or self._build_input_shape is None:
            self._maybe_build(tree.map_structure(lambda a: tuple(a.shape), x))
        return x

    # ------------------------------------------------------------------ forward / call

    def call(self, x, training=None):
        """Keras's ``call``: the output for ``x``. Built-in layers define ``forward`` instead.

        For them ``call`` runs ``forward`` (recorded as one node on an active GradientTape), so a
        subclass overriding ``call`` may use ``super().call(x)`` and still train.
        """
        if type(self).forward is not Layer.forward:
            return self._recorded(x, {}, lambda x_, kw: self.forward(x_, bool(training)))
        raise NotImplementedError(f"Layer {type(self).__name__} does not implement call() or forward().")

    def forward(self, x, training=False, **kwargs):
        """Run ``call`` on a private tape: returns ``(y, backward)``, backward accumulating weight grads.

        ``x`` may be nested (a list or dict of arrays); ``call`` may return several outputs (then ``y`` is a
        tuple and ``backward`` takes a tuple, None where an output got no gradient). Keyword arguments
        holding arrays (``initial_state=...``) are differentiated too: backward then returns ``(dx, d_kwargs)``.
        """
        self._pending_losses = []
        xp = get_backend().xp
        tensor_kw = _tensor_kwarg_names(kwargs, xp.ndarray) if kwargs else []
        try:
            with ops._suspend_tapes(), forward_options(), ops.GradientTape(persistent=True) as tape:
                x = tree.map_structure(ops._traced, x)  # NumPy arithmetic on x inside call() is recorded too
                kwargs = {k: tree.map_structure(ops._traced, v) if k in tensor_kw else v for k, v in kwargs.items()}
                inputs = tree.flatten(x) + [t for k in tensor_kw for t in tree.flatten(kwargs[k])]
                tape.watch(inputs + self.trainable_weights)
                args = self.__dict__.pop("_call_extras", ())
                if _call_takes_training(type(self)):
                    kwargs["training"] = training
                y = self.call(x, *args, **kwargs)
                outputs = [ops._as_tensor(t) for t in tree.flatten(y)]
        finally:
            extra, self._pending_losses = self._pending_losses, None
        # after call: sublayers built on this first call have weights now (their calls watched them)
        slots = self._trainable_slots()
        self._losses = [float(v) for v in extra]
        backward = self._tape_backward(tape, outputs, inputs, slots, extra, (x, kwargs, tensor_kw))
        plain = tuple(ops._plain(t) for t in outputs)
        return (plain if isinstance(y, (list, tuple)) else plain[0]), backward  # downstream gets plain arrays

    def _tape_backward(self, tape, outputs, inputs, slots, extra, call):
        """The backward of ``forward``'s private tape: seeds the outputs with dy, returns dx (and d_kwargs)."""
        sources = inputs + [w.value for _, w in slots]
        x, kwargs, tensor_kw = call

        def backward(dy):
            dys = list(dy) if isinstance(dy, (list, tuple)) else [dy]
            seeded = [(t, d) for t, d in zip(outputs, dys) if d is not None]
            if slots and not any(tape._tracks(t) for t in outputs) and not extra:
                raise ValueError(
                    f"The output of {type(self).__name__}.call() (layer {self.name!r}) is not connected to its "
                    "input or weights through pyminidl.ops, so its weights cannot be trained. Write call() with "
                    "pyminidl.ops (keras.ops) functions rather than NumPy."
                )
            grads = (tape.gradient([t for t, _ in seeded], sources, output_gradients=[d for _, d in seeded])
                     if seeded else [None] * len(sources))
            for term in extra:  # add_loss terms: d(term)/d(source) joins the output's gradient
                more = tape.gradient(term, sources)
                grads = [a if b is None else b if a is None else a + b for a, b in zip(grads, more)]
            n_x = len(tree.flatten(x))
            for (owner, w), g in zip(slots, grads[len(inputs):]):
                if g is not None:
                    owner.accumulate_grad(w.name, g)
            xp = get_backend().xp
            dx = [xp.zeros_like(s) if g is None else ops._plain(g) for s, g in zip(inputs[:n_x], grads[:n_x])]
            dx = tree.pack_sequence_as(x, dx) if tree.is_nested(x) else dx[0]
            if not tensor_kw:
                return dx
            rest = iter(grads[n_x:len(inputs)])
            d_kwargs = {k: tree.map_structure(lambda _: ops._plain(next(rest)), kwargs[k]) for k in tensor_kw}
            return dx, (d_kwargs[tensor_kw[0]] if len(tensor_kw) == 1 else d_kwargs)

        return backward

    def _forward_full(self, x, training=False, **kwargs):
        """prepare + forward + regularizer penalties, checked for NaN/Inf when debugging asks."""
        y, backward = self._forward_penalised(x, training, kwargs)
        if debugging.STATE.enabled:
            return debugging.checked(self, y, backward)
        return y, backward

    def _forward_penalised(self, x, training, kwargs):
        """prepare + forward + regularizer penalties (stored in ``losses``, their gradients in backward)."""
        x = self._prepare(x)
        if self._losses:  # (an assignment runs Layer.__setattr__: only when there is something to drop)
            self._losses = []
        if _overrides_call(type(self)):
            y, backward = Layer.forward(self, x, training, **kwargs)
        else:
            # (the common call has no keywords: no ** on the per-step path)
            y, backward = self.forward(x, training, **kwargs) if kwargs else self.forward(x, training)
        regs = [w for w in self._weights_list if w.regularizer is not None]
        activity = self.activity_regularizer
        if not regs and activity is None:
            return y, backward
        outputs = y if type(y) is tuple else (y,)
        penalties = [w.regularizer(w.value) for w in regs]
        if activity is not None:
            penalties.extend(activity(t) for t in outputs)
        self._losses = self._losses + [float(p) for p in penalties]

        def backward_full(dy):
            if activity is not None:  # d(penalty(y))/dy joins dy
                if type(y) is tuple:
                    dy = tuple(None if d is None else d + regularizers_module._gradient(activity, t)
                               for d, t in zip(dy, y))
                else:
                    dy = dy + regularizers_module._gradient(activity, y)
            dx = backward(dy)
            for w in regs:
                self.accumulate_grad(w.name, regularizers_module._gradient(w.regularizer, w.value))
            return dx

        return y, backward_full

    def _infer(self, x, **kwargs):
        """The output for ``x`` in inference mode, keeping no backward (predict and evaluate run this)."""
        return self._forward_full(x, False, **kwargs)[0]

    def __call__(self, *args, **kwargs):
        """The output for the input (builds on the first call). On a GradientTape it records one node.

        Keras 3's protocol: the input is the first positional argument (or ``inputs=``), possibly nested
        (a list or dict of arrays); ``training`` and ``mask`` reach ``call``/``forward`` only when it accepts
        them; any other argument must be one ``call``/``forward`` takes, else a TypeError names it. On
        KerasTensors the call is symbolic: it infers the output shape and records a Node of the graph.
        A layer with several outputs returns a list.

        Raises:
            TypeError: no input, or an argument the layer's ``call``/``forward`` does not accept.
            ValueError: (symbolic) the input's shape does not fit the layer, naming both layers and shapes.
        """
        x, args, kwargs = self._split_call_arguments(args, kwargs)
        training = kwargs.pop("training", None)
        if _any_symbolic(x, args, kwargs):
            if training is not None:
                kwargs["training"] = training
            return self._symbolic_call(x, args, kwargs)
        if args:
            self.__dict__["_call_extras"] = args  # read by Layer.forward's call()
        try:
            return self._recorded(x, kwargs, lambda x_, kw: self._forward_full(x_, bool(training), **kw))
        finally:
            self.__dict__.pop("_call_extras", None)

    def _split_call_arguments(self, args, kwargs):
        """``(input, extra positional, extra keywords)``, checked against what the layer accepts."""
        if args:
            x, args = args[0], args[1:]
        elif "inputs" in kwargs:
            x = kwargs.pop("inputs")
        else:
            raise TypeError(f"Layer {self.name!r} ({type(self).__name__}) was called without an input.")
        positional, names, var_pos, var_kw, runs_call = _call_params(type(self))
        mask = kwargs.pop("mask", None)
        if mask is not None and (var_kw or "mask" in names):
            kwargs["mask"] = mask
        unknown = [k for k in kwargs if k not in names and k != "training"] if not var_kw else []
        if len(args) > len(positional) and not var_pos:
            unknown.append(f"{len(args)} extra positional argument(s)")
        if unknown or (not runs_call and args):
            bad = unknown or [f"{len(args)} positional argument(s)"]
            raise TypeError(f"Layer {self.name!r} ({type(self).__name__}) got unexpected argument(s) in its "
                            f"call: {bad}. Received: args={args!r}, kwargs={sorted(kwargs)!r}")
        return x, args, kwargs

    def _recorded(self, x, kwargs, run):
        """``run(x, kwargs) -> (y, backward)``; returns y (a list for several outputs), recorded as one node
        on the active tapes: its inputs are x's arrays, the arrays of tensor keywords and the weights."""
        if not ops.recording():
            y = run(x, kwargs)[0]
            return list(y) if type(y) is tuple else y
        x = tree.map_structure(ops._as_tensor, x)
        tensor_kw = _tensor_kwarg_names(kwargs, get_backend().xp.ndarray) if kwargs else []
        with ops._suspend_tapes():
            y, backward = run(x, kwargs)
        slots = self._trainable_slots()
        for tape in ops._tapes():
            if tape.watch_accessed_variables:
                tape.watch([w.value for _, w in slots])
        inputs = tree.flatten(x) + [t for k in tensor_kw for t in tree.flatten(kwargs[k])]
        several = tree.is_nested(y)  # a tuple from a layer's forward; a list or dict from a model's
        outputs = []
        for t in (tree.flatten(y) if several else [y]):
            t = ops._traced(ops._as_tensor(t))
            outputs.append(t.view() if any(t is s for s in inputs) else t)
        node_backward = self._node_backward(backward, slots, x, [kwargs[k] for k in tensor_kw])
        if several and type(y) is not tuple:
            node_backward = _repacking(node_backward, y)
        ops._record(tuple(outputs) if several else outputs[0], inputs + [w.value for _, w in slots], node_backward)
        if not several:
            return outputs[0]
        return outputs if type(y) is tuple else tree.pack_sequence_as(y, outputs)

    def _node_backward(self, backward, slots, x=None, tensor_kwargs=()):
        """Wrap ``backward`` for a tape: one gradient per recorded input (x's arrays, the tensor keywords'
        arrays), then the weight grads, which are returned, not accumulated."""
        layers = self._all_layers()
        n_x = len(tree.flatten(x))

        def node_backward(dy):
            saved = [layer.grads for layer in layers]
            for layer in layers:
                layer.grads = {}
            try:
                out = backward(dy)
                grads = [owner.grads.get(w.name) for owner, w in slots]
            finally:
                for layer, g in zip(layers, saved):
                    layer.grads = g
            dx, d_kwargs = out if tensor_kwargs else (out, None)
            flat = [None] * n_x if dx is None else tree.flatten(dx) if tree.is_nested(x) else [dx]
            return flat + _flat_kwarg_grads(d_kwargs, tensor_kwargs) + grads

        return node_backward

    def _symbolic_call(self, x, args, kwargs):
        """Infer the output (shapes and dtypes) of a call on KerasTensors and record it as a Node."""
        shapes = tree.map_structure(lambda t: t.shape, x)
        try:
            if isinstance(x, KerasTensor) and self.input_spec is not None and not self.built:
                self.input_spec.check(x.shape, self.name)
            self._maybe_build(shapes)
            if isinstance(x, KerasTensor) and self.input_spec is not None:
                self.input_spec.check(x.shape, self.name)
            specs = self._output_specs(shapes, x, args, kwargs)
        except ValueError as err:
            raise ValueError(f"{err} (while calling layer '{self.name}' on {_describe_inputs(x)})") from err
        outputs = [KerasTensor(shape, dtype) for shape, dtype in specs[0]]
        Node(self, (x,) + tuple(args), kwargs, outputs)
        return outputs if specs[1] else outputs[0]

    def _output_specs(self, shapes, x, args, kwargs):
        """``([(shape, dtype)], several)``: from ``compute_output_shape`` when the layer defines it, else
        from a run on zeros (batch 1) with the same keywords."""
        if type(self).compute_output_shape is not Layer.compute_output_shape:
            out = self.compute_output_shape(shapes)
            several = not _is_shape(out)
            return [(s, self.compute_dtype) for s in (out if several else [out])], several
        xp = get_backend().xp

        def zeros(t):
            if not isinstance(t, KerasTensor):
                return t
            return xp.zeros(tuple(1 if d is None else d for d in t.shape), dtype=t.dtype)

        kw = {k: tree.map_structure(zeros, v) for k, v in kwargs.items() if k != "training"}
        if args:
            self.__dict__["_call_extras"] = tuple(tree.map_structure(zeros, list(args)))
        try:
            y = self._infer(tree.map_structure(zeros, x), **kw)
        finally:
            self.__dict__.pop("_call_extras", None)
        batch = tree.flatten(x)[0].shape[0]
        leaves = tree.flatten(list(y) if type(y) is tuple else y)
        specs = [((batch,) + tuple(t.shape[1:]), str(t.dtype)) for t in leaves]
        return specs, type(y) is tuple or isinstance(y, list)

    # ------------------------------------------------------------------ the graph

    @property
    def input(self):
        """The input KerasTensor(s) of the layer's first call in a graph (Keras 3's ``layer.input``)."""
        return self._node_attribute("input")

    @property
    def output(self):
        """The output KerasTensor(s) of the layer's first call in a graph (Keras 3's ``layer.output``)."""
        return self._node_attribute("output")

    def _node_attribute(self, what):
        nodes = self._inbound_nodes
        if not nodes:
            raise AttributeError(f"The layer {self.name} has never been called and thus has no defined {what}.")
        values = nodes[0].input_tensors if what == "input" else nodes[0].outputs
        return values[0] if len(values) == 1 else list(values)

    # ------------------------------------------------------------------ config

    def get_config(self):
        """The constructor arguments (Keras 3 keys), JSON-serialisable."""
        cfg = {"name": self.name, "trainable": self.trainable, "dtype": self._dtype}
        if type(self).get_config is not Layer.get_config:
            return cfg  # a subclass's get_config adds its own arguments
        if self._auto_config is None:
            raise NotImplementedError(
                f"Layer {type(self).__name__} does not implement get_config(), and its __init__ arguments "
                "are not JSON-serializable, so they cannot be recorded automatically. Override get_config()."
            )
        cfg.update({k: v for k, v in self._auto_config.items() if k not in cfg})
        return cfg

    @classmethod
    def from_config(cls, config_dict):
        """A new layer from ``get_config``'s output."""
        config_dict = dict(config_dict)
        for key in _KERAS_ONLY_KEYS:  # written by Keras 3, meaningless here while unset
            if key in config_dict and not config_dict[key]:
                del config_dict[key]
        return cls(**config_dict)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"
