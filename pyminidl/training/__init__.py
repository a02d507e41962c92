"""Training loop: compile / fit / evaluate / predict (the Trainer mixin of every model)."""

from pyminidl.training.progbar import Progbar  # noqa: F401

__all__ = ["Progbar"]  # the Trainer mixin: pyminidl.training.trainer (imported by the models)
