"""Layers with the Keras 3 API: ``from pyminidl import layers; layers.Dense(10)``."""

from pyminidl.layers.activation import Activation
from pyminidl.layers.augmentation import (RandomContrast, RandomCrop, RandomFlip, RandomRotation,
                                          RandomTranslation, RandomZoom)
from pyminidl.layers.base import InputSpec, KerasTensor, Layer, clear_session
# Convolution layers.
from pyminidl.layers.convolutional import (Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose, Convolution1D,
                                           Convolution1DTranspose, Convolution2D, Convolution2DTranspose,
                                           DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D, SeparableConv2D,
                                           SeparableConvolution1D, SeparableConvolution2D)
from pyminidl.layers.dense import Dense
from pyminidl.layers.dropout import Dropout, SpatialDropout1D, SpatialDropout2D
from pyminidl.layers.index_lookup import IntegerLookup, StringLookup
from pyminidl.layers.input_layer import Input, InputLayer
from pyminidl.layers.lambda_layer import Lambda
# -- merge layers and their functional forms (the functional API)
from pyminidl.layers.merging import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract, add,
                                     average, concatenate, dot, maximum, minimum, multiply, subtract)
from pyminidl.layers.preprocessing import CenterCrop, Normalization, Rescaling, Resizing
from pyminidl.layers.reshaping import (Cropping1D, Cropping2D, Flatten, Reshape, UpSampling1D, UpSampling2D,
                                      ZeroPadding1D, ZeroPadding2D)
from pyminidl.layers.text_vectorization import TextVectorization
# Sequences: embeddings, recurrent layers and their wrappers.
from pyminidl.layers.embedding import Embedding, Masking
from pyminidl.layers.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, SimpleRNN, SimpleRNNCell
from pyminidl.layers.wrappers import Bidirectional, TimeDistributed
# Pooling and normalization (issue 9).
from pyminidl.layers.normalization import BatchNormalization, LayerNormalization
from pyminidl.layers.pooling import (AveragePooling1D, AveragePooling2D, AvgPool1D, AvgPool2D, GlobalAveragePooling1D,
                                     GlobalAveragePooling2D, GlobalAvgPool1D, GlobalAvgPool2D, GlobalMaxPool1D,
                                     GlobalMaxPool2D, GlobalMaxPooling1D, GlobalMaxPooling2D, MaxPool1D, MaxPool2D,
                                     MaxPooling1D, MaxPooling2D)


from pyminidl.layers._serialization import FAMILY as _FAMILY
from pyminidl.layers._serialization import deserialize, serialize
# Every layer class this package exports is a built-in of the family, by its class name: a layer
# added above is loadable without a second list to keep in step.
_FAMILY.register(tuple(obj for name, obj in sorted(globals().items())
                       if isinstance(obj, type) and issubclass(obj, Layer) and obj is not Layer
                       and not name.startswith("_")))


__all__ = [
    "Activation", "Dense", "Dropout", "Flatten", "Input", "InputLayer", "InputSpec", "IntegerLookup", "KerasTensor",
    "Lambda", "Layer", "Reshape", "StringLookup", "TextVectorization", "clear_session", "serialize", "deserialize",
    "CenterCrop", "Normalization", "Rescaling", "Resizing",
    "RandomContrast", "RandomCrop", "RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom",
    # Sequences
    "Embedding", "Masking", "SimpleRNN", "LSTM", "GRU", "RNN", "SimpleRNNCell", "LSTMCell", "GRUCell",
    "Bidirectional", "TimeDistributed",
    # merge layers
    "Add", "Average", "Concatenate", "Dot", "Maximum", "Minimum", "Multiply", "Subtract",
    "add", "average", "concatenate", "dot", "maximum", "minimum", "multiply", "subtract",
    # Convolution layers.
    "Conv1D", "Conv1DTranspose", "Conv2D", "Conv2DTranspose", "Convolution1D", "Convolution1DTranspose",
    "Convolution2D", "Convolution2DTranspose", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D",
    "SeparableConv2D", "SeparableConvolution1D", "SeparableConvolution2D",
    # Pooling, normalization and spatial utilities (issue 9).
    "AveragePooling1D", "AveragePooling2D", "AvgPool1D", "AvgPool2D", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalMaxPool1D", "GlobalMaxPool2D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "MaxPool1D", "MaxPool2D", "MaxPooling1D", "MaxPooling2D",
    "BatchNormalization", "LayerNormalization", "SpatialDropout1D", "SpatialDropout2D",
    "Cropping1D", "Cropping2D", "UpSampling1D", "UpSampling2D", "ZeroPadding1D", "ZeroPadding2D",
]
