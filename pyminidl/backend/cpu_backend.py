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

    # ------------------------------------------------------------------ activations / softmax

    # ------------------------------------------------------------------ fused losses

    # ------------------------------------------------------------------ optimizer updates
