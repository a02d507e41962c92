"""A training job the multi-process tests start under ``mpirun`` (and once as one plain process).

    python mpi_job.py OUT_DIR MODE        MODE: dp (DataParallel), single (no distribution),
                                          mismatch (rank 1 builds a bigger model),
                                          raise (rank 1 raises in its third step),
                                          kill (rank 1 is killed by SIGKILL in its third step),
                                          backup (MLP, 3 epochs with BackupAndRestore; with
                                          PYMINIDL_TEST_KILL=1 rank 1 is killed in epoch 2)

Each process writes OUT_DIR/rank<r>.npz: every model's weights, history, evaluate and predict.
"""

import os
import signal
import sys

import numpy as np

import pyminidl as keras
from pyminidl import distribution

GLOBAL_BATCH = 24


def _mlp(extra=0):
    return keras.Sequential([keras.layers.Input((12,)), keras.layers.Dense(16 + extra, activation="relu"),
                             keras.layers.Dense(3, activation="softmax")])


def _cnn():
    L = keras.layers
    return keras.Sequential([L.Input((6, 6, 1)), L.Conv2D(4, 3, activation="relu"), L.Flatten(),
                             L.Dense(3, activation="softmax")])


def _lstm():
    L = keras.layers
    return keras.Sequential([L.Input((5, 4)), L.LSTM(6), L.Dense(3, activation="softmax")])


def _models():
    """(name, builder, input shape): the layer families this build has."""
    out = [("mlp", _mlp, (12,))]
    if hasattr(keras.layers, "Conv2D"):
        out.append(("cnn", _cnn, (6, 6, 1)))
    if hasattr(keras.layers, "LSTM"):
        out.append(("lstm", _lstm, (5, 4)))
    return out


class _FailAt(keras.callbacks.Callback):
    def __init__(self, kill, epoch=0):
        super().__init__()
        self.kill, self.at_epoch, self.epoch = kill, epoch, -1

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if batch == 2 and self.epoch == self.at_epoch and distribution.rank() == 1:
            if self.kill:
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError("rank 1 fails on purpose")


def run_backup(out_dir):
    """3 epochs of the MLP with a BackupAndRestore in OUT_DIR/backup (rank 1 killed in epoch 2 on request)."""
    distribution.initialize()
    distribution.set_distribution(distribution.DataParallel())
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((98, 12)).astype("float32"), rng.integers(0, 3, 98)
    keras.random.seed(7)
    model = _mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    callbacks = [keras.callbacks.BackupAndRestore(os.path.join(out_dir, "backup"))]
    if os.environ.get("PYMINIDL_TEST_KILL") == "1":
        callbacks.append(_FailAt(kill=True, epoch=1))
    model.fit(x, y, batch_size=GLOBAL_BATCH, epochs=3, verbose=0, callbacks=callbacks)
    weights = {f"mlp/w{i}": w for i, w in enumerate(model.get_weights())}
    np.savez(os.path.join(out_dir, f"rank{distribution.rank()}.npz"), **weights)


def run(out_dir, mode):
    if mode == "backup":
        return run_backup(out_dir)
    distribution.initialize()
    if mode != "single":
        distribution.set_distribution(distribution.DataParallel(bucket_cap_mb=0.001))
    rank = distribution.rank()
    rng = np.random.default_rng(0)
    result = {}
    for name, build, shape in _models():
        x = rng.standard_normal((98,) + shape).astype("float32")  # 98 = 4 * 24 + 2: on 3 ranks rank 0 pads
        y = rng.integers(0, 3, 98)
        keras.random.seed(7 + rank if mode != "single" else 7)  # rank 0's draws are the ones kept
        model = _mlp(extra=rank) if mode == "mismatch" else build()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        callbacks = [keras.callbacks.CSVLogger(os.path.join(out_dir, f"log_{name}.csv"))]
        if mode in ("raise", "kill"):
            callbacks.append(_FailAt(kill=mode == "kill"))
        history = model.fit(x, y, batch_size=GLOBAL_BATCH, epochs=2, verbose=0, callbacks=callbacks)
        for i, w in enumerate(model.get_weights()):
            result[f"{name}/w{i}"] = w
        for key, values in history.history.items():
            result[f"{name}/history/{key}"] = np.asarray(values)
        result[f"{name}/evaluate"] = np.asarray(model.evaluate(x, y, batch_size=10, verbose=0))
        result[f"{name}/predict"] = model.predict(x, batch_size=16, verbose=0)
    np.savez(os.path.join(out_dir, f"rank{rank}.npz"), **result)


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2])
