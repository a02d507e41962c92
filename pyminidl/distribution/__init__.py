"""Data-parallel training across processes on MPI, in the shape of ``keras.distribution``.

Start the same script on every process with ``mpirun``; ``fit`` then trains on all of them::

    import pyminidl as keras
    keras.distribution.initialize()                      # the MPI world mpirun started
    keras.distribution.set_distribution(keras.distribution.DataParallel())
    model.fit(x, y, batch_size=256, epochs=5)            # batch_size: the global batch
    # mpirun -np 4 python train.py

Without ``mpirun`` (or without mpi4py) the world is one process and the same code runs.
Importing pyminidl never imports mpi4py: ``initialize`` does, when an MPI launcher started the
process. Under ``DataParallel`` every rank trains on its shard of each global batch, gradients are
averaged with Allreduce on bucketed buffers during backward, every rank applies the same update
(the weights stay bit-identical), logs, ``evaluate`` and ``predict`` are reduced over the ranks,
and only rank 0 prints and writes files (CSVLogger, ModelCheckpoint, ...).
"""

import os

from pyminidl import config
from pyminidl.distribution import _state
from pyminidl.distribution._world import LocalWorld, launched_by_mpirun, open_mpi_world

_THREADS_NOTE = [None]  # how initialize() chose the thread count (for show_config)


def initialize(job_addresses=None, num_processes=None, process_id=None):
    """Join the process group: the MPI world when started by ``mpirun``, else a world of one.

    Also sets each rank's OpenMP threads to (cores of this host) / (ranks on this host), unless
    ``OMP_NUM_THREADS`` is set; a rank that raises aborts the whole job (no hang in a collective).

    Args:
        job_addresses: Accepted for Keras compatibility; MPI's launcher places the processes
            (``mpirun -H a:2,b:2``), so it must be None.
        num_processes: If given, the world size that is expected (checked).
        process_id: If given, this process's expected rank (checked).

    Raises:
        ImportError: Under ``mpirun`` without mpi4py (the message gives the install line).
        ValueError: ``num_processes`` / ``process_id`` disagree with the MPI world.

    Example:
        >>> pyminidl.distribution.initialize()
        >>> pyminidl.distribution.size()
        1
    """
    if job_addresses is not None:
        raise ValueError("pyminidl.distribution runs on MPI: start the processes with mpirun (mpirun -H a:2,b:2 "
                         f"python train.py) instead of passing job_addresses. Received: job_addresses={job_addresses!r}")
    world = _state.WORLD
    if world is None:
        world = open_mpi_world() if launched_by_mpirun() else LocalWorld()
        if world.size > 1:
            world.abort_on_uncaught_exception()
        _state.WORLD = world
        _set_rank_threads(world)
    for name, expected, got in (("num_processes", num_processes, world.size), ("process_id", process_id, world.rank)):
        if expected is not None and int(expected) != got:
            raise ValueError(f"`{name}` is {expected}, but the MPI world says {got}. Received: {name}={expected!r}")
    return world


def _set_rank_threads(world):
    if "OMP_NUM_THREADS" in os.environ:
        _THREADS_NOTE[0] = f"{config.get_num_threads()} (OMP_NUM_THREADS)"
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, min(cores, (os.cpu_count() or 1) // max(1, world.local_size)))
    try:
        config.set_num_threads(threads)
    except RuntimeError:
        _THREADS_NOTE[0] = "1 (no C++ extension)"
        return
    _THREADS_NOTE[0] = (f"{threads} = cores / ranks on this host ({os.cpu_count()} / {world.local_size}"
                        f"{'' if cores >= threads else f', {cores} usable'})")


def _world():
    return _state.WORLD if _state.WORLD is not None else initialize()


def rank():
    """This process's rank in the world (0 without MPI)."""
    return _world().rank


def size():
    """The number of processes in the world (1 without MPI)."""
    return _world().size


def list_devices(device_type=None):
    """One device per process of the world: ``["cpu:0", "cpu:1", ...]`` (Keras's naming).

    Args:
        device_type: None or ``"cpu"`` (the processes run the CPU backend).
    """
    if device_type not in (None, "cpu", "CPU"):
        raise ValueError(f"pyminidl.distribution places one CPU process per rank. Received: device_type={device_type!r}")
    return [f"cpu:{r}" for r in range(size())]


class DataParallel:
    """Replicate the model on every process and split each global batch between them.

    Args:
        device_mesh: Accepted for Keras compatibility; must be None (one device per process).
        devices: None, or the ``list_devices()`` of the world (all of them).
        auto_shard_dataset: True (default): each rank slices its part of every batch a Dataset or
            generator yields (every rank reads the same stream). False: the Dataset is already this
            rank's, e.g. ``ds.shard(size(), rank()).batch(per_rank_batch)``; every rank must then
            yield the same number of batches.
        bucket_cap_mb: Size of one gradient Allreduce buffer (MiB).
        overlap: Start each bucket's Allreduce during backward as soon as its gradients exist.

    Example:
        >>> pyminidl.distribution.set_distribution(pyminidl.distribution.DataParallel())
    """

    def __init__(self, device_mesh=None, devices=None, auto_shard_dataset=True, bucket_cap_mb=1.0, overlap=True):
        if device_mesh is not None:
            raise ValueError("DataParallel on MPI uses one device per process; pass devices=None. "
                             f"Received: device_mesh={device_mesh!r}")
        world = _world()
        if devices is not None and list(devices) != list_devices():
            raise ValueError(f"DataParallel spans every process of the world: devices must be {list_devices()}. "
                             f"Received: devices={devices!r}")
        if not bucket_cap_mb > 0:
            raise ValueError(f"`bucket_cap_mb` must be positive. Received: bucket_cap_mb={bucket_cap_mb!r}")
        self.devices = list_devices()
        self.auto_shard_dataset = bool(auto_shard_dataset)
        self.bucket_bytes = int(bucket_cap_mb * 2**20)
        self.overlap = bool(overlap)
        self.world = world

    @property
    def batch_dim_name(self):
        return "batch"

    def __repr__(self):
        return f"<DataParallel on {self.world.size} process(es), rank {self.world.rank}>"


def set_distribution(value):
    """Make ``value`` (a ``DataParallel`` or None) the distribution ``fit``/``evaluate``/``predict`` use."""
    if value is not None and not isinstance(value, DataParallel):
        raise ValueError(f"Expected a DataParallel distribution or None. Received: {value!r}")
    _state.DISTRIBUTION = value


def distribution():
    """The current distribution (None when none is set)."""
    return _state.DISTRIBUTION


def config_line():
    """The world and thread choice, as ``show_config`` prints it."""
    world = _state.WORLD
    if world is None:
        return "distribution: not initialized (a world of one process)"
    dist = "DataParallel" if _state.DISTRIBUTION is not None else "none set"
    return f"distribution: {world.describe()}; {dist}; threads per rank: {_THREADS_NOTE[0]}"


__all__ = ["DataParallel", "distribution", "initialize", "list_devices", "rank", "set_distribution", "size"]
