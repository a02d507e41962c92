"""Callbacks: hook order, History, EarlyStopping, TerminateOnNaN, LambdaCallback."""

import numpy as np
import pytest

from pyminidl import callbacks, optimizers
from pyminidl.layers import Dense
from pyminidl.models import Sequential


def _data(rng, n=12):
    x = rng.standard_normal((n, 2)).astype(np.float32)
    y = (x.sum(1, keepdims=True) * 0.5).astype(np.float32)
    return x, y


def _model(lr=0.05, metrics=None):
    model = Sequential([Dense(1, input_dim=2)])
    model.compile(optimizer=optimizers.SGD(lr), loss="mse", metrics=metrics)
    return model


class Recorder(callbacks.Callback):
    """Records every hook call as (name, *non-dict args)."""

    def __init__(self):
        super().__init__()
        self.calls = []


def _recording(name):
    def hook(self, *args, **kwargs):
        self.calls.append((name, *[a for a in args if not isinstance(a, dict)]))
        return getattr(callbacks.Callback, name)(self, *args, **kwargs)

    return hook


for _name in [n for n in dir(callbacks.Callback) if n.startswith("on_")]:
    setattr(Recorder, _name, _recording(_name))


def test_fit_calls_the_hooks_in_keras_order(rng):
    x, y = _data(rng, 8)
    rec = Recorder()
    _model().fit(x, y, batch_size=4, epochs=2, validation_data=(x[:4], y[:4]), verbose=0, callbacks=[rec])
    names = [c[0] for c in rec.calls if c[0] not in ("on_batch_begin", "on_batch_end")]
    epoch = ["on_epoch_begin", "on_train_batch_begin", "on_train_batch_end", "on_train_batch_begin",
             "on_train_batch_end", "on_test_begin", "on_test_batch_begin", "on_test_batch_end", "on_test_end",
             "on_epoch_end"]
    assert names == ["on_train_begin"] + epoch + epoch + ["on_train_end"]
    assert ("on_train_batch_begin", 1) in rec.calls and ("on_epoch_end", 1) in rec.calls
    # the Keras 2 aliases run inside the training-batch hooks
    assert [c for c in rec.calls if c[0] == "on_batch_end"] == [("on_batch_end", 0), ("on_batch_end", 1)] * 2


def test_callbacks_get_model_params_and_logs(rng):
    x, y = _data(rng, 10)
    seen = {}

    class Probe(callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen["model"] = self.model
            seen["params"] = dict(self.params)

        def on_train_batch_end(self, batch, logs=None):
            seen.setdefault("batch_logs", []).append(dict(logs))

        def on_epoch_end(self, epoch, logs=None):
            seen["epoch_logs"] = dict(logs)

    model = _model(metrics=["mae"])
    model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[Probe()])
    assert seen["model"] is model
    assert seen["params"] == {"verbose": 0, "epochs": 3, "steps": 3}
    assert set(seen["batch_logs"][0]) == {"loss", "mae"}
    assert set(seen["epoch_logs"]) == {"loss", "mae"}
    assert seen["epoch_logs"]["loss"] == model.history.history["loss"][-1]


def test_evaluate_and_predict_hooks(rng):
    x, y = _data(rng, 6)
    rec = Recorder()
    model = _model()
    model.evaluate(x, y, batch_size=3, verbose=0, callbacks=[rec])
    model.predict(x, batch_size=3, verbose=0, callbacks=[rec])
    assert [c[0] for c in rec.calls] == [
        "on_test_begin", "on_test_batch_begin", "on_test_batch_end", "on_test_batch_begin", "on_test_batch_end",
        "on_test_end", "on_predict_begin", "on_predict_batch_begin", "on_predict_batch_end",
        "on_predict_batch_begin", "on_predict_batch_end", "on_predict_end",
    ]


def test_predict_batch_end_gets_the_outputs(rng):
    x, _ = _data(rng, 5)
    outputs = []
    cb = callbacks.LambdaCallback(on_predict_batch_end=lambda batch, logs: outputs.append(logs["outputs"]))
    model = _model()
    pred = model.predict(x, batch_size=2, verbose=0, callbacks=[cb])
    np.testing.assert_allclose(np.concatenate(outputs), pred)


def test_lambda_callback(rng):
    x, y = _data(rng)
    events = []
    cb = callbacks.LambdaCallback(
        on_train_begin=lambda logs: events.append("begin"),
        on_epoch_end=lambda epoch, logs: events.append(("epoch", epoch, round(logs["loss"], 6))),
        on_train_end=lambda logs: events.append("end"),
    )
    history = _model().fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    assert events == ["begin", ("epoch", 0, round(history.history["loss"][0], 6)),
                      ("epoch", 1, round(history.history["loss"][1], 6)), "end"]
    with pytest.raises(TypeError, match="on_epoch_finish"):
        callbacks.LambdaCallback(on_epoch_finish=print)


def _early_stopping_run(values, monitor="loss", **kwargs):
    """Run EarlyStopping over a scripted sequence of monitored values; returns (epochs run, callback, model)."""
    model = _model()

    class Script(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs[monitor] = values[epoch]
            self.model.trainable_weights[1][...] = epoch  # bias marks the epoch of the weights

    stop = callbacks.EarlyStopping(monitor=monitor, **kwargs)
    x = np.zeros((2, 2), np.float32)
    history = model.fit(x, np.zeros((2, 1), np.float32), epochs=len(values), verbose=0,
                        callbacks=[Script(), stop])
    return len(history.epoch), stop, model


def test_early_stopping_patience():
    assert _early_stopping_run([1.0, 0.9, 0.95, 0.96, 0.8], patience=0)[0] == 3
    assert _early_stopping_run([1.0, 0.9, 0.95, 0.96, 0.97, 0.8], patience=2)[0] == 4
    assert _early_stopping_run([1.0, 0.9, 0.95, 0.85, 0.97, 0.8], patience=2)[0] == 6
    # improvements smaller than min_delta do not count
    assert _early_stopping_run([1.0, 0.99, 0.98, 0.97], patience=1, min_delta=0.05)[0] == 2
    assert _early_stopping_run([1.0, 0.99, 0.98, 0.97], patience=1, min_delta=0.005)[0] == 4


def test_early_stopping_restore_best_weights():
    epochs, stop, model = _early_stopping_run([1.0, 0.5, 0.7, 0.8, 0.9], patience=2, restore_best_weights=True)
    assert epochs == 4
    assert stop.best_epoch == 1 and stop.stopped_epoch == 3
    assert model.trainable_weights[1][0] == 1.0  # weights of epoch 1 restored
    _, _, kept = _early_stopping_run([1.0, 0.5, 0.7, 0.8, 0.9], patience=2)
    assert kept.trainable_weights[1][0] == 3.0


def test_early_stopping_mode_and_start_from_epoch():
    assert _early_stopping_run([0.5, 0.6, 0.55, 0.7], monitor="accuracy", mode="max")[0] == 3
    assert _early_stopping_run([0.5, 0.6, 0.55, 0.7], monitor="accuracy")[0] == 3  # auto: accuracy goes up
    assert _early_stopping_run([0.5, 0.6, 0.55, 0.7], monitor="loss", mode="max")[0] == 3
    # warm-up epochs are not monitored
    assert _early_stopping_run([1.0, 2.0, 3.0, 2.5, 2.6, 2.7], start_from_epoch=2)[0] == 5
    assert _early_stopping_run([1.0, 2.0, 3.0, 2.5, 2.6, 2.7])[0] == 2


def test_early_stopping_baseline():
    # nothing beats the baseline: the first epoch counts towards the patience
    assert _early_stopping_run([1.0, 1.1, 1.2, 1.3], patience=2, baseline=0.5)[0] == 2
    assert _early_stopping_run([1.0, 1.1, 1.2, 1.3], patience=2)[0] == 3
    # improving on the best (though not on the baseline) keeps training going, as in Keras
    assert _early_stopping_run([1.0, 0.9, 0.8, 0.7, 0.6], patience=2, baseline=0.5)[0] == 5
    assert _early_stopping_run([0.4, 0.3, 0.2, 0.1], patience=1, baseline=0.5)[0] == 4


def test_early_stopping_missing_monitor_warns(rng):
    x, y = _data(rng)
    stop = callbacks.EarlyStopping(monitor="val_loss", patience=0)
    with pytest.warns(UserWarning, match="Early stopping conditioned on metric `val_loss` which is not available"):
        history = _model().fit(x, y, epochs=3, verbose=0, callbacks=[stop])
    assert len(history.epoch) == 3


def test_early_stopping_verbose_messages(capsys):
    _early_stopping_run([1.0, 0.5, 0.7, 0.8], patience=1, restore_best_weights=True, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 3: early stopping" in out
    assert "Restoring model weights from the end of the best epoch: 2." in out


def test_terminate_on_nan_stops_training(rng, capsys):
    x, y = _data(rng, 8)
    y[5] = np.nan
    with np.errstate(all="ignore"):  # the NumPy reference backend warns on NaN arithmetic
        history = _model().fit(x, y, batch_size=2, epochs=5, shuffle=False, verbose=0,
                               callbacks=[callbacks.TerminateOnNaN()])
    assert "Batch 2: Invalid loss, terminating training" in capsys.readouterr().out
    assert history.epoch == [0]
    assert np.isnan(history.history["loss"][0])


def test_terminate_on_nan_can_raise(rng):
    x, y = _data(rng, 4)
    y[0] = np.inf
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 0"), np.errstate(all="ignore"):
        _model().fit(x, y, batch_size=2, shuffle=False, verbose=0,
                     callbacks=[callbacks.TerminateOnNaN(raise_error=True)])


def test_history_is_reused_when_passed(rng):
    x, y = _data(rng)
    history = callbacks.History()
    model = _model()
    returned = model.fit(x, y, epochs=2, verbose=0, callbacks=[history])
    assert returned is history and model.history is history
    assert len(history.history["loss"]) == 2


def test_learning_rate_scheduler_sets_lr_each_epoch_and_logs_it(rng):
    x, y = _data(rng)
    model = _model(lr=0.1)
    seen = []
    sched = callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch else lr)
    probe = callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: seen.append(model.optimizer.learning_rate))
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[sched, probe])
    assert seen == pytest.approx([0.1, 0.05, 0.025])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.025])
    one_arg = callbacks.LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1))
    model.fit(x, y, epochs=2, verbose=0, callbacks=[one_arg])
    assert model.optimizer.learning_rate == pytest.approx(0.02)
    with pytest.raises(ValueError, match="should be a float"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.LearningRateScheduler(lambda e, lr: "fast")])


def test_reduce_lr_on_plateau():
    model = _model(lr=1.0)
    losses = iter([1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])

    class Script(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["loss"] = next(losses)

    reduce = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, cooldown=1, min_lr=0.3)
    x = np.zeros((2, 2), np.float32)
    with np.errstate(all="ignore"):
        history = model.fit(x, np.zeros((2, 1), np.float32), epochs=7, verbose=0, callbacks=[Script(), reduce])
    # the logs hold the rate the epoch ran with; plateau from epoch 2: halved at the end of
    # epoch 3, then (the cooldown epoch counting once) at the end of epoch 5, floored at min_lr
    assert history.history["learning_rate"] == pytest.approx([1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.3])
    assert model.optimizer.learning_rate == pytest.approx(0.3)
    with pytest.raises(ValueError, match="factor >= 1.0"):
        callbacks.ReduceLROnPlateau(factor=2.0)


def test_csv_logger(rng, tmp_path):
    x, y = _data(rng)
    path = tmp_path / "log.csv"
    model = _model(metrics=["mae"])
    history = model.fit(x, y, epochs=2, verbose=0, validation_data=(x, y), callbacks=[callbacks.CSVLogger(path)])
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,loss,mae,val_loss,val_mae"
    assert len(lines) == 3
    assert float(lines[2].split(",")[1]) == pytest.approx(history.history["loss"][1])
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.CSVLogger(path, append=True)])
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and lines[3].startswith("0,")
