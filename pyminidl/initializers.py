"""Weight initializers with Keras 3 names, arguments and defaults.

An initializer is called as ``init(shape, dtype=None)`` and returns an array of the current
backend. Unseeded initializers draw from ``pyminidl.random.global_rng()`` (so
``utils.set_random_seed`` makes them reproducible); a seeded one gives the same values on
every call, as in Keras 3.

Example:
    >>> init = initializers.GlorotUniform(seed=0)
    >>> init((3, 4)).shape
    (3, 4)
"""

import math

import numpy as np

from pyminidl import config
from pyminidl import random as pmd_random
from pyminidl.backend import get_backend
from pyminidl.saving import serialization_lib

_KERAS_FAN_AXES = ("input_axes", "output_axes")

# stddev of a unit normal truncated to [-2, 2]: dividing by it restores the wanted variance
_TRUNCATED_STDDEV = 0.87962566103423978


def _compute_fans(shape):
    """(fan_in, fan_out) as Keras: a kernel (..., in, out) with receptive field prod(shape[:-2])."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated_normal(rng, shape, mean, stddev):
    """Normal samples redrawn until inside mean +- 2 stddev."""
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2.0
    return mean + stddev * out


class Initializer(serialization_lib.ConfigMixin):
    """Base class: subclasses implement ``_generate(rng, shape)`` (host float64) or override ``__call__``."""

    def __init__(self, seed=None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"seed must be an integer or None. Received: seed={seed!r}")
        self.seed = seed

    def _rng(self):
        return np.random.default_rng(self.seed) if self.seed is not None else pmd_random.global_rng()

    def __call__(self, shape, dtype=None):
        shape = tuple(int(s) for s in shape)
        values = self._generate(self._rng(), shape)
        return get_backend().asarray(np.asarray(values).reshape(shape), dtype=dtype or config.floatx())

    def get_config(self):
        return {"seed": self.seed}

    @classmethod
    def from_config(cls, config):
        # Keras 3.12+ writes the fan axes of VarianceScaling initializers; unset, they mean what pyminidl does
        config = {k: v for k, v in config.items() if not (k in _KERAS_FAN_AXES and v is None)}
        return cls(**config)


class Constant(Initializer):
    """Every element is ``value``."""

    def __init__(self, value=0.0):
        self.value = value
        self.seed = None

    def _generate(self, rng, shape):
        return np.full(shape, self.value, dtype=np.float64)

    def get_config(self):
        return {"value": self.value}


class Zeros(Constant):
    """All zeros."""

    def __init__(self):
        super().__init__(0.0)

    def get_config(self):
        return {}


class Ones(Constant):
    """All ones."""

    def __init__(self):
        super().__init__(1.0)

    def get_config(self):
        return {}


class RandomNormal(Initializer):
    """Normal(mean, stddev)."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def _generate(self, rng, shape):
        return rng.normal(self.mean, self.stddev, shape)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(Initializer):
    """Uniform(minval, maxval)."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def _generate(self, rng, shape):
        return rng.uniform(self.minval, self.maxval, shape)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class TruncatedNormal(Initializer):
    """Normal(mean, stddev) with values beyond two stddevs redrawn."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def _generate(self, rng, shape):
        return _truncated_normal(rng, shape, self.mean, self.stddev)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class VarianceScaling(Initializer):
    """Variance ``scale / n`` with n = fan_in, fan_out or their mean; normal, truncated or uniform."""

    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        super().__init__(seed)
        if scale <= 0.0:
            raise ValueError(f"Argument `scale` must be positive float. Received: scale={scale}")
        if mode not in self._MODES:
            raise ValueError(f"Invalid `mode` argument: {mode!r}. Expected one of {self._MODES}.")
        distribution = "untruncated_normal" if distribution == "normal" else distribution
        if distribution not in self._DISTRIBUTIONS:
            raise ValueError(
                f"Invalid `distribution` argument: {distribution!r}. Expected one of {self._DISTRIBUTIONS}."
            )
        self.scale, self.mode, self.distribution = scale, mode, distribution

    def _generate(self, rng, shape):
        fan_in, fan_out = _compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        variance = self.scale / max(1.0, n)
        if self.distribution == "truncated_normal":
            return _truncated_normal(rng, shape, 0.0, math.sqrt(variance) / _TRUNCATED_STDDEV)
        if self.distribution == "untruncated_normal":
            return rng.normal(0.0, math.sqrt(variance), shape)
        limit = math.sqrt(3.0 * variance)
        return rng.uniform(-limit, limit, shape)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution, "seed": self.seed}


def _variance_scaling(name, scale, mode, distribution, doc):
    class _Preset(VarianceScaling):
        def __init__(self, seed=None):
            super().__init__(scale, mode, distribution, seed)

        def get_config(self):
            return {"seed": self.seed}

    _Preset.__name__ = _Preset.__qualname__ = name
    _Preset.__doc__ = doc
    return _Preset


GlorotUniform = _variance_scaling("GlorotUniform", 1.0, "fan_avg", "uniform",
                                  "Uniform(-l, l), l = sqrt(6 / (fan_in + fan_out)).")
GlorotNormal = _variance_scaling("GlorotNormal", 1.0, "fan_avg", "truncated_normal",
                                 "Truncated normal, stddev = sqrt(2 / (fan_in + fan_out)).")
HeUniform = _variance_scaling("HeUniform", 2.0, "fan_in", "uniform", "Uniform(-l, l), l = sqrt(6 / fan_in).")
HeNormal = _variance_scaling("HeNormal", 2.0, "fan_in", "truncated_normal",
                             "Truncated normal, stddev = sqrt(2 / fan_in).")
LecunUniform = _variance_scaling("LecunUniform", 1.0, "fan_in", "uniform", "Uniform(-l, l), l = sqrt(3 / fan_in).")
LecunNormal = _variance_scaling("LecunNormal", 1.0, "fan_in", "truncated_normal",
                                "Truncated normal, stddev = sqrt(1 / fan_in).")


class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix times ``gain`` (the QR of a normal matrix, as Keras)."""

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = gain

    def _generate(self, rng, shape):
        if len(shape) < 2:
            raise ValueError(f"The tensor to initialize must be at least two-dimensional. Received: shape={shape}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = rng.normal(0.0, 1.0, (max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))  # makes the decomposition unique (uniform over orthogonal matrices)
        if rows < cols:
            q = q.T
        return self.gain * q.reshape(shape)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    """``gain`` times the identity matrix (2-D shapes only)."""

    def __init__(self, gain=1.0):
        self.gain = gain
        self.seed = None

    def _generate(self, rng, shape):
        if len(shape) != 2:
            raise ValueError(f"Identity initializer requires 2D shape. Received: shape={shape}")
        return self.gain * np.eye(*shape)

    def get_config(self):
        return {"gain": self.gain}


_CLASSES = (Constant, Zeros, Ones, RandomNormal, RandomUniform, TruncatedNormal, VarianceScaling,
            GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform, LecunNormal, Orthogonal, Identity)
_ALIASES = {
    "constant": Constant, "zeros": Zeros, "zero": Zeros, "ones": Ones, "one": Ones,
    "random_normal": RandomNormal, "random_uniform": RandomUniform, "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling, "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal,
    "he_uniform": HeUniform, "he_normal": HeNormal, "lecun_uniform": LecunUniform,
    "lecun_normal": LecunNormal, "orthogonal": Orthogonal, "identity": Identity,
}
_FAMILY = serialization_lib.family("initializers", kind="initializer")
_FAMILY.register(_CLASSES, aliases=_ALIASES)


def serialize(initializer):
    """``{"module", "class_name", "config", "registered_name"}`` as Keras 3 writes it."""
    return serialization_lib.serialize_keras_object(initializer)


def deserialize(config, custom_objects=None):
    """Inverse of ``serialize`` (a name gives a default instance)."""
    return serialization_lib.deserialize_instance(config, custom_objects, _FAMILY)


def get(identifier):
    """An initializer from a name ('glorot_uniform', 'GlorotUniform', ...), a config dict, an instance or a callable.

    Raises:
        ValueError: an unknown name.
    """
    return serialization_lib.get_object(identifier, _FAMILY, Initializer)


# Keras's function-style aliases: initializers.glorot_uniform(seed=...) etc.
constant, zeros, ones = Constant, Zeros, Ones
random_normal, random_uniform, truncated_normal = RandomNormal, RandomUniform, TruncatedNormal
variance_scaling, orthogonal, identity = VarianceScaling, Orthogonal, Identity
glorot_uniform, glorot_normal, he_uniform, he_normal = GlorotUniform, GlorotNormal, HeUniform, HeNormal
lecun_uniform, lecun_normal = LecunUniform, LecunNormal
