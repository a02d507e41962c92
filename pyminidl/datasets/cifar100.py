"""CIFAR-100 small images (``keras.datasets.cifar100``).

Example:
    >>> (x_train, y_train), _ = pyminidl.datasets.cifar100.load_data(label_mode="coarse")
    >>> x_train.shape, int(y_train.max())
    ((50000, 32, 32, 3), 19)
"""

import os

import numpy as np

from pyminidl.datasets._cifar import load_batch
from pyminidl.utils.file_utils import get_file

ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
FILE_HASH = "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7"  # as Keras lists it


def load_data(label_mode="fine"):
    """Loads CIFAR-100: 50,000 32x32 colour training images and 10,000 test images, over
    100 fine classes grouped into 20 coarse ones.

    Args:
        label_mode: ``"fine"`` (labels 0-99) or ``"coarse"`` (superclasses 0-19).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 images (50000, 32, 32, 3) and
        (10000, 32, 32, 3) (channels_last); int64 labels of shape (50000, 1) and
        (10000, 1) (Keras's dtype here: it reshapes the pickled list of ints).

    Raises:
        ValueError: An unknown ``label_mode``, a checksum mismatch, an unsafe archive or a
            malformed batch file.
        DownloadError: Offline and not cached (the message says where to place the archive).

    Example:
        >>> (x_train, y_train), (x_test, y_test) = pyminidl.datasets.cifar100.load_data()
        >>> y_train.shape
        (50000, 1)
    """
    if label_mode not in ("fine", "coarse"):
        raise ValueError(f'`label_mode` must be one of `"fine"`, `"coarse"`. Received: label_mode={label_mode}.')
    path = get_file(fname="cifar-100-python-target", origin=ORIGIN, extract=True, file_hash=FILE_HASH)
    path = os.path.join(path, "cifar-100-python")
    x_train, y_train = load_batch(os.path.join(path, "train"), label_key=label_mode + "_labels")
    x_test, y_test = load_batch(os.path.join(path, "test"), label_key=label_mode + "_labels")
    y_train = np.asarray(y_train, dtype=np.int64).reshape(-1, 1)
    y_test = np.asarray(y_test, dtype=np.int64).reshape(-1, 1)
    return (_channels_last(x_train), y_train), (_channels_last(x_test), y_test)


def _channels_last(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


__all__ = ["load_data"]
