"""The backend seam: faster backends override the reference ops and add none of their own,
and every override keeps the reference signature (thinc's rule)."""

import inspect

import numpy as np
import pytest

from pyminidl.backend.base import ACTIVATIONS, Backend
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
def test_instance_adds_no_public_attribute(cls):
    # Attributes set in __init__ are no class attributes: look at a constructed backend too.
    try:
        backend = cls()
    except RuntimeError as err:  # CuPy or its GPU missing
        pytest.skip(str(err))
    extra = sorted(name for name in vars(backend) if not name.startswith("_") and not hasattr(Backend(), name))
    assert not extra, f"{cls.__name__} instances have public attributes that Backend lacks: {extra}"


@pytest.mark.parametrize("cls", SUBCLASSES, ids=lambda c: c.__name__)
def test_overrides_keep_the_reference_signature(cls):
    for name, value in _public(cls).items():
        if callable(value):
            assert inspect.signature(value) == inspect.signature(getattr(Backend, name)), name


def test_cpu_backend_overrides_the_kernel_families():
    # The ops that have a C++ kernel are really overridden (not silently the reference).
    ops = ["sigmoid_forward", "relu_backward", "gelu_forward", "softmax_forward", "log_softmax_backward",
           "softmax_cross_entropy_forward", "softmax_cross_entropy_backward",
           "sgd_update", "adam_update", "rmsprop_update", "adagrad_update",
           # convolution
           "conv_forward", "conv_backward", "conv_transpose_forward", "conv_transpose_backward",
           "conv_maxpool_forward", "conv_maxpool_backward",
           # pooling and normalization (issue 9)
           "maxpool_forward", "maxpool_backward", "avgpool_forward", "avgpool_backward",
           "batch_norm_forward", "batch_norm_backward", "layer_norm_forward", "layer_norm_backward"]
    assert [op for op in ops if op not in vars(CpuBackend)] == []


class _Recorder:
    """Stands in for the extension module and records which kernels an op reached."""

    def __init__(self, real):
        self.real, self.calls = real, []

    def __getattr__(self, name):
        fn = getattr(self.real, name)

        def record(*args, **kwargs):
            self.calls.append(name)
            return fn(*args, **kwargs)

        return record


@pytest.fixture
def recorder(monkeypatch):
    from pyminidl.backend import cpu_backend

    rec = _Recorder(cpu_backend._C)
    monkeypatch.setattr(cpu_backend, "_C", rec)
    return rec


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_inputs_reach_the_kernels(recorder, dtype):
    # Parity tests would pass vacuously if an override fell back to the reference: check
    # that every overridden op really calls its kernel for float32 and float64 inputs.
    be = CpuBackend()
    x = np.linspace(-2, 2, 12, dtype=dtype).reshape(3, 4)
    for name in ACTIVATIONS:
        if name == "linear":
            continue
        y = be.activation_forward(name, x)
        be.activation_backward(name, x, x, y)
        assert recorder.calls[-2:] == ["activation_forward", "activation_backward"], name
    for op in ("softmax", "log_softmax"):
        y = getattr(be, f"{op}_forward")(x)
        getattr(be, f"{op}_backward")(x, y)
        assert recorder.calls[-2:] == [f"{op}_forward", f"{op}_backward"]
    for sparse, labels in ((False, np.eye(4, dtype=dtype)[:3]), (True, np.array([0, 3, 1]))):
        loss, probs = be.softmax_cross_entropy_forward(x, labels, sparse)
        be.softmax_cross_entropy_backward(loss, probs, labels, sparse)
        assert recorder.calls[-2:] == ["softmax_cross_entropy_forward", "softmax_cross_entropy_backward"]
    # Dense with units != input features: the bias has w's column count, not x's
    w, b = np.ones((4, 7), dtype), np.ones(7, dtype)
    be.dense_forward(x, w, b)
    be.dense_backward(np.ones((3, 7), dtype), x, w)
    assert recorder.calls[-4:] == ["dense_forward", "gemm", "bias_grad", "gemm"]
    p, g, s1, s2, s3 = (np.ones(5, dtype) for _ in range(5))
    be.sgd_update(p, g, s1, 0.1, momentum=0.9)
    be.adam_update(p, g, s1, s2, s3, 0.1, 1, amsgrad=True)
    be.rmsprop_update(p, g, s1, s2, s3, 0.1, momentum=0.5, centered=True)
    be.adagrad_update(p, g, s1, 0.1)
    assert recorder.calls[-4:] == ["sgd_update", "adam_update", "rmsprop_update", "adagrad_update"]


def test_other_inputs_take_the_reference_path(recorder):
    be = CpuBackend()
    be.tanh_forward(np.ones((2, 3), np.float16))
    be.softmax_forward(np.ones((2, 3), np.float32), axis=0)
    be.sgd_update(np.ones(8, np.float32)[::2], np.ones(4, np.float32), None, 0.1)
    # The constructor's process-wide settings: allocator tuning, NumPy's BLAS threads.
    assert [c for c in recorder.calls if c not in ("tune_allocator", "share_blas_threads")] == []
    # 3-D logits: the reference formula runs (it may use the log_softmax kernel inside).
    be.softmax_cross_entropy_forward(np.ones((2, 2, 3), np.float32), np.ones((2, 2, 3), np.float32))
    assert "softmax_cross_entropy_forward" not in recorder.calls
