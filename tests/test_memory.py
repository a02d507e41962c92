"""No leaks: long loops of kernel calls, forward/backward and fit keep the process's memory flat."""

import gc
import os
import sys

import numpy as np
import pytest

import pyminidl
from pyminidl import layers
from pyminidl.backend._compat import _C

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm"),
    # ASan keeps freed memory in quarantine, so the resident size grows by design there.
    pytest.mark.skipif(bool(os.environ.get("PYMINIDL_SANITIZED")), reason="RSS is meaningless under ASan"),
]


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def _growth_mb(step, warmup=200, repeats=3000):
    for _ in range(warmup):
        step()
    gc.collect()
    before = _rss_mb()
    for _ in range(repeats):
        step()
    gc.collect()
    return _rss_mb() - before


def test_kernel_calls_do_not_leak():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((64, 96), dtype=np.float32), rng.standard_normal((96, 80), dtype=np.float32)
    p, g = np.zeros(4096, np.float32), rng.standard_normal(4096, dtype=np.float32)
    m, v = np.zeros_like(p), np.zeros_like(p)

    def step():
        y = _C.gemm(a, b)
        s = _C.softmax_forward(y)
        _C.activation_backward("tanh", s, None, _C.activation_forward("tanh", y))
        _C.adam_update(p, g, m, v, None, 1e-3, 1)
        try:
            _C.gemm(a, a)  # the error path must free what it allocated too
        except ValueError:
            pass

    # 3000 steps allocate ~600 MB in total: a leak of any output would show as tens of MB.
    assert _growth_mb(step) < 8


def test_training_steps_do_not_leak():
    model = pyminidl.models.Sequential([layers.Dense(128, input_dim=64, activation="relu"),
                                        layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 64), dtype=np.float32)
    y = rng.integers(0, 10, size=32)
    assert _growth_mb(lambda: model.train_on_batch(x, y)) < 8


def test_repeated_fit_does_not_leak():
    model = pyminidl.models.Sequential([layers.Dense(32, input_dim=16, activation="relu"), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((256, 16), dtype=np.float32), rng.standard_normal((256, 1), dtype=np.float32)
    assert _growth_mb(lambda: model.fit(x, y, batch_size=64, epochs=1, verbose=0), warmup=20, repeats=300) < 8


def test_lstm_training_steps_do_not_leak():
    model = pyminidl.models.Sequential([layers.Input((12,), dtype="int32"), layers.Embedding(50, 8, mask_zero=True),
                                        layers.LSTM(16), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 50, size=(16, 12))
    y = rng.integers(0, 2, size=16).astype("float32")
    assert _growth_mb(lambda: model.train_on_batch(x, y), warmup=50, repeats=600) < 8


def test_cnn_training_steps_do_not_leak():
    model = pyminidl.models.Sequential([layers.Input(shape=(8, 8, 1)),
                                        layers.Conv2D(8, 3, padding="same", activation="relu"),
                                        layers.Conv2D(8, 3, strides=2, activation="relu"), layers.Flatten(),
                                        layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 10, size=16)
    assert _growth_mb(lambda: model.train_on_batch(x, y), warmup=100, repeats=1000) < 8
