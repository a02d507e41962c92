"""The dropout op pair: the mask is drawn by the backend (on the device for CuPy) from an integer seed."""

import numpy as np
import pytest

from pyminidl import layers
from pyminidl.backend.base import Backend
from pyminidl.testing import gradcheck


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_mask_keeps_one_minus_rate_scaled(backend, rate):
    x = backend.asarray(np.ones((300, 101), np.float32))
    y, mask = backend.dropout_forward(x, rate, seed=3)
    y, mask = backend.to_numpy(y), backend.to_numpy(mask)
    assert y.dtype == mask.dtype == np.float32 and y.shape == mask.shape == (300, 101)
    kept = mask != 0
    assert abs(kept.mean() - (1 - rate)) < 0.01  # 30,300 draws: 4+ standard deviations
    np.testing.assert_allclose(mask[kept], 1 / (1 - rate), rtol=1e-6)
    np.testing.assert_array_equal(y, mask)


def test_same_seed_same_mask_other_seed_other_mask(backend):
    x = backend.asarray(np.ones((64, 33), np.float32))
    a = backend.to_numpy(backend.dropout_forward(x, 0.5, seed=11)[1])
    b = backend.to_numpy(backend.dropout_forward(x, 0.5, seed=11)[1])
    c = backend.to_numpy(backend.dropout_forward(x, 0.5, seed=12)[1])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_noise_shape_broadcasts_and_backward_multiplies(backend, rng):
    x = backend.asarray(rng.standard_normal((5, 7)).astype(np.float32))
    y, mask = backend.dropout_forward(x, 0.5, seed=0, noise_shape=(5, 1))
    assert mask.shape == (5, 1)
    np.testing.assert_array_equal(backend.to_numpy(y), backend.to_numpy(x) * backend.to_numpy(mask))
    dy = backend.asarray(rng.standard_normal((5, 7)).astype(np.float32))
    dx = backend.dropout_backward(dy, mask)
    np.testing.assert_array_equal(backend.to_numpy(dx), backend.to_numpy(dy) * backend.to_numpy(mask))


def test_rate_one_drops_everything(backend):
    y, mask = backend.dropout_forward(backend.asarray(np.ones((3, 4), np.float32)), 1.0, seed=0)
    assert not backend.to_numpy(y).any() and not backend.to_numpy(mask).any()


def test_float64_gradient_with_a_fixed_seed(rng):
    be = Backend()
    x = rng.standard_normal((6, 5))
    dy = rng.standard_normal((6, 5))
    _, mask = be.dropout_forward(x, 0.3, seed=5)
    gradcheck(lambda x_: float((be.dropout_forward(x_, 0.3, seed=5)[0] * dy).sum()), x,
              be.dropout_backward(dy, mask))


def test_the_layer_draws_its_mask_through_the_backend(backend, monkeypatch):
    calls = []
    real = type(backend).dropout_forward

    def counting(self, x, rate, seed, noise_shape=None):
        calls.append((rate, seed, noise_shape))
        return real(self, x, rate, seed, noise_shape)

    monkeypatch.setattr(type(backend), "dropout_forward", counting)
    layer = layers.Dropout(0.25, noise_shape=(None, 1), seed=4)
    x = backend.asarray(np.ones((8, 3), np.float32))
    first, second = layer(x, training=True), layer(x, training=True)
    assert [c[0] for c in calls] == [0.25, 0.25] and calls[0][2] == (8, 1)
    assert calls[0][1] != calls[1][1]  # one seed per call, from the layer's own generator
    again = layers.Dropout(0.25, noise_shape=(None, 1), seed=4)
    np.testing.assert_array_equal(backend.to_numpy(again(x, training=True)), backend.to_numpy(first))
    np.testing.assert_array_equal(backend.to_numpy(again(x, training=True)), backend.to_numpy(second))


def test_host_masks_come_from_one_rekeyed_generator_not_a_new_one_per_call(monkeypatch):
    # Seeding a fresh generator per call (default_rng: a SeedSequence) cost ~10-35 us per Dropout call;
    # the host backends re-key one Philox per thread, and the mask stays a function of the seed alone
    from pyminidl.backend.cpu_backend import CpuBackend

    def refuse(*args, **kwargs):
        raise AssertionError("a new generator was seeded for a mask")

    x = np.ones((33, 7), np.float32)
    expect = (np.random.Generator(np.random.Philox(key=2**40 + 3)).random(x.shape) >= 0.4) / np.float32(0.6)
    layer = layers.Dropout(0.5, seed=1)  # its own generator, seeded once
    monkeypatch.setattr(np.random, "default_rng", refuse)
    for be in (Backend(), CpuBackend()):
        for _ in range(2):
            _, mask = be.dropout_forward(x, 0.4, seed=2**40 + 3)
            np.testing.assert_allclose(mask, expect, rtol=1e-6)
    assert layer(x, training=True).shape == x.shape


def test_a_mask_does_not_depend_on_the_thread_that_draws_it():
    import threading

    x = np.ones((64, 9), np.float32)
    got = {}

    def draw(name):
        got[name] = Backend().dropout_forward(x, 0.5, seed=9)[1]

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for mask in got.values():
        np.testing.assert_array_equal(mask, Backend().dropout_forward(x, 0.5, seed=9)[1])


@pytest.mark.parametrize("seed", [-1, 1.5, True, 2**128])
def test_a_seed_that_is_not_a_non_negative_integer_is_refused(seed):
    with pytest.raises(ValueError, match="seed"):
        Backend().dropout_forward(np.ones((2, 2)), 0.5, seed=seed)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_the_cpu_kernel_draws_the_references_mask_bit_for_bit(dtype, threads):
    # csrc/dropout.cpp computes NumPy's Philox4x64-10 stream itself, split over the threads.
    import pyminidl
    from pyminidl.backend.cpu_backend import CpuBackend

    cpu, ref = CpuBackend(), Backend()
    rng = np.random.default_rng(4)
    pyminidl.config.set_num_threads(threads)
    try:
        for seed in (0, 7, 2**63 - 1, 2**64 + 5, 2**128 - 1):
            for shape in ((0,), (1,), (5,), (17,), (7, 9), (128, 300), (3, 5, 2, 7)):
                x = rng.standard_normal(shape).astype(dtype) * 3
                if x.size:
                    x.reshape(-1)[0] = -0.0  # a dropped -0 keeps the sign of x * +0, as NumPy's product
                for rate in (0.0, 1e-300, 0.25, np.nextafter(0.5, 1.0), 0.999, 1.0):
                    y, mask = cpu.dropout_forward(x, rate, seed)
                    want_y, want_mask = ref.dropout_forward(x, rate, seed)
                    assert y.dtype == mask.dtype == np.dtype(dtype)
                    np.testing.assert_array_equal(mask, want_mask)
                    np.testing.assert_array_equal(y, want_y)
                    np.testing.assert_array_equal(np.signbit(y), np.signbit(want_y))
    finally:
        pyminidl.config.set_num_threads(2)


def test_the_cpu_kernel_refuses_a_rate_outside_zero_to_one():
    from pyminidl.backend._compat import _C

    for rate in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"dropout_forward: argument 'rate' must be in \[0, 1\]"):
            _C.dropout_forward(np.ones(3, np.float32), rate, 0, 0)
    with pytest.raises(TypeError, match="dropout_forward"):
        _C.dropout_forward(np.ones(3, np.int32), 0.5, 0, 0)
