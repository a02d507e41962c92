"""The only module that imports the C++ extension and CuPy.

Both imports are optional: without the extension pyminidl runs on the NumPy reference
backend (with one warning); without CuPy the ``cupy`` backend raises a clear error.
"""

import os

# How pyminidl's OpenMP threads wait between parallel regions, when the user chose nothing.
# libgomp's default spins up to 300k times (several ms) after each region, and NumPy's
# OpenBLAS workers spin after each call too: a script alternating NumPy and pyminidl work then
# runs each library's threads against the other's spinners (measured on a 2-core Zen 3, 256^3
# float32 alternating rep by rep: ~8 GFLOP/s each). Sleeping at once (OMP_WAIT_POLICY=passive)
# avoids that, but then every region and every barrier inside a GEMM costs a futex wake: on a
# quiet 2-core Zen 4 the 2-thread GEMM ran at single-thread speed (0.37-0.81x NumPy). A short
# spin, GOMP_SPINCOUNT=20000 (about 0.5 ms of PAUSE on Zen 4), keeps a training step's
# back-to-back kernels on warm threads and still gives the cores back before another library's
# next call (1.00-1.17x NumPy, NumPy unharmed). libgomp reads these once, when it loads (with _C below), so they are
# set here, and only when the user set neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT. More threads
# than cores still throttle the spin to libgomp's 100 (its oversubscription rule).
DEFAULT_SPINCOUNT = "20000"
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = DEFAULT_SPINCOUNT
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
