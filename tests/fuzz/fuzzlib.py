"""Hypothesis strategies for hostile arrays: any dtype, rank, size (0 included), layout
(C, Fortran, strided, transposed, negative strides), read-only, NaN and Inf; and the case
counts per entry point that tests/fuzz/conftest.py prints."""

import collections

import numpy as np
from hypothesis import strategies as st

DTYPES = [np.float32, np.float64, np.int32, np.int64, np.float16, np.bool_]
FLOAT_DTYPES = [np.float32, np.float64]
CASES = collections.defaultdict(lambda: {"accepted": 0, "rejected": 0})
SIZES = st.sampled_from([0, 1, 1, 2, 3, 5, 7, 8, 16, 17, 33])


@st.composite
def shapes(draw, min_rank=0, max_rank=4, sizes=SIZES):
    rank = draw(st.integers(min_rank, max_rank))
    return tuple(draw(sizes) for _ in range(rank))


def _layout(draw, base):
    """Return ``base``'s values in a random memory layout."""
    kind = draw(st.sampled_from(["c", "c", "fortran", "strided", "reversed", "transposed"]))
    if kind == "fortran":
        return np.asfortranarray(base)
    if kind == "strided" and base.ndim:
        big = np.repeat(base, 2, axis=-1)
        return big[..., ::2]
    if kind == "reversed" and base.ndim:
        return np.ascontiguousarray(base[..., ::-1])[..., ::-1]
    if kind == "transposed" and base.ndim >= 2:
        return np.ascontiguousarray(np.swapaxes(base, -1, -2)).swapaxes(-1, -2)
    return base


@st.composite
def arrays(draw, shape=None, dtypes=None, special=True, min_rank=0, max_rank=4):
    """A random array; ``shape``/``dtypes`` pin those, ``special`` sprinkles NaN/Inf."""
    dtype = np.dtype(draw(st.sampled_from(dtypes or DTYPES)))
    shape = draw(shapes(min_rank, max_rank)) if shape is None else tuple(shape)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if dtype == np.bool_:
        base = rng.random(shape) > 0.5
    elif dtype.kind == "i":
        base = rng.integers(-5, 5, size=shape).astype(dtype)
    else:
        base = (rng.standard_normal(shape) * draw(st.sampled_from([1.0, 10.0]))).astype(dtype)
        if special and base.size and draw(st.booleans()):
            flat = base.reshape(-1)
            flat[rng.integers(0, flat.size)] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    out = _layout(draw, base)
    if draw(st.integers(0, 9)) == 0:
        out.setflags(write=False)
    return out
