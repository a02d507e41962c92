"""Layer shapes: shape normalisation, ``InputSpec``, and build on first call (record the build
shape, build once, infer output shapes)."""

import functools

from pyminidl import tree
from pyminidl.backend import get_backend


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


class BuildMixin:
    """Build on first call and the shapes a layer reports."""

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
