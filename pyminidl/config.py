"""Global configuration: backend, threads, float type, CPU dispatch.

Example:
    >>> import pyminidl
    >>> pyminidl.config.set_num_threads(2)
    >>> pyminidl.config.cpu_features()["active"]
    'avx512'
"""

import numpy as np

from pyminidl.backend import BACKEND_NAMES, get_backend, set_backend, use_backend  # noqa: F401
from pyminidl.backend._compat import _C

_FLOATX = "float32"
_ISA_NAMES = ("baseline", "avx2", "avx512")


def floatx():
    """The default float type of weights and inputs: ``"float32"``."""
    return _FLOATX


def set_floatx(value):
    """Set the default float type (``"float32"`` or ``"float64"``, the latter for gradient checks)."""
    global _FLOATX
    if value not in ("float32", "float64"):
        raise ValueError(f"Unknown floatx type {value!r}. Expected 'float32' or 'float64'.")
    _FLOATX = value


def epsilon():
    """The fuzz factor used in losses and metrics, as Keras's ``backend.epsilon()``: 1e-7."""
    return 1e-7


def _require_c(what):
    if _C is None:
        raise RuntimeError(f"{what} needs pyminidl's C++ extension, which did not import.")


def get_num_threads():
    """Threads the C++ kernels use (OpenMP); 1 without OpenMP or the extension."""
    return _C.get_num_threads() if _C is not None else 1


def set_num_threads(n):
    """Set the number of OpenMP threads of the C++ kernels (default: ``OMP_NUM_THREADS`` or all cores)."""
    _require_c("set_num_threads")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"set_num_threads expects an integer >= 1. Received: n={n!r}")
    _C.set_num_threads(int(n))


def cpu_features():
    """The CPU's SIMD features, the best ISA path it supports and the path in use.

    ``PYMINIDL_CPU_CAPABILITY=baseline|avx2|avx512`` caps the path at import. ``"caches"``
    holds the data cache sizes the CPU reports (bytes; 0 = not reported) and ``"gemm"`` the
    GEMM blocks chosen from them for the active path (``PYMINIDL_GEMM_BLOCKS="MC,KC,NC"``
    overrides them, for experiments).

    Example:
        >>> feats = pyminidl.config.cpu_features()
        >>> feats["gemm"]["float32"]["KC"] > 0
        True
    """
    _require_c("cpu_features")
    feats = dict(_C.cpu_features())
    gemm = dict(_C.gemm_config())
    feats["caches"] = gemm.pop("caches")
    feats["gemm"] = gemm
    return feats


def set_cpu_capability(name):
    """Cap the kernels' ISA path (``"baseline"``, ``"avx2"`` or ``"avx512"``); returns the path in use."""
    _require_c("set_cpu_capability")
    if name not in _ISA_NAMES:
        raise ValueError(f"Unknown CPU capability {name!r}. Expected one of {', '.join(map(repr, _ISA_NAMES))}.")
    return _C.set_cpu_capability(name)
