"""CIFAR-10 small images (``keras.datasets.cifar10``).

Example:
    >>> (x_train, y_train), (x_test, y_test) = pyminidl.datasets.cifar10.load_data()
    >>> x_train.shape, y_train.shape
    ((50000, 32, 32, 3), (50000, 1))
"""

import os

import numpy as np

from pyminidl.datasets._cifar import load_batch
from pyminidl.utils.file_utils import get_file

ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
FILE_HASH = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"  # as Keras lists it
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def load_data():
    """Loads CIFAR-10: 50,000 32x32 colour training images over 10 classes
    (``CLASS_NAMES``) and 10,000 test images.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 images (50000, 32, 32, 3) and
        (10000, 32, 32, 3) (channels_last), pixel values 0-255; uint8 labels 0-9 of shape
        (50000, 1) and (10000, 1).

    Raises:
        DownloadError: Offline and not cached (the message says where to place the archive).
        ValueError: A checksum mismatch, an unsafe archive or a malformed batch file.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = pyminidl.datasets.cifar10.load_data()
        >>> x_train.shape
        (50000, 32, 32, 3)
    """
    path = get_file(fname="cifar-10-batches-py-target", origin=ORIGIN, extract=True, file_hash=FILE_HASH)
    path = os.path.join(path, "cifar-10-batches-py")  # the archive holds one folder
    batches = [load_batch(os.path.join(path, f"data_batch_{i}")) for i in range(1, 6)]
    x_train = np.concatenate([data for data, _ in batches])
    y_train = np.concatenate([np.asarray(labels, dtype=np.uint8) for _, labels in batches])
    x_test, y_test = load_batch(os.path.join(path, "test_batch"))
    y_test = np.asarray(y_test, dtype=np.uint8)
    return (_channels_last(x_train), y_train.reshape(-1, 1)), (_channels_last(x_test), y_test.reshape(-1, 1))


def _channels_last(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


__all__ = ["load_data", "CLASS_NAMES"]
