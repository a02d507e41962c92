"""The layer call protocol: input preparation, ``forward`` (``call`` run on a private tape), penalties,
``__call__`` (Keras 3's arguments, recorded on active GradientTapes) and the per-forward options
the model sets (``FORWARD_OPTIONS``)."""

import functools
import inspect
import threading

from pyminidl import debugging, ops, tree
from pyminidl import regularizers as regularizers_module
from pyminidl.backend import get_backend
from pyminidl.layers._layer_graph import _any_symbolic


class _ForwardOptions(threading.local):
    """What the model decided for this forward, read by the layers that can use it (others ignore it).

    ``logits``: the layer ending the model stops before its softmax (the trainer fuses softmax and
    cross-entropy). ``need_dx``: nobody reads the input gradient (the model's first layer), so a
    backward may skip computing it and return None. ``owns_dy``: the gradient the backward will
    receive is a fresh array nobody else reads (a Sequential hands a layer the input gradient a
    Dense after it just made), so the backward may overwrite it. ``defer_activation``: the layer
    after this one applies this layer's activation (a max pooling, with which it commutes), so the
    layer returns its pre-activation output. ``pool_activation``: ``(kind, params)`` of that
    deferred activation, for the max pooling to apply to its (smaller) output. ``pool_layer``: that
    max pooling, when the layer can run it together with its own op in one call (a first
    convolution's output then never leaves the cache); the layer returns the pooled pre-activation
    and leaves ``pooled``: ``(argmax, input shape, takes_gradient)`` for the pooling, which takes it
    instead of pooling again; with takes_gradient (the layer's input gradient is not needed) the
    pooling's backward hands the layer a ``PooledGradient`` instead of routing it to the layer's
    output. Models set them per layer around each layer's forward; a layer's own sublayers run
    with the defaults.
    """

    logits = False
    need_dx = True
    owns_dy = False
    defer_activation = False
    pool_activation = None
    pool_layer = None
    pooled = None


FORWARD_OPTIONS = _ForwardOptions()


class PooledGradient:
    """A max pooling's gradient ``dp`` (NHWC, its activation's backward applied) with its ``argmax``
    and window ``(pool_size, strides, padding)``, handed unrouted to the layer that pooled for it
    (``FORWARD_OPTIONS.pooled``), which sums its weight gradient from them in one call."""

    __slots__ = ("dp", "argmax", "window")

    def __init__(self, dp, argmax, window):
        self.dp, self.argmax, self.window = dp, argmax, window


class forward_options:
    """Context manager: run a forward with ``logits`` / ``need_dx`` set (restored on exit)."""

    __slots__ = ("_new", "_old")

    def __init__(self, logits=False, need_dx=True, owns_dy=False):
        self._new = (logits, need_dx, owns_dy)

    def __enter__(self):
        opts = FORWARD_OPTIONS
        self._old = (opts.logits, opts.need_dx, opts.owns_dy)
        opts.logits, opts.need_dx, opts.owns_dy = self._new
        return opts

    def __exit__(self, *exc):
        FORWARD_OPTIONS.logits, FORWARD_OPTIONS.need_dx, FORWARD_OPTIONS.owns_dy = self._old


def _tensor_kwarg_names(kwargs, kind):
    """The keyword arguments (not ``mask``) that hold tensors of ``kind`` (an array type or KerasTensor):
    they are inputs of the call, differentiated like the input (``initial_state=[h0, c0]``)."""
    return [k for k, v in kwargs.items()
            if k != "mask" and any(isinstance(leaf, kind) for leaf in tree.flatten(v))]


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


@functools.lru_cache(maxsize=None)
def _call_takes_training(cls):
    params = inspect.signature(cls.call).parameters
    return "training" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


@functools.lru_cache(maxsize=None)
def _call_params(cls):
    """What ``__call__`` may pass on beyond the input: (positional names, keyword names, takes *args,
    takes **kwargs), read from ``call`` for call-based layers and from ``forward`` for the others."""
    runs_call = cls.forward is CallMixin.forward or _overrides_call(cls)
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
    return forward_owner is not CallMixin and mro.index(call_owner) < mro.index(forward_owner)


class CallMixin:
    """How a layer is called: eagerly, on a tape, or (via SymbolicMixin) on KerasTensors."""

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

    def call(self, x, training=None):
        """Keras's ``call``: the output for ``x``. Built-in layers define ``forward`` instead.

        For them ``call`` runs ``forward`` (recorded as one node on an active GradientTape), so a
        subclass overriding ``call`` may use ``super().call(x)`` and still train.
        """
        if type(self).forward is not CallMixin.forward:
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
            y, backward = CallMixin.forward(self, x, training, **kwargs)
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
