"""``keras.preprocessing.image``: the image helpers of ``pyminidl.utils`` under Keras's older path.

Example:
    >>> from pyminidl.preprocessing.image import load_img, img_to_array
    >>> x = img_to_array(load_img("cat.png", target_size=(64, 64)))
"""

from pyminidl.utils.image_utils import array_to_img, img_to_array, load_img, save_img, smart_resize

__all__ = ["array_to_img", "img_to_array", "load_img", "save_img", "smart_resize"]
