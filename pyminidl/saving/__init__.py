"""Saving and loading (Keras 3 ``keras.saving``): the object registry, configs, and model files.

``model.save("m.keras")`` / ``load_model("m.keras")`` write and read Keras 3's zip (config.json,
metadata.json, model.weights.h5); ``save_weights`` / ``load_weights`` ``.weights.h5`` (through h5py)
or ``.weights.npz`` (pyminidl's own form when h5py is missing: Keras does not read it).
"""

from pyminidl.saving.object_registration import (CustomObjectScope, custom_object_scope, get_custom_objects,
                                                 get_registered_name, get_registered_object,
                                                 register_keras_serializable)
from pyminidl.saving.saving_lib import load_model, load_weights, save_model, save_weights
from pyminidl.saving.serialization_lib import deserialize_keras_object, serialize_keras_object

__all__ = ["CustomObjectScope", "custom_object_scope", "deserialize_keras_object", "get_custom_objects",
           "get_registered_name", "get_registered_object", "load_model", "load_weights",
           "register_keras_serializable", "save_model", "save_weights", "serialize_keras_object"]
