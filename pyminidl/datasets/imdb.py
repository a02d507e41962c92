"""IMDB movie-review sentiment (``keras.datasets.imdb``): 25,000 training and 25,000 test
reviews as word-index sequences, labelled 1 (positive) or 0 (negative).

Example:
    >>> (x_train, y_train), (x_test, y_test) = pyminidl.datasets.imdb.load_data(num_words=10000)
    >>> len(x_train), x_train[0][:3]
    (25000, [1, 14, 22])
"""

import numpy as np

from pyminidl.datasets import _sequences
from pyminidl.datasets._safe_pickle import load_npz
from pyminidl.utils.file_utils import get_file

# Keras's published copies and their hashes (keras/src/datasets/imdb.py).
ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz"
FILE_HASH = "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
WORD_INDEX_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb_word_index.json"
WORD_INDEX_HASH = "bfafd718b763782e994055a2d397834f"  # MD5, as Keras lists it


def load_data(path="imdb.npz", num_words=None, skip_top=0, maxlen=None, seed=113, start_char=1, oov_char=2, index_from=3):
    """Loads the IMDB dataset, with Keras 3's exact transforms.

    Words are indexed by frequency in the training set (1 = most frequent). In order:
    the training and then the test set are shuffled by one ``np.random.RandomState(seed)``;
    every index is shifted by ``index_from`` and ``start_char`` is prepended; with
    ``maxlen``, sequences of length >= maxlen are dropped; indices outside
    ``skip_top <= w < num_words`` become ``oov_char`` (dropped if it is None).

    Args:
        path: File name in the cache (``~/.pyminidl/datasets``).
        num_words: Keep indices below this (None: the largest index present, which itself
            becomes ``oov_char``, as in Keras).
        skip_top: Indices below this become ``oov_char`` (after the shift, as in Keras).
        maxlen: Drop sequences of this length or longer (None: keep all).
        seed: Seed of the shuffle.
        start_char: Marker prepended to each sequence (None: none).
        oov_char: Replacement of cut-out words (None: drop them).
        index_from: Offset added to every word index.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: x 1-D object arrays of lists of ints,
        y int arrays of 0/1.

    Raises:
        ValueError: An argument out of range (0 and negative values included: Keras
            would quietly return everything or nothing), ``maxlen`` leaving no sequence,
            a checksum mismatch, or a malformed file.
        DownloadError: Offline and not cached (the message says where to place the file).

    Example:
        >>> (x_train, y_train), _ = pyminidl.datasets.imdb.load_data(num_words=5000, maxlen=200)
        >>> max(max(x) for x in x_train) < 5000
        True
    """
    _sequences.check_args("imdb.load_data", num_words, skip_top, maxlen, start_char, oov_char, index_from)
    path = get_file(fname=path, origin=ORIGIN, file_hash=FILE_HASH)
    f = load_npz(path)
    x_train, labels_train, x_test, labels_test = _members(path, f)
    rng = np.random.RandomState(seed)
    order = np.arange(len(x_train))
    rng.shuffle(order)
    x_train, labels_train = x_train[order], labels_train[order]
    order = np.arange(len(x_test))
    rng.shuffle(order)
    x_test, labels_test = x_test[order], labels_test[order]

    x_train = _sequences.shift(x_train, start_char, index_from)
    x_test = _sequences.shift(x_test, start_char, index_from)
    if maxlen:
        x_train, labels_train = _sequences.remove_long_seq(maxlen, x_train, labels_train)
        x_test, labels_test = _sequences.remove_long_seq(maxlen, x_test, labels_test)
        if not x_train or not x_test:
            raise ValueError(f"After filtering for sequences shorter than maxlen={maxlen}, no sequence was kept. Increase maxlen.")
    xs = _sequences.limit_vocabulary(x_train + x_test, num_words, skip_top, oov_char)
    labels = np.concatenate([np.asarray(labels_train, dtype=f["y_train"].dtype), np.asarray(labels_test, dtype=f["y_test"].dtype)])
    idx = len(x_train)
    return (_sequences.object_array(xs[:idx]), labels[:idx]), (_sequences.object_array(xs[idx:]), labels[idx:])


def _members(path, f):
    missing = {"x_train", "y_train", "x_test", "y_test"} - set(f)
    if missing:
        raise ValueError(f"{path} is not an IMDB file: it lacks {sorted(missing)}.")
    _sequences.check_arrays(path, f["x_train"], f["y_train"])
    _sequences.check_arrays(path, f["x_test"], f["y_test"])
    return f["x_train"], f["y_train"], f["x_test"], f["y_test"]


def get_word_index(path="imdb_word_index.json"):
    """The dict mapping each word to its index in the IMDB data (before ``index_from``).

    Args:
        path: File name in the cache.

    Returns:
        ``{word: index}``; the word of index ``i`` in ``load_data``'s output (defaults)
        is the key whose value is ``i - 3``.

    Example:
        >>> index = pyminidl.datasets.imdb.get_word_index()
        >>> words = {i + 3: w for w, i in index.items()}
    """
    return _sequences.load_word_index(path, WORD_INDEX_ORIGIN, WORD_INDEX_HASH)


__all__ = ["load_data", "get_word_index"]
