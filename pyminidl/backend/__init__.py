"""Backend selection: one current backend, chosen by name.

``get_backend()`` returns the current backend; ``set_backend(name)`` changes it for the
process and ``use_backend(name)`` for a ``with`` block (a ContextVar, so threads and
async tasks each see their own). The default is ``PYMINIDL_BACKEND`` when set, else
``"cpu"`` when the C++ extension imported, else ``"numpy"`` with a single warning.
"""

import contextlib
import contextvars
import os
import warnings

from pyminidl.backend import _compat
from pyminidl.backend.base import Backend

BACKEND_NAMES = ("numpy", "cpu", "cupy")

_instances = {}
_default_name = None
_current = contextvars.ContextVar("pyminidl_backend", default=None)


def _create(name):
    if name == "numpy":
        return Backend()
    if name == "cpu":
        from pyminidl.backend.cpu_backend import CpuBackend

        return CpuBackend()
    if name == "cupy":
        from pyminidl.backend.cupy_backend import CupyBackend

        return CupyBackend()
    raise ValueError(
        f"Unknown backend {name!r}. Expected one of {', '.join(map(repr, BACKEND_NAMES))}."
    )


def _instance(name):
    name = str(name).lower()
    if name not in _instances:
        _instances[name] = _create(name)
    return _instances[name]


def _resolve_default():
    global _default_name
    if _default_name is None:
        env = os.environ.get("PYMINIDL_BACKEND", "").strip().lower()
        if env:
            _default_name = env
        elif _compat._C is not None:
            _default_name = "cpu"
        else:
            warnings.warn(
                "pyminidl's C++ extension did not import "
                f"({_compat.C_IMPORT_ERROR}); using the slow NumPy reference backend.",
                RuntimeWarning,
                stacklevel=3,
            )
            _default_name = "numpy"
    return _default_name


def get_backend():
    """The current backend object."""
    name = _current.get()
    if name is None:
        name = _default_name if _default_name is not None else _resolve_default()
    backend = _instances.get(name)  # names are stored lower-case; this runs many times per step
    return backend if backend is not None else _instance(name)


def set_backend(name):
    """Make ``name`` ("cpu", "numpy" or "cupy") the process-wide backend."""
    global _default_name
    _instance(name)  # raises for an unknown or unavailable backend before switching
    _default_name = str(name).lower()
    _current.set(None)


@contextlib.contextmanager
def use_backend(name):
    """Run a ``with`` block on backend ``name``."""
    _instance(name)
    token = _current.set(str(name).lower())
    try:
        yield _instance(name)
    finally:
        _current.reset(token)


def backend_for(array):
    """The backend that owns ``array``: cupy for a CuPy array, else the current one."""
    if _compat.cupy is not None and isinstance(array, _compat.cupy.ndarray):
        return _instance("cupy")
    backend = get_backend()
    return _instance("cpu" if _compat._C is not None else "numpy") if backend.name == "cupy" else backend


__all__ = ["Backend", "get_backend", "set_backend", "use_backend", "backend_for", "BACKEND_NAMES"]
