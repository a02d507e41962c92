"""TextVectorization: raw strings -> token ids or bag-of-words vectors, inside a model (Keras 3).

Pipeline per string: standardize -> split -> drop stop words -> ngrams -> vocabulary lookup
(a ``StringLookup`` with ``mask_token=""``: in "int" mode 0 is padding and 1 is "[UNK]").

Standardisation as Keras, except that "lower" lowercases all of Unicode ("ÇA" -> "ça"; Keras's
``tf.strings.lower`` changes ASCII letters only) and that "strip_punctuation" removes Keras's
ASCII punctuation set (``!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'``, deleted, so "don't" -> "dont") and,
beyond Keras, turns non-ASCII punctuation (Unicode category P*, e.g. "、", "。", "«") into spaces so
Japanese and Korean sentences split at their own punctuation. "whitespace" splits on any Unicode
whitespace; "character" yields Unicode code points (a Hangul syllable is one token). A callable
``standardize`` takes and returns one string, a callable ``split`` takes one string and returns its tokens.

Example:
    >>> layer = TextVectorization(output_sequence_length=4)
    >>> layer.adapt(["foo bar", "bar baz", "baz bada boom"])
    >>> layer(np.array(["foo qux bar", "qux baz"])).tolist()
    [[4, 1, 3, 0], [1, 2, 0, 0]]
"""

import collections
import functools

import numpy as np

from pyminidl.backend import get_backend
from pyminidl.layers.base import Layer
from pyminidl.layers.index_lookup import StringLookup, _batches, _host, encode_ids
from pyminidl._text import _unicode_separators, resolve_stop_words

_KERAS_PUNCTUATION = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'"


@functools.lru_cache(maxsize=1)
def _strip_table():
    table = {ord(c): " " for c in _unicode_separators() if not c.isspace()}
    table.update({ord(c): None for c in _KERAS_PUNCTUATION})
    return table


def _ngrams(tokens, widths):
    """tf.strings.ngrams: every width's windows joined by spaces, widths in order."""
    out = []
    for n in widths:
        out.extend(" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
    return out


class TextVectorization(Layer):
    """Maps strings to integer sequences or to multi_hot / count / tf_idf vectors (``keras.layers.TextVectorization``).

    Args:
        max_tokens: the largest vocabulary, padding and OOV included (None: no cap).
        standardize: "lower_and_strip_punctuation", "lower", "strip_punctuation", None or a callable str -> str.
        split: "whitespace", "character", None (the whole string is one token) or a callable str -> list.
        ngrams: None, an int n (1..n-grams) or a tuple of widths.
        output_mode: "int", "multi_hot", "count", "tf_idf" (or "one_hot" with ``split=None``).
        output_sequence_length: "int" mode pads (with 0) or cuts every row to this length;
            None pads to the longest row of the batch.
        pad_to_max_tokens: non-int modes give ``max_tokens`` columns even if the vocabulary is smaller.
        vocabulary: a list of strings or a file path (instead of ``adapt``).
        idf_weights: with ``output_mode="tf_idf"`` and ``vocabulary``.
        stop_words: None, "english" (the shipped list) or a list of words, dropped after standardize and split.
        sparse, ragged: False only (dense NumPy outputs).
        encoding: how bytes inputs are decoded.

    Raises:
        ValueError: invalid arguments (named, with the value received).

    Example:
        >>> layer = TextVectorization(output_mode="multi_hot")
        >>> layer.adapt(["좋은 영화", "나쁜 영화"])
        >>> layer(np.array(["좋은 좋은"])).tolist()   # vocabulary ['[UNK]', '영화', '좋은', '나쁜']
        [[0.0, 0.0, 1.0, 0.0]]
    """

    _cast_inputs = False  # raw strings reach forward unchanged

    def __init__(self, max_tokens=None, standardize="lower_and_strip_punctuation", split="whitespace", ngrams=None,
                 output_mode="int", output_sequence_length=None, pad_to_max_tokens=False, vocabulary=None,
                 idf_weights=None, sparse=False, ragged=False, encoding="utf-8", name=None, stop_words=None,
                 **kwargs):
        kwargs.pop("vocabulary_size", None)
        kwargs.pop("has_input_vocabulary", None)
        super().__init__(name=name, **kwargs)
        output_mode = {"binary": "multi_hot", "tf-idf": "tf_idf"}.get(output_mode, output_mode)
        self._check_args(standardize, split, ngrams, output_mode, output_sequence_length, sparse, ragged)
        self._standardize, self._split, self._ngrams_arg = standardize, split, ngrams
        self._ngrams = tuple(range(1, ngrams + 1)) if isinstance(ngrams, int) else ngrams
        self._output_mode, self._output_sequence_length = output_mode, output_sequence_length
        self._encoding = encoding
        self._stop_words_arg = stop_words if stop_words is None or isinstance(stop_words, str) else sorted(
            resolve_stop_words(stop_words, "TextVectorization"))
        self._stop_words = resolve_stop_words(stop_words, "TextVectorization")
        self._lookup_layer = StringLookup(max_tokens=max_tokens, vocabulary=vocabulary, idf_weights=idf_weights,
                                          pad_to_max_tokens=pad_to_max_tokens, mask_token="", output_mode=output_mode,
                                          encoding=encoding, name=f"{self.name}_string_lookup")
        self.built = True

    def _check_args(self, standardize, split, ngrams, output_mode, output_sequence_length, sparse, ragged):
        if not (standardize is None or callable(standardize)
                or standardize in ("lower_and_strip_punctuation", "lower", "strip_punctuation")):
            raise ValueError("Unknown value for `standardize` in TextVectorization. Expected one of "
                             "['lower_and_strip_punctuation', 'lower', 'strip_punctuation'], None or a callable. "
                             f"Received: standardize={standardize!r}")
        if not (split is None or callable(split) or split in ("whitespace", "character")):
            raise ValueError("Unknown value for `split` in TextVectorization. Expected one of ['whitespace', "
                             f"'character'], None or a callable. Received: split={split!r}")
        if not (ngrams is None or (isinstance(ngrams, int) and not isinstance(ngrams, bool) and ngrams >= 1)
                or (isinstance(ngrams, tuple) and ngrams and all(isinstance(n, int) and n >= 1 for n in ngrams))):
            raise ValueError(f"`ngrams` must be None, an integer, or a tuple of integers. Received: ngrams={ngrams}")
        if output_mode not in ("int", "one_hot", "multi_hot", "count", "tf_idf"):
            raise ValueError("Unknown value for `output_mode` in TextVectorization. Expected one of ['int', "
                             f"'one_hot', 'multi_hot', 'count', 'tf_idf']. Received: output_mode={output_mode!r}")
        if output_mode == "int" and not (output_sequence_length is None or (
                isinstance(output_sequence_length, int) and output_sequence_length >= 1)):
            raise ValueError("`output_sequence_length` must be either None or a positive integer when `output_mode` "
                             f"is 'int'. Received: output_sequence_length={output_sequence_length}")
        if output_mode != "int" and output_sequence_length is not None:
            raise ValueError("`output_sequence_length` must not be set if `output_mode` is not 'int'. "
                             f"Received output_sequence_length={output_sequence_length}.")
        if sparse or ragged:
            raise ValueError("TextVectorization: `sparse` and `ragged` outputs need TensorFlow; pyminidl returns "
                             f"dense NumPy arrays. Received: sparse={sparse}, ragged={ragged}")

    # ------------------------------------------------------------------ preprocessing

    def _text(self, value):
        if isinstance(value, bytes):
            return value.decode(self._encoding)
        if not isinstance(value, str):
            raise TypeError(f"TextVectorization (layer {self.name!r}) expects strings. Received a "
                            f"{type(value).__name__}: {value!r}")
        return value

    def _tokens(self, text):
        """One string -> its tokens (standardized, split, stop words dropped, ngrams)."""
        std = self._standardize
        if std in ("lower", "lower_and_strip_punctuation"):
            text = text.lower()
        if std in ("strip_punctuation", "lower_and_strip_punctuation"):
            text = text.translate(_strip_table())
        elif callable(std):
            text = std(text)
        split = self._split
        if split is None:
            tokens = [text]
        elif split == "whitespace":
            tokens = text.split()
        elif split == "character":
            tokens = list(text)
        else:
            tokens = list(split(text))
        if self._stop_words:
            tokens = [t for t in tokens if t not in self._stop_words]
        return _ngrams(tokens, self._ngrams) if self._ngrams else tokens

    def _rows(self, inputs):
        """Input strings, (batch,) or (batch, 1) or a scalar -> one token list per row."""
        x = _host(inputs)
        if x.ndim == 0:
            x = x.reshape(1)
        if x.ndim > 1:
            if x.shape[-1] != 1 or x.ndim > 2:
                raise ValueError("When using `TextVectorization` to tokenize strings, the input rank must be 1 or "
                                 f"the last shape dimension must be 1. Received: inputs.shape={x.shape} with "
                                 f"rank={x.ndim}")
            x = x.reshape(-1)
        return [self._tokens(self._text(s)) for s in x.tolist()]

    # ------------------------------------------------------------------ vocabulary

    def adapt(self, data, batch_size=None, steps=None):
        """Learn the vocabulary from strings: an array or list (one document per string), a pyminidl
        ``Dataset`` of string batches, or an iterable of batches.

        Raises:
            ValueError: a fixed vocabulary was set, or no tokens were found (empty vocabulary).
        """
        lookup = self._lookup_layer
        if lookup._has_input_vocabulary:
            raise ValueError(f"Cannot adapt layer '{self.name}' after setting a static vocabulary via `vocabulary` "
                             "argument or `set_vocabulary()` method.")
        counts, docs, n_docs = collections.Counter(), collections.Counter(), 0
        for batch in _batches(data, steps, "TextVectorization"):
            for row in self._rows(batch):
                counts.update(row)
                if self._output_mode == "tf_idf":
                    docs.update(set(row))
                n_docs += 1
        counts.pop("", None)
        if not counts:
            raise ValueError(f"TextVectorization.adapt: `data` held no tokens after standardize/split/stop_words, "
                             f"so the vocabulary would be empty (layer {self.name!r}; {n_docs} documents).")
        lookup._finalize(counts, docs, n_docs)

    def get_vocabulary(self, include_special_tokens=True):
        """The vocabulary; in "int" mode index 0 is '' (padding) and 1 is '[UNK]'."""
        return self._lookup_layer.get_vocabulary(include_special_tokens)

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Set the vocabulary (and tf_idf weights) directly instead of ``adapt``."""
        self._lookup_layer.set_vocabulary(vocabulary, idf_weights=idf_weights)

    def vocabulary_size(self):
        """The vocabulary size, padding and OOV included."""
        return self._lookup_layer.vocabulary_size()

    # ------------------------------------------------------------------ call

    def _prepare(self, x):
        x = _host(x)
        if self._build_input_shape is None:
            self._build_input_shape = (None,) + tuple(x.shape[1:])
        return x

    def _int_output(self, ids_rows):
        length = self._output_sequence_length
        if length is None:
            length = max((len(r) for r in ids_rows), default=0)
        out = np.zeros((len(ids_rows), length), dtype=np.int64)
        for i, r in enumerate(ids_rows):
            r = r[:length]  # Keras keeps the first tokens and pads at the end
            out[i, :len(r)] = r
        return out

    def forward(self, x, training=False):
        lookup = self._lookup_layer
        rows = self._rows(x)
        flat = [t for r in rows for t in r]
        ids = lookup._lookup_ids(flat)
        ends = np.cumsum([len(r) for r in rows])
        ids_rows = np.split(ids, ends[:-1]) if rows else []
        if self._output_mode == "int":
            y = self._int_output(ids_rows)
        elif self._output_mode == "one_hot":
            y = lookup._encode(ids.reshape(len(rows), -1) if rows else ids.reshape(0, 1))
        else:
            lookup._require_vocabulary()
            y = encode_ids(ids_rows, lookup._depth(), self._output_mode, lookup.idf_weights)
        return get_backend().asarray(y), lambda dy: None  # strings take no gradient

    def compute_output_shape(self, input_shape):
        if self._output_mode == "int":
            return (input_shape[0], self._output_sequence_length)
        lookup = self._lookup_layer
        return (input_shape[0], lookup.max_tokens if lookup.pad_to_max_tokens else lookup.vocabulary_size())

    def get_build_config(self):
        return None

    def get_config(self):
        cfg = super().get_config()
        lookup = self._lookup_layer
        std, split = self._standardize, self._split
        cfg.update({
            "max_tokens": lookup.max_tokens, "standardize": None if callable(std) else std,
            "split": None if callable(split) else split,
            "ngrams": list(self._ngrams_arg) if isinstance(self._ngrams_arg, tuple) else self._ngrams_arg,
            "output_mode": self._output_mode, "output_sequence_length": self._output_sequence_length,
            "pad_to_max_tokens": lookup.pad_to_max_tokens, "sparse": False, "ragged": False,
            "vocabulary": self.get_vocabulary() if lookup._tokens else None,
            "idf_weights": None if lookup.idf_weights is None or not lookup._tokens else lookup.idf_weights[
                :lookup.vocabulary_size()].tolist(),
            "encoding": self._encoding, "vocabulary_size": self.vocabulary_size(), "stop_words": self._stop_words_arg,
        })
        return cfg

    @classmethod
    def from_config(cls, config_dict):
        config_dict = dict(config_dict)
        if isinstance(config_dict.get("ngrams"), list):
            config_dict["ngrams"] = tuple(config_dict["ngrams"])
        return super().from_config(config_dict)
