"""The backend seam: faster backends override the reference ops and add none of their own,
and every override keeps the reference signature (thinc's rule)."""

import inspect

import pytest

from pyminidl.backend.base import Backend
from pyminidl.backend.cpu_backend import CpuBackend
from pyminidl.backend.cupy_backend import CupyBackend

SUBCLASSES = [CpuBackend, CupyBackend]


def _public(cls):
    return {name: value for name, value in vars(cls).items() if not name.startswith("_")}


@pytest.mark.parametrize("cls", SUBCLASSES, ids=lambda c: c.__name__)
def test_subclass_adds_no_public_op(cls):
    extra = sorted(name for name in _public(cls) if not hasattr(Backend, name))
    assert not extra, f"{cls.__name__} adds public ops that Backend lacks: {extra}"


@pytest.mark.parametrize("cls", SUBCLASSES, ids=lambda c: c.__name__)
def test_overrides_keep_the_reference_signature(cls):
    for name, value in _public(cls).items():
        if callable(value):
            assert inspect.signature(value) == inspect.signature(getattr(Backend, name)), name


def test_cpu_backend_overrides_the_kernel_families():
    # The ops that have a C++ kernel are really overridden (not silently the reference).
    ops = ["sigmoid_forward", "relu_backward", "gelu_forward", "softmax_forward", "log_softmax_backward",
           "softmax_cross_entropy_forward", "softmax_cross_entropy_backward",
           "sgd_update", "adam_update", "rmsprop_update", "adagrad_update"]
    assert [op for op in ops if op not in vars(CpuBackend)] == []
