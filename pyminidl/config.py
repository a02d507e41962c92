"""Global configuration: backend, threads, float type, CPU dispatch.

Example:
    >>> import pyminidl
    >>> pyminidl.config.set_num_threads(2)
    >>> pyminidl.config.cpu_features()["active"]
    'avx512'
"""

import os

import numpy as np

from pyminidl import __version__  # set by the package before it imports config
from pyminidl.backend import BACKEND_NAMES, get_backend, set_backend, use_backend  # noqa: F401
from pyminidl.backend import _compat
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


def _caches_line():
    c = _C.gemm_config()["caches"]

    def kib(n):
        return f"{n // 1024} KiB" if n else "not reported"

    return f"caches ({c['source']}): L1d {kib(c['l1d'])}, L2 {kib(c['l2'])} per core, L3 {kib(c['l3'])}"


def _gemm_line():
    g = _C.gemm_config()
    parts = [f"{dt} {b['MR']}x{b['NR']} MC={b['MC']} KC={b['KC']} NC={b['NC']}"
             for dt, b in ((dt, g[dt]) for dt in ("float32", "float64"))]
    return f"GEMM ({g['isa']}, blocks from {g['blocks_from']}): " + "; ".join(parts)


def show_config():
    """Print the build and runtime configuration (paste it into bug reports)."""
    lines = [f"pyminidl {__version__}", f"numpy {np.__version__}", f"backend: {get_backend().name}"]
    if _C is None:
        lines.append("C++ extension: not available")
    else:
        info = _C.build_info()
        feats = _C.cpu_features()
        lines += [
            f"compiler: {info['compiler']}  flags: {info['flags']}",
            f"OpenMP: {'on' if info['openmp'] else 'off (serial kernels)'}, threads: {info['max_threads']}",
            f"OMP_NUM_THREADS: {os.environ.get('OMP_NUM_THREADS', '(unset)')}",
            f"OMP_WAIT_POLICY: {os.environ.get('OMP_WAIT_POLICY', '(unset)')}"
            + (" (set by pyminidl: neither it nor GOMP_SPINCOUNT was set)" if _compat.WAIT_POLICY_SET else ""),
            f"CPU: best ISA {feats['best']}, active {feats['active']}",
            _caches_line(),
            _gemm_line(),
        ]
        backend = get_backend()
        if backend.name == "cpu":
            lines.append(f"allocator tuned for per-step temporaries: {'yes' if backend._allocator_tuned else 'no'}")
    # ---- distribution: the world and each rank's threads
    from pyminidl import distribution

    lines.append(distribution.config_line())
    print("\n".join(lines))
