"""Models: Sequential (and later the functional Model), plus the classic Perceptron."""

from pyminidl.models.perceptron import Perceptron
from pyminidl.models.sequential import Sequential

__all__ = ["Sequential", "Perceptron"]
