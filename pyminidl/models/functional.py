"""Functional: a model defined as a graph of layer calls on symbolic tensors (Keras 3's ``Functional``).

``Input`` gives KerasTensors; calling a layer on them infers the output shape and records a
``Node``; ``Model(inputs, outputs)`` walks the nodes back from the outputs (Keras's ``map_graph``:
depths, a deterministic layer order, "Graph disconnected" when an output does not come from the
inputs) and keeps a plan of steps in execution order.

Training runs each step's ``_forward_full`` and keeps its backward closure; backward runs them in
reverse, summing the gradients of tensors read more than once (fan-out) and skipping steps whose
outputs got no gradient (unused branches cost nothing). Inference (``_infer``) keeps no closure and
drops each value after its last reader. A layer called twice (shared) runs as two steps with
two closures; both accumulate into the same weight gradients.

Example:
    >>> inputs = Input(shape=(784,))
    >>> hidden = Dense(100, activation="sigmoid")(inputs)
    >>> model = Model(inputs, Dense(10, activation="softmax")(hidden))
    >>> probe = Model(model.input, model.layers[1].output)      # intermediate activations
"""

import collections
import copy

from pyminidl import tree
from pyminidl.backend import get_backend
from pyminidl.layers.base import (FORWARD_OPTIONS, KerasTensor, Layer, Node, _call_params, _flat_kwarg_grads,
                                  _overrides_call, _tensor_kwarg_names)
from pyminidl.layers import deserialize as deserialize_layer
from pyminidl.layers import serialize as serialize_layer
from pyminidl.layers.input_layer import InputLayer
from pyminidl.models.model import Model
from pyminidl.saving import serialization_lib
from pyminidl.training.trainer import Trainer


# ---------------------------------------------------------------------- the graph walk (Keras's map_graph)


def _build_map(inputs, outputs):
    """Nodes from the inputs to the outputs (each once, parents first) and each layer's traversal index."""
    finished, in_progress, ordered, indices = set(), set(), [], {}
    input_ids = {id(t) for t in inputs}

    def visit(tensor):
        op, node_index, _ = tensor._keras_history
        if op is None:
            raise ValueError(f"The tensor {tensor} was not created by a layer call or `Input`, so the graph "
                             "cannot be traced back from it.")
        node = op._inbound_nodes[node_index]
        if id(node) in finished:
            return
        if id(node) in in_progress:
            raise ValueError(f"Tensor {tensor} from layer '{op.name}' is part of a cycle.")
        indices.setdefault(id(op), len(indices))
        in_progress.add(id(node))
        if not node.is_input and id(tensor) not in input_ids:
            for t in node.input_tensors:
                visit(t)
        finished.add(id(node))
        in_progress.discard(id(node))
        ordered.append(node)

    for t in outputs:
        visit(t)
    return ordered, indices


def _depths(ordered):
    """Keras's depths: outputs at 0, each parent one deeper than its deepest reader (a shared layer
    takes the largest depth of its nodes)."""
    node_depth, op_depth = {}, {}
    for node in reversed(ordered):
        depth = max(node_depth.setdefault(id(node), 0), op_depth.get(id(node.operation), 0))
        op_depth[id(node.operation)] = depth
        node_depth[id(node)] = depth
        for parent in node.parent_nodes:
            node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
    return node_depth, op_depth


def map_graph(inputs, outputs):
    """``(nodes, layers)``: the graph's nodes in execution order and its layers in Keras's order.

    Raises:
        ValueError: a cycle, an output that cannot be computed from ``inputs`` ("Graph disconnected"),
            or two layers with one name.
    """
    ordered, indices = _build_map(inputs, outputs)
    node_depth, op_depth = _depths(ordered)
    by_id = {id(n.operation): n.operation for n in ordered}
    for t in inputs:  # an input no output reads is still the model's
        op = t._keras_history.operation
        if id(op) not in op_depth:
            op_depth[id(op)], indices[id(op)], by_id[id(op)] = 0, -1, op
    layers = sorted(by_id.values(), key=lambda op: (-op_depth[id(op)], indices[id(op)]))
    input_ids = {id(t) for t in inputs}
    # stable sort: parents before readers; the node making a model input (an Input, or the layer of an
    # intermediate tensor used as an input) does not run
    nodes = [n for n in sorted(ordered, key=lambda n: -node_depth[id(n)])
             if not n.is_input and not any(id(t) in input_ids for t in n.outputs)]
    _check_connected(inputs, outputs, nodes)
    names = [op.name for op in layers]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f'The name "{name}" is used {names.count(name)} times in the model. All layer '
                             "names should be unique.")
    return nodes, layers


def _check_connected(inputs, outputs, nodes):
    computable = {id(t) for t in inputs}
    seen = []
    for node in nodes:
        for t in node.input_tensors:
            if id(t) not in computable:
                raise ValueError(f"Graph disconnected: cannot find parent for tensor {t} at layer "
                                 f"'{node.operation.name}'. The following previous layers were accessed without "
                                 f"issue: {seen}")
        seen.append(node.operation.name)
        computable.update(id(t) for t in node.outputs)
    for t in outputs:
        if id(t) not in computable:
            raise ValueError(f"Output {t} is not connected to `inputs`: it cannot be computed from them.")


def _is_graph_input(t):
    op, index, _ = t._keras_history
    return op is not None and op._inbound_nodes[index].is_input


def clone_graph_nodes(inputs, outputs):
    """A copy of the calls between ``inputs`` and ``outputs`` starting from new Inputs (Keras 3's
    ``clone_graph_nodes``): a model built on intermediate tensors gets InputLayers of its own, and the
    layers (and their weights) are shared with the original graph.

    Returns:
        ``(inputs, outputs)`` as new KerasTensors, in the same structures.
    """
    flat_in, flat_out = tree.flatten(inputs), tree.flatten(outputs)
    ordered, _ = _build_map(flat_in, flat_out)
    mapping = {}
    for t in flat_in:
        mapping[id(t)] = t if _is_graph_input(t) else InputLayer(
            batch_shape=t.shape, dtype=t.dtype, name=f"{t.name}CLONE").output
    input_ids = {id(t) for t in flat_in}

    def swap(v):
        return mapping.get(id(v), v) if isinstance(v, KerasTensor) else v

    for node in ordered:  # parents first
        if node.is_input or any(id(t) in input_ids for t in node.outputs):
            continue
        outs = [KerasTensor(t.shape, t.dtype) for t in node.outputs]
        Node(node.operation, tree.map_structure(swap, list(node.args)), tree.map_structure(swap, node.kwargs), outs)
        mapping.update((id(old), new) for old, new in zip(node.outputs, outs))
    return tree.map_structure(swap, inputs), tree.map_structure(swap, outputs)


# ---------------------------------------------------------------------- one step of the plan


class _Step:
    """One node of the plan: where its inputs come from and where its outputs go."""

    def __init__(self, node, input_ids):
        self.node, self.layer = node, node.operation
        args = node.args
        self.arg = args[0]
        self.extra_args = tuple(args[1:])
        kwargs = dict(node.kwargs)
        self.training = kwargs.pop("training", None)
        self.kwargs = kwargs
        self.tensor_kw = _tensor_kwarg_names(kwargs, KerasTensor)
        self.single = id(self.arg) if isinstance(self.arg, KerasTensor) else None
        self.arg_ids = [id(t) if isinstance(t, KerasTensor) else None for t in tree.flatten(self.arg)]
        self.kw_ids = [id(t) if isinstance(t, KerasTensor) else None
                       for k in self.tensor_kw for t in tree.flatten(kwargs[k])]
        self.out_ids = [id(t) for t in node.outputs]
        self.several = len(node.outputs) > 1
        self.internal = any(id(t) not in input_ids for t in node.input_tensors)
        _, names, _, var_kw, _ = _call_params(type(self.layer))
        self.takes_mask = ("mask" in names or var_kw) and "mask" not in kwargs
        self.logits = False

    def gather(self, values):
        """The call's input and keywords, with the values of the tensors they name."""
        def sub(t):
            return values[id(t)] if isinstance(t, KerasTensor) else t

        x = values[self.single] if self.single is not None else tree.map_structure(sub, self.arg)
        kwargs = {k: tree.map_structure(sub, v) for k, v in self.kwargs.items()} if self.kwargs else {}
        return x, kwargs

    def run(self, method, values, x, kwargs):
        if self.extra_args:  # extra positional arguments reach a call()-based layer's call
            self.layer.__dict__["_call_extras"] = tuple(
                tree.map_structure(lambda t: values[id(t)] if isinstance(t, KerasTensor) else t,
                                   list(self.extra_args)))
        try:
            return method(x, **kwargs)
        finally:
            self.layer.__dict__.pop("_call_extras", None)

    def scatter(self, values, y):
        if self.several:
            for i, t in zip(self.out_ids, tree.flatten(y)):
                values[i] = t
        else:
            values[self.out_ids[0]] = y

    def input_grads(self, out):
        """``(tensor id, gradient)`` pairs of this step's backward result."""
        if self.tensor_kw:
            dx, d_kwargs = out
        else:
            dx, d_kwargs = out, None
        if self.single is not None:
            pairs = [(self.single, dx)]
        else:
            flat = [None] * len(self.arg_ids) if dx is None else tree.flatten(dx)
            pairs = list(zip(self.arg_ids, flat))
        if self.tensor_kw:
            values = [self.kwargs[k] for k in self.tensor_kw]
            pairs += list(zip(self.kw_ids, _flat_kwarg_grads(d_kwargs, values)))
        return [(i, g) for i, g in pairs if i is not None and g is not None]


# ---------------------------------------------------------------------- the model


def _masks_of(masks, structure):
    """The masks of a call's input tensors, arranged as the input (None where none)."""
    return tree.map_structure(lambda t: masks.get(id(t)) if isinstance(t, KerasTensor) else None, structure)


class Functional(Model, graph_model=True):
    """A model whose layers form a graph from ``inputs`` to ``outputs`` (what ``Model(inputs, outputs)`` gives).

    Args:
        inputs: the ``Input`` tensor(s): one, a list or a dict (then data is passed as a dict by key).
        outputs: tensor(s) computed from them: one, a list or a dict (``predict`` returns the same form).
        name: the model's name (default "functional", "functional_1", ...).
        trainable: whether training updates the weights.

    Raises:
        ValueError: inputs/outputs that are not KerasTensors, outputs not computable from the inputs,
            or two layers with one name.

    Example:
        >>> a, b = Input((4,), name="a"), Input((3,), name="b")
        >>> h = Concatenate()([Dense(5)(a), b])
        >>> model = Model([a, b], [Dense(2, name="out1")(h), Dense(1, name="out2")(h)])
    """

    def __init__(self, inputs, outputs, name=None, trainable=True, **kwargs):
        for what, value in (("inputs", inputs), ("outputs", outputs)):
            for t in tree.flatten(value):
                if not isinstance(t, KerasTensor):
                    raise ValueError(f"All `{what}` values must be KerasTensors. Received: {what}={value!r} "
                                     f"including invalid value {t!r} of type {type(t)}")
        Layer.__init__(self, name=name, trainable=trainable, **kwargs)
        if isinstance(inputs, dict):
            inputs = dict(inputs)
        if not all(_is_graph_input(t) for t in tree.flatten(inputs)):
            inputs, outputs = clone_graph_nodes(inputs, outputs)
        self._inputs_struct = inputs if not isinstance(inputs, tuple) else list(inputs)
        self._outputs_struct = outputs if not isinstance(outputs, tuple) else list(outputs)
        self._inputs, self._outputs = tree.flatten(self._inputs_struct), tree.flatten(self._outputs_struct)
        nodes, layers = map_graph(self._inputs, self._outputs)
        self._nodes, self._layers = nodes, layers
        self._node_ids = {id(n) for n in nodes} | {id(t._keras_history.operation._inbound_nodes[
            t._keras_history.node_index]) for t in self._inputs}
        self._plan()
        self._build_input_shape = tree.map_structure(lambda t: t.shape, self._inputs_struct)
        self.built = True
        self.output_names = [t._keras_history.operation.name for t in self._outputs]
        # the names of the per-output logs: an output dict's keys, else the output layers' names (Keras 3)
        self._output_log_names = (sorted(self._outputs_struct) if isinstance(self._outputs_struct, dict)
                                  else list(self.output_names))

    def _plan(self):
        input_ids = {id(t) for t in self._inputs}
        self._steps = [_Step(node, input_ids) for node in self._nodes]
        readers = collections.Counter(i for s in self._steps for i in s.arg_ids + s.kw_ids if i is not None)
        last = {}
        for k, step in enumerate(self._steps):
            for i in step.arg_ids + step.kw_ids:
                if i is not None:
                    last[i] = k
        keep = {id(t) for t in self._outputs}
        self._free_after = [[i for i, k2 in last.items() if k2 == k and i not in keep] for k in range(len(self._steps))]
        self._masks_used = any(type(l).compute_mask is not Layer.compute_mask for l in self._layers)
        self._logits_step = None
        out = self._outputs[0]
        if len(self._outputs) == 1 and self._steps and readers[id(out)] == 0:
            step = self._steps[-1] if self._steps[-1].out_ids == [id(out)] else None
            if step is not None and not _overrides_call(type(step.layer)):
                self._logits_step = step

    # ------------------------------------------------------------------ the graph's surface

    @property
    def layers(self):
        """The layers of the graph (InputLayers included), in Keras's order."""
        return list(self._layers)

    @property
    def _sublayers(self):
        """Weights, grads and losses recurse through the graph's layers (each once)."""
        return self.__dict__.get("_layers", [])

    @property
    def input(self):
        return self._inputs_struct

    @property
    def output(self):
        return self._outputs_struct

    @property
    def inputs(self):
        return list(self._inputs)

    @property
    def outputs(self):
        return list(self._outputs)

    @property
    def input_shape(self):
        shapes = tree.map_structure(lambda t: t.shape, self._inputs_struct)
        return shapes[0] if isinstance(shapes, list) and len(shapes) == 1 else shapes

    @property
    def output_shape(self):
        shapes = tree.map_structure(lambda t: t.shape, self._outputs_struct)
        return shapes[0] if isinstance(shapes, list) and len(shapes) == 1 else shapes

    def compute_output_shape(self, input_shape):
        """The outputs' shapes (their batch axis from ``input_shape``)."""
        first = input_shape
        while isinstance(first, (list, dict)) or (isinstance(first, tuple) and first and
                                                  isinstance(first[0], (tuple, list, dict))):
            first = next(iter(first.values())) if isinstance(first, dict) else first[0]
        batch = first[0] if first else None
        shapes = [(batch,) + tuple(t.shape[1:]) for t in self._outputs]
        return shapes if len(shapes) > 1 else shapes[0]

    def _summary_output_shape(self):
        return self.compute_output_shape(self.input_shape)

    @property
    def final_activation(self):
        """The output layer's activation when the model may stop at its logits (one output, read by nobody
        else in the graph); None otherwise."""
        step = self._logits_step
        return None if step is None else step.layer.final_activation

    _nested_data = Trainer._nested_data  # several inputs/outputs: by the graph, not by the data

    def _input_keeps_dtype(self):  # the Trainer's hook
        """Integer (or string) data stays so when an input is declared non-float or feeds a non-casting layer."""
        if any(not t.dtype.startswith("float") for t in self._inputs):
            return True
        ids = {id(t) for t in self._inputs}
        return any(not s.layer._cast_inputs for s in self._steps if any(i in ids for i in s.arg_ids))

    # ------------------------------------------------------------------ data in

    def _standardize_inputs(self, x):
        """The model's input arrays as a flat list in ``inputs`` order, converted to each input's dtype.

        Raises:
            ValueError: a structure or shape that does not fit the model's inputs.
        """
        n, struct = len(self._inputs), self._inputs_struct
        if isinstance(x, dict):
            keys = list(struct) if isinstance(struct, dict) else [t.name for t in self._inputs]
            missing = [k for k in keys if k not in x]
            if missing:
                raise ValueError(f'Layer "{self.name}" expects {n} input(s) with keys {sorted(keys)}, but it '
                                 f"received a dict with keys {sorted(x)}.")
            flat = tree.flatten({k: x[k] for k in keys}) if isinstance(struct, dict) else [x[k] for k in keys]
        elif isinstance(x, (list, tuple)) and (n > 1 or (x and hasattr(x[0], "shape"))):
            flat = list(x)
        else:
            flat = [x]
        if len(flat) != n:
            raise ValueError(f'Layer "{self.name}" expects {n} input(s), but it received {len(flat)} input tensors. '
                             f"Inputs received: {[getattr(a, 'shape', type(a).__name__) for a in flat]}")
        return [self._convert(i, a) for i, a in enumerate(flat)]

    def _convert(self, i, a):
        ref = self._inputs[i]
        be = get_backend()
        a = be.asarray(a) if not isinstance(a, be.xp.ndarray) else a
        if a.dtype != ref.dtype and a.dtype.kind in "fiub" and ref.dtype != "string":
            a = a.astype(ref.dtype)
        shape = ref.shape
        if a.ndim == len(shape) - 1 and shape[-1] == 1:  # Keras's rank adjustment
            a = a.reshape(a.shape + (1,))
        elif a.ndim == len(shape) + 1 and a.shape[-1] == 1:
            a = a.reshape(a.shape[:-1])
        if a.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape[1:], a.shape[1:])):
            raise ValueError(f"Input {i} with name '{ref.name}' of layer '{self.name}' is incompatible with the "
                             f"layer: expected shape={shape}, found shape={tuple(a.shape)}")
        return a

    def _pack_outputs(self, flat):
        if isinstance(self._outputs_struct, KerasTensor):
            return flat[0]
        return tree.pack_sequence_as(self._outputs_struct, flat)

    def _prepare(self, x):
        return x  # forward and _infer convert and check the inputs themselves

    # ------------------------------------------------------------------ forward / backward / inference

    def forward(self, x, training=False, mask=None):
        """Run the steps, keeping their backwards; ``backward(dy)`` runs them in reverse and returns dx.

        Args:
            x: the input data: an array, a list in ``inputs`` order, or a dict by input name.
            training: Dropout and friends are active (a call that fixed ``training`` keeps its value).
            mask: masks of the inputs (same structure), or None.

        Returns:
            ``(y, backward)``: y shaped as ``outputs``; ``backward`` takes dy in that shape (or a flat
            list, None for an output with no gradient) and returns dx in the inputs' shape.
        """
        flat = self._standardize_inputs(x)
        values = {id(t): a for t, a in zip(self._inputs, flat)}
        masks = self._input_masks(mask)
        opts = FORWARD_OPTIONS
        logits, need_dx = opts.logits, opts.need_dx
        backs = []
        try:
            for step in self._steps:
                opts.logits, opts.need_dx = logits and step is self._logits_step, need_dx or step.internal
                xin, kwargs = step.gather(values)
                if masks is not None:
                    self._with_mask(step, masks, kwargs)
                train = training if step.training is None else step.training
                y, back = step.run(lambda x_, **kw: step.layer._forward_full(x_, train, **kw), values, xin, kwargs)
                step.scatter(values, y)
                if masks is not None:
                    self._mask_out(step, masks, xin, y)
                backs.append(back)
        finally:
            opts.logits, opts.need_dx = logits, need_dx
        out = [values[id(t)] for t in self._outputs]
        self._output_mask = self._single_output_mask(masks)
        return self._pack_outputs(out), self._graph_backward(backs, need_dx)

    def _graph_backward(self, backs, need_dx):
        steps, outputs, inputs = self._steps, self._outputs, self._inputs

        def backward(dy):
            grads = {}
            seeds = tree.flatten(dy) if tree.is_nested(dy) else [dy]
            for t, d in zip(outputs, seeds):
                if d is not None:
                    grads[id(t)] = d if id(t) not in grads else grads[id(t)] + d
            for step, back in zip(reversed(steps), reversed(backs)):
                dys = [grads.pop(i, None) for i in step.out_ids]
                if all(d is None for d in dys):
                    continue  # no output of this call reaches the loss
                for i, g in step.input_grads(back(tuple(dys) if step.several else dys[0])):
                    prev = grads.get(i)
                    grads[i] = g if prev is None else prev + g  # fan-out: a tensor read twice
            if not need_dx:
                return None
            dx = [grads.get(id(t)) for t in inputs]
            return tree.pack_sequence_as(self._inputs_struct, dx) if tree.is_nested(self._inputs_struct) else dx[0]

        return backward

    def _infer(self, x, mask=None):
        """Inference: no backward is kept and each value is dropped after its last reader."""
        flat = self._standardize_inputs(x)
        values = {id(t): a for t, a in zip(self._inputs, flat)}
        masks = self._input_masks(mask)
        for step, free in zip(self._steps, self._free_after):
            xin, kwargs = step.gather(values)
            if masks is not None:
                self._with_mask(step, masks, kwargs)
            if step.training:
                y = step.run(lambda x_, **kw: step.layer._forward_full(x_, True, **kw)[0], values, xin, kwargs)
            else:
                y = step.run(step.layer._infer, values, xin, kwargs)
            step.scatter(values, y)
            if masks is not None:
                self._mask_out(step, masks, xin, y)
            for i in free:
                values.pop(i, None)
        self._output_mask = self._single_output_mask(masks)
        return self._pack_outputs([values[id(t)] for t in self._outputs])

    # ------------------------------------------------------------------ masks

    def _input_masks(self, mask):
        if not self._masks_used and mask is None:
            return None
        masks = {}
        if mask is not None:
            for t, m in zip(self._inputs, tree.flatten(mask) if tree.is_nested(mask) else [mask]):
                if m is not None:
                    masks[id(t)] = m
        return masks

    def _single_output_mask(self, masks):
        """The mask of a one-output model's output (None without one), which the trainer hands to the
        loss and the compiled metrics as Keras does with the output's ``_keras_mask`` (as Sequential)."""
        if masks is None or len(self._outputs) != 1:
            return None
        return masks.get(id(self._outputs[0]))

    def _with_mask(self, step, masks, kwargs):
        """Pass the inputs' masks to a layer that takes ``mask`` (Keras's implicit mask propagation)."""
        if step.takes_mask:
            m = _masks_of(masks, step.arg)
            if any(v is not None for v in tree.flatten(m)):
                kwargs["mask"] = m

    def _mask_out(self, step, masks, xin, y):
        m = step.layer.compute_mask(xin, _masks_of(masks, step.arg))
        if m is None:
            return
        for i, v in zip(step.out_ids, tree.flatten(m) if isinstance(m, (list, tuple)) else [m]):
            if v is not None:
                masks[i] = v

    # ------------------------------------------------------------------ config (Keras 3's layout)

    def get_config(self):
        """Keras 3's functional config: ``layers`` (each with ``name`` and ``inbound_nodes``), ``input_layers``
        and ``output_layers`` as ``[layer name, node index, tensor index]``."""
        reindex = {}
        for layer in self._layers:
            kept = 1 if isinstance(layer, Functional) else 0  # Keras counts a nested Functional's nodes from 1
            for node in layer._inbound_nodes:
                if id(node) in self._node_ids:
                    reindex[id(node)] = kept
                    kept += 1
        layer_configs = []
        for layer in self._layers:
            cfg = serialize_layer(layer)
            cfg["name"] = layer.name
            cfg["inbound_nodes"] = [self._serialize_node(n) for n in layer._inbound_nodes
                                    if id(n) in self._node_ids and n.input_tensors]
            layer_configs.append(cfg)

        def tensor_config(t):
            op, index, tensor_index = t._keras_history
            return [op.name, reindex[id(op._inbound_nodes[index])], tensor_index]

        config = {"name": self.name, "trainable": self.trainable, "layers": layer_configs,
                  "input_layers": _map_tensors(tensor_config, self._inputs_struct),
                  "output_layers": _map_tensors(tensor_config, self._outputs_struct)}
        return copy.deepcopy(config)

    def _serialize_node(self, node):
        def tensor(t):
            if not isinstance(t, KerasTensor):
                return t
            op, index, tensor_index = t._keras_history
            skipped = sum(1 for n in op._inbound_nodes[:index] if id(n) not in self._node_ids)
            return {"class_name": "__keras_tensor__",
                    "config": {"shape": list(t.shape), "dtype": t.dtype,
                               "keras_history": [op.name, index - skipped, tensor_index]}}

        return {"args": tree.map_structure(tensor, list(node.args)),
                "kwargs": tree.map_structure(tensor, dict(node.kwargs))}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """A new model from ``get_config``'s output (or a Keras 3 functional config).

        Raises:
            ValueError: an unknown layer class (pass it in ``custom_objects``), or nodes that never resolve.
        """
        config = dict(config)
        created, pending = {}, collections.OrderedDict()
        for layer_data in config["layers"]:
            layer = deserialize_layer(layer_data, custom_objects=custom_objects)
            created[layer_data["name"]] = layer
            pending[layer_data["name"]] = list(layer_data.get("inbound_nodes") or [])
        while any(pending.values()):
            progressed = False
            for name, nodes in pending.items():
                while nodes:
                    try:
                        args, kwargs = _deserialize_node(nodes[0], created)
                    except IndexError:  # its inputs come from a node not rebuilt yet
                        break
                    created[name](*args, **kwargs)
                    nodes.pop(0)
                    progressed = True
            if not progressed:
                raise ValueError("Invalid Functional model configuration: the graph has loops or disconnected "
                                 f"nodes. Unresolved: {[n for n, v in pending.items() if v]}")

        def tensor(entry):
            layer = _created_layer(created, entry[0])
            index = entry[1] - 1 if isinstance(layer, Functional) else entry[1]
            return layer._inbound_nodes[index].outputs[entry[2]]

        return cls(inputs=_map_tensor_entries(tensor, config["input_layers"]),
                   outputs=_map_tensor_entries(tensor, config["output_layers"]),
                   name=config.get("name"), trainable=config.get("trainable", True))


def _map_tensors(fn, structure):
    if isinstance(structure, KerasTensor):
        return fn(structure)
    if isinstance(structure, dict):
        return {k: _map_tensors(fn, v) for k, v in structure.items()}
    return [_map_tensors(fn, v) for v in structure]


def _is_tensor_entry(value):
    return isinstance(value, (list, tuple)) and len(value) == 3 and isinstance(value[0], str)


def _map_tensor_entries(fn, structure):
    if _is_tensor_entry(structure):
        return fn(structure)
    if isinstance(structure, dict):
        return {k: _map_tensor_entries(fn, v) for k, v in structure.items()}
    return [_map_tensor_entries(fn, v) for v in structure]


def _created_layer(created, name):
    if name not in created:
        raise ValueError(f"Invalid Functional model configuration: missing layer {name!r}.")
    return created[name]


def _deserialize_node(node_data, created):
    """``(args, kwargs)`` of one recorded call, its KerasTensors taken from the rebuilt layers' nodes.

    Raises:
        IndexError: the inbound layer does not have that node yet.
    """
    if isinstance(node_data, list):  # the older layout: [[layer, node, tensor, kwargs], ...]
        tensors, kwargs = [], {}
        for entry in node_data:
            layer = _created_layer(created, entry[0])
            tensors.append(layer._inbound_nodes[entry[1]].outputs[entry[2]])
            kwargs = entry[3] if len(entry) > 3 else kwargs
        return [tensors[0] if len(tensors) == 1 else tensors], dict(kwargs)

    def revive(value):
        if isinstance(value, dict):
            if value.get("class_name") == "__keras_tensor__":
                name, index, tensor_index = value["config"]["keras_history"]
                nodes = _created_layer(created, name)._inbound_nodes
                if len(nodes) <= index:
                    raise IndexError(f"layer {name!r} has no node {index} yet")
                return nodes[index].outputs[tensor_index]
            return {k: revive(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [revive(v) for v in value]
        return value

    return revive(node_data.get("args", [])), revive(node_data.get("kwargs", {}))


# Keras 3 files name a functional model "Functional" of module keras.src.models.functional (the class is not
# in its public API, so Keras looks it up there): it loads through the layer family as Sequential does.
serialization_lib.family("layers").register((Functional,), module="keras.src.models.functional")
