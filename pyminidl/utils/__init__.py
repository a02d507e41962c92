"""Keras's utility functions, one module per concern (as ``keras.utils``).

Example:
    >>> pyminidl.utils.to_categorical([0, 2], num_classes=3)
    array([[1., 0., 0.],
           [0., 0., 1.]], dtype=float32)
"""

from pyminidl.utils.file_utils import get_file
from pyminidl.utils.image_dataset_utils import image_dataset_from_directory
from pyminidl.utils.model_visualization import model_to_dot_text, plot_model
from pyminidl.utils.image_utils import array_to_img, img_to_array, load_img, save_img, smart_resize
from pyminidl.utils.numerical_utils import normalize, set_random_seed, to_categorical
from pyminidl.utils.sequence_utils import pad_sequences
from pyminidl.utils.text_dataset_utils import text_dataset_from_directory

__all__ = ["get_file", "to_categorical", "normalize", "pad_sequences", "set_random_seed",
           "text_dataset_from_directory", "load_img", "img_to_array", "array_to_img", "save_img",
           "smart_resize", "image_dataset_from_directory", "plot_model", "model_to_dot_text"]
