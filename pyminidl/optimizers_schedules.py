"""Learning-rate schedules (``pyminidl.optimizers.schedules``), Keras 3 names and formulas.

A schedule is called with the optimizer's step (``optimizer.iterations``, from 0) and
returns the learning rate for that step.

Example:
    >>> lr = pyminidl.optimizers.schedules.ExponentialDecay(0.1, decay_steps=100, decay_rate=0.5)
    >>> opt = pyminidl.optimizers.SGD(learning_rate=lr)
"""

import math

from pyminidl.saving import serialization_lib


class LearningRateSchedule:
    """Base class: subclasses implement ``__call__(step) -> float`` and ``get_config()``."""

    def __call__(self, step):
        raise NotImplementedError(
            f"Learning rate schedule '{type(self).__name__}' must override `__call__(self, step)`."
        )

    def get_config(self):
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' must override `get_config()`.")

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _check_decay_steps(decay_steps):
    """The prologue every decaying schedule shares: a positive number of steps (a clear error, not a
    ZeroDivisionError at the first step)."""
    if isinstance(decay_steps, bool) or not isinstance(decay_steps, (int, float)) or decay_steps <= 0:
        raise ValueError(f"Argument `decay_steps` must be > 0. Received: decay_steps={decay_steps!r}")


class _RateDecay(LearningRateSchedule):
    """What the rate-based decays share: the arguments, their check, the step's progress and the config."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase, name):
        _check_decay_steps(decay_steps)
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.decay_rate, self.staircase, self.name = decay_rate, staircase, name

    def _progress(self, step):
        p = float(step) / self.decay_steps
        return math.floor(p) if self.staircase else p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class ExponentialDecay(_RateDecay):
    """lr = initial_learning_rate * decay_rate ** (step / decay_steps) (integer division if staircase).

    Example:
        >>> ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)(20)
        0.025
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name="ExponentialDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step):
        p = self._progress(step)
        return self.initial_learning_rate * self.decay_rate ** p



class PiecewiseConstantDecay(LearningRateSchedule):
    """values[0] for step <= boundaries[0], values[i] for boundaries[i-1] < step <= boundaries[i], values[-1] after.

    Example:
        >>> PiecewiseConstantDecay([100, 200], [1.0, 0.5, 0.1])(150)
        0.5
    """

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                "The length of boundaries should be 1 less than the length of values. Received: "
                f"boundaries={boundaries} of length {len(boundaries)}, and values={values} of length {len(values)}."
            )
        self.boundaries, self.values, self.name = list(boundaries), list(values), name

    def __call__(self, step):
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return value
        return self.values[-1]

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class CosineDecay(LearningRateSchedule):
    """Optional linear warmup to ``warmup_target``, then cosine decay to ``alpha`` times the start over ``decay_steps``.

    Example:
        >>> CosineDecay(0.1, decay_steps=100)(50)   # 0.05
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay", warmup_target=None,
                 warmup_steps=0):
        _check_decay_steps(decay_steps)
        self.initial_learning_rate, self.decay_steps, self.alpha = initial_learning_rate, decay_steps, alpha
        self.name, self.warmup_target, self.warmup_steps = name, warmup_target, warmup_steps

    def _decay(self, step, decay_from):
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return decay_from * ((1.0 - self.alpha) * cosine + self.alpha)

    def __call__(self, step):
        step = float(step)
        if self.warmup_target is None:
            return self._decay(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            delta = self.warmup_target - self.initial_learning_rate
            return delta * step / self.warmup_steps + self.initial_learning_rate
        return self._decay(step - self.warmup_steps, self.warmup_target)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


class InverseTimeDecay(_RateDecay):
    """lr = initial_learning_rate / (1 + decay_rate * step / decay_steps) (floored if staircase)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name="InverseTimeDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step):
        p = self._progress(step)
        return self.initial_learning_rate / (1.0 + self.decay_rate * p)



_FAMILY = serialization_lib.family("schedules", module="keras.optimizers.schedules",
                                   kind="learning rate schedule")
_FAMILY.register((ExponentialDecay, PiecewiseConstantDecay, CosineDecay, InverseTimeDecay))


def serialize(schedule):
    """A schedule -> ``{"module", "class_name", "config", "registered_name"}``."""
    return serialization_lib.serialize_keras_object(schedule)


def deserialize(config, custom_objects=None):
    """Inverse of ``serialize``."""
    return serialization_lib.deserialize_keras_object(config, custom_objects, _FAMILY)


__all__ = ["LearningRateSchedule", "ExponentialDecay", "PiecewiseConstantDecay", "CosineDecay",
           "InverseTimeDecay", "serialize", "deserialize"]
