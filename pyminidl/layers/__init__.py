"""Layers with the Keras 3 API: ``from pyminidl import layers; layers.Dense(10)``."""

from pyminidl.layers.activation import Activation
from pyminidl.layers.augmentation import (RandomContrast, RandomCrop, RandomFlip, RandomRotation,
                                          RandomTranslation, RandomZoom)
from pyminidl.layers.base import InputSpec, KerasTensor, Layer, clear_session
from pyminidl.layers.dense import Dense
from pyminidl.layers.dropout import Dropout, SpatialDropout1D, SpatialDropout2D
from pyminidl.layers.index_lookup import IntegerLookup, StringLookup
from pyminidl.layers.input_layer import Input, InputLayer
from pyminidl.layers.lambda_layer import Lambda
from pyminidl.layers.preprocessing import CenterCrop, Normalization, Rescaling, Resizing
from pyminidl.layers.reshaping import (Cropping1D, Cropping2D, Flatten, Reshape, UpSampling1D, UpSampling2D,
                                      ZeroPadding1D, ZeroPadding2D)
from pyminidl.layers.text_vectorization import TextVectorization
# Pooling and normalization (issue 9).
from pyminidl.layers.normalization import BatchNormalization, LayerNormalization
from pyminidl.layers.pooling import (AveragePooling1D, AveragePooling2D, AvgPool1D, AvgPool2D, GlobalAveragePooling1D,
                                     GlobalAveragePooling2D, GlobalAvgPool1D, GlobalAvgPool2D, GlobalMaxPool1D,
                                     GlobalMaxPool2D, GlobalMaxPooling1D, GlobalMaxPooling2D, MaxPool1D, MaxPool2D,
                                     MaxPooling1D, MaxPooling2D)


def _all_subclasses(cls):
    out = {}
    for sub in cls.__subclasses__():
        out.setdefault(sub.__name__, sub)
        for name, c in _all_subclasses(sub).items():
            out.setdefault(name, c)
    return out


def serialize(layer):
    """``{"module", "class_name", "config", "registered_name", "build_config"}`` as Keras 3 writes it."""
    out = {"module": "keras.layers", "class_name": type(layer).__name__, "config": layer.get_config(),
           "registered_name": None}
    build_config = layer.get_build_config()
    if build_config is not None and not isinstance(layer, InputLayer):
        out["build_config"] = {"input_shape": list(build_config["input_shape"])}
    return out


def deserialize(config, custom_objects=None):
    """A layer from ``serialize``'s output; classes are looked up among Layer subclasses and ``custom_objects``.

    Raises:
        ValueError: an unknown class name.
    """
    name = config.get("class_name")
    cls = (custom_objects or {}).get(name)
    if cls is None and name == "Sequential":
        from pyminidl.models import Sequential as cls  # noqa: N813
    if cls is None:
        cls = _all_subclasses(Layer).get(name)
    if cls is None:
        raise ValueError(f"Unknown layer: '{name}'. Please ensure you are using a `keras.utils.custom_object_scope` "
                         "and that this object is included in the scope, or pass it in `custom_objects`.")
    inner = dict(config.get("config") or {})
    layer = cls.from_config(inner, custom_objects=custom_objects) if name == "Sequential" else cls.from_config(inner)
    build_config = config.get("build_config")
    if build_config:
        layer.build_from_config(build_config)
    return layer


__all__ = [
    "Activation", "Dense", "Dropout", "Flatten", "Input", "InputLayer", "InputSpec", "IntegerLookup", "KerasTensor",
    "Lambda", "Layer", "Reshape", "StringLookup", "TextVectorization", "clear_session", "serialize", "deserialize",
    "CenterCrop", "Normalization", "Rescaling", "Resizing",
    "RandomContrast", "RandomCrop", "RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom",
    # Pooling, normalization and spatial utilities (issue 9).
    "AveragePooling1D", "AveragePooling2D", "AvgPool1D", "AvgPool2D", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalMaxPool1D", "GlobalMaxPool2D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "MaxPool1D", "MaxPool2D", "MaxPooling1D", "MaxPooling2D",
    "BatchNormalization", "LayerNormalization", "SpatialDropout1D", "SpatialDropout2D",
    "Cropping1D", "Cropping2D", "UpSampling1D", "UpSampling2D", "ZeroPadding1D", "ZeroPadding2D",
]
