"""Keras's ``keras.preprocessing`` namespace: data preprocessing helpers, one module per kind."""

from pyminidl.preprocessing import image  # noqa: F401
from pyminidl.utils.image_dataset_utils import image_dataset_from_directory  # noqa: F401
