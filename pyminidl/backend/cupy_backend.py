"""CupyBackend: the reference ops run on an NVIDIA GPU through CuPy (xp = cupy).

Arrays stay on the device end to end; they cross to the host only in ``asarray`` /
``to_numpy``. Ops where CuPy mirrors NumPy need no override.
"""

from pyminidl.backend import _compat
from pyminidl.backend.base import Backend


class CupyBackend(Backend):
    name = "cupy"

    def __init__(self):
        if _compat.cupy is None:
            raise RuntimeError(
                "The 'cupy' backend needs CuPy and an NVIDIA GPU: CuPy is not available "
                f"({_compat.CUPY_IMPORT_ERROR}). Install it with `pip install pyminidl[gpu]`."
            )
        if not _compat.cupy_device_available():
            raise RuntimeError("The 'cupy' backend needs an NVIDIA GPU: CuPy found no CUDA device.")
        super().__init__(xp=_compat.cupy)

    def to_numpy(self, x):
        return _compat.cupy.asnumpy(x)

    def _uniform(self, shape, seed):
        # The mask is drawn on the device: the host Philox would cost a transfer per call
        return self.xp.random.default_rng(seed).random(shape)
