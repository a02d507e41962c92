"""Optimizers with the Keras 3 API, each step fused backend updates in place.

``opt.apply(grads, variables)`` clips the gradients (``clipnorm`` / ``clipvalue`` /
``global_clipnorm``), then updates the variables in place (decoupled ``weight_decay``
included): SGD and Adam/AdamW with one multi-tensor call (``sgd_update_multi`` /
``adam_update_multi``) per weight-decay group, RMSprop and Adagrad with ``rmsprop_update`` /
``adagrad_update`` per variable, with slots keyed by the variable's path ("dense/kernel"; a bare
array without a path by its identity), and increments
``opt.iterations``. Learning-rate schedules live in ``pyminidl.optimizers.schedules``.

Example:
    >>> opt = pyminidl.optimizers.get("adam")
    >>> opt.apply([grad], [param])   # param updated in place
    >>> opt.iterations
    1
"""

import math
import re

from pyminidl.backend import get_backend
from pyminidl.optimizers import schedules  # noqa: F401  (keras.optimizers.schedules)
from pyminidl.optimizers.schedules import LearningRateSchedule
from pyminidl.saving import serialization_lib
from pyminidl.variables import key_of, value_of


class Optimizer:
    """Base class (Keras 3 ``keras.optimizers.Optimizer``).

    Args:
        learning_rate: a float, a ``LearningRateSchedule`` or a callable of no argument.
        weight_decay: decoupled decay, ``param -= lr * weight_decay * param`` before each update.
        clipnorm: clip each gradient to this L2 norm.
        clipvalue: clip each gradient element to [-clipvalue, clipvalue].
        global_clipnorm: clip all gradients together to this global L2 norm.
        name: the optimizer's name.
    """

    _slot_names = ()

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name=None, **kwargs):
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {kwargs}")
        if (clipnorm is not None) + (clipvalue is not None) + (global_clipnorm is not None) > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. Received: "
                f"clipnorm={clipnorm}, clipvalue={clipvalue}, global_clipnorm={global_clipnorm}"
            )
        if use_ema:
            raise NotImplementedError("use_ema is not supported by pyminidl yet.")
        if gradient_accumulation_steps not in (None, 1):
            raise NotImplementedError("gradient_accumulation_steps is not supported by pyminidl yet.")
        self.name = name or type(self).__name__.lower()
        self.weight_decay = weight_decay
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.use_ema, self.ema_momentum = use_ema, ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.iterations = 0
        self._slots = {}  # path (or id of a bare array) -> (array, slot arrays)
        self._excluded = set()  # keys of variables excluded from weight decay
        self._excluded_names = ()  # regexes searched in variable names
        self._exclusions = 0  # bumped by exclude_from_weight_decay: the update plan is regrouped
        self._apply_plan = None  # _UpdatePlan of the latest variables
        self._set_learning_rate(learning_rate)

    # ------------------------------------------------------------------ learning rate

    def _set_learning_rate(self, value):
        if isinstance(value, LearningRateSchedule) or callable(value):
            self._learning_rate = value
        elif isinstance(value, (int, float)) or hasattr(value, "__float__"):
            rate = float(value)
            if not math.isfinite(rate) or rate < 0:
                raise ValueError("Argument `learning_rate` should be a non-negative finite float or a "
                                 f"schedule. Received: learning_rate={value!r}")
            self._learning_rate = rate
        else:
            raise ValueError(f"Argument `learning_rate` should be a float or a schedule. Received: {value!r}")

    @property
    def learning_rate(self):
        """The current learning rate (a schedule is evaluated at ``iterations``)."""
        lr = self._learning_rate
        if not callable(lr):
            return lr
        rate = float(lr(self.iterations) if isinstance(lr, LearningRateSchedule) else lr())
        if not math.isfinite(rate) or rate < 0:
            raise ValueError(f"The `learning_rate` schedule {lr!r} gave {rate} at iteration {self.iterations}; "
                             "a learning rate must be a non-negative finite float.")
        return rate

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(self._learning_rate, LearningRateSchedule) and not isinstance(value, LearningRateSchedule):
            raise TypeError(
                "This optimizer was created with a `LearningRateSchedule` object as its `learning_rate` "
                "constructor argument, hence its learning rate is not settable."
            )
        self._set_learning_rate(value)

    lr = learning_rate  # Keras 2 alias

    # ------------------------------------------------------------------ state

    def build(self, variables):
        """Create the slots of ``variables`` (done lazily by ``apply`` otherwise)."""
        for var in variables:
            self._state(value_of(var), key_of(var))

    def _state(self, var, key=None):
        key = id(var) if key is None else key
        entry = self._slots.get(key)
        if entry is None:
            entry = (var, self._create_slots(var))
            self._slots[key] = entry
        elif entry[0] is not var:
            raise ValueError(
                f"Optimizer {self.name!r} already holds state for a different variable with path {key!r} "
                f"(shape {tuple(entry[0].shape)}; received shape {tuple(var.shape)}). Use one optimizer per model."
            )
        return entry[1]

    def slot_state(self):
        """``{variable path: [slot arrays]}`` (what persistence saves and restores), bare arrays omitted."""
        return {k: [s for s in slots if s is not None] for k, (_, slots) in self._slots.items() if isinstance(k, str)}

    def _create_slots(self, var):
        return ()

    # Keras 3's order of the slot variables: each group's slots interleaved per variable, group after group
    # (Adam: momentum and velocity of each variable, then every velocity_hat; RMSprop: velocities, then
    # momentums, then average gradients). None: one group per slot.
    _slot_groups = None

    def ordered_slots(self, variables):
        """The slot arrays of ``variables`` in Keras 3's ``optimizer.variables`` order (what weight files hold).

        Raises:
            ValueError: a variable without slots yet (call ``build(variables)`` first).
        """
        per_var = []
        for var in variables:
            entry = self._slots.get(key_of(var))
            if entry is None:
                raise ValueError(f"Optimizer {self.name!r} has no state for {key_of(var)!r}: call build() first.")
            per_var.append(entry[1])
        width = len(per_var[0]) if per_var else 0
        groups = self._slot_groups or tuple((i,) for i in range(width))
        return [slots[i] for group in groups for slots in per_var for i in group if slots[i] is not None]

    @property
    def variables(self):
        """Every slot array (Keras: the optimizer's variables, without the iteration counter)."""
        return [s for _, slots in self._slots.values() for s in slots if s is not None]

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Exclude variables from weight decay (Keras 3).

        Args:
            var_list: variables (or arrays) to exclude.
            var_names: regexes; a variable whose name ("kernel", "bias") matches one is excluded.

        Example:
            >>> opt = AdamW(weight_decay=0.01)
            >>> opt.exclude_from_weight_decay(var_names=["bias"])
        """
        self._excluded.update(key_of(v) for v in var_list or ())
        self._excluded_names = tuple(self._excluded_names) + tuple(re.compile(n) for n in var_names or ())
        self._exclusions += 1

    def _decays(self, var, key):
        if key in self._excluded:
            return False
        name = getattr(var, "name", None)
        return name is None or not any(p.search(name) for p in self._excluded_names)

    # ------------------------------------------------------------------ update

    def apply(self, grads, trainable_variables):
        """Update ``trainable_variables`` in place from ``grads`` (aligned lists); None grads are skipped."""
        if len(grads) != len(trainable_variables):
            raise ValueError(
                f"apply() needs one gradient per variable. Received: {len(grads)} gradients "
                f"for {len(trainable_variables)} variables"
            )
        if self.clipnorm or self.global_clipnorm or self.clipvalue:
            grads = self._clip(grads)
        be, lr = get_backend(), self.learning_rate
        key = (tuple(map(id, trainable_variables)), self.weight_decay, self._exclusions)
        plan = self._apply_plan
        if plan is None or plan.key != key or not _fits(plan.arrays, grads):
            grads = list(grads)  # casts replace entries
            plan = self._grouped(grads, trainable_variables)
            if len(plan.arrays) == len(trainable_variables):  # no None: the next steps reuse it
                plan.key, self._apply_plan = key, plan
        for decay, index, arrays, keys, slots in plan.groups:
            gs = grads if index is None else [grads[i] for i in index]
            self._update_all(be, arrays, gs, lr, decay, keys, slots)
        self.iterations += 1

    def _grouped(self, grads, trainable_variables):
        """The update plan of one step: the variables with a gradient, grouped by weight decay (each
        group with its arrays, keys and slots); gradients of another dtype are cast in ``grads``,
        misshapen ones raise. ``apply`` reuses it while the same variables (by identity), weight decay
        and exclusions come back with fitting gradients, so a step then walks no variable."""
        wd = self.weight_decay or 0.0
        check = bool(wd) and bool(self._excluded or self._excluded_names)
        groups = {}  # weight decay -> (indices, arrays, keys, slots): one multi-tensor update per group
        arrays = []
        for i, (g, var) in enumerate(zip(grads, trainable_variables)):
            if g is None:
                continue
            key, arr = key_of(var), value_of(var)
            if g.dtype != arr.dtype:
                grads[i] = g = g.astype(arr.dtype)
            if g.shape != arr.shape:
                raise ValueError(f"Gradient shape {g.shape} does not match variable shape {arr.shape}")
            decay = 0.0 if check and not self._decays(var, key) else wd
            group = groups.get(decay)
            if group is None:
                group = groups[decay] = ([], [], [], [])
            for part, value in zip(group, (i, arr, key, self._state(arr, key))):
                part.append(value)
            arrays.append(arr)
        everything = len(groups) == 1 and len(arrays) == len(trainable_variables)
        return _UpdatePlan([(decay, None if everything else index, arrs, keys, slots)
                            for decay, (index, arrs, keys, slots) in groups.items()], arrays, trainable_variables)

    def apply_gradients(self, grads_and_vars):
        """Keras's ``apply_gradients([(grad, var), ...])``."""
        grads_and_vars = list(grads_and_vars)
        self.apply([g for g, _ in grads_and_vars], [v for _, v in grads_and_vars])
        return self.iterations

    def _clip(self, grads):
        xp = get_backend().xp
        present = [g for g in grads if g is not None]
        if self.clipnorm and self.clipnorm > 0:
            def clip(g):
                return g * (self.clipnorm / max(math.sqrt(float(xp.sum(g * g))), self.clipnorm))
        elif self.global_clipnorm and self.global_clipnorm > 0:
            norm = math.sqrt(sum(float(xp.sum(g * g)) for g in present))
            # Keras: scale = c * min(1/norm, 1/c); NaN/inf norms make the scale NaN
            scale = self.global_clipnorm * min(1.0 / norm if norm else math.inf, 1.0 / self.global_clipnorm)
            scale = scale if math.isfinite(norm) else math.nan

            def clip(g):
                return g * scale
        elif self.clipvalue is not None and self.clipvalue > 0:
            def clip(g):
                return xp.clip(g, -self.clipvalue, self.clipvalue)
        else:
            return grads
        return [None if g is None else clip(g) for g in grads]

    def _update(self, be, var, grad, lr, weight_decay, key):
        raise NotImplementedError

    def _update_all(self, be, variables, grads, lr, weight_decay, keys, slots):
        """The step of every variable of one weight decay (``slots``: each one's slot arrays);
        optimizers with a multi-tensor backend op make it one call."""
        for var, grad, key in zip(variables, grads, keys):
            self._update(be, var, grad, lr, weight_decay, key)

    # ------------------------------------------------------------------ config

    def get_config(self):
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            lr = schedules.serialize(lr)
        return {
            "name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm, "clipvalue": self.clipvalue,
            "use_ema": self.use_ema, "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency, "loss_scale_factor": self.loss_scale_factor,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)


class _UpdatePlan:
    """``apply``'s grouping of a list of variables: ``groups`` of (weight decay, indices into the
    list or None for all of it, arrays, keys, slots), and ``arrays``, the variables' arrays in order.
    Holds the variables, so that the ids in ``key`` stay theirs."""

    __slots__ = ("groups", "arrays", "variables", "key")

    def __init__(self, groups, arrays, variables):
        self.groups, self.arrays, self.variables, self.key = groups, arrays, list(variables), None


def _fits(arrays, grads):
    """True when every gradient is an array of its variable's dtype and shape (no regrouping needed)."""
    for a, g in zip(arrays, grads):
        if g is None or g.dtype != a.dtype or g.shape != a.shape:
            return False
    return True


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum (Keras 3 rule).

    ``v = momentum * v - lr * g; w += v`` (Nesterov: ``w += momentum * v - lr * g``); plain ``w -= lr * g``.

    Example:
        >>> opt = pyminidl.optimizers.SGD(learning_rate=0.1, momentum=0.9)
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, name="SGD", **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, name=name, **kwargs)
        if not isinstance(momentum, (int, float)) or momentum < 0 or momentum > 1:
            raise ValueError(f"`momentum` must be a float between [0, 1]. Received: momentum={momentum!r}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def _create_slots(self, var):
        return (get_backend().xp.zeros_like(var) if self.momentum != 0.0 else None,)

    def _update(self, be, var, grad, lr, weight_decay, key):
        (velocity,) = self._state(var, key)
        be.sgd_update(var, grad, velocity, lr, momentum=self.momentum, nesterov=self.nesterov,
                      weight_decay=weight_decay)

    def _update_all(self, be, variables, grads, lr, weight_decay, keys, slots):
        if type(self)._update is not SGD._update:  # a subclass's own rule runs per variable
            return super()._update_all(be, variables, grads, lr, weight_decay, keys, slots)
        velocities = [s[0] for s in slots] if self.momentum != 0.0 else None
        be.sgd_update_multi(variables, grads, velocities, lr,
                            momentum=self.momentum, nesterov=self.nesterov, weight_decay=weight_decay)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam (Keras 3 rule, epsilon outside the square root, bias correction folded into the step size).

    Example:
        >>> opt = pyminidl.optimizers.Adam(learning_rate=1e-3)
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None, name="adam", **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, bool(amsgrad)

    _slot_groups = ((0, 1), (2,))

    def _create_slots(self, var):
        xp = get_backend().xp
        return (xp.zeros_like(var), xp.zeros_like(var), xp.zeros_like(var) if self.amsgrad else None)

    def _update(self, be, var, grad, lr, weight_decay, key):
        m, v, vhat = self._state(var, key)
        be.adam_update(var, grad, m, v, vhat, lr, self.iterations + 1, beta_1=self.beta_1,
                         beta_2=self.beta_2, epsilon=self.epsilon, amsgrad=self.amsgrad, weight_decay=weight_decay)

    def _update_all(self, be, variables, grads, lr, weight_decay, keys, slots):
        if type(self)._update is not Adam._update:  # a subclass's own rule runs per variable
            return super()._update_all(be, variables, grads, lr, weight_decay, keys, slots)
        m, v, vhat = ([s[i] for s in slots] for i in range(3))
        be.adam_update_multi(variables, grads, m, v, vhat if self.amsgrad else None, lr,
                             self.iterations + 1, beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
                             amsgrad=self.amsgrad, weight_decay=weight_decay)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.004), as Keras 3.

    Example:
        >>> opt = pyminidl.optimizers.AdamW(learning_rate=1e-3, weight_decay=0.01)
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, clipnorm=None, clipvalue=None, global_clipnorm=None, name="adamw", **kwargs):
        if weight_decay is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None")
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, amsgrad=amsgrad,
                         weight_decay=weight_decay, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, name=name, **kwargs)


class RMSprop(Optimizer):
    """RMSprop (Keras 3 rule: epsilon inside the square root; optional momentum and centering).

    Example:
        >>> opt = pyminidl.optimizers.RMSprop(learning_rate=1e-3, rho=0.9)
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None, name="rmsprop",
                 **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, name=name, **kwargs)
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, bool(centered)

    def _create_slots(self, var):
        xp = get_backend().xp
        return (xp.zeros_like(var), xp.zeros_like(var) if self.momentum > 0 else None,
                xp.zeros_like(var) if self.centered else None)

    def _update(self, be, var, grad, lr, weight_decay, key):
        velocity, momentum_buf, average_grad = self._state(var, key)
        be.rmsprop_update(var, grad, velocity, momentum_buf, average_grad, lr, rho=self.rho,
                          momentum=self.momentum, epsilon=self.epsilon, centered=self.centered,
                          weight_decay=weight_decay)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adagrad(Optimizer):
    """Adagrad (Keras 3 rule): ``acc += g**2; w -= lr * g / sqrt(acc + epsilon)``.

    Example:
        >>> opt = pyminidl.optimizers.Adagrad(learning_rate=0.01)
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name="adagrad", **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, name=name, **kwargs)
        self.initial_accumulator_value, self.epsilon = initial_accumulator_value, epsilon

    def _create_slots(self, var):
        return (get_backend().xp.full_like(var, self.initial_accumulator_value),)

    def _update(self, be, var, grad, lr, weight_decay, key):
        (accumulator,) = self._state(var, key)
        be.adagrad_update(var, grad, accumulator, lr, epsilon=self.epsilon, weight_decay=weight_decay)

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


_CLASSES = (SGD, Adam, AdamW, RMSprop, Adagrad)
_FAMILY = serialization_lib.family("optimizers", kind="optimizer", unknown="Could not interpret optimizer "
                                   "identifier: {name!r}.", normalize=str.lower)
_FAMILY.register(_CLASSES, aliases={cls.__name__.lower(): cls for cls in _CLASSES})


def serialize(optimizer):
    """An Optimizer -> ``{"module", "class_name", "config", "registered_name"}``."""
    return serialization_lib.serialize_keras_object(optimizer)


def deserialize(config, custom_objects=None):
    """Inverse of ``serialize``; class names are case-insensitive, a bare name gives the defaults."""
    return serialization_lib.deserialize_instance(config, custom_objects, _FAMILY)


def get(identifier):
    """An Optimizer from a name ('sgd', 'SGD', 'adam', ...; case-insensitive), a dict config or an instance.

    Raises:
        ValueError: for an unknown identifier, listing the valid names.
    """
    return serialization_lib.get_object(identifier, _FAMILY, Optimizer, callables=False)


__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "get", "serialize", "deserialize",
           "schedules"]
