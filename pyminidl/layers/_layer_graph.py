"""Symbolic layer calls: ``KerasTensor``, the graph's ``Node``, and a layer's call on KerasTensors
(output shapes inferred, one Node recorded), as Keras 3's functional API builds graphs."""

import collections

from pyminidl import tree
from pyminidl.backend import get_backend
from pyminidl.layers._layer_config import _dtype_name, unique_name
from pyminidl.layers._layer_shapes import BuildMixin, _is_shape, _standardize_shape


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


class SymbolicMixin:
    """A layer's calls on KerasTensors: the graph's nodes, ``input`` and ``output``."""

    # The graph: one Node per symbolic call (a list, created by the first Node), and the calls reading
    # this layer's outputs.
    _inbound_nodes = ()

    _outbound_nodes = ()

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
        if type(self).compute_output_shape is not BuildMixin.compute_output_shape:
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
