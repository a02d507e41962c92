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


import json

from pyminidl import debugging, losses, ops, optimizers
from pyminidl import metrics as metrics_module
from pyminidl.callbacks import CallbackList
from pyminidl.distribution import _state as distribution_state
from pyminidl.distribution._training import hooks_for
from pyminidl.backend import get_backend
from pyminidl.saving import saving_lib, serialization_lib
from pyminidl.layers.base import clear_grads, forward_options, gradients_of, weights_created
from pyminidl import tree
from pyminidl.training import data_adapter as da
from pyminidl.training.compile_utils import LossTracker, MultiOutputCompile

_NOT_COMPILED = "You must call `compile()` before using the model."
_NO_TARGETS = ("Target data is missing. Your model was compiled with loss={loss}, and therefore expects "
               "target data to be provided in `fit()`: pass `y`, or data that yields `(x, y)`.")

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


def _array_data(value, nested):
    if nested and isinstance(value, dict):
        return all(da.is_array_like(v) for v in value.values())
    return da.is_array_like(value)


def _concatenate_batches(outputs):
    """predict's result: the batches joined, per output for a model with several (as NumPy arrays)."""
    be = get_backend()
    first = outputs[0]
    columns = list(zip(*[tree.flatten(o) for o in outputs]))
    joined = [be.to_numpy(c[0] if len(c) == 1 else be.xp.concatenate(c, axis=0)) for c in columns]
    return tree.pack_sequence_as(first, joined) if tree.is_nested(first) else joined[0]


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
    if isinstance(callbacks, CallbackList):
        return callbacks
    cbs = CallbackList(callbacks, model=model, **params)
    dist = model._distributed()
    return cbs if dist is None else dist.callbacks(cbs)


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
    _multi = None  # MultiOutputCompile for a model with several outputs

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
        if isinstance(steps_per_execution, bool) or not isinstance(steps_per_execution, int) or steps_per_execution < 1:
            raise ValueError(f"`steps_per_execution` must be a positive integer. Received: {steps_per_execution!r}")
        self.optimizer = optimizers.get(optimizer)
        self.loss = loss
        names = self._compile_output_names()
        if names is not None and loss is not None:  # several outputs: a loss, a weight and metrics each
            self._multi = MultiOutputCompile(names, loss, loss_weights, metrics, weighted_metrics)
            self._loss_fn, self._loss_scale, self._metric_ids = self._multi, 1.0, ((), ())
        else:
            self._multi = None
            self._loss_fn = None if loss is None else losses.get(_single_output(loss, "loss"))
            self._loss_scale = _loss_weight(loss_weights)
            self._metric_ids = (_as_list(metrics), _as_list(weighted_metrics))
        self._compiled_metrics = None
        self._loss_tracker = LossTracker()
        self.run_eagerly = run_eagerly
        self.steps_per_execution = steps_per_execution
        self.jit_compile = jit_compile
        self.compiled = True
        self._compile_args = {"loss": loss, "loss_weights": loss_weights, "metrics": metrics,
                              "weighted_metrics": weighted_metrics, "run_eagerly": run_eagerly,
                              "steps_per_execution": steps_per_execution, "jit_compile": jit_compile}
        self._invalidate_training_plan()

    def get_compile_config(self):
        """The ``compile`` arguments as Keras 3 stores them in a ``.keras`` file (None before compile)."""
        if not self.compiled:
            return None
        args = dict(self._compile_args, jit_compile=False if self._compile_args["jit_compile"] == "auto"
                    else self._compile_args["jit_compile"])
        return serialization_lib.serialize_keras_object(dict(args, optimizer=self.optimizer))

    def compile_from_config(self, config):
        """``compile`` with the arguments ``get_compile_config`` gave (names resolved through the registry)."""
        from_dict = {"optimizer": optimizers.deserialize, "loss": losses.deserialize}
        config = dict(config)
        for key, rebuild in from_dict.items():
            if isinstance(config.get(key), dict):
                config[key] = rebuild(config[key])
        for key in ("metrics", "weighted_metrics"):
            if isinstance(config.get(key), (list, tuple)):
                config[key] = [metrics_module.deserialize(m) if isinstance(m, dict) else m for m in config[key]]
        known = ("optimizer", "loss", "loss_weights", "metrics", "weighted_metrics", "run_eagerly",
                 "steps_per_execution", "jit_compile")
        self.compile(**{k: v for k, v in config.items() if k in known})
        if self.built:
            self.optimizer.build([w for _, w in self._trainable_slots()])

    # ------------------------------------------------------------------ saving

    def save(self, filepath, overwrite=True, zipped=None, **kwargs):
        """Write the model to a ``.keras`` file (atomic: a crash leaves the previous file intact).

        Example:
            >>> model.save("model.keras")
            >>> model = pyminidl.models.load_model("model.keras")
        """
        if kwargs or zipped is False:
            raise ValueError(f"model.save() takes filepath and overwrite. Received: {sorted(kwargs)}")
        if distribution_state.is_chief():  # under a distribution, rank 0 alone writes files
            saving_lib.save_model(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath, overwrite=True):
        """Write the weights (and optimizer state) to ``*.weights.h5`` (h5py) or ``*.weights.npz``."""
        if distribution_state.is_chief():
            saving_lib.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, skip_mismatch=False):
        """Read weights from ``*.weights.h5``, ``*.weights.npz`` or a ``.keras`` file; all or nothing.

        Raises:
            ValueError: the file comes from another architecture (the first mismatching layer and both
                shapes are named); nothing is changed then.
        """
        saving_lib.load_weights(self, filepath, skip_mismatch=skip_mismatch)

    def to_json(self, **kwargs):
        """The model's config as a JSON string (``models.model_from_json`` reads it back)."""
        config = serialization_lib.serialize_keras_object(self)
        config.pop("compile_config", None)  # Keras's to_json holds the architecture only
        return json.dumps(config, **kwargs)

    def _compile_output_names(self):
        """The outputs' log names for a model with several outputs, else None (one output)."""
        names = getattr(self, "_output_log_names", None)
        return list(names) if names is not None and len(names) > 1 else None

    def _nested_data(self):
        """Whether (x, y) may be lists/dicts of arrays: the model has several inputs (outputs)."""
        inputs = getattr(self, "_inputs_struct", None)
        several_in = isinstance(inputs, dict) or (isinstance(inputs, list) and len(inputs) > 1)
        return several_in, self._multi is not None

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
        if self._multi is not None:
            return self._multi.metrics()
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

    def _update_metrics(self, value, y, y_pred, sample_weight, from_logits, probs=None, mask=None, extra=None):
        if extra is None:
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
            weight = sample_weight if weighted else None
            if mask is not None and isinstance(metric, metrics_module.MeanMetricWrapper):  # Keras 3: y_pred's mask, "sum"
                weight = _times(mask.astype("float32"), weight)
            metric.update_state(y, probs, sample_weight=weight)

    def _logs(self):
        if self._multi is not None:
            return self._multi.logs()
        if distribution_state.DISTRIBUTION is not None:
            return self._distributed().logs(self)  # the metric states summed over the ranks
        logs = {"loss": self._loss_tracker.result()}
        if not self._compiled_metrics:
            return logs
        for metric, _ in self._compiled_metrics:
            logs[metric.name] = float(metric.result())
        return dict(sorted(logs.items()))  # Keras 3 sorts the logs by name

    def _flatten_logs(self, logs):
        """Keras 3's list order: loss, the compiled metrics, then any other key sorted."""
        if len(logs) == 1:  # the loss alone (a scalar whatever the order)
            return next(iter(logs.values()))
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
            self.build(tree.map_structure(lambda a: (None,) + tuple(a.shape[1:]), x))

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
        if self._multi is not None:
            return self._multi_train_step(x, y, sample_weight)
        fused = self._fused
        dist = self._distributed()
        if dist is not None:
            dist.before_step(self, x)
        clear_grads(self._grad_layers)
        with self._forward_options:
            y_pred, backward = self.forward(x, training=True)
        if self._grad_layers is None or self._plan_weight_count != weights_created():
            self._plan_weights()  # weights created lazily by forward (custom layers)
        loss, mask = self._loss_fn, self.__dict__.pop("_output_mask", None)
        loss_weight = _with_output_mask(mask, sample_weight)
        if fused:
            value, loss_backward = loss.forward_from_logits(y, y_pred, loss_weight)
        else:
            value, loss_backward = loss.forward(y, y_pred, loss_weight)
        backward(loss_backward(self._loss_scale))
        grads = gradients_of(self._grad_slots) if dist is None else dist.gradients(self)
        self.optimizer.apply(grads, self._train_vars)
        if self._has_constraints:
            self.apply_constraints()
        self._update_metrics(value * self._loss_scale, y, y_pred, sample_weight, fused,
                             getattr(loss_backward, "probs", None) if fused else None, mask, self._penalties())
        if dist is not None:
            dist.after_step(self)  # after the metrics: a padding step's updates are undone

    def _penalties(self):
        """``self.losses`` of the step just run; () without walking the model when no layer of the
        plan holds a penalty (the common case: no regularizer, no add_loss)."""
        for layer in self._grad_layers:
            if layer._losses:
                return self.losses  # in the model's own order, as the sum is reported
        return ()

    def _multi_train_step(self, x, y, sample_weight):
        """The training step of a model with several outputs: one loss gradient per output, one backward."""
        clear_grads(self._grad_layers)
        with self._forward_options:
            y_pred, backward = self.forward(x, training=True)
        if self._grad_layers is None or self._plan_weight_count != weights_created():
            self._plan_weights()
        backward(self._multi.forward(y, y_pred, sample_weight))
        self.optimizer.apply(gradients_of(self._grad_slots), self._train_vars)
        if self._has_constraints:
            self.apply_constraints()
        self._multi.update(self.losses)

    def _test_step(self, x, y, sample_weight):
        if not self.built:
            self._ensure_built(x)
        y_pred = self._infer(x)
        if self._multi is not None:
            self._multi.evaluate(y, y_pred, sample_weight)
            self._multi.update(self.losses)
            return
        mask = self.__dict__.pop("_output_mask", None)
        value = self._loss_fn(y, y_pred, sample_weight=_with_output_mask(mask, sample_weight))
        self._update_metrics(value * self._loss_scale, y, y_pred, sample_weight, False, mask=mask)

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
        if self._multi is not None:
            return self._multi_compute_loss(y, y_pred, sample_weight, training)
        plain = ops._plain(y_pred)
        value, backward = self._loss_fn.forward(y, plain, sample_weight)
        scale = self._loss_scale
        extra = sum(self.losses) if training else 0.0
        total = get_backend().xp.asarray(value * scale + extra, dtype=plain.dtype)
        if ops.recording():
            total = ops._traced(total)
            ops._record(total, [y_pred], lambda d: [backward(float(d) * scale)])
        return total

    def _multi_compute_loss(self, y, y_pred, sample_weight, training):
        """compute_loss of a model with several outputs: the weighted sum, recorded with one gradient per output."""
        preds = tree.flatten(y_pred)
        seeds = self._multi.forward(y, [ops._plain(p) for p in preds], sample_weight)
        extra = sum(self.losses) if training else 0.0
        value = self._multi.total_value(self._multi._last[3]) + extra
        total = get_backend().xp.asarray(value, dtype=ops._plain(preds[0]).dtype)
        if ops.recording():
            total = ops._traced(total)
            ops._record(total, preds, lambda d: [None if s is None else s * float(d) for s in seeds])
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Update the compiled metrics (not the loss tracker) and return every metric's result.

        A model with several outputs updates its per-output loss trackers here too.
        """
        if self._multi is not None:
            self._multi.evaluate(y, [ops._plain(p) for p in tree.flatten(y_pred)], sample_weight)
            self._multi.update(self.losses)
            return self._logs()
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
        if not self._hook_logs:
            return self._logs()
        dist = self._distributed()
        return dict(self._hook_logs) if dist is None else dist.mean_logs(self._hook_logs)

    # ------------------------------------------------------------------ distribution

    def _distributed(self):
        """The data-parallel hooks (``pyminidl.distribution._training.FitSync``), None without a distribution."""
        if distribution_state.DISTRIBUTION is None:
            return None
        return hooks_for(self)

    def _shard(self, adapter, training=False):
        dist = self._distributed()
        return adapter if dist is None else dist.shard(adapter, training, self)

    # ------------------------------------------------------------------ data

    def _keep_int(self):
        """Inputs keep their dtype (integer ids, strings) when the first layer does not cast them
        (``Layer._cast_inputs``: Embedding, lookups, TextVectorization); targets stay integers for
        sparse losses."""
        keep_x = self._input_keeps_dtype()
        if self._multi is not None:
            return keep_x, self._multi.keeps_int_targets
        keep_y = "sparse" in getattr(self._loss_fn, "name", "") if self._loss_fn is not None else False
        return keep_x, keep_y

    def _input_keeps_dtype(self):
        layers = getattr(self, "layers", None) or []
        return bool(layers) and not layers[0]._cast_inputs

    def _adapter(self, x, y, sample_weight, batch_size, shuffle, steps, class_weight=None, steps_name="steps",
                 data_name="x"):
        keep_x, keep_y = self._keep_int()
        return da.make_adapter(x, y, sample_weight, batch_size, shuffle, steps, class_weight, keep_x, keep_y,
                               steps_name, data_name, self._nested_data())

    def _fit_adapters(self, x, y, sample_weight, batch_size, validation_split, validation_data, shuffle,
                      class_weight, steps_per_epoch, validation_steps, validation_batch_size):
        nested_x, nested_y = self._nested_data()
        x, y = da.to_host_data(x, nested_x), da.to_host_data(y, nested_y)
        sample_weight = da.to_host_array(sample_weight)
        if validation_split and validation_data is None:
            if not (_array_data(x, nested_x) and (y is None or _array_data(y, nested_y))):
                raise ValueError(
                    "`validation_split` is only supported for Tensors or NumPy arrays, found following "
                    f"types in the input: {[type(v).__name__ for v in (x, y) if v is not None]}"
                )
            arrays = tuple(None if a is None else tree.map_structure(self._host, a) for a in (x, y, sample_weight))
            da.check_cardinality(*arrays)
            (x, y, sample_weight), validation_data = da.train_validation_split(arrays, validation_split)
        train = self._shard(self._adapter(x, y, sample_weight, batch_size, shuffle, steps_per_epoch,
                                          class_weight, "steps_per_epoch"), training=True)
        val = None
        if validation_data is not None:
            vx, vy, vw = da.unpack_x_y_sample_weight(validation_data)
            val = self._shard(self._adapter(vx, vy, vw, validation_batch_size or batch_size, False,
                                            validation_steps, steps_name="validation_steps",
                                            data_name="validation_data"))
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
        self._initial_epoch = initial_epoch  # BackupAndRestore moves it on_train_begin, as in Keras
        cbs.on_train_begin()
        training_logs = None
        for epoch in range(self._initial_epoch, epochs):
            logs = self._fit_epoch(epoch, train, cbs)
            if logs is None:
                break
            if val is not None and _should_eval(epoch, validation_freq):
                val_logs = self._test_loop(val, cbs, "validation_data")
                logs.update({"val_" + name: value for name, value in val_logs.items()})
            cbs.on_epoch_end(epoch, logs)
            training_logs = logs
            dist = self._distributed()
            if dist is not None:
                self.stop_training = dist.agree(self.stop_training)  # all ranks stop together
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
        data = self._shard(self._adapter(x, y, sample_weight, batch_size, False, steps))
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
            if not getattr(data, "padding", False):  # a rank with no sample of a short last batch
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
        data = self._shard(da.make_adapter(x, None, None, batch_size, False, steps, keep_int_x=keep_x,
                                           nested=self._nested_data()))
        cbs = _callback_list(callbacks, self, add_progbar=verbose != 0, verbose=verbose, epochs=1,
                             steps=data.num_batches)
        self.stop_predicting = False
        cbs.on_predict_begin()
        hooks = cbs.needs_predict_batch_logs
        outputs, paddings = [], []
        predict_step = self._step("predict_step")
        for step, (xb, _, _) in data.epoch():
            if hooks:
                cbs.on_predict_batch_begin(step)
            outputs.append(predict_step(xb))
            paddings.append(getattr(data, "padding", False))
            if hooks:
                cbs.on_predict_batch_end(step, {"outputs": outputs[-1]})
            if self.stop_predicting:
                break
        cbs.on_predict_end()
        if not outputs:
            raise ValueError("Expected input data to be non-empty: predict() received no batches.")
        dist = self._distributed()
        if dist is not None:
            return dist.gather(outputs, paddings)  # every rank's shards, in sample order
        return _concatenate_batches(outputs)

    # ------------------------------------------------------------------ single batches

    def _single_batch(self, x, y, sample_weight, class_weight=None):
        if sample_weight is None and class_weight is None and da.is_backend_batch(x, y):
            return x, y, None  # nothing to convert, and x and y hold the same number of samples
        keep_x, keep_y = self._keep_int()
        nested_x, nested_y = self._nested_data()
        be = get_backend()
        x = da.to_backend_data(x, be, keep_x, nested_x) if nested_x else da.to_backend_array(x, be, keep_x)
        if y is not None:
            y = da.to_backend_data(y, be, keep_y, nested_y) if nested_y else da.to_backend_array(y, be, keep_y)
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
        y = self._predict_step(da.to_backend_data(x, be, keep_x, self._nested_data()[0]))
        return tree.map_structure(be.to_numpy, y)


__all__ = ["Trainer"]


def _with_output_mask(mask, sample_weight):
    """Keras passes the output's mask to the loss: masked entries weigh 0, valid ones total / valid
    (so "sum_over_batch_size" averages over the valid entries), times any sample_weight. (The
    compiled mean metrics get the mask itself: _update_metrics.)"""
    if mask is None:
        return sample_weight
    from pyminidl.config import epsilon

    weights = mask.astype("float32")
    return _times(weights * (weights.size / (float(weights.sum()) + epsilon())), sample_weight)


def _times(weights, sample_weight):
    """weights * sample_weight, the sample weights broadcast over weights' trailing axes (None: weights)."""
    if sample_weight is None:
        return weights
    sw = get_backend().xp.asarray(sample_weight, dtype=weights.dtype)
    while sw.ndim < weights.ndim:
        sw = sw[..., None]
    return weights * sw
