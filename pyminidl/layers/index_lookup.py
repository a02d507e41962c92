"""StringLookup and IntegerLookup: tokens <-> vocabulary indices (Keras 3 ``IndexLookup`` semantics).

Index layout (``output_mode="int"``): the mask token (if set) is 0, then ``num_oov_indices`` OOV
slots, then the vocabulary. In the other modes the mask is dropped and the OOV slots start at 0.
``adapt`` orders the vocabulary by descending count, ties by descending token (Keras's
``np.lexsort((tokens, counts))[::-1]``). With ``num_oov_indices > 1`` integers go to bucket
``value % num_oov_indices`` as in Keras; strings go to a stable BLAKE2b bucket (Keras uses
TensorFlow's FarmHash, which NumPy lacks, so the bucket of a given string differs from Keras's).

These layers hold no weights and pass no gradient back (their inputs are ids or strings).

Example:
    >>> layer = StringLookup(vocabulary=["a", "b", "c"])
    >>> layer(np.array([["a", "c"], ["z", "b"]])).tolist()
    [[1, 3], [0, 2]]
"""

import collections
import hashlib

import numpy as np

from pyminidl import config
from pyminidl.backend import get_backend
from pyminidl.data import Dataset
from pyminidl.layers.base import Layer

_OUTPUT_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")


def _host(x):
    """Any input -> a host NumPy array (strings never go to a device)."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "get") and hasattr(x, "__array__"):  # a CuPy array of ids
        return x.get()
    return np.asarray(x)


def _string_bucket(token, buckets):
    return int.from_bytes(hashlib.blake2b(str(token).encode("utf-8"), digest_size=8).digest(), "little") % buckets


def _batches(data, steps, where):
    """adapt's input as an iterator of batches: arrays and lists are one batch of rows."""
    if isinstance(data, Dataset):
        return iter(data.take(steps) if steps is not None else data)
    if isinstance(data, (list, tuple, np.ndarray, str, bytes)):
        return iter([data])
    if hasattr(data, "__iter__"):
        return iter(data)
    raise TypeError(f"{where}.adapt: `data` must be an array, a list, a pyminidl Dataset or an iterable of "
                    f"batches. Received: data of type {type(data).__name__}")


def encode_ids(rows, depth, output_mode, idf=None):
    """Rows of ids -> (len(rows), depth) multi_hot / count / tf_idf; ids >= depth or < 0 are dropped."""
    n = len(rows)
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=n)
    ids = np.concatenate([np.asarray(r, dtype=np.int64) for r in rows]) if n else np.zeros(0, np.int64)
    row = np.repeat(np.arange(n, dtype=np.int64), lengths)
    keep = (ids >= 0) & (ids < depth)
    out = np.zeros((n, depth), dtype=config.floatx())
    if output_mode == "multi_hot":
        out[row[keep], ids[keep]] = 1
    else:
        np.add.at(out, (row[keep], ids[keep]), 1)
    if output_mode == "tf_idf":
        out = out * idf.astype(config.floatx())
    return out


class IndexLookup(Layer):
    """Shared base of StringLookup and IntegerLookup (not public in Keras either)."""

    _cast_inputs = False  # the trainer hands ids and strings through unchanged

    def __init__(self, max_tokens, num_oov_indices, mask_token, oov_token, vocabulary_dtype, vocabulary=None,
                 idf_weights=None, invert=False, output_mode="int", sparse=False, pad_to_max_tokens=False,
                 name=None, **kwargs):
        kwargs.pop("vocabulary_size", None)
        kwargs.pop("has_input_vocabulary", None)
        kwargs.pop("oov_method", None)
        super().__init__(name=name, **kwargs)
        self._check_args(max_tokens, num_oov_indices, invert, output_mode, sparse, pad_to_max_tokens, idf_weights)
        if output_mode == "binary":
            output_mode = "multi_hot"
        self.max_tokens, self.num_oov_indices = max_tokens, int(num_oov_indices)
        self.mask_token, self.oov_token = mask_token, oov_token
        self.vocabulary_dtype, self.invert = vocabulary_dtype, bool(invert)
        self.output_mode = "tf_idf" if output_mode == "tf-idf" else output_mode
        self.sparse, self.pad_to_max_tokens = False, bool(pad_to_max_tokens)
        self.input_vocabulary = None if vocabulary is None else self._listify(vocabulary)
        self.input_idf_weights = None if idf_weights is None else self._listify(idf_weights)
        self._tokens, self._index, self.idf_weights = [], {}, None
        self._has_input_vocabulary = vocabulary is not None
        if self.output_mode == "tf_idf" and vocabulary is not None and idf_weights is None:
            raise ValueError("When specifying the `vocabulary` argument, in TF-IDF output mode, the `idf_weights` "
                             "argument must also be provided.")
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)
        self.built = True

    def _check_args(self, max_tokens, num_oov_indices, invert, output_mode, sparse, pad_to_max_tokens, idf_weights):
        cls = type(self).__name__
        if max_tokens is not None and max_tokens <= 1:
            raise ValueError(f"If set, `max_tokens` must be greater than 1. Received: max_tokens={max_tokens}")
        if pad_to_max_tokens and max_tokens is None:
            raise ValueError(f"If pad_to_max_tokens is True, must set `max_tokens`. Received: max_tokens={max_tokens}")
        if isinstance(num_oov_indices, bool) or not isinstance(num_oov_indices, (int, np.integer)) or num_oov_indices < 0:
            raise ValueError("`num_oov_indices` must be greater than or equal to 0. "
                             f"Received: num_oov_indices={num_oov_indices}")
        mode = {"binary": "multi_hot", "tf-idf": "tf_idf"}.get(output_mode, output_mode)
        if mode not in _OUTPUT_MODES:
            raise ValueError(f"Unknown value for `output_mode` in {cls}: {output_mode!r}. "
                             f"Expected one of {list(_OUTPUT_MODES)}.")
        if invert and mode != "int":
            raise ValueError(f"`output_mode` must be `'int'` when `invert` is true. Received: output_mode={output_mode}")
        if sparse:
            raise ValueError(f"{cls}: `sparse=True` needs TensorFlow's SparseTensor; pyminidl returns dense arrays. "
                             f"Received: sparse={sparse}")
        if idf_weights is not None and mode != "tf_idf":
            raise ValueError("`idf_weights` should only be set if `output_mode` is `'tf_idf'`. "
                             f"Received: idf_weights={idf_weights} and output_mode={output_mode}")

    def _listify(self, values):
        return values.tolist() if isinstance(values, np.ndarray) else list(values)

    # ------------------------------------------------------------------ vocabulary

    def _oov_start_index(self):
        return 1 if self.mask_token is not None and self.output_mode == "int" else 0

    def _token_start_index(self):
        return self._oov_start_index() + self.num_oov_indices

    def vocabulary_size(self):
        """The vocabulary size including the mask and OOV indices."""
        return self._token_start_index() + len(self._tokens)

    def _depth(self):
        return self.max_tokens if self.pad_to_max_tokens else self.vocabulary_size()

    def get_vocabulary(self, include_special_tokens=True):
        """The vocabulary, index i holding the token of index i (mask and OOV first unless excluded)."""
        specials = [self.mask_token] * self._oov_start_index() + [self.oov_token] * self.num_oov_indices
        return (specials if include_special_tokens else []) + list(self._tokens)

    def _convert_tokens(self, values):
        return [self._as_token(v) for v in values]

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Replace the vocabulary (and, for tf_idf, the IDF weights), as Keras.

        Raises:
            ValueError: empty, repeated tokens, a misplaced mask/OOV token, longer than ``max_tokens``,
                or idf_weights missing / of the wrong length.
        """
        if self.output_mode == "tf_idf" and idf_weights is None:
            raise ValueError("`idf_weights` must be set if output_mode is 'tf_idf'.")
        if self.output_mode != "tf_idf" and idf_weights is not None:
            raise ValueError("`idf_weights` should only be set if output_mode is `'tf_idf'`. "
                             f"Received: output_mode={self.output_mode} and idf_weights={idf_weights}")
        if isinstance(vocabulary, str):
            vocabulary = self._read_vocabulary_file(vocabulary)
        vocabulary = self._convert_tokens(self._listify(vocabulary))
        if not vocabulary:
            raise ValueError(f"Cannot set an empty vocabulary. Received: vocabulary={vocabulary}")
        specials = [self.mask_token] * self._oov_start_index() + [self.oov_token] * self.num_oov_indices
        found_specials = vocabulary[:len(specials)] == specials
        tokens = vocabulary[len(specials):] if found_specials else vocabulary
        self._check_tokens(tokens, specials)
        self._set_tokens(tokens)
        self._has_input_vocabulary = True
        if idf_weights is not None:
            self._set_idf(np.asarray(idf_weights, dtype=np.float64), len(vocabulary), found_specials)

    def _read_vocabulary_file(self, path):
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError as e:
            raise ValueError(f"Vocabulary file {path} does not exist or cannot be read ({e}).") from None
        while lines and lines[-1] == "":
            lines.pop()
        return lines

    def _check_tokens(self, tokens, specials):
        repeated = [t for t, c in collections.Counter(tokens).items() if c > 1]
        if repeated:
            raise ValueError("The passed vocabulary has at least one repeated term. Please uniquify your dataset. "
                             f"The repeated terms are: {repeated}")
        for what, token, check in (("mask_token", self.mask_token, True), ("oov_token", self.oov_token, self.invert)):
            if check and token is not None and token in tokens:
                raise ValueError(f"Found reserved {what.split('_')[0]} token at unexpected location in `vocabulary`. "
                                 "Either remove all mask and OOV tokens, or include them only at the start of the "
                                 f"vocabulary in precisely this order: {specials}. Received: {what}={token}")
        size = self._token_start_index() + len(tokens)
        if self.max_tokens is not None and size > self.max_tokens:
            raise ValueError("Attempted to set a vocabulary larger than the maximum vocab size. Received vocabulary "
                             f"size is {size}; `max_tokens` is {self.max_tokens}.")

    def _set_tokens(self, tokens):
        start = self._token_start_index()
        self._tokens = list(tokens)
        self._index = {t: i + start for i, t in enumerate(self._tokens)}

    def _set_idf(self, idf, vocab_len, found_specials):
        """Pad IDF weights as Keras: specials get the mean weight, the tail up to max_tokens zeros."""
        if idf.ndim != 1 or len(idf) != vocab_len:
            raise ValueError(f"`idf_weights` must be the same length as vocabulary. len(idf_weights) is "
                             f"{idf.size}; len(vocabulary) is {vocab_len}")
        front = 0 if found_specials else self._token_start_index()
        back = self.max_tokens - front - len(idf) if self.pad_to_max_tokens else 0
        self.idf_weights = np.pad(idf, (front, back), constant_values=(np.mean(idf) if front else 0.0, 0.0))

    # ------------------------------------------------------------------ adapt

    def adapt(self, data, batch_size=None, steps=None):
        """Learn the vocabulary (and document frequencies for tf_idf) from ``data``.

        Args:
            data: an array or list (rows are documents; a 1-D one is one token per document),
                a pyminidl ``Dataset`` of batches, or any iterable of batches.
            batch_size: unused (accepted for Keras's signature).
            steps: batches to take from a Dataset (None: all).

        Raises:
            ValueError: a fixed vocabulary was set, or ``data`` held no tokens.
        """
        if self._has_input_vocabulary:
            raise ValueError(f"Cannot adapt layer '{self.name}' after setting a static vocabulary via `vocabulary` "
                             "argument or `set_vocabulary()` method.")
        counts, docs, n_docs = collections.Counter(), collections.Counter(), 0
        for batch in _batches(data, steps, type(self).__name__):
            for row in self._adapt_rows(batch):
                counts.update(row)
                if self.output_mode == "tf_idf":
                    docs.update(set(row))
                n_docs += 1
        self._finalize(counts, docs, n_docs)

    def _adapt_rows(self, batch):
        batch = _host(batch)
        if batch.ndim == 0:
            return [[self._as_token(batch.item())]]
        if batch.ndim == 1:
            return [[self._as_token(v)] for v in batch.tolist()]
        return [self._convert_tokens(r) for r in batch.reshape(batch.shape[0], -1).tolist()]

    def _finalize(self, counts, docs, n_docs):
        for special in (self.mask_token, self.oov_token):
            counts.pop(special, None)
        if not counts:
            raise ValueError(f"{type(self).__name__}.adapt: `data` held no tokens, so the vocabulary would be empty "
                             f"(layer {self.name!r}). Received {n_docs} documents.")
        items = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)  # count desc, token desc
        if self.max_tokens:
            items = items[:self.max_tokens - self._token_start_index()]
        self._set_tokens([t for t, _ in items])
        if self.output_mode == "tf_idf":
            df = np.array([docs[t] for t, _ in items], dtype=np.float64)
            idf = np.log(1.0 + n_docs / (1.0 + df))  # Keras's inverse document frequency
            self._set_idf(idf, len(idf), False)

    # ------------------------------------------------------------------ call

    def _lookup_ids(self, tokens):
        """A flat list of tokens -> int64 ids (mask 0 in int mode, -1 dropped in the others; OOV slots)."""
        get, start, n_oov = self._index.get, self._oov_start_index(), self.num_oov_indices
        mask = self.mask_token
        mask_id = 0 if self.output_mode == "int" else -1
        if n_oov == 1:  # the common case in one C-level pass over a dict
            table = self._index if mask is None or mask in self._index else {**self._index, mask: mask_id}
            return np.fromiter(map(table.get, tokens, [start] * len(tokens)), dtype=np.int64, count=len(tokens))
        out = np.empty(len(tokens), dtype=np.int64)
        missing = []
        for i, t in enumerate(tokens):
            idx = get(t)
            if idx is None:
                if mask is not None and t == mask:
                    idx = mask_id
                elif n_oov == 1:
                    idx = start
                elif n_oov == 0:
                    missing.append(t)
                    idx = -1
                else:
                    idx = start + self._oov_bucket(t, n_oov)
            out[i] = idx
        if missing:
            raise ValueError(f"When `num_oov_indices=0` all inputs should be in vocabulary, found OOV values "
                             f"{missing[:10]}, consider setting `num_oov_indices=1`.")
        return out

    def _invert(self, ids):
        vocab = self.get_vocabulary()
        flat = [vocab[i] if 0 <= i < len(vocab) else self.oov_token for i in ids.reshape(-1).tolist()]
        if self.mask_token is not None:
            flat = [self.mask_token if i == 0 else t for i, t in zip(ids.reshape(-1).tolist(), flat)]
        return np.array(flat, dtype=self._output_token_dtype()).reshape(ids.shape)

    def _encode(self, ids):
        """int64 ids (any shape) -> the output mode's array."""
        if self.output_mode == "int":
            return ids
        self._require_vocabulary()
        depth = self._depth()
        if self.output_mode == "one_hot":
            shape = ids.shape[:-1] if ids.ndim > 1 and ids.shape[-1] == 1 else ids.shape
            flat = ids.reshape(-1)
            out = np.zeros((flat.size, depth), dtype=config.floatx())
            ok = (flat >= 0) & (flat < depth)
            out[np.nonzero(ok)[0], flat[ok]] = 1
            return out.reshape(tuple(shape) + (depth,))
        lead = ids.shape[:-1]
        rows = list(ids.reshape(-1, ids.shape[-1] if ids.ndim else 1))
        out = encode_ids(rows, depth, self.output_mode, self.idf_weights)
        return out.reshape(tuple(lead) + (depth,))

    def _require_vocabulary(self):
        if not self._tokens and not self.pad_to_max_tokens:
            raise RuntimeError(f"When using `output_mode={self.output_mode}` and `pad_to_max_tokens=False`, you must "
                               "set the layer's vocabulary before calling it. Either pass a `vocabulary` argument to "
                               "the layer, or call `adapt` with some sample data.")

    def _prepare(self, x):
        x = _host(x)
        if self._build_input_shape is None:
            self._build_input_shape = (None,) + tuple(x.shape[1:])
        return x

    def forward(self, x, training=False):
        if self.invert:
            y = self._invert(np.asarray(x, dtype=np.int64))
            return y, lambda dy: None
        ids = self._lookup_ids(self._convert_tokens(x.reshape(-1).tolist())).reshape(x.shape)
        y = self._encode(ids)
        return get_backend().asarray(y), lambda dy: None  # ids and strings take no gradient

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return tuple(input_shape)
        depth = self.max_tokens if self.pad_to_max_tokens else self.vocabulary_size()
        shape = tuple(input_shape)
        if self.output_mode == "one_hot":
            return (shape[:-1] if len(shape) > 1 and shape[-1] == 1 else shape) + (depth,)
        return shape[:-1] + (depth,)

    def get_build_config(self):
        return None

    def get_config(self):
        cfg = super().get_config()
        cfg.update({
            "invert": self.invert, "max_tokens": self.max_tokens, "num_oov_indices": self.num_oov_indices,
            "oov_token": self.oov_token, "mask_token": self.mask_token, "output_mode": self.output_mode,
            "sparse": self.sparse, "pad_to_max_tokens": self.pad_to_max_tokens,
            "vocabulary_dtype": self.vocabulary_dtype, "idf_weights": self.input_idf_weights,
            "vocabulary": self.input_vocabulary if self.input_vocabulary is not None else (
                self.get_vocabulary() if self._tokens else None),
            "vocabulary_size": self.vocabulary_size(),
        })
        if cfg["vocabulary"] is not None and self.output_mode == "tf_idf" and cfg["idf_weights"] is None:
            cfg["idf_weights"] = self.idf_weights.tolist()
        return cfg


class StringLookup(IndexLookup):
    """Maps strings to vocabulary indices (or back, with ``invert``), as ``keras.layers.StringLookup``.

    Args:
        max_tokens: the largest vocabulary size, mask and OOV indices included (None: no cap).
        num_oov_indices: OOV slots (0: unknown strings raise).
        mask_token: a token mapped to 0 in "int" mode and dropped in the others (None: no mask).
        oov_token: the token ``invert`` returns for OOV indices.
        vocabulary: a list / array of strings or a text file (one per line).
        idf_weights: with ``output_mode="tf_idf"`` and a ``vocabulary``.
        invert: map indices to strings.
        output_mode: "int", "one_hot", "multi_hot", "count" or "tf_idf".
        pad_to_max_tokens: the encoded axis has ``max_tokens`` entries.

    Example:
        >>> layer = StringLookup(vocabulary=["좋아", "별로"])
        >>> layer(np.array(["별로", "최고"])).tolist()
        [2, 0]
    """

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token="[UNK]", vocabulary=None,
                 idf_weights=None, invert=False, output_mode="int", pad_to_max_tokens=False, sparse=False,
                 encoding="utf-8", name=None, **kwargs):
        kwargs.pop("vocabulary_dtype", None)
        self.encoding = encoding
        super().__init__(max_tokens, num_oov_indices, mask_token, oov_token, "string", vocabulary, idf_weights,
                         invert, output_mode, sparse, pad_to_max_tokens, name, **kwargs)

    def _as_token(self, value):
        if isinstance(value, bytes):
            return value.decode(self.encoding)
        if not isinstance(value, str):
            raise TypeError(f"StringLookup (layer {self.name!r}) expects strings. Received a "
                            f"{type(value).__name__}: {value!r}")
        return value

    def _oov_bucket(self, token, buckets):
        return _string_bucket(token, buckets)

    def _output_token_dtype(self):
        return object

    def get_config(self):
        cfg = super().get_config()
        cfg["encoding"] = self.encoding
        del cfg["vocabulary_dtype"]
        return cfg


class IntegerLookup(IndexLookup):
    """Maps integers to vocabulary indices (or back, with ``invert``), as ``keras.layers.IntegerLookup``.

    Arguments as ``StringLookup``, with integer tokens: ``mask_token`` (e.g. 0) and ``oov_token``
    (default -1) are integers, and OOV values go to bucket ``value % num_oov_indices``.

    Example:
        >>> layer = IntegerLookup(vocabulary=[12, 36, 1138])
        >>> layer(np.array([12, 1138, 42])).tolist()
        [1, 3, 0]
    """

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=-1, vocabulary=None,
                 vocabulary_dtype="int64", idf_weights=None, invert=False, output_mode="int", sparse=False,
                 pad_to_max_tokens=False, name=None, **kwargs):
        if vocabulary_dtype not in ("int64", "int32"):
            raise ValueError(f"IntegerLookup: `vocabulary_dtype` must be 'int64' or 'int32'. "
                             f"Received: vocabulary_dtype={vocabulary_dtype!r}")
        super().__init__(max_tokens, num_oov_indices, mask_token, oov_token, vocabulary_dtype, vocabulary,
                         idf_weights, invert, output_mode, sparse, pad_to_max_tokens, name, **kwargs)

    def _as_token(self, value):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            if isinstance(value, (float, np.floating)) and float(value).is_integer():
                return int(value)
            raise TypeError(f"IntegerLookup (layer {self.name!r}) expects integers. Received a "
                            f"{type(value).__name__}: {value!r}")
        return int(value)

    def _oov_bucket(self, token, buckets):
        return token % buckets  # Keras's floormod (Python's % is a floor modulo too)

    def _output_token_dtype(self):
        return np.int64
