"""Layer weights and tracking: ``add_weight``, the tracked ``Variable`` records of a layer and its
sublayers, and the ``weights`` views, ``get_weights`` / ``set_weights`` over them."""

import math

from pyminidl import initializers
from pyminidl import regularizers as regularizers_module
from pyminidl.backend import get_backend
from pyminidl.layers._layer_shapes import _standardize_shape
from pyminidl.variables import Variable


_WEIGHTS_CREATED = [0]  # bumped by every add_weight: lets a trainer notice weights created lazily


def weights_created():
    """How many weights any layer has created so far in this process."""
    return _WEIGHTS_CREATED[0]


class WeightsMixin:
    """A layer's weights and sublayers, tracked as they are assigned."""

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
        found = [value] if isinstance(value, WeightsMixin) else (
            [v for v in value if isinstance(v, WeightsMixin)] if isinstance(value, (list, tuple)) else [])
        if found and not key.startswith("_keras"):
            sub = self.__dict__.setdefault("_sublayers", [])
            for layer in found:
                if layer is not self and all(layer is not s for s in sub):
                    sub.append(layer)
        object.__setattr__(self, key, value)

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
