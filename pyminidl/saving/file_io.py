"""Atomic file writes: the one helper every writer of pyminidl uses (models, weights, checkpoints,
images, downloads).

The bytes go to a temporary file in the target's folder, which is flushed and fsync'd, renamed over
the target (``os.replace``, atomic on POSIX and Windows) and the folder fsync'd, so a crash or a
SIGKILL at any point leaves either the previous file or the new one, never a torn one.

Example:
    >>> with atomic_write("model.keras") as f:
    ...     f.write(data)
"""

import contextlib
import os
import tempfile


def _fsync_folder(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder; its rename is durable enough
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path, mode="w+b"):
    """Open a temporary file beside ``path``; on a clean exit it replaces ``path``, else it is removed.

    Args:
        path: the file to (re)write; its folder must exist.
        mode: the temporary file's mode ("w+b": readable too, as h5py and zipfile need).

    Yields:
        The open file object (its ``name`` is the temporary path).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    os.close(fd)  # reopened by path, so the file object's ``name`` is the temporary path
    try:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # KeyboardInterrupt included: the target must never be a partial file
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_folder(folder)


__all__ = ["atomic_write"]
