"""ModelCheckpoint, BackupAndRestore (a fit killed mid-epoch resumes bit-identically) and JSONLogger."""

import json
import os
import signal
import sys

import numpy as np
import pytest

import pyminidl as keras
from pyminidl import callbacks, layers


def _data():
    rng = np.random.default_rng(1)
    return rng.random((48, 5)).astype("float32"), rng.integers(0, 3, 48)


def _model(seed=3):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((5,)), layers.Dense(12, activation="relu"), layers.Dropout(0.4),
                              layers.Dropout(0.2, seed=5), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_checkpoint_filepath_formatting_and_every_epoch(tmp_path):
    x, y = _data()
    path = str(tmp_path / "ck" / "m-{epoch:02d}-{val_loss:.2f}.keras")
    history = _model().fit(x, y, epochs=3, validation_split=0.25, verbose=0,
                           callbacks=[callbacks.ModelCheckpoint(path)])
    names = sorted(os.listdir(tmp_path / "ck"))
    assert names == [f"m-{e + 1:02d}-{v:.2f}.keras" for e, v in enumerate(history.history["val_loss"])]
    assert keras.models.load_model(tmp_path / "ck" / names[-1]).optimizer.iterations == 3 * 2


def test_checkpoint_save_best_only_modes_and_threshold(tmp_path, capsys):
    x, y = _data()
    best = tmp_path / "best.weights.h5"
    cb = callbacks.ModelCheckpoint(str(best), monitor="val_accuracy", save_best_only=True, save_weights_only=True,
                                   mode="max", initial_value_threshold=2.0, verbose=1)
    _model().fit(x, y, epochs=2, validation_split=0.25, verbose=0, callbacks=[cb])
    assert not best.exists() and "did not improve from 2.00000" in capsys.readouterr().out
    cb = callbacks.ModelCheckpoint(str(best), monitor="loss", save_best_only=True, save_weights_only=True)
    model = _model()
    model.fit(x, y, epochs=3, verbose=0, callbacks=[cb])
    assert best.exists() and cb.monitor_op is np.less and cb.best == min(model.history.history["loss"])
    with pytest.warns(UserWarning, match="Can save best model only with val_nope available"):
        _model().fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.ModelCheckpoint(
            str(tmp_path / "n.keras"), monitor="val_nope", save_best_only=True, mode="min")])


def test_checkpoint_save_freq_in_batches_and_bad_arguments(tmp_path):
    x, y = _data()
    cb = callbacks.ModelCheckpoint(str(tmp_path / "b{epoch}-{batch}.keras"), save_freq=2)
    _model().fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[cb])  # 3 batches an epoch
    assert sorted(os.listdir(tmp_path)) == ["b1-2.keras", "b2-1.keras", "b2-3.keras"]
    with pytest.raises(ValueError, match="must end in `.keras`"):
        callbacks.ModelCheckpoint("m.h5")
    with pytest.raises(ValueError, match="must end in `.weights.h5`"):
        callbacks.ModelCheckpoint("m.keras", save_weights_only=True)
    with pytest.raises(ValueError, match="Unrecognized save_freq"):
        callbacks.ModelCheckpoint("m.keras", save_freq=0)
    with pytest.raises(KeyError, match="Failed to format this callback filepath"):
        _model().fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.ModelCheckpoint(str(tmp_path / "{nope}.keras"))])


class _KillAt(callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork() (POSIX)")
def test_backup_and_restore_resumes_a_killed_fit_bit_identically(tmp_path):
    x, y = _data()
    whole = _model()
    whole.fit(x, y, epochs=4, batch_size=8, verbose=0)
    backup = str(tmp_path / "backup")
    pid = os.fork()
    if pid == 0:  # the run that dies mid-epoch 2 (after the backup of epoch 1)
        try:
            _model().fit(x, y, epochs=4, batch_size=8, verbose=0,
                         callbacks=[callbacks.BackupAndRestore(backup), _KillAt(2, 3)])
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert os.path.exists(os.path.join(backup, "latest.keras"))
    resumed = _model(seed=99)  # another seed: the backup brings the random state back too
    epochs = []
    history = resumed.fit(x, y, epochs=4, batch_size=8, verbose=0, callbacks=[
        callbacks.BackupAndRestore(backup), callbacks.LambdaCallback(on_epoch_begin=lambda e, l: epochs.append(e))])
    assert epochs == [2, 3] and history.epoch == [2, 3]
    assert resumed.optimizer.iterations == whole.optimizer.iterations == 24
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not os.path.exists(os.path.join(backup, "latest.keras"))  # deleted once training ended


def test_json_logger_writes_one_line_per_epoch(tmp_path):
    x, y = _data()
    path = tmp_path / "log.jsonl"
    history = _model().fit(x, y, epochs=3, validation_split=0.25, verbose=0, callbacks=[callbacks.JSONLogger(path)])
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert [r["val_loss"] for r in rows] == history.history["val_loss"]
    _model().fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[callbacks.JSONLogger(path, append=True,
                                                                                           batches=True)])
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 3 + 3 + 1 and rows[3]["batch"] == 0 and "batch" not in rows[-1]
