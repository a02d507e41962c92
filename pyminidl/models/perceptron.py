"""The classic perceptron (Rosenblatt, 1958), a scikit-learn compatible classifier.

A single ``Dense(units, activation="step")`` layer (units = 1 for two classes, one
one-vs-rest unit per class otherwise), trained by the perceptron learning rule rather
than by gradient descent (the step function has no useful gradient):

    y_hat = step(w . x + b)          (1 if w . x + b > 0 else 0)
    w += eta0 * (t - y_hat) * x      for each sample, in (shuffled) order
    b += eta0 * (t - y_hat)

By the perceptron convergence theorem the rule reaches zero training errors after a
finite number of updates whenever the classes are linearly separable (AND, OR, two
separated clouds). It can NOT learn XOR, or any problem that is not linearly separable:
no line separates {(0,0), (1,1)} from {(0,1), (1,0)}, so the weights cycle for ever and
training stops at ``max_iter`` with some points misclassified (Minsky & Papert, 1969).
Use a multilayer ``Sequential`` model for such problems.

scikit-learn is not a dependency. The class follows scikit-learn's estimator protocol by
duck typing (``get_params`` / ``set_params``, ``__sklearn_tags__``, ``__sklearn_is_fitted__``,
fitted attributes ending in ``_``, validation in ``fit``), so ``clone``, ``cross_val_score``,
``make_pipeline`` and ``GridSearchCV`` accept it; nothing here imports scikit-learn unless
scikit-learn itself asks for the tags, or was already imported by the program (then the
errors and warnings raised here are also scikit-learn's classes, so its ``except`` clauses
and warning filters apply).

Example:
    >>> clf = pyminidl.models.Perceptron().fit([[0, 0], [0, 1], [1, 0], [1, 1]], [0, 0, 0, 1])
    >>> clf.predict([[1, 1], [0, 1]])
    array([1, 0])
"""

import inspect
import numbers
import sys
import warnings

import numpy as np

from pyminidl import random as _random
from pyminidl.layers import Dense


class NotFittedError(ValueError, AttributeError):
    """Raised when a Perceptron is used before ``fit`` (scikit-learn's class of the same name
    when scikit-learn is imported, so either ``except`` clause catches it)."""


class DataConversionWarning(UserWarning):
    """Warns that input was reshaped to fit (as scikit-learn's class of the same name)."""


_SKLEARN_FLAVOURED = {}


def _sklearn_flavoured(cls, sklearn_module, name):
    """``cls``, or a subclass of it and of scikit-learn's ``sklearn_module.name`` when the
    program has imported scikit-learn (never imported from here: it stays optional)."""
    if "sklearn" not in sys.modules:
        return cls
    if cls not in _SKLEARN_FLAVOURED:
        import importlib

        base = getattr(importlib.import_module(sklearn_module), name)
        _SKLEARN_FLAVOURED[cls] = type(cls.__name__, (cls, base), {"__module__": cls.__module__})
    return _SKLEARN_FLAVOURED[cls]


def _feature_names(x):
    """The string column names of a data frame (duck-typed ``columns``), else None."""
    columns = getattr(x, "columns", None)
    if columns is None or isinstance(x, np.ndarray):
        return None
    names = np.asarray(list(columns), dtype=object)
    is_str = [isinstance(n, str) for n in names]
    if names.size == 0 or not any(is_str):
        return None
    if not all(is_str):
        kinds = sorted({type(n).__name__ for n in names})
        raise TypeError("Feature names are only supported if all input features have string names, "
                        f"but your input has {kinds} as feature name / column name types. "
                        "Convert them all to str, e.g. with X.columns = X.columns.astype(str).")
    return names


def _name_list(names):
    """``- name`` lines, at most five then ``- ...`` (scikit-learn's wording)."""
    lines = [f"- {n}\n" for n in names[:5]]
    return "".join(lines) + ("- ...\n" if len(names) > 5 else "")


def _as_float_matrix(x):
    """``x`` as a finite, non-empty (n_samples, n_features) float64 array, or a ValueError/TypeError."""
    if hasattr(x, "toarray") and hasattr(x, "nnz"):  # scipy.sparse, without importing scipy
        raise TypeError(f"Sparse data was passed for X ({type(x).__name__}), but Perceptron needs dense "
                        "data. Use X.toarray() to convert to a dense numpy array.")
    x = np.asarray(x.to_numpy() if hasattr(x, "to_numpy") else x)
    if x.dtype.kind == "c":
        raise ValueError(f"Complex data not supported. Received: dtype={x.dtype}")
    if x.dtype.kind in "USV":
        raise ValueError(f"Expected numeric input data. Received: dtype={x.dtype}")
    x = x.astype(np.float64, copy=False)  # object arrays of non-numbers raise TypeError here
    if x.ndim != 2:
        raise ValueError(f"Expected 2-D input (n_samples, n_features). Received: shape={x.shape}. "
                         "Reshape your data with x.reshape(-1, 1) if it has a single feature or x.reshape(1, -1) if it holds a single sample.")
    for axis, what in ((0, "sample"), (1, "feature")):
        if x.shape[axis] == 0:
            raise ValueError(f"Found array with 0 {what}(s) (shape={x.shape}) while a minimum of 1 is required.")
    if not np.isfinite(x).all():
        raise ValueError(f"Input X contains NaN or infinity (NaN: {int(np.isnan(x).sum())} values, "
                         f"inf: {int(np.isinf(x).sum())} values).")
    return x


def _as_labels(y, n_samples):
    """``y`` as a 1-D array of ``n_samples`` class labels, or a ValueError."""
    if y is None:
        raise ValueError("Perceptron requires y to be passed, but the target y is None.")
    y = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn("A column-vector y was passed when a 1d array was expected. Please change the shape "
                      "of y to (n_samples,), for example using ravel().",
                      _sklearn_flavoured(DataConversionWarning, "sklearn.exceptions", "DataConversionWarning"),
                      stacklevel=3)
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"y should be a 1d array, got an array of shape {y.shape} instead.")
    if len(y) != n_samples:
        raise ValueError(f"x and y have different lengths: {n_samples} and {len(y)}")
    if y.dtype.kind == "f":
        if np.isnan(y).any():
            raise ValueError("Input y contains NaN.")
        if not np.isfinite(y).all():
            raise ValueError("Input y contains infinity.")
        if not np.all(y == np.round(y)):
            raise ValueError(f"Unknown label type: continuous. Perceptron is a classifier: y must hold class "
                             f"labels, not real values. Received: y[:5]={y[:5].tolist()}")
    return y


def _rng(random_state):
    """The Generator for ``random_state``: None, a seed, a Generator, or a legacy RandomState."""
    if isinstance(random_state, np.random.RandomState):  # scikit-learn's convention: draw from it
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return random_state
    return _random.make_rng(None if random_state is None else int(random_state))


class Perceptron:
    """Rosenblatt's perceptron: ``fit`` / ``predict`` / ``decision_function`` / ``score``.

    A scikit-learn estimator by protocol (no scikit-learn needed): the constructor only
    stores its arguments, ``fit`` validates them, ``clone`` / ``get_params`` / ``set_params``
    / pipelines / ``cross_val_score`` / ``GridSearchCV`` work.

    Args:
        eta0: learning rate of the update ``w += eta0 * (t - y_hat) * x`` (> 0).
        max_iter: maximum number of epochs (passes over the data), an int >= 1.
        fit_intercept: learn the bias ``b`` (else it stays 0).
        shuffle: visit the samples in a new random order each epoch.
        random_state: seed of that order: an int, None (drawn from ``pyminidl.random``),
            a ``np.random.Generator`` or a ``np.random.RandomState``.

    Attributes (after ``fit``):
        coef_: (1, n_features) for two classes, (n_classes, n_features) otherwise.
        intercept_: (1,) or (n_classes,).
        classes_: the sorted class labels.
        n_features_in_: number of features seen in ``fit``; ``feature_names_in_``: their
            names, when ``x`` was a data frame with string column names.
        n_iter_: epochs run; ``errors_``: misclassified samples in each epoch.
        layer_: the underlying ``Dense(units, activation="step")`` (also ``layer``).

    Example:
        >>> clf = Perceptron(max_iter=20).fit(x, y)
        >>> clf.score(x, y)
        1.0
    """

    _estimator_type = "classifier"  # is_classifier() of scikit-learn < 1.6 (later ones read the tags)

    def __init__(self, eta0=1.0, max_iter=1000, fit_intercept=True, shuffle=True, random_state=0):
        self.eta0 = eta0
        self.max_iter = max_iter
        self.fit_intercept = fit_intercept
        self.shuffle = shuffle
        self.random_state = random_state

    # ---- scikit-learn's estimator protocol -------------------------------------------------

    @classmethod
    def _get_param_names(cls):
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep=True):
        """The constructor arguments as a dict (``deep``: also ``name__sub`` of nested estimators)."""
        params = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            params[name] = value
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                params.update((f"{name}__{k}", v) for k, v in value.get_params(deep=True).items())
        return params

    def set_params(self, **params):
        """Set constructor arguments (checked at the next ``fit``); returns self.

        Raises:
            ValueError: a name that is not a constructor argument.
        """
        valid = self._get_param_names()
        nested = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ValueError(f"Invalid parameter {name!r} for estimator {self!r}. "
                                 f"Valid parameters are: {sorted(valid)!r}.")
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags

        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags(multi_class=True, multi_label=False),
                    input_tags=InputTags(two_d_array=True, sparse=False, allow_nan=False))

    def __sklearn_is_fitted__(self):
        return "layer_" in self.__dict__

    def __repr__(self):
        defaults = inspect.signature(type(self).__init__).parameters
        changed = []
        for name, value in self.get_params(deep=False).items():
            default = defaults[name].default
            if value is default or (type(value) is type(default) and value == default):
                continue
            changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def __getstate__(self):
        """Pickle the weights, not the layer (its activation is a closure)."""
        state = dict(self.__dict__)
        if "layer_" in state:
            state["layer_"] = state["layer_"].get_weights()
        return state

    def __setstate__(self, state):
        weights = state.get("layer_")
        self.__dict__.update(state)
        if weights is not None:
            self.layer_ = self._make_layer(weights[0].shape[1], weights[0].shape[0])
            self.layer_.set_weights(weights)

    # ---- validation -----------------------------------------------------------------------

    def _validate_params(self, epochs):
        eta0, max_iter, seed = self.eta0, self.max_iter, self.random_state
        if isinstance(eta0, bool) or not isinstance(eta0, numbers.Real) or not 0 < eta0 < np.inf:
            raise ValueError(f"eta0 must be a positive finite number. Received: eta0={eta0!r}")
        for name, value in (("max_iter", max_iter), ("epochs", epochs)):
            if value is None and name == "epochs":
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be an int >= 1. Received: {name}={value!r}")
        for name in ("fit_intercept", "shuffle"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False. Received: {name}={getattr(self, name)!r}")
        is_seed = isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0
        if not (seed is None or is_seed or isinstance(seed, (np.random.Generator, np.random.RandomState))):
            raise ValueError("random_state must be None, an int >= 0, a np.random.Generator or a "
                             f"np.random.RandomState. Received: random_state={seed!r}")

    def _check_x(self, x):
        """``x`` as float64 (n_samples, n_features), with the feature count and names of ``fit``."""
        self._check_feature_names(_feature_names(x))
        x = _as_float_matrix(x)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {x.shape[1]} features, but Perceptron is expecting "
                             f"{self.n_features_in_} features as input. Received: shape={x.shape}")
        return x

    def _check_feature_names(self, names):
        """Names at predict time against those of fit (scikit-learn's rules and wording)."""
        fitted = getattr(self, "feature_names_in_", None)
        if fitted is None or names is None:
            if fitted is not None:
                warnings.warn("X does not have valid feature names, but Perceptron was fitted with feature names",
                              UserWarning, stacklevel=4)
            elif names is not None:
                warnings.warn("X has feature names, but Perceptron was fitted without feature names",
                              UserWarning, stacklevel=4)
            return
        if len(fitted) == len(names) and np.all(fitted == names):
            return
        unseen = sorted(set(names) - set(fitted))
        missing = sorted(set(fitted) - set(names))
        message = "The feature names should match those that were passed during fit.\n"
        if unseen:
            message += "Feature names unseen at fit time:\n" + _name_list(unseen)
        if missing:
            message += "Feature names seen at fit time, yet now missing:\n" + _name_list(missing)
        if not unseen and not missing:
            message += "Feature names must be in the same order as they were in fit.\n"
        raise ValueError(message)

    def _check_fitted(self):
        if not self.__sklearn_is_fitted__():
            error = _sklearn_flavoured(NotFittedError, "sklearn.exceptions", "NotFittedError")
            raise error("This Perceptron instance is not fitted yet. Call 'fit' with appropriate "
                        "arguments before using this estimator.")

    # ---- training and inference -----------------------------------------------------------

    @staticmethod
    def _make_layer(units, n_features):
        layer = Dense(units, activation="step", kernel_initializer="zeros", dtype="float64")
        layer.build((None, n_features))
        return layer

    def fit(self, x, y, epochs=None):
        """Train from zero weights with the perceptron rule; ``epochs`` overrides ``max_iter``.

        Args:
            x: (n_samples, n_features) numbers (arrays, lists, data frames).
            y: (n_samples,) class labels (any sortable type), at least two distinct.
            epochs: number of epochs instead of ``max_iter`` (an int >= 1).

        Returns:
            self. Stops early after an epoch without a mistake.

        Raises:
            ValueError: bad constructor arguments, or data that is not 2-D, finite, non-empty
                numbers with as many labels as samples, of at least two classes.
        """
        self._validate_params(epochs)
        names = _feature_names(x)
        x = _as_float_matrix(x)
        y = _as_labels(y, len(x))
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError("Perceptron needs samples of at least 2 classes in the data, but the data "
                             f"contains only one class: {classes.tolist()}")
        units = 1 if len(classes) == 2 else len(classes)
        index = np.searchsorted(classes, y)
        targets = (index[:, None] == (np.arange(units) + (units == 1))).astype(np.float64)
        layer = self._make_layer(units, x.shape[1])
        rng = _rng(self.random_state)
        errors = []
        for _ in range(self.max_iter if epochs is None else epochs):
            order = rng.permutation(len(x)) if self.shuffle else range(len(x))
            errors.append(self._epoch(layer, x, targets, order))
            if errors[-1] == 0:
                break
        self.__dict__.pop("feature_names_in_", None)  # a refit on an array forgets the old names
        if names is not None:
            self.feature_names_in_ = names
        self.classes_, self.n_features_in_, self.layer_ = classes, x.shape[1], layer
        self.errors_, self.n_iter_ = errors, len(errors)
        return self

    def _epoch(self, layer, x, targets, order):
        """One pass of the perceptron rule; returns the number of misclassified samples."""
        w, b = layer.kernel, layer.bias
        eta0, fit_intercept = float(self.eta0), bool(self.fit_intercept)
        mistakes = 0
        for i in order:
            y_hat = (x[i] @ w + b > 0).astype(np.float64)  # step(w . x + b), as the layer computes it
            err = targets[i] - y_hat
            if err.any():
                mistakes += 1
                w += eta0 * np.outer(x[i], err)  # in place: the layer's own weights
                if fit_intercept:
                    b += eta0 * err
        return mistakes

    def decision_function(self, x):
        """Scores ``w . x + b``: (n_samples,) for two classes, (n_samples, n_classes) otherwise."""
        self._check_fitted()
        scores = self._check_x(x) @ self.layer_.kernel + self.layer_.bias
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict(self, x):
        """Class labels: through the step layer for two classes, the top score for more."""
        self._check_fitted()
        x = self._check_x(x)
        if len(self.classes_) == 2:
            return self.classes_[self.layer_(x)[:, 0].astype(np.int64)]
        return self.classes_[np.argmax(x @ self.layer_.kernel + self.layer_.bias, axis=1)]

    def score(self, x, y, sample_weight=None):
        """Mean accuracy of ``predict(x)`` against ``y`` (weighted by ``sample_weight``)."""
        y_pred = self.predict(x)
        y = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y).reshape(-1)
        if len(y) != len(y_pred):
            raise ValueError(f"x and y have different lengths: {len(y_pred)} and {len(y)}")
        return float(np.average(y_pred == y, weights=sample_weight))

    @property
    def layer(self):
        """The fitted ``Dense`` step layer (``layer_``), None before ``fit``."""
        return self.__dict__.get("layer_")

    @property
    def coef_(self):
        self._check_fitted()
        return self.layer_.kernel.T.copy()

    @property
    def intercept_(self):
        self._check_fitted()
        return self.layer_.bias.copy()
