"""Dropout: inverted dropout, active only when training."""

from pyminidl import random as pmd_random
from pyminidl.backend import get_backend
from pyminidl.layers.base import InputSpec, Layer


class Dropout(Layer):
    """Sets inputs to 0 with probability ``rate`` while training and scales the rest by 1 / (1 - rate).

    Args:
        rate: fraction of inputs to drop, in [0, 1].
        noise_shape: shape of the binary mask (broadcast over x; None entries take x's size).
        seed: int for a reproducible sequence of masks (default: pyminidl's global generator).

    Example:
        >>> layer = Dropout(0.5, seed=0)
        >>> layer(np.ones((2, 4)), training=True)   # zeros and 2s
    """

    supports_masking = True  # passes a mask on unchanged (Keras)

    # Its dx is dy itself (inference, rate 0) or dy * mask, a new array: the layer before may
    # overwrite it when this layer's own dy was fresh (FORWARD_OPTIONS.owns_dy, as after a Flatten).
    _passes_dx = True

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise ValueError("Invalid value received for argument `rate`. Expected a float value between 0 and 1. "
                             f"Received: rate={rate!r}")
        self.rate = float(rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        self._rng = None if seed is None else pmd_random.make_rng(seed)
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _mask_shape(self, shape):
        if self.noise_shape is None:
            return tuple(shape)
        return tuple(s if n is None else n for n, s in zip(self.noise_shape, shape))

    def _next_seed(self):
        """This call's mask seed, from the layer's generator (or the global one): a seeded layer
        repeats its sequence of masks while the backend draws each mask where x lives."""
        rng = self._rng if self._rng is not None else pmd_random.global_rng()
        return int(rng.integers(0, 2**63 - 1))

    def forward(self, x, training=False):
        if not training or self.rate == 0.0:
            return x, lambda dy: dy
        be = get_backend()
        y, mask = be.dropout_forward(x, self.rate, self._next_seed(), self._mask_shape(x.shape))
        return y, lambda dy: be.dropout_backward(dy, mask)  # dL/dx = dy * mask

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"rate": self.rate, "seed": self.seed,
                    "noise_shape": None if self.noise_shape is None else list(self.noise_shape)})
        return cfg


class SpatialDropout1D(Dropout):
    """Dropout of whole feature maps: one mask entry per (sample, feature), shared by every step.

    Input and output: ``(batch, steps, features)``.

    Args:
        rate: fraction of feature maps to drop, in [0, 1].
        seed: int for a reproducible sequence of masks.

    Example:
        >>> SpatialDropout1D(0.5, seed=0)(np.ones((2, 5, 3), "float32"), training=True)   # columns of 0s and 2s
    """

    _rank = 1

    def __init__(self, rate, seed=None, name=None, dtype=None, **kwargs):
        super().__init__(rate, seed=seed, name=name, dtype=dtype, **kwargs)
        self.data_format = "channels_last"
        self.input_spec = InputSpec(ndim=self._rank + 2)

    def _mask_shape(self, shape):
        ones = (1,) * self._rank
        if self.data_format == "channels_first":
            return (shape[0], shape[1]) + ones
        return (shape[0],) + ones + (shape[-1],)

    def get_config(self):
        cfg = Layer.get_config(self)
        cfg.update({"rate": self.rate, "seed": self.seed})
        return cfg


class SpatialDropout2D(SpatialDropout1D):
    """Dropout of whole feature maps: one mask entry per (sample, channel), shared by every cell.

    Input and output: ``(batch, rows, cols, channels)`` (channels_last) or ``(batch, channels, rows, cols)``.

    Args:
        rate: fraction of channels to drop, in [0, 1].
        data_format: "channels_last" (default) or "channels_first".
        seed: int for a reproducible sequence of masks.

    Example:
        >>> SpatialDropout2D(0.2, seed=0)(np.ones((2, 4, 4, 3), "float32"), training=True).shape
        (2, 4, 4, 3)
    """

    _rank = 2

    def __init__(self, rate, data_format=None, seed=None, name=None, dtype=None, **kwargs):
        super().__init__(rate, seed=seed, name=name, dtype=dtype, **kwargs)
        data_format = data_format or "channels_last"
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError("The `data_format` argument must be one of 'channels_first', 'channels_last'. "
                             f"Received: data_format={data_format!r}")
        self.data_format = data_format

    def get_config(self):
        cfg = super().get_config()
        cfg["data_format"] = self.data_format
        return cfg
