"""A process SIGKILLed at a random point of a save leaves the previous checkpoint intact and loadable.

Each trial forks a child (cheap: pyminidl is already imported) that saves the model over and over,
each time with new weights, through ``model.save`` and ``save_weights``; the parent kills it with
SIGKILL after a random delay and loads both files: each must load and hold one complete state (every
weight equal to the same counter value). Keras 3 writes in place, so the same kill can leave it a torn
file; ``atomic_write`` makes pyminidl's saves all-or-nothing.
"""

import os
import signal
import sys
import time

import numpy as np
import pytest

import pyminidl as keras

TRIALS = 60

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin",
                                reason="needs fork() (POSIX)")


def _model():
    model = keras.Sequential([keras.Input((200,)), keras.layers.Dense(200), keras.layers.Dense(200)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def _fill(model, value):
    model.set_weights([np.full(w.shape, value, np.float32) for w in model.get_weights()])


def _saver(model, folder, start):
    """The child: save forever, each round a new value; never returns into pytest."""
    try:
        value = start
        while True:
            value += 1
            _fill(model, value)
            model.save(os.path.join(folder, "ck.keras"))
            model.save_weights(os.path.join(folder, "ck.weights.h5"))
    finally:
        os._exit(0)


def _single_value(weights):
    values = {float(v) for w in weights for v in np.unique(w)}
    assert len(values) == 1, f"a torn checkpoint: values {sorted(values)[:5]}"
    return values.pop()


def test_sigkill_at_random_points_never_loses_the_previous_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    model = _model()
    _fill(model, 0)
    model.save(tmp_path / "ck.keras")
    model.save_weights(tmp_path / "ck.weights.h5")
    probe = _model()
    seen, last = set(), 0.0
    for trial in range(TRIALS):
        pid = os.fork()
        if pid == 0:
            _saver(model, str(tmp_path), trial * 1000)
        time.sleep(rng.uniform(0.0, 0.08))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        value = _single_value(keras.models.load_model(tmp_path / "ck.keras").get_weights())
        probe.load_weights(tmp_path / "ck.weights.h5")
        _single_value(probe.get_weights())
        seen.add(value != last)
        last = value
    # the kills landed while saves were running (new states appeared), and every file stayed whole
    assert True in seen
    leftovers = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert len(leftovers) <= TRIALS  # a killed save leaves at most its own hidden temporary file
