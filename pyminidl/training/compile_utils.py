"""compile() for a model with several outputs: a loss, a loss weight and metrics per output.

Keras 3's rules: ``loss`` is one loss for every output, a list (one per output, None for none) or
a dict by output name; ``loss_weights`` and ``metrics`` likewise (a metrics list as long as the
outputs maps one entry, itself a metric or a list, to each output). The logs are ``loss`` (the
weighted sum plus the layers' penalties), ``<output>_loss`` (unweighted) and
``<output>_<metric>``; ``evaluate``'s list is loss, the output losses, then the metrics.

Example:
    >>> model.compile("adam", loss={"out1": "mse", "out2": "mae"}, loss_weights=[1.0, 0.5],
    ...               metrics={"out1": ["mae"]})
"""

from pyminidl import config, losses, metrics as metrics_module, tree


class LossTracker:
    """A running mean of batch losses weighted by batch size (Keras 3's loss trackers)."""

    def __init__(self, name="loss"):
        self.name = name
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


def _per_output(value, names, what, default=None):
    """One entry per output from a single value, a list (one per output) or a dict by output name.

    Raises:
        ValueError: a list of the wrong length, or a dict key that names no output.
    """
    if isinstance(value, dict):
        unknown = [k for k in value if k not in names]
        if unknown:
            raise ValueError(f"In the dict argument `{what}`, key(s) {unknown} do not correspond to any model "
                             f"output. Received: {what}={value!r}; the outputs are {names}")
        return [value.get(n, default) for n in names]
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise ValueError(f"`{what}` must have one entry per model output ({len(names)}: {names}). "
                             f"Received: {what}={value!r}")
        return list(value)
    return [value] * len(names)


def _metric_list(entry):
    if entry is None:
        return []
    return list(entry) if isinstance(entry, (list, tuple)) else [entry]


class MultiOutputCompile:
    """The compiled losses and metrics of a model with several outputs (see the module docstring).

    Args:
        names: the outputs' log names, in ``model.outputs`` order.
        loss, loss_weights, metrics, weighted_metrics: as ``Model.compile`` takes them.
    """

    def __init__(self, names, loss, loss_weights=None, metrics=None, weighted_metrics=None):
        self.names = list(names)
        self.losses = [None if l is None else losses.get(l) for l in _per_output(loss, self.names, "loss")]
        if all(l is None for l in self.losses):
            raise ValueError("No loss to compute. Provide a `loss` argument in `compile()`.")
        weights = _per_output(1.0 if loss_weights is None else loss_weights, self.names, "loss_weights", 1.0)
        self.weights = [1.0 if w is None else float(w) for w in weights]
        self.metric_ids = [(_metric_list(m), _metric_list(w)) for m, w in zip(
            _per_output(metrics, self.names, "metrics") if metrics is not None else [None] * len(self.names),
            _per_output(weighted_metrics, self.names, "weighted_metrics")
            if weighted_metrics is not None else [None] * len(self.names))]
        self.total = LossTracker("loss")
        self.trackers = [LossTracker(f"{n}_loss") for n, l in zip(self.names, self.losses) if l is not None]
        self.compiled_metrics = None  # [(output index, metric, weighted)], built on the first batch
        self.keeps_int_targets = any("sparse" in getattr(l, "name", "") for l in self.losses if l is not None)
        self._last = None

    # ------------------------------------------------------------------ data

    def targets(self, y):
        """The targets as a list in output order (a list, or a dict by output name)."""
        n = len(self.names)
        if isinstance(y, dict):
            flat = [y.get(name) for name in self.names]
        elif isinstance(y, (list, tuple)) and len(y) == n:
            flat = list(y)
        else:
            raise ValueError(f"The model has {n} outputs {self.names}: pass `y` as a list of {n} arrays or a dict "
                             f"by output name. Received: y of type {type(y).__name__}")
        for name, loss, t in zip(self.names, self.losses, flat):
            if loss is not None and t is None:
                raise ValueError(f"Target data is missing for output '{name}', which has a loss.")
        return [t if t is None or getattr(l, "name", "").startswith("sparse") or t.dtype.kind == "f"
                else t.astype(config.floatx()) for t, l in zip(flat, self.losses)]

    def _sample_weights(self, sample_weight):
        if isinstance(sample_weight, (list, tuple, dict)):
            return _per_output(sample_weight, self.names, "sample_weight")
        return [sample_weight] * len(self.names)

    # ------------------------------------------------------------------ losses

    def forward(self, y, y_pred, sample_weight):
        """The loss gradient of each output (None where an output has no loss), remembering the values."""
        ys, preds, weights = self.targets(y), tree.flatten(y_pred), self._sample_weights(sample_weight)
        values, seeds = [], []
        for loss, w, yt, yp, sw in zip(self.losses, self.weights, ys, preds, weights):
            if loss is None:
                seeds.append(None)
                continue
            value, backward = loss.forward(yt, yp, sw)
            values.append(float(value))
            seeds.append(backward(w))  # d(w * loss)/dy_pred
        self._last = (ys, preds, weights, values)
        return seeds

    def evaluate(self, y, y_pred, sample_weight):
        """The values of the losses on one batch (inference: no gradient)."""
        ys, preds, weights = self.targets(y), tree.flatten(y_pred), self._sample_weights(sample_weight)
        values = [float(loss(yt, yp, sample_weight=sw)) for loss, yt, yp, sw in zip(self.losses, ys, preds, weights)
                  if loss is not None]
        self._last = (ys, preds, weights, values)

    def total_value(self, values):
        return sum(w * v for w, v in zip([w for w, l in zip(self.weights, self.losses) if l is not None], values))

    # ------------------------------------------------------------------ metrics and logs

    def update(self, penalties):
        """Update the trackers and metrics from the latest ``forward``/``evaluate`` (plus layer penalties)."""
        ys, preds, weights, values = self._last
        count = len(tree.flatten(preds)[0])
        self.total.update_state(self.total_value(values) + float(sum(penalties)), count)
        for tracker, value in zip(self.trackers, values):
            tracker.update_state(value, count)
        if self.compiled_metrics is None:
            self._build_metrics(ys, preds)
        for i, metric, weighted in self.compiled_metrics:
            metric.update_state(ys[i], preds[i], sample_weight=weights[i] if weighted else None)

    def _build_metrics(self, ys, preds):
        built = []
        for i, (name, loss, (plain, weighted_ids)) in enumerate(zip(self.names, self.losses, self.metric_ids)):
            seen = set()
            for identifiers, weighted in ((plain, False), (weighted_ids, True)):
                for identifier in identifiers:
                    metric = metrics_module.resolve(identifier, loss, tuple(ys[i].shape), tuple(preds[i].shape))
                    base = identifier if isinstance(identifier, str) else metric.name
                    base = "weighted_" + base if weighted and base in seen else base
                    seen.add(base)
                    metric.name = f"{name}_{base}"
                    metric.reset_state()
                    built.append((i, metric, weighted))
        self.compiled_metrics = built

    def metrics(self):
        """The trackers and metrics in Keras's ``evaluate`` order: loss, output losses, output metrics."""
        return [self.total] + self.trackers + [m for _, m, _ in self.compiled_metrics or ()]

    def logs(self):
        return dict(sorted((m.name, float(m.result())) for m in self.metrics()))


__all__ = ["LossTracker", "MultiOutputCompile"]
