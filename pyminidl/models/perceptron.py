"""The classic perceptron (Rosenblatt, 1958), with scikit-learn's ``Perceptron`` interface.

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

Example:
    >>> clf = pyminidl.models.Perceptron().fit([[0, 0], [0, 1], [1, 0], [1, 1]], [0, 0, 0, 1])
    >>> clf.predict([[1, 1], [0, 1]])
    array([1, 0])
"""

import numpy as np

from pyminidl import random as _random
from pyminidl.layers import Dense


class Perceptron:
    """Rosenblatt's perceptron with ``fit`` / ``predict`` / ``score`` and ``coef_`` / ``intercept_``.

    Args:
        eta0: learning rate of the update ``w += eta0 * (t - y_hat) * x``.
        max_iter: maximum number of epochs (passes over the data).
        fit_intercept: learn the bias ``b`` (else it stays 0).
        shuffle: visit the samples in a new random order each epoch.
        random_state: seed of that order (None: drawn from ``pyminidl.random``).

    Attributes (after ``fit``):
        coef_: (1, n_features) for two classes, (n_classes, n_features) otherwise.
        intercept_: (1,) or (n_classes,).
        classes_: the sorted class labels.
        n_iter_: epochs run; ``errors_``: misclassified samples in each epoch.
        layer: the underlying ``Dense(units, activation="step")``.

    Example:
        >>> clf = Perceptron(max_iter=20).fit(x, y)
        >>> clf.score(x, y)
        1.0
    """

    def __init__(self, eta0=1.0, max_iter=1000, fit_intercept=True, shuffle=True, random_state=0):
        if max_iter < 1:
            raise ValueError(f"max_iter must be >= 1. Received: max_iter={max_iter}")
        self.eta0, self.max_iter, self.fit_intercept = float(eta0), int(max_iter), bool(fit_intercept)
        self.shuffle, self.random_state = bool(shuffle), random_state
        self.layer = None

    def _check_x(self, x):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"Expected 2-D input (n_samples, n_features). Received: shape={x.shape}")
        if self.layer is not None and x.shape[1] != self.layer.kernel.shape[0]:
            raise ValueError(f"Perceptron was fitted with {self.layer.kernel.shape[0]} features. "
                             f"Received: shape={x.shape}")
        return x

    def fit(self, x, y, epochs=None):
        """Train from zero weights with the perceptron rule; ``epochs`` overrides ``max_iter``.

        Stops early after an epoch without a mistake. Returns self.
        """
        x = self._check_x(x)
        y = np.asarray(y).reshape(-1)
        if len(y) != len(x):
            raise ValueError(f"x and y have different lengths: {len(x)} and {len(y)}")
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(f"The data must contain at least 2 classes. Received: classes={self.classes_.tolist()}")
        units = 1 if len(self.classes_) == 2 else len(self.classes_)
        index = np.searchsorted(self.classes_, y)
        targets = (index[:, None] == (np.arange(units) + (units == 1))).astype(np.float64)
        self.layer = Dense(units, activation="step", kernel_initializer="zeros", dtype="float64")
        self.layer.build((None, x.shape[1]))
        rng = _random.make_rng(self.random_state)
        self.errors_ = []
        for _ in range(self.max_iter if epochs is None else int(epochs)):
            order = rng.permutation(len(x)) if self.shuffle else range(len(x))
            self.errors_.append(self._epoch(x, targets, order))
            if self.errors_[-1] == 0:
                break
        self.n_iter_ = len(self.errors_)
        return self

    def _epoch(self, x, targets, order):
        """One pass of the perceptron rule; returns the number of misclassified samples."""
        w, b = self.layer.kernel, self.layer.bias
        mistakes = 0
        for i in order:
            y_hat = (x[i] @ w + b > 0).astype(np.float64)  # step(w . x + b), as the layer computes it
            err = targets[i] - y_hat
            if err.any():
                mistakes += 1
                w += self.eta0 * np.outer(x[i], err)  # in place: the layer's own weights
                if self.fit_intercept:
                    b += self.eta0 * err
        return mistakes

    def decision_function(self, x):
        """Scores ``w . x + b``: (n_samples,) for two classes, (n_samples, n_classes) otherwise."""
        self._check_fitted()
        scores = self._check_x(x) @ self.layer.kernel + self.layer.bias
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict(self, x):
        """Class labels: through the step layer for two classes, the top score for more."""
        self._check_fitted()
        x = self._check_x(x)
        if len(self.classes_) == 2:
            return self.classes_[self.layer(x)[:, 0].astype(np.int64)]
        return self.classes_[np.argmax(self.decision_function(x), axis=1)]

    def score(self, x, y):
        """Mean accuracy of ``predict(x)`` against ``y``."""
        return float(np.mean(self.predict(x) == np.asarray(y).reshape(-1)))

    def _check_fitted(self):
        if self.layer is None:
            raise ValueError("This Perceptron instance is not fitted yet. Call 'fit' first.")

    @property
    def coef_(self):
        self._check_fitted()
        return self.layer.kernel.T.copy()

    @property
    def intercept_(self):
        self._check_fitted()
        return self.layer.bias.copy()

    def get_params(self, deep=True):
        return {"eta0": self.eta0, "max_iter": self.max_iter, "fit_intercept": self.fit_intercept,
                "shuffle": self.shuffle, "random_state": self.random_state}
