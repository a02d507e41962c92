"""maxpool_backward's argmax check (csrc/pool_impl.h: the backward counts the entries it routes;
a short count has pool.cpp's maxpool_first_bad_argmax name the first bad one): every value an
argmax entry can take is accepted exactly when it names a cell of its own window, on windows
narrower than the image, as wide as it, padded and clipped."""

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


@pytest.mark.sanitize
@pytest.mark.parametrize("c", [16, 19, 35])  # full channel blocks, with and without a tail
@pytest.mark.parametrize("pool,strides,padding", [((2, 2), (2, 2), "valid"), ((3, 3), (2, 2), "same")])
def test_the_first_bad_entry_is_named_when_several_are_bad(c, pool, strides, padding):
    """The backward counts the entries it routes (in parallel, over full blocks and the scalar
    tail); a short count must still name the lowest bad flat index, whichever thread saw it."""
    shape = (6, 20, 20, c)  # above the parallel grain: rows split over threads
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    y, argmax = _C.maxpool_forward(x, list(pool), list(strides), padding)
    dy = np.ones(y.shape, np.float32)
    flat = argmax.reshape(-1)
    rng = np.random.default_rng(3)
    for _ in range(4):
        bad = flat.copy()
        where = np.sort(rng.choice(flat.size, 3, replace=False))
        bad[where] = rng.choice([-1, 10**6, 2**31 - 1, int(flat[where[0]]) + 3 * shape[2]], 3)
        bad[where[0]] = -5  # the first: surely outside
        with pytest.raises(ValueError, match=rf"argmax value -5 at flat index {where[0]} lies outside"):
            _C.maxpool_backward(dy, bad.reshape(argmax.shape), list(shape), list(pool), list(strides), padding)


@pytest.mark.parametrize("c", [1, 16, 19])
def test_a_valid_argmax_routes_every_entry(c):
    """Every in-window value is accepted, also one that is not the forward's maximum: each dy
    lands on the cell its argmax names."""
    shape = (3, 8, 8, c)
    y, argmax = _C.maxpool_forward(np.zeros(shape, np.float32), [2, 2], [2, 2], "valid")
    rng = np.random.default_rng(4)
    oh, ow = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
    ih = 2 * oh[None, :, :, None] + rng.integers(0, 2, argmax.shape)
    iw = 2 * ow[None, :, :, None] + rng.integers(0, 2, argmax.shape)
    moved = (ih * 8 + iw).astype(np.int32)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = _C.maxpool_backward(dy, moved, list(shape), [2, 2], [2, 2], "valid")
    want = np.zeros(shape, np.float32)
    b, i, j, ch = np.indices(argmax.shape)
    want[b, ih, iw, ch] = dy
    np.testing.assert_array_equal(dx, want)
