"""Callbacks: hooks into fit / evaluate / predict, with Keras 3's classes and arguments.

Example:
    >>> stop = pyminidl.callbacks.EarlyStopping(monitor="val_loss", patience=3)
    >>> history = model.fit(x, y, validation_split=0.2, epochs=100, callbacks=[stop])
    >>> history.history["val_loss"][-1]
"""

import csv
import json
import math
import os
import warnings

import numpy as np

from pyminidl import random as pmd_random
from pyminidl.saving import saving_lib
from pyminidl.training.progbar import Progbar, _print

_TRAIN_BATCH_HOOKS = ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end")
_TEST_BATCH_HOOKS = ("on_test_batch_begin", "on_test_batch_end")
_PREDICT_BATCH_HOOKS = ("on_predict_batch_begin", "on_predict_batch_end")


class Callback:
    """Base class of callbacks: override the ``on_*`` methods you need.

    ``self.model`` is the model being trained (set by ``set_model``) and ``self.params``
    the dict ``{"verbose", "epochs", "steps"}`` of the running fit/evaluate/predict.
    ``on_batch_begin``/``on_batch_end`` are the backwards-compatible aliases of the
    training-batch hooks, as in Keras.

    Example:
        >>> class PrintEpoch(Callback):
        ...     def on_epoch_end(self, epoch, logs=None):
        ...         print(epoch, logs["loss"])
    """

    model = None

    def __init__(self):
        self.params = {}
        self.model = None

    def set_params(self, params):
        """Store the run's parameters (``verbose``, ``epochs``, ``steps``)."""
        self.params = params

    def set_model(self, model):
        """Attach the model the callback observes."""
        self.model = model

    def on_batch_begin(self, batch, logs=None):
        """Alias of ``on_train_batch_begin`` (Keras 2 name)."""

    def on_batch_end(self, batch, logs=None):
        """Alias of ``on_train_batch_end`` (Keras 2 name)."""

    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of an epoch (0-based) during fit."""

    def on_epoch_end(self, epoch, logs=None):
        """Called at the end of an epoch; ``logs`` holds the epoch's metrics and val_ metrics."""

    def on_train_batch_begin(self, batch, logs=None):
        """Called before each training batch."""
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        """Called after each training batch; ``logs`` holds the running metrics."""
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        """Called before each evaluation batch (also inside fit's validation)."""

    def on_test_batch_end(self, batch, logs=None):
        """Called after each evaluation batch."""

    def on_predict_batch_begin(self, batch, logs=None):
        """Called before each prediction batch."""

    def on_predict_batch_end(self, batch, logs=None):
        """Called after each prediction batch; ``logs["outputs"]`` holds its predictions."""

    def on_train_begin(self, logs=None):
        """Called at the start of fit."""

    def on_train_end(self, logs=None):
        """Called at the end of fit with the last epoch's logs."""

    def on_test_begin(self, logs=None):
        """Called at the start of evaluate (and of each validation run in fit)."""

    def on_test_end(self, logs=None):
        """Called at the end of evaluate with its logs."""

    def on_predict_begin(self, logs=None):
        """Called at the start of predict."""

    def on_predict_end(self, logs=None):
        """Called at the end of predict."""


def _overrides(callback, names):
    """Whether ``callback`` implements any hook in ``names`` (a subclass or instance override)."""
    if isinstance(callback, CallbackList):
        return any(_overrides(c, names) for c in callback.callbacks)
    for name in names:
        if name in vars(callback) or getattr(type(callback), name, None) is not getattr(Callback, name):
            return True
    return False


def _flatten_callbacks(callbacks):
    """A callback, or (nested) lists of them, as one flat list (Keras flattens ``callbacks=``)."""
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        return [callbacks]
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"`callbacks` must be a Callback or a list of them. Received: callbacks={callbacks!r}")
    return [c for item in callbacks for c in _flatten_callbacks(item)]


class CallbackList(Callback):
    """Calls a list of callbacks as one.

    Args:
        callbacks: List of ``Callback`` instances.
        add_history: Append a ``History`` unless one is in ``callbacks``.
        add_progbar: Append a ``ProgbarLogger`` unless one is in ``callbacks``.
        model: The model the callbacks observe.
        **params: Passed to every callback's ``set_params``.
    """

    def __init__(self, callbacks=None, add_history=False, add_progbar=False, model=None, **params):
        super().__init__()
        self.callbacks = _flatten_callbacks(callbacks)
        self._history = next((c for c in self.callbacks if isinstance(c, History)), None)
        self._progbar = next((c for c in self.callbacks if isinstance(c, ProgbarLogger)), None)
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if self._progbar is None and add_progbar:
            self._progbar = ProgbarLogger()
            self.callbacks.append(self._progbar)
        self.set_model(model)
        self.set_params(params)

    @property
    def needs_train_batch_logs(self):
        """Whether any callback implements a training-batch hook (else fit skips them)."""
        return _overrides(self, _TRAIN_BATCH_HOOKS)

    @property
    def needs_test_batch_logs(self):
        """Whether any callback implements an evaluation-batch hook."""
        return _overrides(self, _TEST_BATCH_HOOKS)

    @property
    def needs_predict_batch_logs(self):
        """Whether any callback implements a prediction-batch hook."""
        return _overrides(self, _PREDICT_BATCH_HOOKS)

    def append(self, callback):
        self.callbacks.append(callback)

    def set_params(self, params):
        self.params = params
        if params:
            for callback in self.callbacks:
                callback.set_params(params)

    def set_model(self, model):
        if model is None:
            return
        self.model = model
        if self._history is not None:
            model.history = self._history
        for callback in self.callbacks:
            callback.set_model(model)

    def _call(self, hook, *args):
        for callback in self.callbacks:
            getattr(callback, hook)(*args)

    def on_batch_begin(self, batch, logs=None):
        self._call("on_batch_begin", batch, logs or {})

    def on_batch_end(self, batch, logs=None):
        self._call("on_batch_end", batch, logs or {})

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs or {})

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs or {})

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs or {})

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs or {})

    def on_test_batch_begin(self, batch, logs=None):
        self._call("on_test_batch_begin", batch, logs or {})

    def on_test_batch_end(self, batch, logs=None):
        self._call("on_test_batch_end", batch, logs or {})

    def on_predict_batch_begin(self, batch, logs=None):
        self._call("on_predict_batch_begin", batch, logs or {})

    def on_predict_batch_end(self, batch, logs=None):
        self._call("on_predict_batch_end", batch, logs or {})

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs or {})

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs or {})

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs or {})

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs or {})

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", logs or {})

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", logs or {})

    def __iter__(self):
        return iter(self.callbacks)


class History(Callback):
    """Records each epoch's logs; ``fit`` returns it and sets it as ``model.history``.

    Attributes:
        history: Dict metric name -> list of per-epoch values.
        epoch: List of the epoch indices run.

    Example:
        >>> history = model.fit(x, y, epochs=3, verbose=0)
        >>> history.history["loss"]
        [0.71, 0.52, 0.44]
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(value)
        self.model.history = self


class ProgbarLogger(Callback):
    """Prints the progress bar (``verbose=1``) or one line per epoch (``verbose=2``).

    ``fit``, ``evaluate`` and ``predict`` add one when ``verbose != 0``; validation inside
    ``fit`` is silent, as in Keras.
    """

    def __init__(self):
        super().__init__()
        self.seen = 0
        self.progbar = None
        self.target = None
        self.verbose = 1
        self.epochs = 1
        self._called_in_fit = False

    def set_params(self, params):
        verbose = params.get("verbose", 1)
        self.verbose = 1 if verbose == "auto" else verbose
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    def on_train_begin(self, logs=None):
        self._called_in_fit = True

    def on_test_begin(self, logs=None):
        if not self._called_in_fit:
            self._reset_progbar()

    def on_predict_begin(self, logs=None):
        self._reset_progbar()

    def on_epoch_begin(self, epoch, logs=None):
        self._reset_progbar()
        if self.verbose and self.epochs > 1:
            _print(f"Epoch {epoch + 1}/{self.epochs}\n")

    def on_train_batch_end(self, batch, logs=None):
        self._update_progbar(batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        if not self._called_in_fit:
            self._update_progbar(batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._update_progbar(batch, None)  # the outputs are not metrics

    def on_epoch_end(self, epoch, logs=None):
        self._finalize_progbar(logs)

    def on_test_end(self, logs=None):
        if not self._called_in_fit:
            self._finalize_progbar(logs)

    def on_predict_end(self, logs=None):
        self._finalize_progbar(None)

    def _reset_progbar(self):
        self.seen = 0
        self.progbar = Progbar(target=self.target, verbose=self.verbose, unit_name="step")

    def _update_progbar(self, batch, logs):
        if self.progbar is None:
            self._reset_progbar()
        self.seen = batch + 1
        if self.verbose == 1:
            self.progbar.update(self.seen, list((logs or {}).items()), finalize=False)

    def _finalize_progbar(self, logs):
        if self.progbar is None:
            self._reset_progbar()
        if self.target is None:
            # Unknown length (a generator): the first pass tells it.
            self.target = self.seen
            self.progbar.target = self.seen
        self.progbar.update(self.target, list((logs or {}).items()), finalize=True)


class LambdaCallback(Callback):
    """A callback built from functions, for quick one-off hooks.

    Args:
        on_epoch_begin, on_epoch_end: ``f(epoch, logs)``.
        on_train_begin, on_train_end: ``f(logs)``.
        on_train_batch_begin, on_train_batch_end: ``f(batch, logs)``.
        **kwargs: Any other hook, e.g. ``on_test_end=f``.

    Example:
        >>> losses = []
        >>> cb = LambdaCallback(on_epoch_end=lambda epoch, logs: losses.append(logs["loss"]))
        >>> model.fit(x, y, epochs=2, callbacks=[cb], verbose=0)
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        hooks = dict(kwargs, on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                     on_train_begin=on_train_begin, on_train_end=on_train_end,
                     on_train_batch_begin=on_train_batch_begin, on_train_batch_end=on_train_batch_end)
        for name, fn in hooks.items():
            if fn is None:
                continue
            if not name.startswith("on_") or not callable(getattr(Callback, name, None)):
                raise TypeError(f"LambdaCallback got an unknown hook {name!r}.")
            setattr(self, name, fn)


class TerminateOnNaN(Callback):
    """Stops training when the loss becomes NaN or infinite.

    Prints ``Batch N: Invalid loss, terminating training`` and sets
    ``model.stop_training``; with ``raise_error=True`` raises a RuntimeError instead.

    Example:
        >>> model.fit(x, y, callbacks=[TerminateOnNaN()])
    """

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(loss):
            return
        if self.raise_error:
            raise RuntimeError(
                f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. "
                "Terminating training immediately."
            )
        _print(f"Batch {batch}: Invalid loss, terminating training\n")
        self.model.stop_training = True


_MAX_WORDS = ("acc", "auc", "precision", "recall", "f1", "iou", "fbeta", "r2")


def _monitor_direction(monitor, model, who):
    """"min" or "max" for ``monitor``: the loss is minimised, a metric goes its declared direction, else
    the name decides (accuracy-like words are maximised, error-like words minimised).

    Raises:
        ValueError: a name that says neither.
    """
    name = monitor[4:] if monitor.startswith("val_") else monitor
    if name == "loss":
        return "min"
    for metric in getattr(model, "metrics", None) or ():
        direction = getattr(metric, "_direction", None) or getattr(metric, "direction", None)
        if getattr(metric, "name", None) == name and direction in ("up", "down"):
            return "max" if direction == "up" else "min"
    lowered = name.lower()
    if any(word in lowered for word in _MAX_WORDS):
        return "max"
    if any(word in lowered for word in ("loss", "error", "crossentropy", "hinge", "divergence",
                                         "mse", "mae", "mape", "msle", "poisson", "logcosh")):
        return "min"
    raise ValueError(
        f"{who} callback received monitor={monitor} but pyminidl isn't able to "
        "automatically determine whether that metric should be maximized or minimized. "
        "Pass `mode='max'` to act on the highest value of the metric, or `mode='min'` to act on the lowest."
    )


class EarlyStopping(Callback):
    """Stops training when a monitored metric has stopped improving.

    Args:
        monitor: Quantity to monitor, a key of the epoch logs. Defaults to ``"val_loss"``.
        min_delta: Minimum change that counts as an improvement.
        patience: Epochs without improvement after which training stops.
        verbose: 1 prints a message when the callback acts.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (inferred from the metric).
        baseline: Value the monitored quantity must beat; training stops if no epoch
            beats it within ``patience`` epochs.
        restore_best_weights: Restore the weights of the best epoch at the end of training.
        start_from_epoch: Epochs of warm-up before monitoring starts.

    Example:
        >>> stop = EarlyStopping(monitor="loss", patience=3)
        >>> history = model.fit(x, y, epochs=100, callbacks=[stop], verbose=0)
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor = monitor
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.min_delta = abs(min_delta)
        self.wait = 0
        self.stopped_epoch = 0
        self.restore_best_weights = restore_best_weights
        self.best_weights = None
        self.best_epoch = 0
        self.start_from_epoch = start_from_epoch
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"EarlyStopping mode {mode} is unknown, fallback to auto mode.", stacklevel=2)
            mode = "auto"
        self.mode = mode
        self.monitor_op = None
        self.best = None

    def _infer_direction(self):
        return _monitor_direction(self.monitor, self.model, "EarlyStopping")

    def _set_monitor_op(self):
        direction = self.mode if self.mode != "auto" else self._infer_direction()
        if direction == "min":
            self.monitor_op = lambda a, b: a < b
            self.min_delta = -abs(self.min_delta)
            self.best = math.inf
        else:
            self.monitor_op = lambda a, b: a > b
            self.min_delta = abs(self.min_delta)
            self.best = -math.inf

    def on_train_begin(self, logs=None):
        # Reusable across fits.
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0
        self.monitor_op = None

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # The wait restarts only when the baseline is beaten too.
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            _print(f"Epoch {self.stopped_epoch + 1}: early stopping\n")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                _print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.\n")
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs):
        """The monitored value from ``logs``, or None (with a warning) when it is missing."""
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                f"Available metrics are: {','.join(logs.keys())}",
                stacklevel=2,
            )
        return value

    def _is_improvement(self, value, reference):
        return self.monitor_op(value - self.min_delta, reference)


def _current_lr(model):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "learning_rate"):
        raise ValueError('Optimizer must have a "learning_rate" attribute.')
    return float(optimizer.learning_rate)


class LearningRateScheduler(Callback):
    """Sets the optimizer's learning rate at the start of each epoch from ``schedule``.

    Args:
        schedule: ``f(epoch, lr) -> new_lr`` (or ``f(epoch)``), epoch counted from 0.
        verbose: 1 prints each update.

    Example:
        >>> halve = LearningRateScheduler(lambda epoch, lr: lr if epoch < 10 else lr * 0.5)
        >>> model.fit(x, y, epochs=20, callbacks=[halve], verbose=0)
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        lr = _current_lr(self.model)
        try:
            lr = self.schedule(epoch, lr)
        except TypeError:  # the Keras 1-argument form f(epoch)
            lr = self.schedule(epoch)
        if isinstance(lr, bool) or not isinstance(lr, (float, int, np.floating, np.integer)):
            raise ValueError(f"The output of the `schedule` function should be a float. Got: {lr}")
        self.model.optimizer.learning_rate = float(lr)
        if self.verbose > 0:
            _print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(lr)}.\n")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = _current_lr(self.model)


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by ``factor`` when ``monitor`` stops improving.

    Args:
        monitor: Quantity to monitor. Defaults to ``"val_loss"``.
        factor: ``new_lr = lr * factor`` (must be < 1).
        patience: Epochs without improvement before a reduction.
        verbose: 1 prints each reduction.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (``max`` when the name contains "acc").
        min_delta: Minimum change that counts as an improvement.
        cooldown: Epochs to wait after a reduction before counting again.
        min_lr: Lower bound of the learning rate.

    Example:
        >>> reduce = ReduceLROnPlateau(monitor="val_loss", factor=0.2, patience=5, min_lr=0.001)
        >>> model.fit(x, y, validation_split=0.1, epochs=50, callbacks=[reduce])
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0, **kwargs):
        super().__init__()
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0. Received factor={factor}")
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau got unexpected keyword argument(s): {sorted(kwargs)}")
        self.monitor, self.factor, self.patience, self.verbose = monitor, factor, patience, verbose
        self.mode, self.min_delta, self.cooldown, self.min_lr = mode, min_delta, cooldown, min_lr
        self._reset()

    def _reset(self):
        if self.mode not in ("auto", "min", "max"):
            warnings.warn(f"Learning rate reduction mode {self.mode} is unknown, fallback to auto mode.",
                          stacklevel=2)
            self.mode = "auto"
        if self.mode == "min" or (self.mode == "auto" and "acc" not in self.monitor):
            self.monitor_op = lambda a, b: a < b - self.min_delta
            self.best = math.inf
        else:
            self.monitor_op = lambda a, b: a > b + self.min_delta
            self.best = -math.inf
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        self._reset()

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["learning_rate"] = _current_lr(self.model)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"Learning rate reduction is conditioned on metric `{self.monitor}` which is not available. "
                f"Available metrics are: {','.join(logs.keys())}.",
                stacklevel=2,
            )
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self.monitor_op(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                self._reduce(epoch)

    def _reduce(self, epoch):
        old_lr = _current_lr(self.model)
        if old_lr > np.float32(self.min_lr):
            new_lr = max(old_lr * self.factor, self.min_lr)
            self.model.optimizer.learning_rate = new_lr
            if self.verbose > 0:
                _print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.\n")
            self.cooldown_counter = self.cooldown
            self.wait = 0


class CSVLogger(Callback):
    """Streams each epoch's logs to a CSV file (``epoch`` then the sorted metric names).

    Args:
        filename: Path of the CSV file.
        separator: Field separator.
        append: Append to an existing file (no second header) instead of overwriting it.

    Example:
        >>> model.fit(x, y, epochs=5, callbacks=[CSVLogger("training.log")])
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self.keys = None
        self.writer = None
        self.csv_file = None
        self.append_header = True

    def on_train_begin(self, logs=None):
        if self.append and os.path.exists(self.filename):
            with open(self.filename, encoding="utf-8") as f:
                self.append_header = not f.readline()
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, "a" if self.append else "w", newline="", encoding="utf-8")
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        if self.writer is None:
            self.writer = csv.writer(self.csv_file, delimiter=self.sep)
            if self.append_header:
                self.writer.writerow(["epoch"] + self.keys)
        self.writer.writerow([epoch] + [logs.get(key, "NA") for key in self.keys])
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None


class JSONLogger(Callback):
    """pyminidl's own metrics log (Keras has none): one JSON object per line and epoch, needing no TensorBoard.

    Each line is ``{"epoch": 0, "loss": 0.71, "val_loss": 0.69, ...}`` (the epoch's logs, keys sorted),
    flushed as it is written, so a crashed run keeps every finished epoch; with ``batches=True`` a
    ``{"epoch", "batch", ...}`` line also follows every training batch. Read it back with
    ``[json.loads(line) for line in open(filename)]`` or ``pandas.read_json(filename, lines=True)``.

    Args:
        filename: Path of the log.
        append: Append to an existing log instead of overwriting it.
        batches: Also log every training batch.

    Example:
        >>> model.fit(x, y, epochs=5, callbacks=[JSONLogger("training.jsonl")])
    """

    def __init__(self, filename, append=False, batches=False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.append = append
        self.batches = batches
        self._file = None
        self._epoch = 0
        if batches:  # an instance hook: without it fit skips the per-batch calls
            self.on_train_batch_end = self._log_batch

    def on_train_begin(self, logs=None):
        self._close()
        self._file = open(self.filename, "a" if self.append else "w", encoding="utf-8")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def _log_batch(self, batch, logs=None):
        self._write({"epoch": self._epoch, "batch": batch, **(logs or {})})

    def on_epoch_end(self, epoch, logs=None):
        self._write({"epoch": epoch, **(logs or {})})

    def on_train_end(self, logs=None):
        self._close()

    def _write(self, record):
        if self._file is None:
            self.on_train_begin()
        clean = {k: _json_value(v) for k, v in sorted(record.items())}
        self._file.write(json.dumps(clean, allow_nan=True) + "\n")
        self._file.flush()

    def _close(self):
        if self._file is not None and not self._file.closed:
            self._file.close()
        self._file = None


def _json_value(value):
    if isinstance(value, (np.generic, np.ndarray)):
        value = value.tolist()
    return value if isinstance(value, (int, float, str, list, bool)) or value is None else str(value)


class ModelCheckpoint(Callback):
    """Saves the model (or its weights) during training, as Keras 3's ModelCheckpoint.

    Every save is atomic: a crash or a kill mid-save leaves the previous checkpoint intact.

    Args:
        filepath: Where to save: ``*.keras`` (the whole model) or, with ``save_weights_only``,
            ``*.weights.h5`` (or ``*.weights.npz``). It may hold ``{epoch:02d}``, ``{batch}`` and any log
            key, such as ``{val_loss:.2f}``.
        monitor: The log key ``save_best_only`` and the messages look at.
        verbose: 1 prints a line at each save (or skipped save).
        save_best_only: Save only when ``monitor`` improves on the best value so far.
        save_weights_only: Save only the weights (and optimizer state).
        mode: ``"min"``, ``"max"`` or ``"auto"`` (from the metric's direction or name).
        save_freq: ``"epoch"``, or save every this many training batches.
        initial_value_threshold: The best value to beat at first (with ``save_best_only``).

    Raises:
        ValueError: a filepath extension that does not fit ``save_weights_only``, or a bad ``save_freq``.

    Example:
        >>> checkpoint = ModelCheckpoint("best-model.keras", save_best_only=True)
        >>> model.fit(x, y, validation_split=0.2, epochs=20, callbacks=[checkpoint])
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__()
        self.filepath = os.fspath(filepath)
        self.monitor, self.verbose = monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.save_freq = save_freq
        self.initial_value_threshold = initial_value_threshold
        self.best = initial_value_threshold
        self._check_filepath()
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int)
                                     or save_freq < 1):
            raise ValueError(f"Unrecognized save_freq: {save_freq!r}. Expected 'epoch' or a positive integer.")
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"ModelCheckpoint mode '{mode}' is unknown, fallback to auto mode.", stacklevel=2)
            mode = "auto"
        self.mode = mode
        self.monitor_op = None
        self._batches_seen = 0
        self._epoch = 0
        if save_freq != "epoch":  # an instance hook: without it fit skips the per-batch calls
            self.on_train_batch_end = self._save_every_batches

    def _check_filepath(self):
        if self.save_weights_only:
            if not self.filepath.endswith((".weights.h5", ".weights.npz")):
                raise ValueError("When using `save_weights_only=True` in `ModelCheckpoint`, the filepath provided "
                                 f"must end in `.weights.h5` (or `.weights.npz`). Received: filepath={self.filepath}")
        elif not self.filepath.endswith(".keras"):
            raise ValueError("The filepath provided must end in `.keras` (Keras model format). "
                             f"Received: filepath={self.filepath}")

    def _set_monitor_op(self):
        direction = self.mode if self.mode != "auto" else _monitor_direction(self.monitor, self.model,
                                                                             "ModelCheckpoint")
        self.monitor_op = np.less if direction == "min" else np.greater
        if self.best is None:
            self.best = math.inf if direction == "min" else -math.inf

    def on_train_begin(self, logs=None):
        self._batches_seen = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def _save_every_batches(self, batch, logs=None):
        self._batches_seen += 1
        if self._batches_seen % self.save_freq == 0:
            self._save(self._epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, None, logs)

    def _save(self, epoch, batch, logs):
        logs = dict(logs or {})
        filepath = self._format(epoch, batch, logs)
        if self.save_best_only:
            if self.monitor_op is None:
                self._set_monitor_op()
            current = logs.get(self.monitor)
            if current is None:
                warnings.warn(f"Can save best model only with {self.monitor} available, skipping.", stacklevel=2)
                return
            if not self.monitor_op(current, self.best):
                if self.verbose > 0:
                    _print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}\n")
                return
            if self.verbose > 0:
                _print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to {current:.5f}, "
                       f"saving model to {filepath}\n")
            self.best = current
        elif self.verbose > 0:
            _print(f"\nEpoch {epoch + 1}: saving model to {filepath}\n")
        folder = os.path.dirname(filepath)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath, overwrite=True)
        else:
            self.model.save(filepath, overwrite=True)

    def _format(self, epoch, batch, logs):
        try:
            if batch is None or "batch" in logs:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except KeyError as e:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". Reason: {e}') from e


class BackupAndRestore(Callback):
    """Backs training up at the end of each epoch; a fit interrupted (a crash, a kill) resumes where it was.

    The backup, ``backup_dir/latest.keras`` (written atomically), holds the weights, the optimizer
    state, the last finished epoch and pyminidl's random state (the global generator and any seeded
    layer's), so the resumed fit redoes the interrupted epoch with the same shuffling and dropout
    masks and ends bit-identical to an uninterrupted run. A fit that ends normally deletes it.

    Args:
        backup_dir: Folder of the backup (created if needed).
        save_freq: ``"epoch"`` (the only value pyminidl supports; an interrupted epoch is redone).
        delete_checkpoint: Delete the backup when training ends normally.

    Example:
        >>> backup = BackupAndRestore("/tmp/backup")
        >>> model.fit(x, y, epochs=10, callbacks=[backup])   # killed at epoch 5; the same call again
        >>> model.fit(x, y, epochs=10, callbacks=[backup])   # resumes at epoch 5
    """

    _STATE = "training_state.json"

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False, delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError("Empty `backup_dir` argument passed")
        if save_freq != "epoch":
            raise ValueError(f"pyminidl's BackupAndRestore supports save_freq='epoch' only. Received: {save_freq!r}")
        if double_checkpoint:
            raise ValueError("double_checkpoint=True is not needed by pyminidl: every backup is written atomically.")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = delete_checkpoint
        self._path = os.path.join(self.backup_dir, "latest.keras")

    def on_train_begin(self, logs=None):
        if not os.path.exists(self._path):
            return
        state = saving_lib.restore_training_state(self.model, self._path, self._STATE)
        pmd_random.set_state(state["rng"])
        for layer in self.model._all_layers():
            saved = state["layer_rngs"].get(layer.name)
            if saved is not None:
                layer._rng.bit_generator.state = saved
        self.model._initial_epoch = int(state["epoch"]) + 1

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.backup_dir, exist_ok=True)
        state = {"epoch": epoch, "rng": pmd_random.get_state(),
                 "layer_rngs": {layer.name: layer._rng.bit_generator.state for layer in self.model._all_layers()
                                if isinstance(getattr(layer, "_rng", None), np.random.Generator)}}
        saving_lib.save_model(self.model, self._path, extra_members={self._STATE: json.dumps(state)})

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and os.path.exists(self._path):
            os.remove(self._path)


__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger", "LambdaCallback", "TerminateOnNaN",
           "EarlyStopping", "LearningRateScheduler", "ReduceLROnPlateau", "CSVLogger",
           "JSONLogger", "ModelCheckpoint", "BackupAndRestore"]
