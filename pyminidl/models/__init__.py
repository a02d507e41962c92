"""Models: Sequential (and later the functional Model), plus the classic Perceptron."""

from pyminidl.models.sequential import Sequential

try:  # Engineer B's module; absent while it is being written
    from pyminidl.models.perceptron import Perceptron  # noqa: F401
except ModuleNotFoundError as exc:  # pragma: no cover
    if exc.name != "pyminidl.models.perceptron":
        raise

__all__ = ["Sequential", "Perceptron"]
