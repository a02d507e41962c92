"""Keras's ``keras.preprocessing`` namespace: data preprocessing helpers, one module per kind.

``text`` (tf.keras's Tokenizer, stop words, ``clean``), ``sequence`` (``pad_sequences``) and
``image`` (loading, converting and resizing images).
"""

from pyminidl.preprocessing import image, sequence, text  # noqa: F401
from pyminidl.utils.image_dataset_utils import image_dataset_from_directory  # noqa: F401
