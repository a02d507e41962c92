"""maxpool_backward's argmax check (csrc/pool.cpp maxpool_first_bad_argmax, division-free):
every value an argmax entry can take is accepted exactly when it names a cell of its own
window, on windows narrower than the image, as wide as it, padded and clipped."""

import numpy as np
import pytest

from pyminidl.backend._compat import _C

# (input (N, H, W, C), pool, strides, padding)
GEOMETRIES = [
    ((1, 4, 4, 1), (2, 2), (2, 2), "valid"),
    ((2, 5, 7, 3), (2, 3), (2, 2), "same"),
    ((1, 5, 5, 2), (3, 3), (1, 1), "same"),
    ((1, 3, 6, 1), (3, 6), (1, 1), "valid"),  # a window as wide as the image
    ((1, 6, 3, 2), (4, 1), (2, 1), "same"),  # tall and one column wide
    ((1, 1, 9, 1), (1, 4), (3, 3), "same"),  # 1-D pooling as H = 1
]


def _window(o, stride, pad, k, size):
    start = o * stride - pad
    return max(start, 0), min(start + k, size)


def _pads(size, k, s, padding):
    if padding == "valid":
        return (size - k) // s + 1, 0
    out = -(-size // s)
    return out, max((out - 1) * s + k - size, 0) // 2


@pytest.mark.sanitize
@pytest.mark.parametrize("shape,pool,strides,padding", GEOMETRIES)
def test_every_argmax_value_is_judged_by_its_window(shape, pool, strides, padding):
    n, h, w, c = shape
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    y, argmax = _C.maxpool_forward(x, list(pool), list(strides), padding)
    dy = np.ones(y.shape, np.float32)
    (oh, pt), (ow, pl) = _pads(h, pool[0], strides[0], padding), _pads(w, pool[1], strides[1], padding)
    assert y.shape == (n, oh, ow, c)
    rng = np.random.default_rng(1)
    cells = [(b, i, j, ch) for b in range(n) for i in range(oh) for j in range(ow) for ch in range(c)]
    for b, i, j, ch in [cells[t] for t in rng.choice(len(cells), min(len(cells), 12), replace=False)]:
        r, q = _window(i, strides[0], pt, pool[0], h), _window(j, strides[1], pl, pool[1], w)
        for k in range(-w - 2, h * w + w + 2):
            bad = argmax.copy()
            bad[b, i, j, ch] = k
            inside = k >= 0 and r[0] <= k // w < r[1] and q[0] <= k % w < q[1]
            if inside:
                _C.maxpool_backward(dy, bad, list(shape), list(pool), list(strides), padding)
            else:
                with pytest.raises(ValueError, match="outside its pooling window"):
                    _C.maxpool_backward(dy, bad, list(shape), list(pool), list(strides), padding)
