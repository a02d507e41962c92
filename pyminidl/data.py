"""Dataset: a small ``tf.data``-style input pipeline over NumPy arrays.

``Dataset.from_tensor_slices(x | (x, y) | (x, y, w) | dict)`` slices the first axis; ``batch``,
``shuffle``, ``map``, ``filter``, ``repeat``, ``take``, ``skip``, ``unbatch``, ``cache`` and
``prefetch`` chain as in tf.data, and iterating yields elements whose structure mirrors the input (tuples of arrays for
``(x, y)``, dicts for dicts).

Fast path: while a pipeline holds only ``shuffle`` / ``repeat`` / ``take`` / ``skip`` /
``prefetch`` on top of ``from_tensor_slices``, it runs on index arrays, and ``batch`` gathers
each batch with one slice (a view, when unshuffled) or one fancy index per array instead of
stacking elements one by one. ``map`` and ``filter`` switch to per-element Python.

``prefetch(buffer_size)`` is a pass-through that keeps the order (there is no background
thread: the training step, not input, is the bottleneck on NumPy arrays).

Example:
    >>> ds = Dataset.from_tensor_slices((x, y)).shuffle(1000, seed=0).batch(32)
    >>> for xb, yb in ds:
    ...     pass
"""

import numpy as np

from pyminidl import random as _random

INFINITE = -1
UNKNOWN = -2
AUTOTUNE = -1  # accepted wherever tf.data takes tf.data.AUTOTUNE (buffer sizes, parallel calls)

# ---------------------------------------------------------------------------- structures


def _flatten(structure):
    """Leaves of a (possibly nested) tuple / dict structure, in a fixed order."""
    if isinstance(structure, tuple):
        return [leaf for item in structure for leaf in _flatten(item)]
    if isinstance(structure, dict):
        return [leaf for key in structure for leaf in _flatten(structure[key])]
    return [structure]


def _pack(template, leaves):
    """Rebuild ``template``'s structure from ``leaves`` (an iterator)."""
    if isinstance(template, tuple):
        return tuple(_pack(item, leaves) for item in template)
    if isinstance(template, dict):
        return {key: _pack(template[key], leaves) for key in template}
    return next(leaves)


def to_host_array(value):
    """pandas DataFrames and Series (anything with ``to_numpy`` that is not an array) -> ndarray.

    Duck-typed, so pandas is never imported; other values are returned unchanged. The frame's
    index is dropped, as Keras does.
    """
    if isinstance(value, np.ndarray) or _is_device_array(value):
        return value
    to_numpy = getattr(value, "to_numpy", None)
    return to_numpy() if callable(to_numpy) else value


def _is_device_array(value):
    return hasattr(value, "__cuda_array_interface__")


def _normalize(structure):
    """Lists become arrays (as tf.data does); tuples and dicts keep their structure."""
    if isinstance(structure, tuple):
        return tuple(_normalize(item) for item in structure)
    if isinstance(structure, dict):
        return {key: _normalize(value) for key, value in structure.items()}
    if _is_device_array(structure):
        return structure  # a device array (CuPy): keep it where it is
    return np.asarray(to_host_array(structure))


def _stack(elements):
    """Stack a list of same-structure elements into one batch element."""
    template = elements[0]
    columns = zip(*[_flatten(e) for e in elements])
    return _pack(template, iter([np.stack(column) for column in columns]))


def _call(fn, element):
    """tf.data calls ``fn(*element)`` for tuple elements, ``fn(element)`` otherwise."""
    return fn(*element) if isinstance(element, tuple) else fn(element)


# ---------------------------------------------------------------------------- index chunks
# A sliceable pipeline streams "chunks" of row indices: a ``slice`` (contiguous rows) or an
# int64 array. Batching concatenates chunks and gathers every array once per batch.


def _chunk_len(chunk):
    return chunk.stop - chunk.start if isinstance(chunk, slice) else len(chunk)


def _chunk_part(chunk, begin, end):
    if isinstance(chunk, slice):
        return slice(chunk.start + begin, chunk.start + min(end, chunk.stop - chunk.start))
    return chunk[begin:end]


def _as_index(chunk):
    return np.arange(chunk.start, chunk.stop) if isinstance(chunk, slice) else chunk


def _merge(pieces):
    return pieces[0] if len(pieces) == 1 else np.concatenate([_as_index(p) for p in pieces])


def _take_chunks(chunks, count):
    left = count
    for chunk in chunks:
        if left <= 0:
            return
        n = _chunk_len(chunk)
        yield chunk if n <= left else _chunk_part(chunk, 0, left)
        left -= n


def _skip_chunks(chunks, count):
    left = count
    for chunk in chunks:
        n = _chunk_len(chunk)
        if left >= n:
            left -= n
            continue
        yield _chunk_part(chunk, left, n) if left else chunk
        left = 0


def _shard_chunks(chunks, num_shards, index):
    """The positions ``index, index + num_shards, ...`` of the concatenated chunks."""
    offset = 0
    for chunk in chunks:
        n = _chunk_len(chunk)
        first = (index - offset) % num_shards
        if first < n:
            yield _as_index(chunk)[first::num_shards]
        offset += n


def _batch_chunks(chunks, batch_size, drop_remainder):
    pieces, count = [], 0
    for chunk in chunks:
        start, n = 0, _chunk_len(chunk)
        while start < n:
            piece = _chunk_part(chunk, start, start + batch_size - count)
            pieces.append(piece)
            count += _chunk_len(piece)
            start += _chunk_len(piece)
            if count == batch_size:
                yield _merge(pieces)
                pieces, count = [], 0
    if pieces and not drop_remainder:
        yield _merge(pieces)


def _buffer_shuffle(items, buffer_size, rng):
    """tf.data's shuffle: fill a buffer, emit a random slot, refill it from upstream."""
    buffer = []
    for item in items:
        if len(buffer) < buffer_size:
            buffer.append(item)
            continue
        i = int(rng.integers(len(buffer)))
        yield buffer[i]
        buffer[i] = item
    while buffer:
        i = int(rng.integers(len(buffer)))
        buffer[i], buffer[-1] = buffer[-1], buffer[i]
        yield buffer.pop()


def _shuffle_chunks(chunks, buffer_size, rng, upstream_len):
    if 0 <= upstream_len <= buffer_size:
        # the buffer holds everything: a uniform permutation, drawn in one call
        indices = [_as_index(c) for c in chunks]
        if indices:
            yield rng.permutation(np.concatenate(indices))
        return
    flat = (int(i) for c in chunks for i in _as_index(c))
    order = list(_buffer_shuffle(flat, buffer_size, rng))
    if order:
        yield np.asarray(order, dtype=np.int64)


# ---------------------------------------------------------------------------- Dataset


class Dataset:
    """An iterable input pipeline (the tf.data.Dataset API, on NumPy arrays).

    Build one with ``Dataset.from_tensor_slices``, ``Dataset.range`` or
    ``Dataset.from_generator``; every transformation returns a new Dataset.

    Example:
        >>> ds = Dataset.from_tensor_slices({"a": np.arange(5)}).batch(2)
        >>> [b["a"].tolist() for b in ds]
        [[0, 1], [2, 3], [4]]
    """

    def __init__(self, elements, cardinality, chunks=None, source=None):
        self._elements_fn = elements  # () -> iterator of elements
        self._chunks_fn = chunks  # () -> iterator of index chunks (sliceable pipelines only)
        self._source = source  # (structure, leaves) the chunks index into
        self._cardinality = cardinality

    # ------------------------------------------------------------------ sources

    @classmethod
    def from_tensor_slices(cls, tensors):
        """Slice ``tensors`` (an array, a tuple or a dict of arrays, nested) along the first axis.

        Raises:
            ValueError: when the arrays' first dimensions differ (their lengths are listed).
        """
        structure = _normalize(tensors)
        leaves = _flatten(structure)
        if any(leaf.ndim == 0 for leaf in leaves):
            raise ValueError("from_tensor_slices needs arrays with at least one dimension to slice. "
                             f"Received shapes: {[tuple(leaf.shape) for leaf in leaves]}")
        lengths = [int(leaf.shape[0]) for leaf in leaves]
        if len(set(lengths)) > 1:
            raise ValueError(f"from_tensor_slices: all arrays must have the same first dimension. "
                             f"Received lengths: {lengths}")
        n = lengths[0] if lengths else 0
        return cls._sliceable(lambda: iter([slice(0, n)]) if n else iter(()), n, (structure, leaves))

    @classmethod
    def range(cls, *args):
        """``Dataset.range(stop)`` / ``range(start, stop[, step])``: int64 scalars."""
        return cls.from_tensor_slices(np.arange(*args, dtype=np.int64))

    @classmethod
    def from_generator(cls, generator, output_signature=None, output_types=None, output_shapes=None, args=None):
        """Elements from ``generator()`` (a callable returning an iterator); called anew on each iteration."""
        if not callable(generator):
            raise TypeError(f"`generator` must be callable. Received: {generator!r}")
        call_args = tuple(args or ())

        def elements():
            for element in generator(*call_args):
                yield _normalize(element) if isinstance(element, (tuple, dict, list)) else element

        return cls(elements, UNKNOWN)

    @classmethod
    def _sliceable(cls, chunks, cardinality, source):
        structure, leaves = source

        def elements():
            for chunk in chunks():
                for i in _as_index(chunk):
                    yield _pack(structure, iter([leaf[i] for leaf in leaves]))

        return cls(elements, cardinality, chunks=chunks, source=source)

    def _derive(self, chunk_fn, element_fn, cardinality):
        """A new dataset: on the index path when this one is sliceable, else per element."""
        if self._chunks_fn is not None and chunk_fn is not None:
            upstream = self._chunks_fn
            return Dataset._sliceable(lambda: chunk_fn(upstream()), cardinality, self._source)
        upstream = self._elements_fn
        return Dataset(lambda: element_fn(upstream()), cardinality)

    # ------------------------------------------------------------------ transformations

    def batch(self, batch_size, drop_remainder=False, num_parallel_calls=None, deterministic=None):
        """Combine consecutive elements into batches of ``batch_size`` (the last may be smaller)."""
        batch_size = int(batch_size)
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size}")
        card = self._cardinality
        if card >= 0:
            card = card // batch_size if drop_remainder else -(-card // batch_size)
        if self._chunks_fn is not None:
            upstream, (structure, leaves) = self._chunks_fn, self._source

            def batches():
                for idx in _batch_chunks(upstream(), batch_size, drop_remainder):
                    yield _pack(structure, iter([leaf[idx] for leaf in leaves]))

            return Dataset(batches, card)
        upstream = self._elements_fn

        def stacked():
            pending = []
            for element in upstream():
                pending.append(element)
                if len(pending) == batch_size:
                    yield _stack(pending)
                    pending = []
            if pending and not drop_remainder:
                yield _stack(pending)

        return Dataset(stacked, card)

    def shuffle(self, buffer_size, seed=None, reshuffle_each_iteration=True):
        """Shuffle with a buffer of ``buffer_size`` elements, like tf.data.

        A buffer at least as large as the dataset gives a uniform shuffle. With ``seed`` the
        orders are reproducible; ``reshuffle_each_iteration=False`` repeats the first order.
        Without a seed, the seed is drawn from ``pyminidl.random`` (so ``set_random_seed`` fixes it).
        """
        buffer_size = int(buffer_size)
        if buffer_size < 1 and buffer_size != -1:
            raise ValueError(f"`buffer_size` must be >= 1 (or -1 for the whole dataset). Received: {buffer_size}")
        base = int(_random.make_rng(seed).integers(0, 2**63 - 1))
        state = {"epoch": 0}
        upstream_len = self._cardinality
        size = buffer_size if buffer_size > 0 else (upstream_len if upstream_len >= 0 else 2**62)

        def next_rng():
            epoch = state["epoch"] if reshuffle_each_iteration else 0
            state["epoch"] += 1
            return np.random.default_rng([base, epoch])

        return self._derive(
            lambda chunks: _shuffle_chunks(chunks, size, next_rng(), upstream_len),
            lambda elements: _buffer_shuffle(elements, size, next_rng()),
            self._cardinality,
        )

    def map(self, map_func, num_parallel_calls=None, deterministic=None):
        """Apply ``map_func`` to each element (``map_func(*element)`` for tuples)."""
        upstream = self._elements_fn
        return Dataset(lambda: (_call(map_func, e) for e in upstream()), self._cardinality)

    def filter(self, predicate):
        """Keep the elements for which ``predicate`` is true."""
        upstream = self._elements_fn
        return Dataset(lambda: (e for e in upstream() if bool(_call(predicate, e))), UNKNOWN)

    def repeat(self, count=None):
        """Repeat the dataset ``count`` times (forever when None or -1); shuffles reshuffle each pass."""
        count = -1 if count is None else int(count)
        card = self._cardinality
        if card == 0 or count == 0:
            card = 0
        elif count < 0:
            card = INFINITE
        elif card >= 0:
            card = card * count

        def repeated(make):
            def run(_upstream_unused=None):
                done = 0
                while count < 0 or done < count:
                    done += 1
                    empty = True
                    for item in make():
                        empty = False
                        yield item
                    if empty:
                        return

            return run

        if self._chunks_fn is not None:
            chunks = repeated(self._chunks_fn)
            return Dataset._sliceable(chunks, card, self._source)
        return Dataset(repeated(self._elements_fn), card)

    def take(self, count):
        """The first ``count`` elements (all when -1)."""
        count = int(count)
        if count < 0:
            return self
        card = self._cardinality
        card = count if card == INFINITE else (min(card, count) if card >= 0 else UNKNOWN)
        return self._derive(lambda chunks: _take_chunks(chunks, count),
                            lambda elements: (e for _, e in zip(range(count), elements)), card)

    def skip(self, count):
        """All but the first ``count`` elements (skips everything when -1)."""
        count = int(count)
        card = self._cardinality
        if count < 0:
            return self.take(0)
        if card >= 0:
            card = max(card - count, 0)

        def skip_elements(elements):
            for i, e in enumerate(elements):
                if i >= count:
                    yield e

        return self._derive(lambda chunks: _skip_chunks(chunks, count), skip_elements, card)

    def shard(self, num_shards, index):
        """Every ``num_shards``-th element starting at ``index`` (tf.data's ``shard``).

        One rank's part of a pipeline under a distribution:
        ``ds.shard(distribution.size(), distribution.rank()).batch(per_rank_batch)``.

        Raises:
            ValueError: ``num_shards`` < 1 or ``index`` outside ``[0, num_shards)``.
        """
        num_shards, index = int(num_shards), int(index)
        if num_shards < 1 or not 0 <= index < num_shards:
            raise ValueError("`shard` needs num_shards >= 1 and 0 <= index < num_shards. "
                             f"Received: num_shards={num_shards}, index={index}")
        card = self._cardinality
        if card >= 0:
            card = max(0, (card - index + num_shards - 1) // num_shards)
        return self._derive(lambda chunks: _shard_chunks(chunks, num_shards, index),
                            lambda elements: (e for i, e in enumerate(elements) if i % num_shards == index), card)

    def unbatch(self):
        """Split each batch element back into its rows."""
        upstream = self._elements_fn
        card = UNKNOWN if self._cardinality != INFINITE else INFINITE

        def rows():
            for batch in upstream():
                leaves = _flatten(batch)
                for i in range(len(leaves[0]) if leaves else 0):
                    yield _pack(batch, iter([leaf[i] for leaf in leaves]))

        return Dataset(rows, card)

    def cache(self, filename=""):
        """Keep the elements of the first complete pass in memory and replay them afterwards."""
        if filename:
            raise NotImplementedError("cache(filename=...) is not supported; pyminidl caches in memory only.")
        upstream, store = self._elements_fn, {}

        def elements():
            if "items" in store:
                yield from store["items"]
                return
            items = []
            for element in upstream():
                items.append(element)
                yield element
            store["items"] = items

        return Dataset(elements, self._cardinality)

    def prefetch(self, buffer_size=None):
        """A pass-through (same elements, same order): pyminidl prefetches nothing in the background."""
        return self

    # ------------------------------------------------------------------ inspection

    def cardinality(self):
        """The number of elements, or ``INFINITE`` (-1) / ``UNKNOWN`` (-2), as tf.data."""
        return self._cardinality

    def __len__(self):
        if self._cardinality == INFINITE:
            raise TypeError("The dataset is infinite.")
        if self._cardinality == UNKNOWN:
            raise TypeError("The dataset length is unknown.")
        return self._cardinality

    def __iter__(self):
        return iter(self._elements_fn())

    def as_numpy_iterator(self):
        """An iterator over the elements (they are NumPy arrays already)."""
        return iter(self)

    def __repr__(self):
        card = {INFINITE: "infinite", UNKNOWN: "unknown"}.get(self._cardinality, self._cardinality)
        return f"<Dataset cardinality={card}>"


__all__ = ["Dataset", "INFINITE", "UNKNOWN", "AUTOTUNE"]
