"""Each rank's disjoint, deterministic shard of every global batch.

A global batch of ``b`` samples is split into ``size`` contiguous parts whose bounds are
``b * r // size`` (sizes differ by at most one): rank ``r`` trains on part ``r``. Array data draws
the epoch's permutation on rank 0 (from its global generator, so a seeded run shuffles as one
process would) and broadcasts it. A Dataset or generator yields global batches that every rank
reads alike and slices (``auto_shard_dataset=True``), or, with ``auto_shard_dataset=False``,
batches that are already this rank's (``Dataset.shard(size(), rank())``). A rank whose part of a
short last batch is empty trains on one sample of it with weight zero (a padding step), so every
rank takes part in every collective.
"""

import numpy as np

from pyminidl import random as pmd_random
from pyminidl.training import data_adapter as da


def shard_bounds(batch_len, size, rank):
    """``(start, stop)`` of ``rank``'s part of a global batch of ``batch_len`` samples."""
    return batch_len * rank // size, batch_len * (rank + 1) // size


def num_samples(x):
    """Samples in a batch ``x`` (an array, or a list/tuple/dict of arrays)."""
    if isinstance(x, dict):
        x = next(iter(x.values()))
    if isinstance(x, (list, tuple)):
        x = x[0]
    return len(x)


def slice_batch(value, start, stop):
    """Rows ``start:stop`` of an array or of every array of a list/tuple/dict (None stays None)."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: slice_batch(v, start, stop) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(slice_batch(v, start, stop) for v in value)
    return value[start:stop]


class ShardedAdapter(da.DataAdapter):
    """The local shards of ``inner``'s global batches (``inner``: an ArrayAdapter or IterableAdapter).

    ``padding`` is True while the batch last yielded is a padding batch (see the module doc);
    ``notify(padding, local_count)``, when given, is called before each batch is yielded.
    """

    def __init__(self, inner, world, auto_shard=True, notify=None):
        super().__init__(inner.steps)
        self.inner, self.world, self.auto_shard = inner, world, auto_shard
        self.one_shot = inner.one_shot
        self.num_batches = inner.num_batches
        self.padding = False
        self.local_count = 0
        self._notify = notify

    def _global_batches(self):
        inner = self.inner
        if not isinstance(inner, da.ArrayAdapter):
            yield from inner._one_pass()
            return
        n, bs = inner.num_samples, inner.batch_size
        perm = None
        if inner.shuffle and n >= 2:
            perm = pmd_random.global_rng().permutation(n) if self.world.rank == 0 else np.empty(n, np.int64)
            perm = self.world.bcast(np.ascontiguousarray(perm, dtype=np.int64))
            perm = inner._be.asarray(perm)
        for start in range(0, n, bs):
            yield _ArrayBatch(inner, perm, start, min(start + bs, n))

    def _one_pass(self):
        size, rank = self.world.size, self.world.rank
        for batch in self._global_batches():
            if isinstance(batch, _ArrayBatch):
                yield self._local(batch.length, batch.rows, size, rank)
            elif self.auto_shard:
                x, y, w = batch
                yield self._local(num_samples(x), lambda a, b, xyw=batch: tuple(slice_batch(v, a, b) for v in xyw),
                                  size, rank)
            else:
                self._set(False, num_samples(batch[0]))
                yield batch

    def _local(self, length, rows, size, rank):
        start, stop = shard_bounds(length, size, rank)
        self._set(stop == start, stop - start)
        if self.padding:
            return rows(0, 1)
        return rows(start, stop)


    def _set(self, padding, count):
        self.padding, self.local_count = padding, count
        if self._notify is not None:
            self._notify(padding, count)


class _ArrayBatch:
    """Rows ``start:stop`` of an epoch (through the permutation when shuffling), sliced lazily."""

    __slots__ = ("inner", "perm", "start", "length")

    def __init__(self, inner, perm, start, stop):
        self.inner, self.perm, self.start, self.length = inner, perm, start, stop - start

    def rows(self, a, b):
        inner, lo, hi = self.inner, self.start + a, self.start + b
        x, y, w = inner.x, inner.y, inner.sample_weight
        if self.perm is None:
            return x[lo:hi], (None if y is None else y[lo:hi]), (None if w is None else w[lo:hi])
        idx = self.perm[lo:hi]
        return (x.take(idx, axis=0), None if y is None else y.take(idx, axis=0),
                None if w is None else w.take(idx, axis=0))
