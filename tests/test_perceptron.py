"""The classic perceptron: learns AND / OR / separable clouds, cannot learn XOR."""

import numpy as np
import pytest

from pyminidl.layers import Dense
from pyminidl.models import Perceptron

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)


@pytest.mark.parametrize("y", [[0, 0, 0, 1], [0, 1, 1, 1]], ids=["AND", "OR"])
def test_learns_and_or(y):
    clf = Perceptron(max_iter=100).fit(X, y)
    assert clf.score(X, y) == 1.0
    np.testing.assert_array_equal(clf.predict(X), y)
    assert clf.errors_[-1] == 0 and clf.n_iter_ < 100
    assert clf.coef_.shape == (1, 2) and clf.intercept_.shape == (1,)
    assert isinstance(clf.layer, Dense) and clf.layer.final_activation == "step"


def test_learns_linearly_separable_2d(rng):
    x = np.vstack([rng.normal(size=(60, 2)) + [2.5, 2.5], rng.normal(size=(60, 2)) - [2.5, 2.5]])
    y = np.array(["pos"] * 60 + ["neg"] * 60)
    clf = Perceptron(random_state=1).fit(x, y)
    assert clf.score(x, y) == 1.0
    # the learned line separates: the decision function's sign matches the label
    scores = clf.decision_function(x)
    assert np.all((scores > 0) == (y == clf.classes_[1]))


def test_cannot_learn_xor():
    y = [0, 1, 1, 0]
    clf = Perceptron(max_iter=200).fit(X, y)
    assert clf.n_iter_ == 200 and min(clf.errors_) > 0
    assert clf.score(X, y) <= 0.75


def test_multiclass_one_vs_rest(rng):
    centers = np.array([[4, 0], [-4, 0], [0, 6]])
    y = np.repeat([0, 1, 2], 40)
    x = centers[y] + rng.normal(size=(120, 2)) * 0.5
    clf = Perceptron(max_iter=200).fit(x, y)
    assert clf.coef_.shape == (3, 2) and clf.score(x, y) > 0.95


def test_errors():
    with pytest.raises(ValueError, match="not fitted"):
        Perceptron().predict(X)
    with pytest.raises(ValueError, match="2 classes"):
        Perceptron().fit(X, [1, 1, 1, 1])
    clf = Perceptron().fit(X, [0, 0, 0, 1])
    with pytest.raises(ValueError, match="2 features"):
        clf.predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="2-D"):
        clf.predict(np.zeros(2))
