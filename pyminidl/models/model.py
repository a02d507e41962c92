"""Model: the Keras 3 ``keras.Model`` — a functional graph, or a subclass with layers and ``call``.

``Model(inputs, outputs)`` builds a ``Functional`` graph (pyminidl/models/functional.py);
``class MyModel(Model)`` creating layers in ``__init__`` and combining them in ``call`` trains
through ``Layer.forward``'s private tape (each sublayer call is one recorded node).

Example:
    >>> class MyModel(Model):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.hidden, self.out = Dense(8, activation="relu"), Dense(1)
    ...     def call(self, x):
    ...         return self.out(self.hidden(x))
"""

from pyminidl.backend import get_backend
from pyminidl.layers.base import Layer, map_shapes
from pyminidl.models import summary_utils
from pyminidl.training.trainer import Trainer


def _functional_arguments(args, kwargs):
    return len(args) == 2 or (len(args) == 1 and "outputs" in kwargs) or ("inputs" in kwargs and "outputs" in kwargs)


_FUNCTIONAL_SUBCLASSES = {}


def _with_functional(cls):
    """``cls`` with Functional among its bases (Keras's inject_functional_model_class): a Model subclass
    overriding e.g. ``train_step`` and constructed with ``(inputs, outputs)`` runs as a graph."""
    Functional = Model._graph_class
    if issubclass(cls, Functional):
        return Functional
    if cls not in _FUNCTIONAL_SUBCLASSES:
        _FUNCTIONAL_SUBCLASSES[cls] = type(cls.__name__, (cls, Functional), {"__module__": cls.__module__})
    return _FUNCTIONAL_SUBCLASSES[cls]


class Model(Trainer, Layer):
    """A trainable model: ``Model(inputs, outputs)`` (functional) or a subclass defining ``call``.

    Args:
        inputs: (functional) the ``Input`` tensor(s): one, a list or a dict.
        outputs: (functional) the output tensor(s) computed from them.
        name: the model's name.
        trainable: whether training updates the weights.

    Example:
        >>> x = Input((784,))
        >>> model = Model(x, Dense(10, activation="softmax")(Dense(100)(x)))
    """

    _cast_inputs = False  # each layer casts to its own dtype
    # The graph model class, Functional (models/functional.py): a subclass defined on top of this module,
    # it names itself when defined (``class Functional(Model, graph_model=True)``), so that
    # ``Model(inputs, outputs)`` builds one without this module importing its own subclass.
    _graph_class = None

    def __init_subclass__(cls, graph_model=False, **kwargs):
        super().__init_subclass__(**kwargs)
        if graph_model:
            Model._graph_class = cls

    def __new__(cls, *args, **kwargs):
        if cls is Model and _functional_arguments(args, kwargs):
            cls = Model._graph_class
        return Layer.__new__(cls, *args, **kwargs)

    def __init__(self, *args, **kwargs):
        if _functional_arguments(args, kwargs):  # a subclass built as a graph: CustomModel(inputs, outputs)
            self.__class__ = _with_functional(type(self))
            self.__class__.__init__(self, *args, **kwargs)
            return
        if args:
            raise TypeError(f"Model.__init__() takes `inputs` and `outputs` (a functional model) or keyword "
                            f"arguments only (a subclassed model). Received {len(args)} positional argument(s).")
        super().__init__(**kwargs)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """A model from its config: a functional config (``layers``, ``input_layers``, ``output_layers``)
        rebuilds the graph; any other config is passed to the constructor (a subclass's ``get_config``)."""
        if all(key in config for key in ("layers", "input_layers", "output_layers")):
            Functional = Model._graph_class
            return Functional.from_config.__func__(Functional if cls is Model else cls, config, custom_objects)
        return super().from_config(config)

    # ------------------------------------------------------------------ layers

    @property
    def layers(self):
        """The layers this model tracks (for a subclass: the ones assigned as attributes, in order)."""
        return list(self._sublayers)

    def get_layer(self, name=None, index=None):
        """The layer called ``name``, or at position ``index`` of ``layers``.

        Raises:
            ValueError: neither or both given, or no such layer.
        """
        layers = self.layers
        if (name is None) == (index is None):
            raise ValueError("Provide either a layer name or layer index at `get_layer`.")
        if index is not None:
            if not -len(layers) <= index < len(layers):
                raise ValueError(f"Was asked to retrieve layer at index {index} but model only has "
                                 f"{len(layers)} layers.")
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: {[l.name for l in layers]}.")

    # ------------------------------------------------------------------ build

    def build(self, input_shape=None):
        """Build a subclassed model by running ``call`` once on zeros of ``input_shape`` (batch 1).

        Raises:
            ValueError: no input shape.
        """
        if input_shape is None:
            raise ValueError("You must provide an `input_shape` argument to build a subclassed model.")
        self.built = True  # before the run: the call below must not come back here
        xp = get_backend().xp
        zeros = map_shapes(lambda s: xp.zeros(tuple(1 if d is None else d for d in s), dtype=self.dtype),
                           input_shape)
        self._build_input_shape = map_shapes(lambda s: (None,) + tuple(s[1:]), input_shape)
        self._infer(zeros)

    def _nested_data(self):
        """A subclassed model's ``call`` may take a list or dict of arrays: decided by the data."""
        return "auto", self._multi is not None

    def _summary_output_shape(self):
        """A subclassed model's output shape is known only from a call (None: shown as "?")."""
        return None

    # ------------------------------------------------------------------ summary

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False, layer_range=None):
        """Print Keras 3's summary table (layers, output shapes, parameter counts and sizes).

        A graph whose layers are not one chain gets a "Connected to" column naming each call's inputs as
        ``layer[node_index][tensor_index]``.

        Args:
            line_length: total width (default min(88, or 108 for a graph, terminal columns - 4)).
            positions: relative right edges of the columns.
            print_fn: called once with the whole text (default: print to stdout).
            expand_nested: also list the layers of nested models.
            show_trainable: add a "Trainable" column.
            layer_range: two regexes naming the first and last layer to show.
        """
        text = summary_utils.summary_text(self, line_length, positions, show_trainable, layer_range,
                                          expand_nested)
        if print_fn is None:
            print(text, end="")
        else:
            print_fn(text)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


__all__ = ["Model"]
