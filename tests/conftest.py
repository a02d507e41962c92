"""Shared fixtures: a seeded rng and a ``backend`` fixture over numpy, cpu and cupy."""

import os

# The suite's thread-count checks must run the team they ask for, even where a user opted in to
# the contention rule (team.h): a region slowed by the reference's NumPy products would send the
# kernels after it to one thread. tests/kernels/test_team.py runs that rule in children.
os.environ["PYMINIDL_SERIAL_WHEN_CONTENDED"] = "0"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

import pyminidl  # noqa: E402
from pyminidl.backend import _compat, get_backend  # noqa: E402
from pyminidl.backend.base import Backend  # noqa: E402

BACKENDS = ["numpy", "cpu", "cupy"]

# Hypothesis draws the same examples on every run (derandomised, no example database), so a
# rare draw cannot turn a run red at random; PYMINIDL_FUZZ_EXAMPLES=N asks for a random
# campaign of N examples per test instead (tests/fuzz), which also replays saved failures.
settings.register_profile("pyminidl-fixed", derandomize=True, database=None, print_blob=True)
settings.register_profile("pyminidl-campaign", derandomize=False, print_blob=True)
settings.load_profile("pyminidl-campaign" if os.environ.get("PYMINIDL_FUZZ_EXAMPLES") else "pyminidl-fixed")


def pytest_report_header(config):
    c_ok = _compat._C is not None
    return f"pyminidl {pyminidl.__version__} from {pyminidl.__file__}; C++ extension: {'yes' if c_ok else 'NO'}"


def pytest_sessionstart(session):
    # Tests must run against a built pyminidl. A source tree without _C would silently
    # fall back to the reference backend and "pass" while testing nothing of the C++ core.
    if _compat._C is None:
        raise pytest.UsageError(
            f"pyminidl's C++ extension did not import ({_compat.C_IMPORT_ERROR}). Install with "
            "`pip install .[test]` (or the editable build in the README) and run `pytest` "
            "from the repository root, not `python -m pytest`."
        )


# The subset CI also runs under ASan/UBSan (tools/sanitize.sh -m sanitize): everything that
# drives the C++ kernels directly.
_SANITIZE_DIRS = ("kernels", "fuzz", "properties")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.parent.name in _SANITIZE_DIRS:
            item.add_marker(pytest.mark.sanitize)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def _backend_scope(name):
    if name == "cupy" and not _compat.cupy_device_available():
        pytest.skip("CuPy/GPU not available")
    return pyminidl.backend.use_backend(name)


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Each backend in turn, current for the whole test; cupy is skipped without a GPU."""
    with _backend_scope(request.param) as be:
        yield be


@pytest.fixture(params=["cpu", "cupy"])
def fast_backend(request):
    """The accelerated backends (compared against the reference), current for the whole test."""
    with _backend_scope(request.param) as be:
        yield be


@pytest.fixture
def ref():
    """The NumPy reference backend."""
    return Backend()


@pytest.fixture(autouse=True)
def _restore_global_state():
    before = get_backend().name
    threads = pyminidl.config.get_num_threads()
    yield
    pyminidl.config.set_backend(before)
    pyminidl.config.set_num_threads(threads)
    pyminidl.config.set_cpu_capability("avx512")
