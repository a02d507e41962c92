"""Fashion-MNIST: Zalando's article images (``keras.datasets.fashion_mnist``).

Example:
    >>> (x_train, y_train), (x_test, y_test) = pyminidl.datasets.fashion_mnist.load_data()
    >>> x_train.shape, y_train.shape
    ((60000, 28, 28), (60000,))
"""

import gzip
import os

import numpy as np

from pyminidl.utils.file_utils import get_file

ORIGIN_FOLDER = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
# SHA-256 of each file as Keras lists them (keras/src/datasets/fashion_mnist.py).
FILE_HASHES = {
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
}
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def read_idx(path):
    """A gzipped IDX file (LeCun's MNIST format) of unsigned bytes as a uint8 array.

    The header is checked: two zero bytes, type 0x08 (unsigned byte), the number of
    dimensions, then each size as a big-endian uint32; the data must fill it exactly.

    Example:
        >>> read_idx("train-labels-idx1-ubyte.gz").shape
        (60000,)
    """
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"{path} is not a readable gzip file: {e}") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (magic {raw[:4].hex()}).")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(n) for n in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4)) if len(raw) >= header else None
    if shape is None or len(raw) - header != int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"{path}: the IDX data does not match its header (shape {shape}, {len(raw) - header} bytes of data).")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def load_data():
    """Loads Fashion-MNIST: 60,000 28x28 grayscale training images of 10 fashion
    categories (``CLASS_NAMES``) and 10,000 test images, a drop-in replacement for MNIST.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 images (60000, 28, 28) and
        (10000, 28, 28); uint8 labels 0-9 of shape (60000,) and (10000,).

    Raises:
        DownloadError: Offline and not cached (the message says where to place each file).
        ValueError: A checksum mismatch or a malformed IDX file.

    Example:
        >>> (x_train, y_train), _ = pyminidl.datasets.fashion_mnist.load_data()
        >>> pyminidl.datasets.fashion_mnist.CLASS_NAMES[y_train[0]]
        'Ankle boot'

    License: copyright Zalando SE, MIT license.
    """
    paths = {
        name: get_file(name, origin=ORIGIN_FOLDER + name, cache_subdir=os.path.join("datasets", "fashion-mnist"), file_hash=FILE_HASHES[name])
        for name in FILE_HASHES
    }
    y_train = read_idx(paths["train-labels-idx1-ubyte.gz"])
    x_train = read_idx(paths["train-images-idx3-ubyte.gz"])
    y_test = read_idx(paths["t10k-labels-idx1-ubyte.gz"])
    x_test = read_idx(paths["t10k-images-idx3-ubyte.gz"])
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "t10k")):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"Fashion-MNIST {split} files disagree: images {x.shape}, labels {y.shape}.")
    return (x_train, y_train), (x_test, y_test)


__all__ = ["load_data", "CLASS_NAMES"]
