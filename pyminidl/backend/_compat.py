"""The only module that imports the C++ extension and CuPy.

Both imports are optional: without the extension pyminidl runs on the NumPy reference
backend (with one warning); without CuPy the ``cupy`` backend raises a clear error.
"""

import os

# OpenMP threads that spin after a parallel region (libgomp's default) hold their core for
# up to ~300k spins, and NumPy's OpenBLAS workers do the same after each call: a script that
# alternates NumPy and pyminidl work then runs each library's threads against the other's
# spinners. Measured on a 2-core Zen 3 (256^3 float32, pyminidl and NumPy matmuls alternating
# rep by rep): ~8 GFLOP/s each with spinning, ~60 / ~90 passive. libgomp reads the policy
# once, when it loads (with _C below), so it is set here, and only when the user set neither
# OMP_WAIT_POLICY nor GOMP_SPINCOUNT (OMP_WAIT_POLICY=active restores spinning).
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "passive"
    WAIT_POLICY_SET = True
else:
    WAIT_POLICY_SET = False

try:
    from pyminidl import _C  # noqa: F401
    C_IMPORT_ERROR = None
except ImportError as exc:  # source checkout without a build, or a broken install
    _C = None
    C_IMPORT_ERROR = exc

try:
    import cupy  # noqa: F401
    CUPY_IMPORT_ERROR = None
except Exception as exc:  # ImportError, or CUDA driver errors raised at import
    cupy = None
    CUPY_IMPORT_ERROR = exc


def cupy_device_available():
    """True when CuPy imported and at least one CUDA device answers."""
    if cupy is None:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False
