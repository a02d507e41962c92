"""What ``fit`` / ``evaluate`` / ``predict`` do differently under a distribution.

The trainer calls these hooks (``Trainer._distributed()`` returns this module's ``FitSync`` for
the model when a distribution is set, else None):

    shard(adapter)            the rank's shards of every global batch (``_data.ShardedAdapter``)
    callbacks(cbs)            file-writing callbacks run on rank 0 only
    before_step(model, x)     first step: check the model matches on every rank, broadcast
                              weights and optimizer state from rank 0; then start watching
                              gradients so buckets are reduced during backward
    gradients(model)          the averaged gradients (waits for the reductions)
    after_step(model)         non-trainable weights (BatchNorm statistics) averaged; a padding
                              step's metric updates undone
    logs(model)               the logs of the metrics' states summed over the ranks
    agree(flag)               True on every rank when it is True on any (stop_training)
    gather(outputs, adapter)  predict's full result, in order, on every rank
"""

import copy

import numpy as np

from pyminidl.backend import get_backend
from pyminidl.callbacks import Callback, _overrides
from pyminidl.distribution import _state
from pyminidl.distribution._buckets import GradientReducer
from pyminidl.distribution._data import ShardedAdapter, num_samples

# Callbacks that write files or external logs: rank 0 alone runs these hooks of theirs (None: all).
# BackupAndRestore restores on every rank (on_train_begin) and writes on rank 0 alone.
_CHIEF_ONLY = {"CSVLogger": None, "JSONLogger": None, "ModelCheckpoint": None, "TensorBoard": None,
               "RemoteMonitor": None, "BackupAndRestore": ("on_epoch_end", "on_train_end")}
_HOOKS = ("on_batch_begin", "on_batch_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
          "on_train_batch_end", "on_test_batch_begin", "on_test_batch_end", "on_predict_batch_begin",
          "on_predict_batch_end", "on_train_begin", "on_train_end", "on_test_begin", "on_test_end",
          "on_predict_begin", "on_predict_end")


def hooks_for(model):
    """The model's ``FitSync`` under the current distribution, or None without one."""
    dist = _state.DISTRIBUTION
    if dist is None:
        return None
    sync = model.__dict__.get("_dist_sync")
    if sync is None or sync.distribution is not dist:
        sync = FitSync(dist, _state.WORLD)
        model.__dict__["_dist_sync"] = sync
    return sync


class FitSync:
    """Per-model state of data-parallel training (see the module doc)."""

    def __init__(self, distribution, world):
        self.distribution, self.world = distribution, world
        self.reducer = None
        self._slots_source = None
        self._synced_weights = None
        self._batch = None  # (padding, local count) of the batch a sharded training adapter just gave
        self._padding_snapshot = None
        self.allreduce_seconds = 0.0

    # ------------------------------------------------------------------ data and callbacks

    def shard(self, adapter, training=False, model=None):
        """``adapter`` split by rank; a training batch size must divide by the world size (Keras)."""
        if adapter is None:
            return None
        size = self.world.size
        if training and size > 1 and model is not None and _overrides_train_step(model):
            raise ValueError(
                f"DataParallel over {size} processes averages the gradients of fit's own training step; "
                f"{type(model).__name__} overrides `train_step`, whose `optimizer.apply` would apply each rank's "
                "own gradients and let the ranks drift apart. A custom `train_step` is not distributed: "
                "train this model in one process, or use fit's own step."
            )
        batch_size = getattr(adapter, "batch_size", None)
        if training and batch_size is not None and batch_size % size:
            raise ValueError(
                f"The global batch size must be divisible by the number of processes of the distribution. "
                f"Received: batch_size={batch_size}, number of processes={size} (DataParallel)."
            )
        notify = self._note_batch if training else None
        return ShardedAdapter(adapter, self.world, self.distribution.auto_shard_dataset, notify)

    def _note_batch(self, padding, count):
        self._batch = (padding, count)

    def callbacks(self, cbs):
        """``cbs`` with its file-writing callbacks muted off rank 0 (same hooks declared everywhere,
        so every rank asks for the same batch logs and takes part in the same reductions), and a
        last callback that starts every fit together (see ``_StartTogether``)."""
        if self.world.rank != 0:
            cbs.callbacks = [_mute(c, _chief_only(c)) if _chief_only(c) is not False else c for c in cbs.callbacks]
        together = _StartTogether(self)
        together.set_model(cbs.model)
        cbs.callbacks.append(together)
        return cbs

    # ------------------------------------------------------------------ training steps

    def before_step(self, model, x):
        """Called after the model is built, before forward."""
        padding, count = self._batch if self._batch is not None else (False, num_samples(x))
        self._batch = None
        count = 0 if padding else count
        if self.reducer is None or self._slots_source is not model._grad_slots:
            self._synchronise(model)
        self._padding_snapshot = _metric_states(model) if padding else None
        self.reducer.watch(model._grad_layers)
        self.reducer.begin(count)

    def gradients(self, model):
        """The gradients averaged over the ranks, aligned with the model's trainable variables."""
        if self._slots_source is not model._grad_slots:
            # Weights created by this forward (custom layers): broadcast them, reduce blocking.
            count = self.reducer._count
            self._synchronise(model)
            self.reducer.begin(count)
        grads = self.reducer.finish()
        self.allreduce_seconds += self.reducer.take_wait_seconds()
        return grads

    def after_step(self, model):
        frozen = [w.value for w in _non_trainable_floats(model)]
        if frozen and self.world.size > 1:
            flat = np.concatenate([np.asarray(get_backend().to_numpy(v), np.float64).ravel() for v in frozen])
            flat = self.world.allreduce(flat) / self.world.size
            _unflatten_into(flat, frozen)
        if self._padding_snapshot is not None:
            _restore_metric_states(model, self._padding_snapshot)
            self._padding_snapshot = None

    def _synchronise(self, model):
        _check_same_model(self.world, model)
        _broadcast_weights(self.world, model)
        _broadcast_optimizer(self.world, model)
        self.reducer = GradientReducer(self.world, model._grad_slots, self.distribution.bucket_bytes,
                                       self.distribution.overlap)
        self._slots_source = model._grad_slots

    # ------------------------------------------------------------------ logs, decisions, outputs

    def logs(self, model):
        """The compiled logs computed from the metrics' states summed over every rank."""
        metrics = [model._loss_tracker] + [m for m, _ in model._compiled_metrics or ()]
        states = [_state_of(m) for m in metrics]
        flat = np.concatenate([_flatten(s) for s in states]) if states else np.zeros(0)
        flat = self.world.allreduce(flat)
        logs, offset = {}, 0
        for metric, state in zip(metrics, states):
            reduced, offset = _unflatten_like(flat, offset, state)
            probe = copy.copy(metric)
            probe.__dict__.update(reduced)
            logs[metric.name] = float(probe.result())
        return dict(sorted(logs.items()))

    def mean_logs(self, logs):
        """A custom ``train_step``'s returned logs averaged over the ranks."""
        keys = sorted(logs)
        values = np.array([float(logs[k]) for k in keys], dtype=np.float64)
        values = self.world.allreduce(values) / self.world.size
        return dict(zip(keys, values.tolist()))

    def agree(self, flag):
        """Whether ``flag`` is set on any rank (every rank gets the same answer)."""
        return bool(self.world.allreduce(np.array([1.0 if flag else 0.0]), op="max")[0])

    def gather(self, outputs, paddings):
        """Each rank's per-batch prediction shards -> the whole result, in sample order, on every rank."""
        be = get_backend()
        local = [be.to_numpy(o)[:0] if pad else be.to_numpy(o) for o, pad in zip(outputs, paddings)]
        everyone = self.world.allgather_object(local)
        per_batch = [np.concatenate([rank_outs[i] for rank_outs in everyone], axis=0) for i in range(len(local))]
        return per_batch[0] if len(per_batch) == 1 else np.concatenate(per_batch, axis=0)


# ---------------------------------------------------------------------- callbacks


def _overrides_train_step(model):
    # The trainer's own decision (Trainer._step): its fused step, equal to model._train_step, unless the
    # model's class overrides train_step.
    return model._step("train_step") != model._train_step


def _chief_only(callback):
    """None (all its hooks run on rank 0 only), a tuple of such hooks, or False (runs everywhere)."""
    if getattr(callback, "_chief_only", False):
        return None
    return _CHIEF_ONLY.get(type(callback).__name__, False)


def _forward(name):
    return lambda self, *args, **kwargs: getattr(self.wrapped, name)(*args, **kwargs)


def _mute(callback, hooks=None):
    """A stand-in declaring the same hooks as ``callback``; those in ``hooks`` (None: all) do nothing."""
    declared = {name: (lambda self, *args, **kwargs: None) if hooks is None or name in hooks else _forward(name)
                for name in _HOOKS if _overrides(callback, [name])}
    declared["set_model"] = lambda self, model: (Callback.set_model(self, model), self.wrapped.set_model(model))
    declared["set_params"] = lambda self, params: (Callback.set_params(self, params), self.wrapped.set_params(params))
    muted = type("Muted" + type(callback).__name__, (Callback,), declared)()
    muted.wrapped = callback
    return muted


class _StartTogether(Callback):
    """Runs last in ``on_train_begin``: every rank resumes at rank 0's epoch (a BackupAndRestore
    that found a backup there moved it), and the first step broadcasts rank 0's weights and
    optimizer state again (restored, or loaded on rank 0 alone between fits)."""

    def __init__(self, sync):
        super().__init__()
        self.sync = sync

    def on_train_begin(self, logs=None):
        if hasattr(self.model, "_initial_epoch"):
            self.model._initial_epoch = self.sync.world.bcast_object(self.model._initial_epoch)
        self.sync.reducer = None


# ---------------------------------------------------------------------- first-step synchronisation


def _model_signature(model):
    slots = model._slots()
    return sum(int(w.value.size) for _, w in slots), [tuple(w.value.shape) for _, w in slots]


def _check_same_model(world, model):
    signatures = world.allgather_object(_model_signature(model))
    reference = signatures[0]
    for rank, signature in enumerate(signatures):
        if signature != reference:
            raise ValueError(
                f"The model differs between ranks: rank 0 has {reference[0]} parameters in "
                f"{len(reference[1])} weights, rank {rank} has {signature[0]} parameters in {len(signature[1])} "
                f"weights. Every rank must build the same model (DataParallel)."
            )


def _broadcast_arrays(world, arrays):
    be = get_backend()
    for value in arrays:
        host = np.ascontiguousarray(be.to_numpy(value))
        world.bcast(host)
        value[...] = be.asarray(host)


def _broadcast_weights(world, model):
    if world.size > 1:
        _broadcast_arrays(world, [w.value for _, w in model._slots()])


def _broadcast_optimizer(world, model):
    optimizer = model.optimizer
    optimizer.build(model._train_vars)
    if world.size > 1:
        _broadcast_arrays(world, optimizer.variables)
        optimizer.iterations = world.bcast_object(optimizer.iterations)


def _non_trainable_floats(model):
    return [w for _, w in model._slots() if not w.trainable and np.dtype(w.value.dtype).kind == "f"]


# ---------------------------------------------------------------------- metric states

_STATE_NAMES = {}


def _state_names(metric):
    """The attributes ``reset_state`` assigns: the metric's state (found once per class)."""
    cls = type(metric)
    if cls not in _STATE_NAMES:
        names = []

        def record(self, name, value):
            names.append(name)
            object.__setattr__(self, name, value)

        probe = copy.copy(metric)
        probe.__class__ = type("StateProbe", (cls,), {"__setattr__": record})
        probe.reset_state()
        _STATE_NAMES[cls] = tuple(dict.fromkeys(names))
    return _STATE_NAMES[cls]


def _state_of(metric):
    return {name: getattr(metric, name) for name in _state_names(metric)}


def _flatten(state):
    parts = [np.asarray(get_backend().to_numpy(np.asarray(v) if isinstance(v, list) else v), np.float64).ravel()
             for v in state.values()]
    return np.concatenate(parts) if parts else np.zeros(0)


def _unflatten_like(flat, offset, state):
    out = {}
    for name, value in state.items():
        size = int(np.size(value))
        part = flat[offset:offset + size]
        offset += size
        if isinstance(value, list):
            out[name] = part.tolist()
        elif isinstance(value, np.ndarray):
            out[name] = part.reshape(value.shape).astype(value.dtype)
        else:
            out[name] = type(value)(part[0]) if isinstance(value, (int, float)) else float(part[0])
    return out, offset


def _unflatten_into(flat, arrays):
    be, offset = get_backend(), 0
    for value in arrays:
        size = int(value.size)
        value[...] = be.asarray(flat[offset:offset + size].reshape(value.shape).astype(value.dtype))
        offset += size


def _metric_states(model):
    metrics = [model._loss_tracker] + [m for m, _ in model._compiled_metrics or ()]
    return [(m, copy.deepcopy(_state_of(m))) for m in metrics]


def _restore_metric_states(model, snapshot):
    saved = {id(m) for m, _ in snapshot}
    for metric, state in snapshot:
        metric.__dict__.update(state)
    for metric, _ in model._compiled_metrics or ():
        if id(metric) not in saved:  # built during the padding step: it has seen only that sample
            metric.reset_state()
