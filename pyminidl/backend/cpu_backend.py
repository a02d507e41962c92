"""CpuBackend: the reference ops with the C++/OpenMP kernels swapped in for float32.

Each override calls ``_C`` only for the inputs its kernel supports and otherwise
returns ``super().<op>(...)``; it adds no op of its own.
"""

from pyminidl.backend._compat import _C
from pyminidl.backend.base import Backend


class CpuBackend(Backend):
    name = "cpu"

    def __init__(self):
        if _C is None:
            raise RuntimeError("The 'cpu' backend needs pyminidl's C++ extension, which did not import.")
        super().__init__()

    # ------------------------------------------------------------------ gemm / dense
    # _C takes 2-D float32/float64 arrays of one dtype (any strides); everything else (N-D,
    # integer or mixed dtypes) goes to the reference, which promotes like NumPy.

    def _c_matrices(self, *arrays):
        """True when every array is a 2-D float32/float64 ndarray, all of one dtype.

        Written with ``type() is`` checks: on small products this test is a visible part
        of the call."""
        nd, dt = self.xp.ndarray, arrays[0].dtype if type(arrays[0]) is self.xp.ndarray else None
        if dt is None or dt.char not in "fd":
            return False
        for a in arrays:
            if type(a) is not nd or a.ndim != 2 or a.dtype != dt:
                return False
        return True

    def _c_vector(self, like, v):
        """True when ``v`` is a 1-D ndarray of ``like``'s dtype."""
        return type(v) is self.xp.ndarray and v.ndim == 1 and v.dtype == like.dtype

    def gemm(self, a, b, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, c=None):
        """alpha * op(a) @ op(b) + beta * c. op(a): (M, K), op(b): (K, N), c: (M, N). Returns a new array."""
        if (self._c_matrices(a, b) if c is None else self._c_matrices(a, b, c)):
            return _C.gemm(a, b, trans_a, trans_b, alpha, beta, c)
        return super().gemm(a, b, trans_a, trans_b, alpha, beta, c)

    def bias_add(self, x, b):
        """y = x + b broadcast over the last axis. x: (..., U), b: (U,)."""
        if self._c_matrices(x) and self._c_vector(x, b):
            return _C.bias_add(x, b)
        return super().bias_add(x, b)

    def bias_grad(self, dy):
        """db = sum of dy over every axis but the last. dy: (..., U) -> (U,)."""
        if self._c_matrices(dy):
            return _C.bias_grad(dy)
        return super().bias_grad(dy)

    def dense_forward(self, x, w, b=None):
        """y = x @ w + b. x: (N, I), w: (I, U), b: (U,) or None -> (N, U)."""
        if self._c_matrices(x, w) and (b is None or self._c_vector(x, b)):
            return _C.dense_forward(x, w, b)
        return super().dense_forward(x, w, b)

    def dense_backward(self, dy, x, w, has_bias=True, need_dx=True):
        """dx = dy @ w.T, dw = x.T @ dy, db = sum(dy, 0). Returns (dx or None, dw, db or None)."""
        if not self._c_matrices(dy, x, w):
            return super().dense_backward(dy, x, w, has_bias, need_dx)
        dw = _C.gemm(x, dy, True, False)
        db = _C.bias_grad(dy) if has_bias else None
        dx = _C.gemm(dy, w, False, True) if need_dx else None
        return dx, dw, db

    # ------------------------------------------------------------------ activations / softmax

    # ------------------------------------------------------------------ fused losses

    # ------------------------------------------------------------------ optimizer updates
