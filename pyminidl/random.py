"""The global random state of pyminidl: initializers, Dropout and shuffling draw from it.

``pyminidl.utils.set_random_seed(seed)`` reseeds it (and Python's and NumPy's global
generators, as Keras does), so the same seed and thread count give bit-identical training.
"""

import numpy as np

_rng = np.random.default_rng()


def global_rng():
    """The process-wide ``numpy.random.Generator`` pyminidl draws from."""
    return _rng


def seed(value):
    """Reseed the global generator."""
    global _rng
    _rng = np.random.default_rng(value)


def make_rng(seed_value=None):
    """A generator for ``seed_value``; a fresh child of the global one when it is None."""
    if seed_value is None:
        return np.random.default_rng(_rng.integers(0, 2**63 - 1))
    return np.random.default_rng(seed_value)


def get_state():
    """The global generator's state (a JSON-able dict): BackupAndRestore saves it with a checkpoint."""
    return _rng.bit_generator.state


def set_state(state):
    """Put the global generator back in ``state`` (from ``get_state``)."""
    _rng.bit_generator.state = state
