"""Trainer: the Keras 3 training loop, mixed into Sequential and Model.

The model brings ``forward(x, training) -> (y, backward)``, ``_infer(x)``, ``trainable_weights``,
``gradients()``, ``zero_grads()``, ``losses``, ``build`` and ``built``; the Trainer brings
``compile``, ``fit``, ``evaluate``, ``predict`` and the ``*_on_batch`` methods.

One training step is: zero the gradients, forward, the loss and its gradient, backward,
one fused optimizer update per weight, then the metrics. A model ending in softmax trained
with (sparse) categorical cross-entropy is run up to its logits and the loss is computed
from them with the backend's fused softmax + cross-entropy (exact and stable); its metrics
see the softmax probabilities. Data is converted to ``floatx`` once per call, and each batch
is one gather by a slice of the epoch's permutation (see ``data_adapter``).
"""


from pyminidl import debugging, ops
from pyminidl.backend import get_backend
from pyminidl.layers.base import clear_grads, forward_options, gradients_of, weights_created
from pyminidl.training import data_adapter as da

_NOT_COMPILED = "You must call `compile()` before using the model."
_NO_TARGETS = ("Target data is missing. Your model was compiled with loss={loss}, and therefore expects "
               "target data to be provided in `fit()`: pass `y`, or data that yields `(x, y)`.")

class _LossTracker:
    """The running ``loss`` of the logs: the mean of the batch losses weighted by batch size,
    as Keras 3's loss tracker (plain floats: it runs once per batch)."""

    name = "loss"

    def __init__(self):
        self.total = 0.0
        self.count = 0

    def update_state(self, value, count=1, sample_weight=None):
        count = count if sample_weight is None else sample_weight  # Keras's update_state(loss, sample_weight=n)
        self.total += float(value) * count
        self.count += count

    def result(self):
        return self.total / self.count if self.count else 0.0

    def reset_state(self):
        self.total = 0.0
        self.count = 0


def _as_list(value):
    if value is None:
        return []
    if isinstance(value, dict):
        # A single-output model: Keras accepts {output_name: metrics}; one entry is supported.
        if len(value) != 1:
            raise ValueError(f"Expected metrics for one output. Received: {value!r}")
        value = next(iter(value.values()))
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _single_output(value, name):
    """A one-output model's entry of a per-output list or dict (Keras accepts ``[loss]``)."""
    if isinstance(value, dict) or isinstance(value, (list, tuple)):
        entries = list(value.values()) if isinstance(value, dict) else list(value)
        if len(entries) != 1:
            raise ValueError(
                f"`{name}` must have one entry per model output (1). Received: {name}={value!r}"
            )
        return entries[0]
    return value


def _loss_weight(loss_weights):
    return 1.0 if loss_weights is None else float(_single_output(loss_weights, "loss_weights"))


def _resolve_verbose(verbose):
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2):
        raise ValueError(f"`verbose` must be 'auto', 0, 1 or 2. Received: verbose={verbose!r}")
    return int(verbose)


def _should_eval(epoch, validation_freq):
    if isinstance(validation_freq, int):
        if validation_freq < 1:
            raise ValueError(f"`validation_freq` must be a positive integer. Received: {validation_freq}")
        return (epoch + 1) % validation_freq == 0
    return (epoch + 1) in validation_freq


def _callback_list(callbacks, model, **params):
    from pyminidl.callbacks import CallbackList

    if isinstance(callbacks, CallbackList):
        return callbacks
    return CallbackList(callbacks, model=model, **params)


class Trainer:
    """Mixin giving a model Keras's ``compile`` / ``fit`` / ``evaluate`` / ``predict``.

    Example:
        >>> model = pyminidl.Sequential([pyminidl.layers.Dense(1, input_dim=3)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> history = model.fit(x, y, epochs=5, verbose=0)
    """

    compiled = False
    stop_training = False
    stop_evaluating = False
    stop_predicting = False
    history = None
    optimizer = None
    loss = None
    _loss_fn = None
    _loss_scale = 1.0
    _metric_ids = ((), ())
    _compiled_metrics = None
    _loss_tracker = None
    _hook_logs = {}

    # ------------------------------------------------------------------ compile

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto", auto_scale_loss=True):
        """Configure the model for training.

        Args:
            optimizer: Optimizer name (``"sgd"``, ``"adam"``, ...) or instance.
            loss: Loss name (``"mse"``, ``"categorical_crossentropy"``, ...), Loss instance or function.
            loss_weights: A scalar (or one-entry list/dict) multiplying the loss.
            metrics: Metrics evaluated without sample weights, e.g. ``["accuracy"]``.
            weighted_metrics: Metrics evaluated with ``sample_weight``/``class_weight``.
            run_eagerly, steps_per_execution, jit_compile, auto_scale_loss: Accepted for
                Keras compatibility; pyminidl always runs eagerly, one step at a time.

        Example:
            >>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        """
        from pyminidl import losses, optimizers

        if isinstance(steps_per_execution, bool) or not isinstance(steps_per_execution, int) or steps_per_execution < 1:
            raise ValueError(f"`steps_per_execution` must be a positive integer. Received: {steps_per_execution!r}")
        self.optimizer = optimizers.get(optimizer)
        self.loss = loss
        self._loss_fn = None if loss is None else losses.get(_single_output(loss, "loss"))
        self._loss_scale = _loss_weight(loss_weights)
        self._metric_ids = (_as_list(metrics), _as_list(weighted_metrics))
        self._compiled_metrics = None
        self._loss_tracker = _LossTracker()
        self.run_eagerly = run_eagerly
        self.steps_per_execution = steps_per_execution
        self.jit_compile = jit_compile
        self.compiled = True
        self._invalidate_training_plan()

    def _assert_compile_called(self):
        if not self.compiled:
            raise ValueError(_NOT_COMPILED)
        if self._loss_fn is None:
            raise ValueError("No loss to compute. Provide a `loss` argument in `compile()`.")

    # ------------------------------------------------------------------ metrics

    @property
    def metrics(self):
        """The loss tracker and the compiled metrics (those are built on the first batch)."""
        if self._loss_tracker is None:
            return []
        return [self._loss_tracker] + [m for m, _ in self._compiled_metrics or ()]

    @property
    def metrics_names(self):
        """``["loss", <metric names>...]``, the order of ``evaluate``'s list result."""
        return [m.name for m in self.metrics]

    def reset_metrics(self):
        """Reset the loss tracker and every compiled metric."""
        for metric in self.metrics:
            metric.reset_state()

    def _build_metrics(self, y, y_pred):
        from pyminidl import metrics as metrics_module

        built, names = [], set()
        for identifiers, weighted in zip(self._metric_ids, (False, True)):
            for identifier in identifiers:
                metric = metrics_module.resolve(identifier, self._loss_fn, tuple(y.shape), tuple(y_pred.shape))
                if isinstance(identifier, str) and metric.name != identifier:
                    metric.name = identifier  # Keras names string metrics as written: "acc", "mae"
                if weighted and metric.name in names:
                    metric.name = "weighted_" + metric.name
                names.add(metric.name)
                metric.reset_state()  # a Metric object passed in may hold state from earlier use
                built.append((metric, weighted))
        self._compiled_metrics = built

    def _update_metrics(self, value, y, y_pred, sample_weight, from_logits, probs=None):
        extra = self.losses
        if extra:
            value = value + float(sum(extra))
        self._loss_tracker.update_state(value, len(y_pred))
        if not self._metric_ids[0] and not self._metric_ids[1]:
            return
        if self._compiled_metrics is None:
            self._build_metrics(y, y_pred)
        if probs is None:
            probs = get_backend().softmax_forward(y_pred) if from_logits else y_pred
        for metric, weighted in self._compiled_metrics:
            metric.update_state(y, probs, sample_weight=sample_weight if weighted else None)

    def _logs(self):
        logs = {"loss": self._loss_tracker.result()}
        for metric, _ in self._compiled_metrics or ():
            logs[metric.name] = float(metric.result())
        return dict(sorted(logs.items()))  # Keras 3 sorts the logs by name

    def _flatten_logs(self, logs):
        """Keras 3's list order: loss, the compiled metrics, then any other key sorted."""
        names = self.metrics_names
        values = [logs[n] for n in names if n in logs] + [logs[k] for k in sorted(logs) if k not in names]
        return values[0] if len(values) == 1 else values

    # ------------------------------------------------------------------ steps

    def _use_fused_loss(self):
        loss = self._loss_fn
        return (
            getattr(self, "final_activation", None) == "softmax"
            and hasattr(loss, "forward_from_logits")
            and not getattr(loss, "from_logits", False)
            and getattr(loss, "axis", -1) in (-1, None)
        )

    def _ensure_built(self, x):
        if not self.built:
            self.build((None,) + tuple(x.shape[1:]))

    def _prepare_training(self):
        """The training plan: fused-loss flag, forward options, weights and where their grads live.

        Computed once per ``fit`` call and, for ``train_on_batch``, once per ``compile`` or change of
        the model's layers (as in Keras, changing ``trainable`` takes effect at the next ``compile``
        or ``fit``), so the per-step path walks no layer tree.
        """
        self._fused = self._use_fused_loss()
        # The input gradient of the first layer is never used: the model may skip it (FORWARD_OPTIONS).
        self._forward_options = forward_options(logits=self._fused, need_dx=False)
        self._has_constraints = self._any_constraint()
        self._plan_weights() if self.built else self._forget_plan_weights()
        self._plan_ready = True

    def _plan_weights(self):
        # Weight arrays keep their identity (set_weights copies into them), so they are taken once.
        self._plan_weight_count = weights_created()
        self._grad_slots = self._trainable_slots()
        self._train_vars = [w for _, w in self._grad_slots]  # Variables: the optimizer keys its slots by path
        self._grad_layers = self._all_layers()

    def _forget_plan_weights(self):
        self._train_vars = self._grad_layers = self._grad_slots = None

    def _invalidate_training_plan(self):
        """Called by compile and by models whose layers change."""
        self._plan_ready = False

    def _any_constraint(self):
        if not hasattr(self, "apply_constraints"):
            return False
        slots = getattr(self, "_slots", None)
        if slots is None:
            return True
        return any(getattr(w, "constraint", None) is not None for _, w in slots())

    def _train_step(self, x, y, sample_weight):
        if y is None:
            raise ValueError(_NO_TARGETS.format(loss=self.loss))
        if not self.built:
            self._ensure_built(x)
            self._prepare_training()
        fused = self._fused
        clear_grads(self._grad_layers)
        with self._forward_options:
            y_pred, backward = self.forward(x, training=True)
        if self._grad_layers is None or self._plan_weight_count != weights_created():
            self._plan_weights()  # weights created lazily by forward (custom layers)
        loss = self._loss_fn
        if fused:
            value, loss_backward = loss.forward_from_logits(y, y_pred, sample_weight)
        else:
            value, loss_backward = loss.forward(y, y_pred, sample_weight)
        backward(loss_backward(self._loss_scale))
        self.optimizer.apply(gradients_of(self._grad_slots), self._train_vars)
        if self._has_constraints:
            self.apply_constraints()
        self._update_metrics(value * self._loss_scale, y, y_pred, sample_weight, fused,
                             getattr(loss_backward, "probs", None) if fused else None)

    def _test_step(self, x, y, sample_weight):
        if not self.built:
            self._ensure_built(x)
        y_pred = self._infer(x)
        value = self._loss_fn(y, y_pred, sample_weight=sample_weight)
        self._update_metrics(value * self._loss_scale, y, y_pred, sample_weight, False)

    def _predict_step(self, x):
        if not self.built:
            self._ensure_built(x)
        return self._infer(x)

    # ------------------------------------------------------------------ Keras's customisation hooks

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled loss (times ``loss_weights``) plus the layers' penalties, as a scalar array.

        On an active GradientTape the result is recorded, so ``tape.gradient(loss, ...)`` reaches
        ``y_pred``. Override it to change the loss while keeping the rest of ``fit``.

        Example:
            >>> with ops.GradientTape() as tape:
            ...     loss = model.compute_loss(y=y, y_pred=model(x, training=True))
        """
        self._assert_compile_called()
        plain = ops._plain(y_pred)
        value, backward = self._loss_fn.forward(y, plain, sample_weight)
        scale = self._loss_scale
        extra = sum(self.losses) if training else 0.0
        total = get_backend().xp.asarray(value * scale + extra, dtype=plain.dtype)
        if ops.recording():
            total = ops._traced(total)
            ops._record(total, [y_pred], lambda d: [backward(float(d) * scale)])
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Update the compiled metrics (not the loss tracker) and return every metric's result."""
        if self._metric_ids[0] or self._metric_ids[1]:
            if self._compiled_metrics is None:
                self._build_metrics(y, y_pred)
            for metric, weighted in self._compiled_metrics:
                metric.update_state(y, ops._plain(y_pred), sample_weight=sample_weight if weighted else None)
        return self._logs()

    def train_step(self, data):
        """One training step on ``data`` = ``(x, y, sample_weight)``; returns the logs (Keras 3).

        The default is the fused step ``fit`` runs (forward, fused loss, backward, one optimizer update per
        weight, metrics); a subclass overriding it is called by ``fit`` instead, typically with a
        ``GradientTape``, ``compute_loss``, ``optimizer.apply`` and ``compute_metrics``.
        """
        x, y, sample_weight = da.unpack_x_y_sample_weight(data)
        if not getattr(self, "_plan_ready", False):
            self._prepare_training()
        self._train_step(x, y, sample_weight)
        return self._logs()

    def test_step(self, data):
        """One evaluation step on ``data`` = ``(x, y, sample_weight)``; returns the logs (Keras 3)."""
        x, y, sample_weight = da.unpack_x_y_sample_weight(data)
        self._test_step(x, y, sample_weight)
        return self._logs()

    def predict_step(self, data):
        """The model's output for one batch ``data`` (``x`` or ``(x,)``); Keras 3's hook."""
        x, _, _ = da.unpack_x_y_sample_weight(data)
        return self._predict_step(x)

    def _step(self, name):
        """``step(x, y, sample_weight)``: the fused default, or the subclass's overriding hook."""
        if getattr(type(self), name) is getattr(Trainer, name):
            return {"train_step": self._train_step, "test_step": self._test_step,
                    "predict_step": self._predict_step}[name]
        hook = getattr(self, name)
        if name == "predict_step":
            return lambda x: hook((x,))
        return lambda x, y, sample_weight: self._hook_logs.update(hook((x, y, sample_weight)) or {})

    def _custom_logs(self):
        """The latest logs of an overriding hook (its returned dict), else the compiled ones."""
        return dict(self._hook_logs) if self._hook_logs else self._logs()

    # ------------------------------------------------------------------ data

    def _keep_int(self):
        """Inputs keep their dtype (integer ids, strings) when the first layer does not cast them
        (``Layer._cast_inputs``: Embedding, lookups, TextVectorization); targets stay integers for
        sparse losses."""
        layers = getattr(self, "layers", None) or []
        keep_x = bool(layers) and not layers[0]._cast_inputs
        keep_y = "sparse" in getattr(self._loss_fn, "name", "") if self._loss_fn is not None else False
        return keep_x, keep_y

    def _adapter(self, x, y, sample_weight, batch_size, shuffle, steps, class_weight=None, steps_name="steps",
                 data_name="x"):
        keep_x, keep_y = self._keep_int()
        return da.make_adapter(x, y, sample_weight, batch_size, shuffle, steps, class_weight, keep_x, keep_y,
                               steps_name, data_name)

    def _fit_adapters(self, x, y, sample_weight, batch_size, validation_split, validation_data, shuffle,
                      class_weight, steps_per_epoch, validation_steps, validation_batch_size):
        x, y, sample_weight = (da.to_host_array(a) for a in (x, y, sample_weight))
        if validation_split and validation_data is None:
            if not (da.is_array_like(x) and (y is None or da.is_array_like(y))):
                raise ValueError(
                    "`validation_split` is only supported for Tensors or NumPy arrays, found following "
                    f"types in the input: {[type(v).__name__ for v in (x, y) if v is not None]}"
                )
            arrays = tuple(None if a is None else self._host(a) for a in (x, y, sample_weight))
            da.check_cardinality(*arrays)
            (x, y, sample_weight), validation_data = da.train_validation_split(arrays, validation_split)
        train = self._adapter(x, y, sample_weight, batch_size, shuffle, steps_per_epoch, class_weight,
                              "steps_per_epoch")
        val = None
        if validation_data is not None:
            vx, vy, vw = da.unpack_x_y_sample_weight(validation_data)
            val = self._adapter(vx, vy, vw, validation_batch_size or batch_size, False, validation_steps,
                                steps_name="validation_steps", data_name="validation_data")
        return train, val

    @staticmethod
    def _host(a):
        import numpy as np

        return a if hasattr(a, "shape") else np.asarray(a)

    # ------------------------------------------------------------------ fit

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1, check_numerics=False):
        """Train the model for ``epochs`` passes over the data.

        Args:
            x: Inputs: a NumPy array (or list), a ``pyminidl.data.Dataset`` of ``(x, y)`` or
                ``(x, y, sample_weight)`` batches, or a Python generator of them.
            y: Targets (arrays only; Datasets and generators carry their own).
            batch_size: Samples per step for array data (default 32).
            epochs: Index of the last epoch (training runs ``initial_epoch..epochs-1``).
            verbose: 0 silent, 1 progress bar, 2 one line per epoch, ``"auto"`` = 1.
            callbacks: List of ``pyminidl.callbacks.Callback``.
            validation_split: Fraction of the arrays (the last samples, before shuffling)
                held out for validation.
            validation_data: ``(x_val, y_val)``, ``(x_val, y_val, sample_weight)`` or a Dataset.
            shuffle: Shuffle the arrays before each epoch.
            class_weight: Dict class index -> weight of its samples in the loss.
            sample_weight: Per-sample weights of the loss, shape (samples,).
            initial_epoch: Epoch at which to start (to resume training).
            steps_per_epoch: Steps per epoch (default: one pass over the data).
            validation_steps: Steps of each validation run (default: one pass).
            validation_batch_size: Batch size of validation (default: ``batch_size``).
            validation_freq: Validate every this many epochs, or at the epochs listed.
            check_numerics: raise at the first layer whose output or gradient holds NaN or Inf
                (``pyminidl.debugging``; pyminidl's own argument, off by default).

        Returns:
            The ``History`` callback; ``history.history`` maps each metric to per-epoch values.

        Raises:
            ValueError: Before ``compile()``, and for inconsistent or malformed data.

        Example:
            >>> history = model.fit(x_train, y_train, epochs=10, validation_split=0.1)
            >>> history.history["val_loss"]
        """
        self._assert_compile_called()
        if check_numerics and not debugging.STATE.enabled:
            with debugging.check_numerics():
                return self.fit(x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data,
                                shuffle, class_weight, sample_weight, initial_epoch, steps_per_epoch,
                                validation_steps, validation_batch_size, validation_freq)
        verbose = _resolve_verbose(verbose)
        train, val = self._fit_adapters(x, y, sample_weight, batch_size, validation_split, validation_data,
                                        shuffle, class_weight, steps_per_epoch, validation_steps,
                                        validation_batch_size)
        cbs = _callback_list(callbacks, self, add_history=True, add_progbar=verbose != 0,
                             verbose=verbose, epochs=epochs, steps=train.num_batches)
        self.stop_training = False
        self._prepare_training()
        cbs.on_train_begin()
        training_logs = None
        for epoch in range(initial_epoch, epochs):
            logs = self._fit_epoch(epoch, train, cbs)
            if logs is None:
                break
            if val is not None and _should_eval(epoch, validation_freq):
                val_logs = self._test_loop(val, cbs, "validation_data")
                logs.update({"val_" + name: value for name, value in val_logs.items()})
            cbs.on_epoch_end(epoch, logs)
            training_logs = logs
            if self.stop_training:
                break
        cbs.on_train_end(training_logs)
        return self.history

    def _fit_epoch(self, epoch, train, cbs):
        """One epoch of training; its logs, or None when a generator has run dry."""
        self.reset_metrics()
        cbs.on_epoch_begin(epoch)
        hooks = cbs.needs_train_batch_logs
        step = -1
        self._hook_logs = {}
        train_step = self._step("train_step")
        numerics = debugging.STATE if debugging.STATE.enabled else None
        for step, (x, y, sample_weight) in train.epoch():
            if hooks:
                cbs.on_train_batch_begin(step)
            if numerics is not None:
                numerics.where = (epoch, step)
            train_step(x, y, sample_weight)
            if hooks:
                cbs.on_train_batch_end(step, self._custom_logs())
            if self.stop_training:
                break
        if numerics is not None:
            numerics.where = None  # predict and evaluate after fit report no batch of fit's
        if step < 0:
            da.warn_ran_out()
            self.stop_training = True
            return None
        if train.exhausted:
            da.warn_ran_out()
            self.stop_training = True
        elif train.ran_short:
            da.warn_ran_out()  # Keras 3 ends this epoch early; the next one starts the data again
        return self._custom_logs()

    # ------------------------------------------------------------------ evaluate

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """The loss and metrics of the model on the given data (in inference mode).

        Args:
            x, y, sample_weight: As in ``fit``.
            batch_size: Samples per batch (default 32).
            verbose: 0 silent, 1 progress bar, 2 one line, ``"auto"`` = 1.
            steps: Number of batches (default: one pass over the data).
            callbacks: List of callbacks (their ``on_test_*`` hooks run).
            return_dict: Return ``{name: value}`` instead of a scalar or list.

        Returns:
            The loss (a float) when no metrics were compiled, else ``[loss, *metrics]``
            in compile order, or a dict with ``return_dict=True``.

        Example:
            >>> loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
        """
        self._assert_compile_called()
        verbose = _resolve_verbose(verbose)
        data = self._adapter(x, y, sample_weight, batch_size, False, steps)
        cbs = _callback_list(callbacks, self, add_progbar=verbose != 0, verbose=verbose, epochs=1,
                             steps=data.num_batches)
        logs = self._test_loop(data, cbs)
        return logs if return_dict else self._flatten_logs(logs)

    def _test_loop(self, data, cbs, data_name="x"):
        self.reset_metrics()
        self.stop_evaluating = False
        cbs.on_test_begin()
        hooks = cbs.needs_test_batch_logs
        self._hook_logs = {}
        test_step = self._step("test_step")
        step = -1
        for step, (x, y, sample_weight) in data.epoch():
            if y is None:
                raise ValueError("evaluate() needs targets: pass `y` or data that yields `(x, y)`.")
            if hooks:
                cbs.on_test_batch_begin(step)
            test_step(x, y, sample_weight)
            if hooks:
                cbs.on_test_batch_end(step, self._custom_logs())
            if self.stop_evaluating:
                break
        if step < 0:
            raise ValueError(f"Expected input data to be non-empty: `{data_name}` gave no batch to evaluate.")
        logs = self._custom_logs()
        cbs.on_test_end(logs)
        return logs

    # ------------------------------------------------------------------ predict

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """The model's outputs for ``x``, computed batch by batch in inference mode.

        Args:
            x: A NumPy array, a Dataset or a generator (its ``y`` are ignored).
            batch_size: Samples per batch (default 32); the result does not depend on it.
            verbose: 0 silent, 1 progress bar, 2 one line, ``"auto"`` = 1.
            steps: Number of batches (default: all of the data).
            callbacks: List of callbacks (their ``on_predict_*`` hooks run).

        Returns:
            A ``numpy.ndarray`` of the outputs, one row per sample.

        Example:
            >>> probs = model.predict(x_test, verbose=0)
            >>> labels = probs.argmax(axis=-1)
        """
        verbose = _resolve_verbose(verbose)
        keep_x, _ = self._keep_int()
        data = da.make_adapter(x, None, None, batch_size, False, steps, keep_int_x=keep_x)
        cbs = _callback_list(callbacks, self, add_progbar=verbose != 0, verbose=verbose, epochs=1,
                             steps=data.num_batches)
        self.stop_predicting = False
        cbs.on_predict_begin()
        hooks = cbs.needs_predict_batch_logs
        outputs = []
        predict_step = self._step("predict_step")
        for step, (xb, _, _) in data.epoch():
            if hooks:
                cbs.on_predict_batch_begin(step)
            outputs.append(predict_step(xb))
            if hooks:
                cbs.on_predict_batch_end(step, {"outputs": outputs[-1]})
            if self.stop_predicting:
                break
        cbs.on_predict_end()
        if not outputs:
            raise ValueError("Expected input data to be non-empty: predict() received no batches.")
        be = get_backend()
        return be.to_numpy(outputs[0] if len(outputs) == 1 else be.xp.concatenate(outputs, axis=0))

    # ------------------------------------------------------------------ single batches

    def _single_batch(self, x, y, sample_weight, class_weight=None):
        keep_x, keep_y = self._keep_int()
        be = get_backend()
        x = da.to_backend_array(x, be, keep_x)
        y = None if y is None else da.to_backend_array(y, be, keep_y)
        sample_weight = None if sample_weight is None else da.to_backend_array(sample_weight, be)
        da.check_cardinality(x, y, sample_weight)
        if class_weight is not None and y is not None:
            if sample_weight is not None:
                raise ValueError("You cannot use `class_weight` and `sample_weight` at the same time.")
            sample_weight = be.asarray(da.class_weight_to_sample_weights(y, class_weight))
        return x, y, sample_weight

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One gradient update on one batch.

        Returns:
            This batch's loss (and metrics; Keras 3 resets them before the step): a scalar,
            a list ``[loss, *metrics]``, or a dict with ``return_dict=True`` (as ``evaluate``).

        Example:
            >>> loss = model.train_on_batch(x_batch, y_batch)
        """
        self._assert_compile_called()
        x, y, sample_weight = self._single_batch(x, y, sample_weight, class_weight)
        if y is None:
            raise ValueError("train_on_batch() needs targets `y`.")
        if not getattr(self, "_plan_ready", False):
            self._prepare_training()
        self.reset_metrics()
        self._train_step(x, y, sample_weight)
        logs = self._logs()
        return logs if return_dict else self._flatten_logs(logs)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """The loss (and metrics) on one batch, without updating the weights.

        Example:
            >>> loss = model.test_on_batch(x_batch, y_batch)
        """
        self._assert_compile_called()
        x, y, sample_weight = self._single_batch(x, y, sample_weight)
        if y is None:
            raise ValueError("test_on_batch() needs targets `y`.")
        self.reset_metrics()
        self._test_step(x, y, sample_weight)
        logs = self._logs()
        return logs if return_dict else self._flatten_logs(logs)

    def predict_on_batch(self, x):
        """The model's outputs for one batch, as a ``numpy.ndarray``.

        Example:
            >>> probs = model.predict_on_batch(x_batch)
        """
        keep_x, _ = self._keep_int()
        be = get_backend()
        return be.to_numpy(self._predict_step(da.to_backend_array(x, be, keep_x)))


__all__ = ["Trainer"]
