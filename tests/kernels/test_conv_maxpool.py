"""conv_maxpool_forward: a convolution and the max pooling after it in one call (csrc/conv.h),
bit for bit the two kernels one after the other, and the Sequential models that use it."""

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


def _tutorial_cnn(seed):
    pyminidl.utils.set_random_seed(seed)
    layers = pyminidl.layers
    model = pyminidl.Sequential([
        layers.Input(shape=(12, 12, 1)), layers.Conv2D(8, 3, activation="relu", padding="same"),
        layers.MaxPooling2D(2), layers.Conv2D(16, 3, activation="relu", padding="same"),
        layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_a_cnn_trains_to_the_same_bits_with_and_without_the_fused_pooling(monkeypatch):
    rng = np.random.default_rng(0)
    x, y = rng.random((96, 12, 12, 1), dtype=np.float32), rng.integers(0, 10, 96)
    be = get_backend()
    calls = []
    fused = be.conv_maxpool_forward
    monkeypatch.setattr(be, "conv_maxpool_forward", lambda *a, **k: calls.append(1) or fused(*a, **k))
    runs = []
    for fuse in (True, False):
        if not fuse:
            monkeypatch.setattr(sequential, "_fused_pools", lambda layers, deferred: [None] * len(layers))
        model = _tutorial_cnn(3)
        history = model.fit(x, y, batch_size=32, epochs=2, verbose=0)
        runs.append((history.history["loss"], model.get_weights(), model.predict(x[:20], verbose=0)))
        if fuse:
            assert len(calls) >= 2 * 3 * 2  # both convolutions in each of the 3 steps x 2 epochs
    (loss_a, w_a, p_a), (loss_b, w_b, p_b) = runs
    assert loss_a == loss_b
    assert all(np.array_equal(u, v) for u, v in zip(w_a, w_b))
    np.testing.assert_array_equal(p_a, p_b)


def test_the_pooling_after_a_fused_convolution_reports_its_own_empty_output():
    model = pyminidl.Sequential([pyminidl.layers.Conv2D(2, 3, activation="relu", padding="same"),
                                 pyminidl.layers.MaxPooling2D(4)])
    with pytest.raises(ValueError, match=r"max_pooling2d.*output size would be zero or negative"):
        model.predict(np.ones((1, 3, 3, 1), np.float32), verbose=0)
