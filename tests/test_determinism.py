"""Reproducible training: the same seed and thread count give bit-identical weights; 1 and 2
threads agree within float rounding; OMP_NUM_THREADS and set_num_threads are honoured."""

import os
import subprocess
import sys

import numpy as np
import pytest

import pyminidl
from pyminidl import layers

pytestmark = pytest.mark.sanitize


def _seeded(seed, threads):
    """Set the thread count and the seed; returns the generator of the (seed-independent) data."""
    pyminidl.config.set_num_threads(threads)
    pyminidl.utils.set_random_seed(seed)
    return np.random.default_rng(0)


def _fit(model, x, y, batch_size, epochs, **compile_args):
    """(weights, per-epoch losses) after a shuffled fit."""
    model.compile(**compile_args)
    history = model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0)
    return model.get_weights(), history.history["loss"]


def _train_mlp(seed, threads):
    rng = _seeded(seed, threads)
    x = rng.standard_normal((512, 40)).astype("float32")
    y = (x[:, :3].sum(axis=1) > 0).astype("int64") + (x[:, 3] > 1).astype("int64")
    model = pyminidl.models.Sequential([
        layers.Dense(300, input_dim=40, activation="relu"),  # 300x40 and 512x300: the packed GEMM path
        layers.Dropout(0.2),
        layers.Dense(64, activation="tanh"),
        layers.Dense(3, activation="softmax"),
    ])
    return _fit(model, x, y, 64, 3, optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def _train_lstm(seed, threads):
    rng = _seeded(seed, threads)
    x = rng.integers(0, 40, (96, 15))
    x[::3, :4] = 0  # pre-padding on a third of the rows, masked by the Embedding
    y = (x[:, -1] > 20).astype("float32")
    model = pyminidl.models.Sequential([
        layers.Input((15,), dtype="int32"),
        layers.Embedding(40, 8, mask_zero=True),
        layers.LSTM(32, dropout=0.1),  # batch 32: one row block per thread on two threads
        layers.Dense(1, activation="sigmoid"),
    ])
    return _fit(model, x, y, 32, 2, optimizer="rmsprop", loss="binary_crossentropy")


def _train_cnn(seed, threads):
    rng = _seeded(seed, threads)
    x = rng.standard_normal((96, 10, 10, 1)).astype("float32")
    y = (x[:, :5].mean(axis=(1, 2, 3)) > 0).astype("int64") + (x[:, :, :5].mean(axis=(1, 2, 3)) > 0.1)
    model = pyminidl.models.Sequential([
        layers.Input(shape=(10, 10, 1)),
        layers.Conv2D(8, 3, padding="same", activation="relu"),
        layers.Conv2D(16, 3, strides=2, activation="relu"),
        layers.Flatten(),
        layers.Dense(3, activation="softmax"),
    ])
    return _fit(model, x, y.astype("int64"), 32, 2, optimizer="adam", loss="sparse_categorical_crossentropy")


# The three models cover the dense, recurrent and convolution kernels; each trainer builds its
# model from the seed and returns (weights, per-epoch losses).
TRAINERS = {"mlp": (_train_mlp, 7), "lstm": (_train_lstm, 3), "cnn": (_train_cnn, 3)}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("model", list(TRAINERS))
def test_same_seed_and_threads_train_bit_identically(model, threads):
    train, seed = TRAINERS[model]
    (w1, loss1), (w2, loss2) = train(seed, threads), train(seed, threads)
    assert loss1 == loss2
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("model", list(TRAINERS))
def test_one_and_two_threads_agree_within_rounding(model):
    # A few epochs of Adam or RMSprop amplify last-bit differences a little; 1e-4 relative is far below
    # anything a wrong partition of the work (a lost or doubled block) would give.
    train, seed = TRAINERS[model]
    (w1, loss1), (w2, loss2) = train(seed, 1), train(seed, 2)
    np.testing.assert_allclose(loss1, loss2, rtol=1e-4)
    for a, b in zip(w1, w2):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_another_seed_trains_differently():
    w1, _ = _train_mlp(7, 1)
    w2, _ = _train_mlp(8, 1)
    assert not np.array_equal(w1[0], w2[0])


@pytest.mark.parametrize("value", ["1", "2"])
@pytest.mark.skipif(not pyminidl.backend._compat._C.build_info()["openmp"], reason="built without OpenMP: 1 thread")
def test_omp_num_threads_is_honoured(value):
    env = dict(os.environ, OMP_NUM_THREADS=value)
    out = subprocess.run([sys.executable, "-c", "import pyminidl; print(pyminidl.config.get_num_threads())"],
                         env=env, capture_output=True, text=True, check=True, cwd=os.path.dirname(__file__))
    assert out.stdout.strip() == value


def test_set_num_threads_is_honoured_by_the_kernels():
    pyminidl.config.set_num_threads(1)
    assert pyminidl.config.get_num_threads() == 1
    assert pyminidl.backend._compat._C.build_info()["max_threads"] == 1
