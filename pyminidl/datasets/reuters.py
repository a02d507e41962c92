"""Reuters newswire topics (``keras.datasets.reuters``): 11,228 newswires as word-index
sequences, labelled over 46 topics (``get_label_names``).

Example:
    >>> (x_train, y_train), (x_test, y_test) = pyminidl.datasets.reuters.load_data(num_words=10000)
    >>> len(x_train), len(x_test)
    (8982, 2246)
"""

import numbers

import numpy as np

from pyminidl.datasets import _sequences
from pyminidl.datasets._safe_pickle import load_npz
from pyminidl.utils.file_utils import get_file

# Keras's published copies and their hashes (keras/src/datasets/reuters.py).
ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/reuters.npz"
FILE_HASH = "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916"
WORD_INDEX_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/reuters_word_index.json"
WORD_INDEX_HASH = "4d44cc38712099c9e383dc6e5f11a921"  # MD5, as Keras lists it

_LABEL_NAMES = (
    "cocoa", "grain", "veg-oil", "earn", "acq", "wheat", "copper", "housing", "money-supply",
    "coffee", "sugar", "trade", "reserves", "ship", "cotton", "carcass", "crude", "nat-gas",
    "cpi", "money-fx", "interest", "gnp", "meal-feed", "alum", "oilseed", "gold", "tin",
    "strategic-metal", "livestock", "retail", "ipi", "iron-steel", "rubber", "heat", "jobs",
    "lei", "bop", "zinc", "orange", "pet-chem", "dlr", "gas", "silver", "wpi", "hog", "lead",
)


def load_data(path="reuters.npz", num_words=None, skip_top=0, maxlen=None, test_split=0.2, seed=113, start_char=1, oov_char=2, index_from=3):
    """Loads the Reuters newswire dataset, with Keras 3's exact transforms.

    In order: all newswires are shuffled by ``np.random.RandomState(seed)``; every index
    is shifted by ``index_from`` and ``start_char`` is prepended; with ``maxlen``,
    sequences of length >= maxlen are dropped; indices outside ``skip_top <= w <
    num_words`` become ``oov_char`` (dropped if None); the first
    ``int(len * (1 - test_split))`` form the training set.

    Args:
        path: File name in the cache (``~/.pyminidl/datasets``).
        test_split: Fraction of the data used as the test set, in [0, 1].
        num_words, skip_top, maxlen, seed, start_char, oov_char, index_from: The word-index
            transforms, the same as ``pyminidl.datasets.imdb.load_data``'s (documented there).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: x 1-D object arrays of lists of ints,
        y int arrays of topic indices 0-45.

    Raises:
        ValueError: An argument out of range, ``maxlen`` leaving no sequence, a checksum
            mismatch, or a malformed file.
        DownloadError: Offline and not cached (the message says where to place the file).

    Example:
        >>> (x_train, y_train), _ = pyminidl.datasets.reuters.load_data(test_split=0.1)
        >>> names = pyminidl.datasets.reuters.get_label_names()
        >>> topics = [names[i] for i in y_train[:3]]
    """
    _sequences.check_args("reuters.load_data", num_words, skip_top, maxlen, start_char, oov_char, index_from)
    if isinstance(test_split, bool) or not isinstance(test_split, numbers.Real) or not 0 <= test_split <= 1:
        raise ValueError(f"reuters.load_data: `test_split` must be a float in [0, 1]. Received: test_split={test_split!r}")
    path = get_file(fname=path, origin=ORIGIN, file_hash=FILE_HASH)
    f = load_npz(path)
    if "x" not in f or "y" not in f:
        raise ValueError(f"{path} is not a Reuters file: it lacks x or y.")
    _sequences.check_arrays(path, f["x"], f["y"])
    order = np.arange(len(f["x"]))
    np.random.RandomState(seed).shuffle(order)
    xs, labels = _sequences.shift(f["x"][order], start_char, index_from), f["y"][order]
    if maxlen:
        xs, labels = _sequences.remove_long_seq(maxlen, xs, labels)
        if not xs:
            raise ValueError(f"After filtering for sequences shorter than maxlen={maxlen}, no sequence was kept. Increase maxlen.")
    xs = _sequences.limit_vocabulary(xs, num_words, skip_top, oov_char)
    labels = np.asarray(labels, dtype=f["y"].dtype)
    idx = int(len(xs) * (1 - test_split))
    return (_sequences.object_array(xs[:idx]), labels[:idx]), (_sequences.object_array(xs[idx:]), labels[idx:])


def get_word_index(path="reuters_word_index.json"):
    """The dict mapping each word to its index in the Reuters data (before ``index_from``).

    Indices 0, 1 and 2 of ``load_data``'s output are padding, start and OOV, so the word
    of index ``i`` there is the key whose value is ``i - 3`` (defaults).

    Example:
        >>> index = pyminidl.datasets.reuters.get_word_index()
        >>> words = {i + 3: w for w, i in index.items()}
    """
    return _sequences.load_word_index(path, WORD_INDEX_ORIGIN, WORD_INDEX_HASH)


def get_label_names():
    """The 46 topic names, indexed as the labels of ``load_data``.

    Example:
        >>> pyminidl.datasets.reuters.get_label_names()[3]
        'earn'
    """
    return _LABEL_NAMES


__all__ = ["load_data", "get_word_index", "get_label_names"]
