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

import importlib.machinery
import importlib.util
import pathlib
import sys

_PACKAGE_DIR = pathlib.Path(__file__).resolve().parents[1]
_EDITABLE_BUILD = "pip install --no-build-isolation -Cbuild-dir=build -e ."


def _installed_extension_path():
    """The ``_C`` file of an installed pyminidl of this version, when this copy is a source folder.

    ``python -m pyminidl`` run from the repository root imports the source folder (the current
    directory comes first on ``sys.path``), which has no compiled extension after a plain
    ``pip install .``; the installed copy's extension is the same build, so it is used.
    """
    from importlib import metadata

    from pyminidl import __version__

    try:
        dist = metadata.distribution("pyminidl")
    except metadata.PackageNotFoundError:
        return None
    if dist.version != __version__:
        return None
    for entry in dist.files or ():
        if entry.parts[:1] == ("pyminidl",) and len(entry.parts) == 2 and entry.name.startswith("_C."):
            path = pathlib.Path(dist.locate_file(entry)).resolve()
            if path.parent != _PACKAGE_DIR and path.is_file():
                return path
    return None


def _load_extension_from(path):
    loader = importlib.machinery.ExtensionFileLoader("pyminidl._C", str(path))
    spec = importlib.util.spec_from_file_location("pyminidl._C", str(path), loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["pyminidl._C"] = module
    spec.loader.exec_module(module)
    return module


def _missing_extension_error(exc):
    """The reason the extension is missing, in words a user can act on (as NumPy's message)."""
    source_folder = (_PACKAGE_DIR.parent / "pyproject.toml").is_file() and not any(_PACKAGE_DIR.glob("_C.*"))
    if not source_folder:
        return ImportError(f"pyminidl's compiled extension failed to import: {exc}")
    return ImportError(
        f"pyminidl was imported from its source folder ({_PACKAGE_DIR}), which holds no compiled "
        "extension, and no installed pyminidl of the same version was found. Run from outside the "
        f"source folder after `pip install .`, or build in place with `{_EDITABLE_BUILD}`"
    )


def _import_extension():
    """``(module, None)`` or ``(None, ImportError saying why and what to do)``."""
    try:
        from pyminidl import _C as module

        return module, None
    except ImportError as exc:  # a source folder without a build, or a broken install
        try:
            path = _installed_extension_path()
            if path is not None:
                return _load_extension_from(path), None
        except ImportError:
            pass
        return None, _missing_extension_error(exc)


_C, C_IMPORT_ERROR = _import_extension()

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
