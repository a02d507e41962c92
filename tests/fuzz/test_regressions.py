"""Bugs the fuzz harness found, pinned so they stay fixed."""

import numpy as np
import pytest

from pyminidl.backend._compat import _C


@pytest.mark.parametrize("c", [np.float64(1.0), np.float32(1.0), 1.0, [[1.0]]])
def test_gemm_optional_c_that_is_not_an_ndarray_is_converted_not_misread(c):
    # A NumPy scalar passed as `c` was cast straight to an ndarray and its header read out
    # of bounds (ASan: heap-buffer-overflow in pybind11::array::ndim).
    a = np.ones((1, 1))
    if np.ndim(c) == 2:
        np.testing.assert_array_equal(_C.gemm(a, a, beta=1.0, c=c), [[2.0]])
    else:
        with pytest.raises((ValueError, TypeError), match="argument 'c'"):
            _C.gemm(a, a, beta=1.0, c=c)


def test_gemm_optional_c_of_a_non_numeric_type_is_a_type_error():
    with pytest.raises(TypeError, match="argument 'c'"):
        _C.gemm(np.ones((1, 1)), np.ones((1, 1)), beta=1.0, c="x")


def test_dense_forward_scalar_bias_is_a_clean_error():
    with pytest.raises(ValueError, match=r"argument 'b' must have shape \(1,\)"):
        _C.dense_forward(np.ones((1, 1)), np.ones((1, 1)), np.float64(2.0))


@pytest.mark.parametrize("param", ["negative_slope", "max_value", "threshold", "alpha"])
def test_activation_nan_parameter_is_refused(param):
    # relu(max_value=NaN) returned x from the kernel and NaN from the reference.
    with pytest.raises(ValueError, match=f"parameter '{param}' must not be NaN"):
        _C.activation_forward("relu", np.ones(3, np.float32), **{param: float("nan")})
