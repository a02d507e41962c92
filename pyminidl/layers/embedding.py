"""Embedding (token ids -> vectors, a gather) and Masking (skip padded steps downstream)."""

import numbers

from pyminidl import initializers, regularizers
from pyminidl.backend import get_backend
from pyminidl.layers.base import Layer


class Embedding(Layer):
    """Turns token ids into dense vectors: ``y = embeddings[ids]``.

    Input: integer ids of any shape ``(batch, ...)`` (floats holding whole numbers are accepted, as
    Keras casts them); output ``(batch, ..., output_dim)``.

    Args:
        input_dim: vocabulary size (ids lie in [0, input_dim)).
        output_dim: size of each vector.
        embeddings_initializer: default "uniform" (U[-0.05, 0.05]).
        embeddings_regularizer, embeddings_constraint: as Keras.
        mask_zero: id 0 is padding: the layer emits the mask ``ids != 0`` for the next layers.
        input_length: tf.keras's sequence length (taken as ``input_shape=(input_length,)``).

    Raises:
        ValueError: an id outside [0, input_dim) (naming the largest id), fractional ids.

    Example:
        >>> Embedding(1000, 8)(np.array([[4, 20, 7]])).shape
        (1, 3, 8)
    """

    _cast_inputs = False  # integer ids stay integers
    supports_masking = True

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", embeddings_regularizer=None,
                 embeddings_constraint=None, mask_zero=False, weights=None, input_length=None, **kwargs):
        if input_length is not None and "input_shape" not in kwargs and "batch_input_shape" not in kwargs:
            kwargs["input_shape"] = (input_length,)
        kwargs.pop("lora_rank", None)
        super().__init__(**kwargs)
        for what, value in (("input_dim", input_dim), ("output_dim", output_dim)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
                raise ValueError(f"Both `input_dim` and `output_dim` should be positive, Received input_dim="
                                 f"{input_dim} and output_dim={output_dim}")
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = embeddings_constraint
        self.mask_zero = bool(mask_zero)
        self.input_length = input_length
        self._initial_weights = weights
        self.embeddings = None

    def build(self, input_shape=None):
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          self.embeddings_initializer, regularizer=self.embeddings_regularizer,
                                          constraint=self.embeddings_constraint)
        self.built = True
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return get_backend().xp.asarray(inputs) != 0

    def _ids(self, x):
        """x as integer ids, checked against input_dim before any kernel indexes with them."""
        xp = get_backend().xp
        if x.dtype.kind == "b" or x.dtype.kind not in "iuf":
            raise TypeError(f"Embedding layer {self.name!r} expects integer token ids. Received: dtype={x.dtype}, "
                            f"shape={tuple(x.shape)}")
        if x.dtype.kind == "f":
            if x.size and not bool(xp.all(xp.isfinite(x)) and xp.all(x == xp.floor(x))):
                raise ValueError(f"Embedding layer {self.name!r} expects integer token ids; received float ids with "
                                 f"fractional or non-finite values, shape={tuple(x.shape)}")
        ids = x.astype("int64", copy=False) if x.dtype.kind in "fu" else x
        if ids.size and (int(ids.max()) >= self.input_dim or int(ids.min()) < 0):
            raise ValueError(f"Embedding layer {self.name!r}: token ids must lie in [0, input_dim={self.input_dim}). "
                             f"Received: largest id {int(ids.max())}, smallest id {int(ids.min())}, input shape "
                             f"{tuple(x.shape)}")
        return ids

    def forward(self, x, training=False):
        be = get_backend()
        ids = self._ids(x)
        table = self.embeddings

        def backward(dy):
            # dL/dtable[v] = sum of dy where ids == v; ids get no gradient
            self.accumulate_grad("embeddings", be.embedding_backward(be.xp.ascontiguousarray(dy), ids, self.input_dim))
            return None

        return be.embedding_forward(ids, table), backward

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"input_dim": self.input_dim, "output_dim": self.output_dim,
                    "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                    "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
                    "activity_regularizer": None, "embeddings_constraint": None, "mask_zero": self.mask_zero})
        return cfg


class Masking(Layer):
    """Masks time steps whose features all equal ``mask_value``: they are zeroed and the next layers
    (LSTM, GRU, ...) skip them.

    Args:
        mask_value: the padding value (default 0.0).

    Example:
        >>> x = np.array([[[1.0], [0.0]]], "float32")
        >>> Masking().compute_mask(x)   # [[True, False]]
    """

    supports_masking = True

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = mask_value
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_mask(self, inputs, mask=None):
        xp = get_backend().xp
        return xp.any(xp.asarray(inputs) != self.mask_value, axis=-1)

    def forward(self, x, training=False, mask=None):
        keep = self.compute_mask(x)[..., None].astype(x.dtype)
        return x * keep, lambda dy: dy * keep  # dL/dx = dy where the step is kept, else 0

    def get_config(self):
        cfg = super().get_config()
        cfg["mask_value"] = self.mask_value
        return cfg
