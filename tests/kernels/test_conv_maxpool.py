"""conv_maxpool_forward: a convolution and the max pooling after it in one call (csrc/conv.h),
bit for bit the two kernels one after the other; conv_maxpool_backward: its weight and bias
gradients from the pooling's gradient, within rounding of maxpool_backward then conv_backward;
and the Sequential models that use them."""

import numpy as np
import pytest

import pyminidl
from pyminidl.backend import get_backend
from pyminidl.backend._compat import _C
from pyminidl.backend.base import Backend
from pyminidl.models import sequential

pytestmark = pytest.mark.sanitize

ISAS = ["baseline", "avx2", "avx512"]

# (x shape, kernel, padding, strides, dilation, groups, filters, pool, pool strides, pool padding):
# first layers (1-4 channels with padding: pooled image by image) and every other path.
CASES = [
    ((8, 28, 28, 1), 3, "same", 1, 1, 1, 32, 2, 2, "valid"),
    ((5, 9, 11, 3), 3, "same", 1, 1, 1, 8, 2, 2, "valid"),
    ((4, 7, 7, 2), 5, "same", 1, 1, 1, 5, 3, 2, "same"),
    ((3, 10, 9, 4), 3, "same", 2, 1, 1, 6, 2, 1, "same"),
    ((2, 12, 12, 1), 3, "same", 1, 2, 1, 7, 2, 2, "valid"),
    ((1, 8, 8, 1), 3, "same", 1, 1, 1, 4, 2, 2, "valid"),  # fewer images than threads
    ((3, 9, 11, 3), 3, "valid", 1, 1, 1, 8, 2, 2, "valid"),  # no padding: the two kernels
    ((4, 14, 14, 8), 3, "same", 1, 1, 2, 16, 2, 2, "valid"),  # groups, 8 channels
    ((0, 6, 6, 1), 3, "same", 1, 1, 1, 4, 2, 2, "valid"),  # an empty batch
]


def _case(rng, shape, k, pad, s, dil, groups, filters):
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((k, k, shape[3] // groups, filters)).astype(np.float32)
    b = rng.standard_normal(filters).astype(np.float32)
    return x, w, b, ((s, s), pad, (dil, dil), groups)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[0])) + f"-{c[2]}-g{c[5]}")
def test_fused_forward_is_the_two_kernels_bit_for_bit(isa, case):
    shape, k, pad, s, dil, groups, filters, pool, ps, ppad = case
    pyminidl.config.set_cpu_capability(isa)
    try:
        x, w, b, args = _case(np.random.default_rng(1), shape, k, pad, s, dil, groups, filters)
        be = get_backend()
        want_y, want_arg = be.maxpool_forward(be.conv_forward(x, w, b, *args), (pool, pool), (ps, ps), ppad)
        for threads in (1, 2):
            pyminidl.config.set_num_threads(threads)
            y, arg = be.conv_maxpool_forward(x, w, b, *args, (pool, pool), (ps, ps), ppad)
            np.testing.assert_array_equal(y, want_y)
            np.testing.assert_array_equal(arg, want_arg)
        ref_y, _ = Backend().conv_maxpool_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                                                  *args, (pool, pool), (ps, ps), ppad)
        np.testing.assert_allclose(y, ref_y, rtol=1e-4, atol=1e-4)
    finally:
        pyminidl.config.set_cpu_capability("avx512")
        pyminidl.config.set_num_threads(2)


def test_fused_forward_refuses_an_empty_pooling():
    x = np.ones((2, 3, 3, 1), np.float32)
    w = np.ones((3, 3, 1, 2), np.float32)
    with pytest.raises(ValueError, match=r"conv_maxpool_forward.*output would be empty"):
        _C.conv_maxpool_forward(x, w, None, (1, 1), (0, 0), (1, 1), (1, 1), 1, (2, 2), (2, 2), "valid")


# Pool windows of up to 4 cells take the pooled kernels on a first layer (1-4 channels, one group);
# the rest (3x3 windows, groups, 8 channels, no vector ISA) route dz and run the weight gradient.
BACKWARD_CASES = CASES + [
    ((6, 13, 13, 1), 3, "same", 1, 1, 1, 17, 2, 2, "same"),  # odd: 'same' pooling's padded cells
    ((5, 9, 9, 1), 3, "same", 1, 1, 1, 16, 2, 2, "valid"),  # odd: the last row and column in no window
    ((3, 8, 10, 2), 3, "same", 1, 1, 1, 40, 1, 1, "valid"),  # 1-cell windows, a tail of filters
    ((3, 11, 8, 3), 5, "same", 1, 1, 1, 9, 2, 1, "valid"),  # overlapping windows, 75 patch rows
]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("case", BACKWARD_CASES, ids=lambda c: "x".join(map(str, c[0])) + f"-{c[2]}-p{c[7]}-g{c[5]}")
def test_pooled_weight_gradient_is_the_two_kernels_within_rounding(isa, case):
    shape, k, pad, s, dil, groups, filters, pool, ps, ppad = case
    window = ((pool, pool), (ps, ps), ppad)
    pyminidl.config.set_cpu_capability(isa)
    try:
        rng = np.random.default_rng(2)
        x, w, b, args = _case(rng, shape, k, pad, s, dil, groups, filters)
        be = get_backend()
        z = be.conv_forward(x, w, b, *args)
        y, argmax = be.maxpool_forward(z, *window)
        dp = rng.standard_normal(y.shape).astype(np.float32)
        _, want_dw, want_db = be.conv_backward(be.maxpool_backward(dp, argmax, z.shape, *window), x, w, *args,
                                               need_dx=False)
        got = {}
        for threads in (1, 2, 1):
            pyminidl.config.set_num_threads(threads)
            dw, db = be.conv_maxpool_backward(dp, argmax, x, w, *args, *window)
            assert dw.shape == w.shape and db.shape == (filters,)
            if threads in got:  # the same bits at any thread count, run to run
                np.testing.assert_array_equal(dw, got[threads][0])
            got[threads] = (dw, db)
            np.testing.assert_array_equal(dw, got[1][0])
            np.testing.assert_array_equal(db, got[1][1])
        scale = max(1.0, float(np.abs(want_dw).max(initial=0.0)))
        np.testing.assert_allclose(dw, want_dw, rtol=1e-5, atol=1e-5 * scale)
        np.testing.assert_allclose(db, want_db, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(want_db).max(initial=0.0))))
        f8 = [a.astype(np.float64) for a in (dp, x, w)]
        ref_dw, ref_db = Backend().conv_maxpool_backward(f8[0], argmax, f8[1], f8[2], *args, *window)
        np.testing.assert_allclose(dw, ref_dw, rtol=1e-4, atol=1e-4 * scale)
        np.testing.assert_allclose(db, ref_db, rtol=1e-4, atol=1e-4 * scale)
        _, none = be.conv_maxpool_backward(dp, argmax, x, w, *args, *window, has_bias=False)
        assert none is None
    finally:
        pyminidl.config.set_cpu_capability("avx512")
        pyminidl.config.set_num_threads(2)


def _pooled_case():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 6, 6, 1)).astype(np.float32)
    w = rng.standard_normal((3, 3, 1, 4)).astype(np.float32)
    y, argmax = _C.conv_maxpool_forward(x, w, None, (1, 1), (1, 1), (6, 6), (1, 1), 1, (2, 2), (2, 2), "valid")
    return x, w, np.ones_like(y), argmax


@pytest.mark.parametrize("isa", ISAS)
def test_pooled_weight_gradient_refuses_an_argmax_outside_its_window(isa):
    pyminidl.config.set_cpu_capability(isa)
    try:
        x, w, dp, argmax = _pooled_case()
        argmax = argmax.copy()
        argmax[1, 2, 0, 3] = 0  # image 1's cell (2, 0) covers output rows 4-5: index 0 is not in it
        with pytest.raises(ValueError, match=r"conv_maxpool_backward: argmax value 0 at flat index 63 lies outside"):
            _C.conv_maxpool_backward(dp, argmax, x, w, (1, 1), (1, 1), (6, 6), (1, 1), 1, (2, 2), (2, 2), "valid")
    finally:
        pyminidl.config.set_cpu_capability("avx512")


@pytest.mark.parametrize("isa", ISAS)
def test_pooled_weight_gradient_refuses_a_minus_one_where_a_window_has_padded_cells(isa):
    # 'same' pooling of a 5x5 output: the last row and column of windows hold padded cells, whose
    # candidate slots no argmax may name.
    pyminidl.config.set_cpu_capability(isa)
    try:
        rng = np.random.default_rng(5)
        x = rng.standard_normal((1, 5, 5, 1)).astype(np.float32)
        w = rng.standard_normal((3, 3, 1, 3)).astype(np.float32)
        args = ((1, 1), (1, 1), (5, 5), (1, 1), 1, (2, 2), (2, 2), "same")
        y, argmax = _C.conv_maxpool_forward(x, w, None, *args)
        argmax = argmax.copy()
        argmax[0, 2, 2, 1] = -1
        with pytest.raises(ValueError, match=r"argmax value -1 at flat index 25 lies outside its pooling window"):
            _C.conv_maxpool_backward(np.ones_like(y), argmax, x, w, *args)
    finally:
        pyminidl.config.set_cpu_capability("avx512")


def test_pooled_weight_gradient_refuses_a_gradient_of_another_shape():
    x, w, dp, argmax = _pooled_case()
    with pytest.raises(ValueError, match=r"argument 'dp' must have shape \(2, 3, 3, 4\) for this input shape and "
                                         r"geometry. Received: shape=\(2, 3, 3, 3\)"):
        _C.conv_maxpool_backward(dp[..., :3], argmax, x, w, (1, 1), (1, 1), (6, 6), (1, 1), 1, (2, 2), (2, 2), "valid")
    with pytest.raises(ValueError, match=r"argument 'argmax' must have shape \(2, 3, 3, 4\) for this input shape "
                                         r"and geometry. Received: shape=\(1, 3, 3, 4\)"):
        _C.conv_maxpool_backward(dp, argmax[:1], x, w, (1, 1), (1, 1), (6, 6), (1, 1), 1, (2, 2), (2, 2), "valid")
    with pytest.raises(TypeError, match=r"argmax"):
        _C.conv_maxpool_backward(dp, argmax.astype(np.int64), x, w, (1, 1), (1, 1), (6, 6), (1, 1), 1, (2, 2), (2, 2),
                                 "valid")


def _tutorial_cnn(seed):
    pyminidl.utils.set_random_seed(seed)
    layers = pyminidl.layers
    model = pyminidl.Sequential([
        layers.Input(shape=(12, 12, 1)), layers.Conv2D(8, 3, activation="relu", padding="same"),
        layers.MaxPooling2D(2), layers.Conv2D(16, 3, activation="relu", padding="same"),
        layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_a_cnn_trains_the_same_with_and_without_the_fused_pooling(monkeypatch):
    # The fused forward gives the two kernels' bits, so predictions from the same weights are equal;
    # the first layer's pooled weight gradient sums in another order, so training agrees to rounding.
    rng = np.random.default_rng(0)
    x, y = rng.random((96, 12, 12, 1), dtype=np.float32), rng.integers(0, 10, 96)
    be = get_backend()
    calls = {"forward": 0, "backward": 0}
    fused_forward, fused_backward = be.conv_maxpool_forward, be.conv_maxpool_backward

    def count(name, fn):
        return lambda *a, **k: calls.__setitem__(name, calls[name] + 1) or fn(*a, **k)

    monkeypatch.setattr(be, "conv_maxpool_forward", count("forward", fused_forward))
    monkeypatch.setattr(be, "conv_maxpool_backward", count("backward", fused_backward))
    runs = []
    for fuse in (True, False):
        if not fuse:
            monkeypatch.setattr(sequential, "_fused_pools", lambda layers, deferred: [None] * len(layers))
        model = _tutorial_cnn(3)
        first = model.predict(x[:20], verbose=0)
        history = model.fit(x, y, batch_size=32, epochs=2, verbose=0)
        runs.append((first, history.history["loss"], model.get_weights()))
        if fuse:  # both convolutions pool in each of the 3 steps x 2 epochs (and the predict); the first's
            assert calls["forward"] >= 2 * 3 * 2 and calls["backward"] == 3 * 2  # backward only: it needs no dx
    (p_a, loss_a, w_a), (p_b, loss_b, w_b) = runs
    np.testing.assert_array_equal(p_a, p_b)
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-5)
    for u, v in zip(w_a, w_b):
        np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-5)


def test_the_pooling_after_a_fused_convolution_reports_its_own_empty_output():
    model = pyminidl.Sequential([pyminidl.layers.Conv2D(2, 3, activation="relu", padding="same"),
                                 pyminidl.layers.MaxPooling2D(4)])
    with pytest.raises(ValueError, match=r"max_pooling2d.*output size would be zero or negative"):
        model.predict(np.ones((1, 3, 3, 1), np.float32), verbose=0)
