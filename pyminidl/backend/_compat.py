"""The only module that imports the C++ extension and CuPy.

Both imports are optional: without the extension pyminidl runs on the NumPy reference
backend (with one warning); without CuPy the ``cupy`` backend raises a clear error.
"""

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
