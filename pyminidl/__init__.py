"""pyminidl: a small, fast deep-learning framework with the Keras API and a C++ core.

Example:
    >>> import pyminidl as keras
    >>> pyminidl.show_config()
"""

__version__ = "0.1.0"

from pyminidl import backend, config  # noqa: E402,F401
from pyminidl._show_config import show_config  # noqa: E402,F401
from pyminidl import callbacks  # noqa: E402,F401
from pyminidl import activations, initializers, layers, models, ops, regularizers, tree  # noqa: E402,F401
from pyminidl.layers import Input, InputLayer, KerasTensor, Layer  # noqa: E402,F401
from pyminidl.models import Model, Sequential  # noqa: E402,F401
from pyminidl.ops import GradientTape  # noqa: E402,F401
from pyminidl import data, datasets, debugging, losses, metrics, optimizers, preprocessing, utils, visualize  # noqa: E402,F401

# Persistence: keras.saving (registry, .keras files, weights files)
from pyminidl import saving  # noqa: E402,F401
