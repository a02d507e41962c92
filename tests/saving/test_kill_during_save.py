"""A process SIGKILLed at a random point of a save leaves the previous checkpoint intact and loadable.

Each trial forks a child (cheap: pyminidl is already imported) that saves the model over and over,
each time with new weights, through ``model.save`` and ``save_weights``, reporting each finished round
through a pipe; once it has finished one, the parent kills it with SIGKILL after a random delay of up
to 1.5 rounds and loads both files: each must load and hold one complete state (every weight equal to
the same counter value), the last finished round or the one after it. Keras 3 writes in place, so the same kill can leave it a torn
file; ``atomic_write`` makes pyminidl's saves all-or-nothing.
"""

import os
import signal
import struct
import sys
import time

import numpy as np
import pytest

import pyminidl as keras

TRIALS = 40

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin",
                                reason="needs fork() (POSIX)")


def _model():
    model = keras.Sequential([keras.Input((200,)), keras.layers.Dense(200), keras.layers.Dense(200)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def _fill(model, value):
    model.set_weights([np.full(w.shape, value, np.float32) for w in model.get_weights()])


def _saver(model, folder, start, report):
    """The child: save forever, each round a new value, reporting each finished round; never returns."""
    try:
        value = start
        while True:
            value += 1
            _fill(model, value)
            model.save(os.path.join(folder, "ck.keras"))
            model.save_weights(os.path.join(folder, "ck.weights.h5"))
            os.write(report, struct.pack("<q", value))
    finally:
        os._exit(0)


def _single_value(weights):
    values = {float(v) for w in weights for v in np.unique(w)}
    assert len(values) == 1, f"a torn checkpoint: values {sorted(values)[:5]}"
    return values.pop()


def _last_report(read_end, data):
    """The value of the last round the child reported finished (``data``: what was read already)."""
    while True:
        chunk = os.read(read_end, 1 << 16)
        if not chunk:
            return struct.unpack("<q", data[-8:])[0]
        data += chunk


def test_sigkill_at_random_points_never_loses_the_previous_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    model = _model()
    start = time.perf_counter()
    _fill(model, 0)
    model.save(tmp_path / "ck.keras")
    model.save_weights(tmp_path / "ck.weights.h5")
    cycle = time.perf_counter() - start  # one round of saves on this machine, now
    probe = _model()
    for trial in range(TRIALS):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            _saver(model, str(tmp_path), trial * 1000, write_end)
        os.close(write_end)
        first = os.read(read_end, 8)  # one round done: the kill then lands anywhere in the next ones
        assert len(first) == 8
        time.sleep(rng.uniform(0.0, 1.5 * cycle))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        done = _last_report(read_end, first)
        os.close(read_end)
        value = _single_value(keras.models.load_model(tmp_path / "ck.keras").get_weights())
        probe.load_weights(tmp_path / "ck.weights.h5")
        weights_value = _single_value(probe.get_weights())
        # each file holds the last finished round or the one after it (renamed, then killed): never older
        assert done <= value <= done + 1 and done <= weights_value <= done + 1
