"""The layers family of the one registry: ``serialize`` / ``deserialize`` for layers and models.

A leaf module, so that layers holding layers (RNN's cell, Bidirectional, TimeDistributed) import it at
module level; ``pyminidl.layers`` files every class it exports into ``FAMILY`` and re-exports both
functions.
"""

from pyminidl.saving import serialization_lib

# Models (Sequential, and the functional Model) file themselves here too, from pyminidl.models: a
# config naming them resolves through this family without pyminidl.layers importing pyminidl.models.
FAMILY = serialization_lib.family("layers", kind="layer")


def serialize(layer):
    """``{"module", "class_name", "config", "registered_name", "build_config"}`` as Keras 3 writes it."""
    return serialization_lib.serialize_keras_object(layer)


def deserialize(config, custom_objects=None):
    """A layer (or model) from ``serialize``'s output: built-in classes, registered ones and ``custom_objects``.

    Raises:
        ValueError: an unknown class name (the message suggests ``custom_objects``).
    """
    return serialization_lib.deserialize_keras_object(config, custom_objects, FAMILY)
