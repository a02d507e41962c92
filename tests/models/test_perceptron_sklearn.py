"""models.Perceptron as a scikit-learn estimator: check_estimator, clone, pipelines, CV, grid search."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone, is_classifier  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from pyminidl.models import Perceptron  # noqa: E402


def _blobs(rng, n=60):
    x = np.vstack([rng.normal(size=(n, 2)) + [3, 3], rng.normal(size=(n, 2)) - [3, 3]])
    return x, np.repeat([0, 1], n)


# max_iter=20 keeps every check to well under a second: the checks' data are separable
# blobs or deliberately noisy, and the epoch loop runs in Python.
with warnings.catch_warnings():
    # the protocol is implemented by duck typing, on purpose (no scikit-learn base class)
    warnings.filterwarnings("ignore", message="Estimator Perceptron does not inherit", category=UserWarning)

    @parametrize_with_checks([Perceptron(max_iter=20)])
    def test_sklearn_check_estimator(estimator, check):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Estimator Perceptron does not inherit")
            warnings.filterwarnings("ignore", category=sklearn.exceptions.SkipTestWarning)
            check(estimator)


def test_import_does_not_import_sklearn():
    code = "import sys, pyminidl, pyminidl.models; print(any(m.startswith('sklearn') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.abspath(__file__)))  # not the source tree
    assert out.stdout.strip() == "False"


def test_params_clone_and_tags():
    clf = Perceptron(eta0=0.5, max_iter=7, random_state=3)
    assert clf.get_params() == {"eta0": 0.5, "max_iter": 7, "fit_intercept": True, "shuffle": True,
                                "random_state": 3}
    twin = clone(clf)
    assert twin is not clf and twin.get_params() == clf.get_params()
    assert clf.set_params(max_iter=9) is clf and clf.max_iter == 9
    assert is_classifier(clf) and repr(clf) == "Perceptron(eta0=0.5, max_iter=9, random_state=3)"
    with pytest.raises(ValueError, match="Invalid parameter 'bogus'"):
        clf.set_params(bogus=1)


def test_validation_happens_in_fit(rng):
    x, y = _blobs(rng)
    clf = Perceptron(max_iter=0)  # the constructor stores, fit refuses
    with pytest.raises(ValueError, match=r"max_iter must be an int >= 1. Received: max_iter=0"):
        clf.fit(x, y)
    with pytest.raises(ValueError, match="eta0 must be a positive"):
        Perceptron(eta0=-1.0).fit(x, y)
    with pytest.raises(ValueError, match="random_state"):
        Perceptron(random_state="seed").fit(x, y)


def test_not_fitted_error_is_sklearns_and_a_value_error():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        Perceptron().predict(np.zeros((2, 2)))
    with pytest.raises(ValueError):
        Perceptron().decision_function(np.zeros((2, 2)))


def test_fitted_attributes(rng):
    x, y = _blobs(rng)
    clf = Perceptron().fit(x, y)
    assert clf.n_features_in_ == 2 and list(clf.classes_) == [0, 1] and clf.layer is clf.layer_
    with pytest.raises(ValueError, match="X has 3 features, but Perceptron is expecting 2"):
        clf.predict(np.zeros((1, 3)))


def test_pipeline_cross_val_and_grid_search(rng):
    x, y = _blobs(rng)
    scores = cross_val_score(Perceptron(max_iter=50), x, y, cv=3)
    assert scores.shape == (3,) and scores.min() == 1.0
    pipe = make_pipeline(StandardScaler(), Perceptron(max_iter=50)).fit(x, y)
    assert pipe.score(x, y) == 1.0
    grid = GridSearchCV(Perceptron(), {"eta0": [0.1, 1.0], "max_iter": [5, 50]}, cv=3).fit(x, y)
    assert grid.best_score_ == 1.0 and grid.best_estimator_.max_iter in (5, 50)
