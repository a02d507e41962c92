"""Fixture of the kernel parity tests: the cpu backend."""

import pytest

import pyminidl
from pyminidl.backend import get_backend


@pytest.fixture
def cpu():
    """The C++ backend (the process-wide backend is restored by the root conftest)."""
    pyminidl.config.set_backend("cpu")
    return get_backend()
