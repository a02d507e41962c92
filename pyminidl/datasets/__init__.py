"""Datasets: Keras's loaders (``keras.datasets``) and small data shipped in the package.

``mnist``, ``fashion_mnist``, ``cifar10``, ``cifar100``, ``imdb`` and ``reuters`` have
Keras 3's ``load_data()``; they download once through ``pyminidl.utils.get_file`` into
``~/.pyminidl/datasets`` (checksum verified, offline-safe; see the README's "Datasets").

``load_digits()`` returns the 8x8 handwritten digits: 1,797 images of the digits 0-9, each
pixel an integer count 0..16. It is the test set of the UCI "Optical Recognition of
Handwritten Digits" data (E. Alpaydin, C. Kaynak, 1998; https://doi.org/10.24432/C50P49),
licensed CC BY 4.0, in the ``digits.csv.gz`` file that scikit-learn (BSD-3-Clause) ships.
See README.md beside this file.

Example:
    >>> x, y = pyminidl.datasets.load_digits()
    >>> x.shape, y.shape
    ((1797, 64), (1797,))
"""

import gzip
import os

import numpy as np

from pyminidl.datasets import cifar10, cifar100, fashion_mnist, imdb, mnist, reuters  # noqa: F401

_DIGITS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.csv.gz")
_cache = {}


def load_digits(as_images=False):
    """The 8x8 handwritten digits.

    Args:
        as_images: return x with shape (1797, 8, 8) instead of (1797, 64).

    Returns:
        (x, y): x float32 pixel counts in [0, 16], y int64 labels in 0..9 (fresh copies).

    Raises:
        FileNotFoundError: when the data file is missing from the installation.
    """
    if "digits" not in _cache:
        if not os.path.exists(_DIGITS_FILE):
            raise FileNotFoundError(f"The shipped digits data is missing: {_DIGITS_FILE}. Reinstall pyminidl.")
        with gzip.open(_DIGITS_FILE, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.float32)
        if table.shape != (1797, 65):
            raise ValueError(f"Corrupt digits data: expected shape (1797, 65), got {table.shape}")
        _cache["digits"] = (table[:, :64], table[:, 64].astype(np.int64))
    x, y = _cache["digits"]
    x = x.reshape(-1, 8, 8) if as_images else x
    return x.copy(), y.copy()


__all__ = ["load_digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "imdb", "reuters"]
