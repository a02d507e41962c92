"""The word-index sequence transforms IMDB and Reuters share, as Keras 3 applies them."""

import json
import numbers

import numpy as np

from pyminidl.utils.file_utils import get_file


def load_word_index(path, origin, file_hash):
    """The ``{word: index}`` JSON of a word-index dataset, fetched once into the cache.

    Raises:
        ValueError: The file is not a JSON object of words to integer indices.
    """
    path = get_file(fname=path, origin=origin, file_hash=file_hash)
    with open(path, encoding="utf-8") as f:
        try:
            index = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not a word index: {e}") from None
    if not isinstance(index, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in index.items()):
        raise ValueError(f"{path} is not a word index: expected a JSON object of words to integer indices.")
    return index


def check_args(loader, num_words, skip_top, maxlen, start_char, oov_char, index_from):
    """Clear errors for arguments Keras would silently turn into an empty or all-OOV dataset."""
    _check_int(loader, "num_words", num_words, 1, none_ok=True)
    _check_int(loader, "skip_top", skip_top, 0)
    _check_int(loader, "maxlen", maxlen, 1, none_ok=True)
    _check_int(loader, "start_char", start_char, 0, none_ok=True)
    _check_int(loader, "oov_char", oov_char, 0, none_ok=True)
    _check_int(loader, "index_from", index_from, 0)


def _check_int(loader, name, value, minimum, none_ok=False):
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        allowed = f"None or an integer >= {minimum}" if none_ok else f"an integer >= {minimum}"
        raise ValueError(f"{loader}: `{name}` must be {allowed}. Received: {name}={value!r}")


def check_arrays(path, x, y):
    """The loaded arrays are 1-D, of one length, and x holds sequences of integers."""
    if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray) or x.ndim != 1 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"{path}: expected 1-D x and y arrays of one length. Received: x {getattr(x, 'shape', x)!r}, y {getattr(y, 'shape', y)!r}")
    for seq in x:
        if not isinstance(seq, (list, tuple, np.ndarray)) or not all(isinstance(w, numbers.Integral) for w in seq):
            raise ValueError(f"{path}: every sequence must be a list of word indices. Received: {type(seq).__name__}")


def shift(xs, start_char, index_from):
    """``[start_char] + [w + index_from ...]`` per sequence (start_char None: no marker)."""
    head = [] if start_char is None else [start_char]
    return [head + [w + index_from for w in x] for x in xs]


def remove_long_seq(maxlen, seqs, labels):
    """Keep the sequences strictly shorter than ``maxlen`` (Keras's rule), with their labels."""
    kept = [(x, y) for x, y in zip(seqs, labels) if len(x) < maxlen]
    return [x for x, _ in kept], [y for _, y in kept]


def limit_vocabulary(xs, num_words, skip_top, oov_char):
    """Words outside ``skip_top <= w < num_words`` become ``oov_char`` (or are dropped if None).

    As in Keras, ``num_words=None`` means the largest index present, and the bound is
    exclusive, so that largest word itself becomes ``oov_char``.
    """
    if num_words is None:
        num_words = max((max(x) for x in xs if len(x)), default=0)
    if oov_char is not None:
        return [[w if skip_top <= w < num_words else oov_char for w in x] for x in xs]
    return [[w for w in x if skip_top <= w < num_words] for x in xs]


def object_array(seqs):
    """A 1-D object array of lists, whatever their lengths (``np.array`` would make equal
    lengths 2-D)."""
    out = np.empty(len(seqs), dtype=object)
    for i, seq in enumerate(seqs):
        out[i] = seq
    return out
