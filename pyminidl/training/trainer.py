"""Trainer: the Keras training loop, mixed into Sequential and Model.

(Being written: see the training-API issue.)
"""


class Trainer:
    """Mixin giving a model compile / fit / evaluate / predict."""
