"""Input adaptation for fit / evaluate / predict: NumPy arrays, Datasets and generators -> batches.

Every source becomes a ``DataAdapter`` whose ``epoch()`` yields ``(step, (x, y, sample_weight))``
with backend arrays. Arrays are converted to ``floatx`` and moved to the backend once, up
front; each epoch draws one permutation and each batch is one ``take`` of a slice of it
(views of the arrays when not shuffling), so no Python runs per sample.
"""

import inspect
import math
import warnings

import numpy as np

from pyminidl import config, tree
from pyminidl import random as pmd_random
from pyminidl.backend import get_backend
from pyminidl.data import to_host_array

_RAN_OUT = (
    "Your input ran out of data; interrupting training. Make sure that your dataset or "
    "generator can generate at least `steps_per_epoch * epochs` batches. You may need to "
    "use the `.repeat()` function when building your dataset."
)


def unpack_x_y_sample_weight(data):
    """``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)`` -> ``(x, y, sample_weight)``."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) in (1, 2, 3):
        return tuple(data) + (None,) * (3 - len(data))
    raise ValueError(
        "Data is expected to be in format `x`, `(x,)`, `(x, y)`, or `(x, y, sample_weight)`, "
        f"found a tuple of {len(data)} elements."
    )


def _is_backend_array(value):
    return hasattr(value, "shape") and hasattr(value, "dtype") and hasattr(value, "take")


def is_array_like(value):
    """NumPy/CuPy arrays and (nested) lists of numbers: data that can be sliced by sample."""
    return _is_backend_array(value) or isinstance(value, (list, tuple))


def to_backend_array(value, be, keep_int=False):
    """Host data -> a backend array; floats (and ints unless ``keep_int``) become ``floatx``.

    With ``keep_int`` integers keep their dtype and strings stay host arrays (for a first layer
    that takes ids or text).
    """
    value = to_host_array(value)
    if not _is_backend_array(value):
        value = np.asarray(value)
    kind = value.dtype.kind
    if kind in "iu" and keep_int:
        return be.asarray(value)
    if kind in "USO" and keep_int:
        return value
    if kind not in "fiub":
        raise ValueError(f"Expected numeric input data. Received: dtype={value.dtype}")
    return be.asarray(value, dtype=config.floatx())


def is_backend_batch(x, y):
    """True when ``x`` and ``y`` are already what ``to_backend_data`` makes of them (backend arrays of
    ``floatx`` with a batch axis, whatever ``keep_int`` and ``nested`` say) and hold as many samples:
    ``train_on_batch`` then converts and checks nothing."""
    ndarray = get_backend().xp.ndarray
    if type(x) is not ndarray or type(y) is not ndarray or not x.ndim or not y.ndim:
        return False
    floatx = _FLOATX_DTYPES.get(config.floatx())
    return x.dtype == floatx and y.dtype == floatx and len(x) == len(y)


_FLOATX_DTYPES = {name: np.dtype(name) for name in ("float16", "float32", "float64")}


def to_backend_data(value, be, keep_int=False, nested=False):
    """``to_backend_array`` for one array, or for each array of a list/dict of them (a model with several
    inputs or outputs: ``nested``)."""
    if nested and is_structure(value, nested):  # `nested` first: the one-array step stays one call
        return tree.map_structure(lambda v: to_backend_array(v, be, keep_int), value)
    return to_backend_array(value, be, keep_int)


def is_structure(value, nested):
    """Whether ``value`` is several arrays: ``nested`` True (a model with several inputs) takes any list
    or dict; "auto" (a subclassed model) a dict, or a list/tuple of arrays."""
    if nested == "auto":
        return isinstance(value, dict) or (isinstance(value, (list, tuple)) and bool(value)
                                           and all(hasattr(v, "shape") for v in value))
    return bool(nested) and tree.is_nested(value)


def num_samples(value):
    """Samples in an array, or in the first array of a structure of them."""
    return len(tree.flatten(value)[0])


def _cut(value, index):
    """``value[index]`` for an array, or for each array of a structure."""
    return tree.map_structure(lambda v: v[index], value)


def _take(be, value, idx):
    """The rows ``idx`` of an array, or of each array of a structure (the backend's threaded gather)."""
    return tree.map_structure(lambda v: be.take_rows(v, idx), value)


def class_weight_to_sample_weights(y, class_weight):
    """Per-sample weights ``class_weight[class of y]`` (1.0 for classes not listed), as Keras.

    ``y``: (N,) class ids, (N, 1), or (N, C) one-hot / probabilities (argmax taken).
    """
    y = np.asarray(get_backend().to_numpy(y))
    if y.ndim > 1:
        y = np.argmax(y, axis=-1) if y.shape[-1] != 1 else np.squeeze(y, axis=-1)
    y = np.round(y).astype(np.int64).reshape(-1)
    classes, inverse = np.unique(y, return_inverse=True)
    weights = np.array([float(class_weight.get(int(c), 1.0)) for c in classes], dtype=config.floatx())
    return weights[inverse.reshape(-1)]


def check_cardinality(x, y, sample_weight):
    """Raise the Keras error when x, y and sample_weight hold different numbers of samples."""
    sizes = [(name, len(leaf)) for name, a in (("x", x), ("y", y), ("sample_weight", sample_weight))
             if a is not None for leaf in (tree.flatten(a) if type(a) in (list, tuple, dict) else (a,))]
    if len({n for _, n in sizes}) > 1:
        listed = ", ".join(f"{name} sizes: {n}" for name, n in sizes)
        raise ValueError(
            f"Data cardinality is ambiguous: {listed}. Make sure all arrays contain the same number of samples."
        )


def train_validation_split(arrays, validation_split):
    """Split arrays into train and validation parts: the LAST ``validation_split`` fraction
    (before any shuffling) is the validation set, as in Keras."""
    if not 0.0 < validation_split < 1.0:
        raise ValueError(f"`validation_split` must be between 0 and 1. Received: validation_split={validation_split}")
    num = num_samples(arrays[0])
    split_at = int(math.floor(num * (1.0 - validation_split)))
    if split_at == 0 or split_at == num:
        raise ValueError(
            f"Training data contains {num} samples, which is not sufficient to split it into a "
            f"validation and training set as specified by `validation_split={validation_split}`. "
            "Either provide more data, or a different value for the `validation_split` argument."
        )
    train = tuple(None if a is None else _cut(a, slice(None, split_at)) for a in arrays)
    val = tuple(None if a is None else _cut(a, slice(split_at, None)) for a in arrays)
    return train, val


class DataAdapter:
    """One epoch at a time of ``(x, y, sample_weight)`` batches from any source.

    ``num_batches`` is the steps per epoch when known (None for a generator of unknown
    length). With ``steps`` set, an epoch is that many batches taken from one persistent
    stream, as in Keras 3: when the stream runs out inside an epoch, the epoch ends there
    with Keras's "ran out of data" warning and a re-iterable source restarts at the next
    epoch (``ran_short``); a one-shot generator that runs out sets ``exhausted``.
    """

    one_shot = False

    def __init__(self, steps=None):
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1):
            raise ValueError(f"Expected a positive integer number of steps. Received: steps={steps!r}")
        self.steps = None if steps is None else int(steps)
        self.exhausted = False
        self.ran_short = False
        self._stream = None

    def _one_pass(self):
        raise NotImplementedError

    def epoch(self):
        """Yield ``(step, (x, y, sample_weight))`` for one epoch."""
        if self.steps is None:
            yield from enumerate(self._one_pass())
            return
        self.ran_short = False
        for step in range(self.steps):
            batch = self._next_batch(restart=step == 0)
            if batch is None:
                self.ran_short = not self.exhausted
                return
            yield step, batch

    def _next_batch(self, restart):
        """The stream's next batch; at an epoch's first step a finished re-iterable source restarts."""
        for _ in range(2):
            if self._stream is None:
                self._stream = iter(self._one_pass())
            try:
                return next(self._stream)
            except StopIteration:
                self._stream = None
                if self.one_shot:
                    break
                if not restart:
                    return None
        self.exhausted = True
        return None


def check_non_empty(x, data_name):
    """Keras's error for data without a sample (instead of a loss of 0.0 over no batch)."""
    if num_samples(x) == 0:
        raise ValueError(f"Expected input data to be non-empty. Received: {data_name} with shape "
                         f"{tuple(tree.flatten(x)[0].shape)}")


class ArrayAdapter(DataAdapter):
    """Batches of NumPy (or backend) arrays, shuffled once per epoch."""

    def __init__(self, x, y=None, sample_weight=None, batch_size=None, shuffle=False, steps=None,
                 class_weight=None, keep_int_x=False, keep_int_y=False, data_name="x", nested=(False, False)):
        super().__init__(steps)
        be = get_backend()
        if batch_size is None:
            batch_size = 32
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
        self.x = to_backend_data(x, be, keep_int_x, nested[0])
        self.y = None if y is None else to_backend_data(y, be, keep_int_y, nested[1])
        self.sample_weight = None if sample_weight is None else to_backend_array(sample_weight, be)
        check_cardinality(self.x, self.y, self.sample_weight)
        check_non_empty(self.x, data_name)
        if class_weight is not None and self.y is not None:
            if self.sample_weight is not None:
                raise ValueError("You cannot use `class_weight` and `sample_weight` at the same time.")
            self.sample_weight = be.asarray(class_weight_to_sample_weights(self.y, class_weight))
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.num_samples = num_samples(self.x)
        self.num_batches = self.steps or math.ceil(self.num_samples / self.batch_size)
        self._be = be

    def _one_pass(self):
        x, y, w = self.x, self.y, self.sample_weight
        n, bs = self.num_samples, self.batch_size
        if not self.shuffle or n < 2:
            for start in range(0, n, bs):
                stop = start + bs
                cut = slice(start, stop)
                yield _cut(x, cut), (None if y is None else _cut(y, cut)), (None if w is None else w[start:stop])
            return
        # One permutation per epoch; each batch gathers its rows with one `take` of a slice of
        # it (a small, cache-hot copy: faster than gathering the whole shuffled set up front).
        be = self._be
        perm = be.asarray(pmd_random.global_rng().permutation(n))
        for start in range(0, n, bs):
            idx = perm[start:start + bs]
            yield (_take(be, x, idx), None if y is None else _take(be, y, idx),
                   None if w is None else be.take_rows(w, idx))


class IterableAdapter(DataAdapter):
    """Batches from a ``pyminidl.data.Dataset`` (re-iterated each epoch) or a generator (one pass)."""

    def __init__(self, source, steps=None, class_weight=None, keep_int_x=False, keep_int_y=False,
                 steps_name="steps", nested=(False, False)):
        super().__init__(steps)
        cardinality = getattr(source, "cardinality", None)
        if steps is None and callable(cardinality) and cardinality() == -1:
            raise ValueError(
                "When passing an infinitely repeating dataset, please specify a "
                f"`{steps_name}` value so that the run knows where an epoch ends."
            )
        self.source = source
        self.one_shot = inspect.isgenerator(source) or iter(source) is source
        self.class_weight = class_weight
        self._keep_int = (keep_int_x, keep_int_y)
        self._nested = nested
        self._be = get_backend()
        length = None
        if not self.one_shot:
            try:
                length = len(source)
            except TypeError:
                length = None
        self.num_batches = self.steps or length

    def _one_pass(self):
        be, (keep_x, keep_y) = self._be, self._keep_int
        for element in self.source:
            x, y, w = unpack_x_y_sample_weight(element)
            x = to_backend_data(x, be, keep_x, self._nested[0])
            y = None if y is None else to_backend_data(y, be, keep_y, self._nested[1])
            w = None if w is None else to_backend_array(w, be)
            if self.class_weight is not None and y is not None and w is None:
                w = be.asarray(class_weight_to_sample_weights(y, self.class_weight))
            yield x, y, w


def warn_ran_out():
    """Keras's warning when a generator or dataset ends before the requested steps."""
    warnings.warn(_RAN_OUT, UserWarning, stacklevel=3)


def is_iterable_source(value):
    """A Dataset, a generator or another iterable that is not array data."""
    if is_array_like(value) or isinstance(value, (str, bytes, dict)):
        return False
    return hasattr(value, "__iter__") or hasattr(value, "__next__")


def make_adapter(x, y=None, sample_weight=None, batch_size=None, shuffle=False, steps=None,
                 class_weight=None, keep_int_x=False, keep_int_y=False, steps_name="steps", data_name="x",
                 nested=(False, False)):
    """The adapter for ``x`` (arrays, pandas frames, a Dataset or a generator), checked as Keras checks it.

    ``nested``: (x, y) may be a list or dict of arrays, one per model input (output).
    """
    x, y, sample_weight = (to_host_data(a, n) for a, n in ((x, nested[0]), (y, nested[1]), (sample_weight, False)))
    if is_structure(x, nested[0]):
        return ArrayAdapter(x, y, sample_weight, batch_size, shuffle, steps, class_weight, keep_int_x, keep_int_y,
                            data_name, nested)
    if x is None:
        raise ValueError("Unrecognized data type: x=None. Expected NumPy arrays, a Dataset or a generator.")
    if is_iterable_source(x):
        kind = "Python generator" if inspect.isgenerator(x) else type(x).__name__
        for name, value, what in (("y", y, "the targets"), ("sample_weight", sample_weight, "the sample weights")):
            if value is not None:
                raise ValueError(
                    f"When providing `x` as a {kind}, `{name}` should not be passed. "
                    f"Instead, {what} should be included as part of the {kind}."
                )
        return IterableAdapter(x, steps, class_weight, keep_int_x, keep_int_y, steps_name, nested)
    if not is_array_like(x):
        raise ValueError(f"Unrecognized data type: x={x!r} (of type {type(x).__name__}).")
    return ArrayAdapter(x, y, sample_weight, batch_size, shuffle, steps, class_weight, keep_int_x, keep_int_y,
                        data_name, nested)


def to_host_data(value, nested=False):
    """``to_host_array`` of a value, or of each leaf of a list/dict of them when ``nested``."""
    if is_structure(value, nested):
        return tree.map_structure(to_host_array, value)
    return to_host_array(value)
