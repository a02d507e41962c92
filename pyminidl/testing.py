"""Numerical checking helpers, public so users can check their own layers.

``assert_close(got, ref, k)`` holds the project's tolerances in one place;
``numeric_grad`` and ``gradcheck`` compare an analytic gradient with central
finite differences (use float64).
"""

import numpy as np

# Per-dtype tolerances: rtol, and an atol that grows with the reduction length k
# (a sum of k float32 products carries about sqrt(k) ulps of rounding).
_TOLERANCES = {
    np.dtype(np.float32): (2e-5, 2e-6),
    np.dtype(np.float64): (1e-9, 1e-12),
}


def _host(x):
    if hasattr(x, "get") and not isinstance(x, np.ndarray):  # CuPy array
        x = x.get()
    return np.asarray(x)


def assert_close(got, ref, k=1, rtol=None, atol=None):
    """Assert ``got`` matches ``ref`` within tolerances chosen from ``got``'s dtype.

    Args:
        got: the array under test (any backend).
        ref: the reference, ideally computed in float64 from the same inputs.
        k: length of the reduction that produced each element (GEMM's K); atol grows with sqrt(k).
        rtol, atol: override the defaults.
    """
    got, ref = _host(got), _host(ref)
    if got.shape != ref.shape:
        raise AssertionError(f"shape mismatch: got {got.shape}, expected {ref.shape}")
    base_rtol, base_atol = _TOLERANCES.get(got.dtype, (1e-5, 1e-6))
    rtol = base_rtol * max(1.0, np.sqrt(k)) if rtol is None else rtol
    scale = float(np.max(np.abs(ref))) if ref.size and np.isfinite(ref).all() else 1.0
    atol = base_atol * max(1.0, np.sqrt(k)) * max(1.0, scale) if atol is None else atol
    np.testing.assert_allclose(got.astype(np.float64), ref.astype(np.float64), rtol=rtol, atol=atol)


def numeric_grad(f, x, eps=1e-6):
    """Central finite differences of the scalar function ``f`` at ``x`` (modified and restored in place)."""
    x = np.asarray(x)
    grad = np.zeros_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f(x)
        flat[i] = old - eps
        fm = f(x)
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return grad


def gradcheck(f, x, analytic, eps=1e-6, rtol=1e-5, atol=1e-7):
    """Assert the analytic gradient ``analytic`` of scalar ``f`` at ``x`` matches finite differences."""
    num = numeric_grad(f, x, eps)
    np.testing.assert_allclose(np.asarray(analytic, dtype=np.float64), num, rtol=rtol, atol=atol)
