"""Gradient averaging on flat, bucketed buffers, started while backward is still running.

The trainable weights are laid out, in reverse model order (the order backward produces their
gradients), in buckets of about ``bucket_bytes``; each bucket is one contiguous float buffer plus
one trailing element holding the rank's sample count. Each layer's gradient dictionary is
replaced by a ``_WatchedGrads`` that reports every write: when the last weight of a bucket has a
gradient, the bucket is packed (each gradient times the local sample count) and its non-blocking
Allreduce starts, so communication overlaps the rest of backward. ``finish`` waits, divides by
the global sample count and returns the averaged gradients in ``slots`` order:

    g = sum_r n_r * g_r / sum_r n_r

which is the gradient one process computes on the whole global batch (the losses are means over
the batch), also when shards differ in size. A gradient written again after its bucket started
(a layer shared by two branches of a graph) marks the bucket stale: it is reduced again, blocking,
in ``finish``.
"""

import numpy as np

from pyminidl.backend import get_backend


class _WatchedGrads(dict):
    """A layer's ``grads`` dict that tells the reducer when a gradient is written."""

    __slots__ = ("_on_write", "_owner")

    def __init__(self, items, owner, on_write):
        super().__init__(items)
        self._owner = owner
        self._on_write = on_write

    def __setitem__(self, name, value):
        super().__setitem__(name, value)
        self._on_write(self._owner, name)

    def __reduce__(self):
        # Copies and pickles of a layer get a plain dict, not a tie to this run's reducer and world.
        return (dict, (dict(self),))


class _Bucket:
    __slots__ = ("slots", "offsets", "buffer", "request", "pending", "stale")

    def __init__(self, slots, sizes, dtype):
        self.slots = slots  # indices into the reducer's slot list
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.buffer = np.zeros(int(self.offsets[-1]) + 1, dtype=dtype)  # + the sample count
        self.request = None
        self.pending = set(slots)
        self.stale = False


class GradientReducer:
    """Averages the gradients of ``slots`` ([(owner layer, Variable)]) over ``world``.

    Args:
        world: ``LocalWorld`` or ``MpiWorld``.
        slots: The trainer's trainable slots, in ``trainable_weights`` order.
        bucket_bytes: Target size of one Allreduce buffer.
        overlap: Start each bucket as soon as it is full (False: all after backward).
    """

    def __init__(self, world, slots, bucket_bytes, overlap=True):
        self.world = world
        self.slots = list(slots)
        self.overlap = overlap
        self._index = {(id(owner), w.name): i for i, (owner, w) in enumerate(self.slots)}
        self.buckets, self._bucket_of = self._layout(bucket_bytes)
        self._count = 0.0
        self._active = False
        self._wait_s = 0.0

    def _layout(self, bucket_bytes):
        buckets, bucket_of, current, sizes, nbytes = [], {}, [], [], 0
        dtypes = {np.dtype(w.value.dtype) for _, w in self.slots}
        dtype = np.result_type(*dtypes) if dtypes else np.float32
        for i in reversed(range(len(self.slots))):
            size = int(self.slots[i][1].value.size)
            current.append(i)
            sizes.append(size)
            nbytes += size * dtype.itemsize
            if nbytes >= bucket_bytes:
                buckets.append(_Bucket(current, sizes, dtype))
                current, sizes, nbytes = [], [], 0
        if current:
            buckets.append(_Bucket(current, sizes, dtype))
        for b, bucket in enumerate(buckets):
            for i in bucket.slots:
                bucket_of[i] = b
        return buckets, bucket_of

    @property
    def num_params(self):
        return sum(int(w.value.size) for _, w in self.slots)

    def watch(self, layers):
        """Replace each layer's ``grads`` dict with one that reports writes (kept across steps)."""
        for layer in layers:
            if not isinstance(layer.grads, _WatchedGrads):
                layer.grads = _WatchedGrads(layer.grads, layer, self._on_write)

    def begin(self, local_count):
        """Start a step whose local shard holds ``local_count`` samples (0 for a padding step)."""
        self._count = float(local_count)
        self._active = True
        for bucket in self.buckets:
            bucket.pending = set(bucket.slots)
            bucket.request = None
            bucket.stale = False

    def _on_write(self, owner, name):
        if not self._active:
            return
        i = self._index.get((id(owner), name))
        if i is None:
            return
        bucket = self.buckets[self._bucket_of[i]]
        if bucket.request is not None:
            bucket.stale = True
            return
        bucket.pending.discard(i)
        if not bucket.pending and self.overlap:
            self._start(bucket)

    def _pack(self, bucket):
        be = get_backend()
        buf, count = bucket.buffer, self._count
        for k, i in enumerate(bucket.slots):
            owner, w = self.slots[i]
            g = owner.grads.get(w.name)
            part = buf[bucket.offsets[k]:bucket.offsets[k + 1]]
            if g is None or count == 0.0:
                part[...] = 0.0
            else:
                np.multiply(np.asarray(be.to_numpy(g)).reshape(-1), count, out=part)
        buf[-1] = count

    def _start(self, bucket):
        self._pack(bucket)
        # MPI libraries without a progress thread advance a non-blocking collective only inside MPI
        # calls: testing the buckets already in flight moves them on while backward continues.
        for other in self.buckets:
            if other.request is not None:
                other.request.Test()
        bucket.request = self.world.iallreduce(bucket.buffer)

    def finish(self):
        """Wait for every bucket; the averaged gradients, aligned with ``slots`` (backend arrays)."""
        import time

        be = get_backend()
        t0 = time.perf_counter()
        for bucket in self.buckets:
            if bucket.request is None:
                self._start(bucket)
        out = [None] * len(self.slots)
        for bucket in self.buckets:
            bucket.request.wait()
            if bucket.stale:
                self._pack(bucket)
                bucket.buffer[...] = self.world.allreduce(bucket.buffer)
            total = bucket.buffer[-1]
            if total <= 0:
                raise ValueError("No rank had a sample in this global batch.")
            for k, i in enumerate(bucket.slots):
                w = self.slots[i][1]
                flat = bucket.buffer[bucket.offsets[k]:bucket.offsets[k + 1]] / total
                out[i] = be.asarray(flat.reshape(w.value.shape).astype(w.value.dtype, copy=False))
        self._active = False
        self._wait_s += time.perf_counter() - t0
        return out

    def take_wait_seconds(self):
        """Seconds spent in ``finish`` (waiting on the reductions) since the last call."""
        value, self._wait_s = self._wait_s, 0.0
        return value
