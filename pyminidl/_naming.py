"""Class name -> snake_case default name, one rule for layers, losses and metrics (Keras's
``keras.src.utils.naming.to_snake_case``: ``Conv2D`` -> ``conv2d``, ``KLDivergence`` -> ``kl_divergence``)."""

import re


def to_snake_case(name):
    """``"MaxPooling2D"`` -> ``"max_pooling2d"``: an underscore before each capitalised word, digits
    stay with the word before them, non-word characters dropped."""
    name = re.sub(r"\W+", "", name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()
