"""Models: Sequential (and later the functional Model), plus the classic Perceptron."""

from pyminidl.models.functional import Functional
from pyminidl.models.model import Model
from pyminidl.models.perceptron import Perceptron
from pyminidl.models.sequential import Sequential

__all__ = ["Functional", "Model", "Sequential", "Perceptron"]
