"""MNIST handwritten digits (``keras.datasets.mnist``).

Example:
    >>> (x_train, y_train), (x_test, y_test) = pyminidl.datasets.mnist.load_data()
    >>> x_train.shape, x_train.dtype
    ((60000, 28, 28), dtype('uint8'))
"""

import numpy as np

from pyminidl.utils.file_utils import get_file

# Keras's published copy and its SHA-256 (keras/src/datasets/mnist.py).
ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
FILE_HASH = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"


def load_data(path="mnist.npz"):
    """Loads the MNIST dataset: 60,000 28x28 grayscale training images of the digits 0-9
    and 10,000 test images.

    Args:
        path: File name in the cache (``~/.pyminidl/datasets``).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 images of shape (60000, 28, 28)
        and (10000, 28, 28), pixel values 0-255; uint8 labels 0-9 of shape (60000,) and (10000,).

    Raises:
        DownloadError: Offline and not cached (the message says where to place the file).
        ValueError: The file's checksum does not match.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = pyminidl.datasets.mnist.load_data()
        >>> x_train.shape
        (60000, 28, 28)

    License: Yann LeCun and Corinna Cortes hold the copyright of MNIST, a derivative work of
    the NIST datasets, made available under CC BY-SA 3.0.
    """
    path = get_file(fname=path, origin=ORIGIN, file_hash=FILE_HASH)
    with np.load(path, allow_pickle=False) as f:
        return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])


__all__ = ["load_data"]
