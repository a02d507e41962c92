"""Training loop: compile / fit / evaluate / predict (the Trainer mixin of every model)."""

from pyminidl.training.progbar import Progbar  # noqa: F401
from pyminidl.training.trainer import Trainer  # noqa: F401

__all__ = ["Trainer", "Progbar"]
