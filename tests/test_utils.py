"""utils: to_categorical, normalize, set_random_seed."""

import random

import numpy as np
import pytest

import pyminidl
from pyminidl import utils


def test_to_categorical():
    out = utils.to_categorical([0, 2, 1], num_classes=4)
    np.testing.assert_array_equal(out, np.eye(4)[[0, 2, 1]])
    assert out.dtype == np.float32
    assert utils.to_categorical([[1], [0]]).shape == (2, 2)
    assert utils.to_categorical(np.zeros((2, 3), dtype=int), 5).shape == (2, 3, 5)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        utils.to_categorical([0, 2], num_classes=2)


def test_normalize():
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(utils.normalize(x), [[0.6, 0.8], [0.0, 0.0]])
    np.testing.assert_allclose(utils.normalize(np.array([[1.0, -3.0]]), order=1), [[0.25, -0.75]])
    np.testing.assert_allclose(utils.normalize(np.array([[3.0], [4.0]]), axis=0), [[0.6], [0.8]])


def test_set_random_seed_reseeds_everything():
    def draw():
        return (pyminidl.random.global_rng().normal(), np.random.rand(), random.random())

    utils.set_random_seed(42)
    a = draw()
    utils.set_random_seed(42)
    assert draw() == a
    with pytest.raises(ValueError, match="integer"):
        utils.set_random_seed(1.5)
