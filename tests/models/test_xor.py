"""Tiny problems must be learned: the XOR tutorial network and a softmax classifier."""

import numpy as np

import pyminidl
from pyminidl import optimizers
from pyminidl.layers import Dense
from pyminidl.models import Sequential


def test_xor_tutorial_model_reaches_100_percent():
    pyminidl.random.seed(0)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([[0], [1], [1], [0]], dtype=np.float32)
    model = Sequential([
        Dense(10, input_dim=2, activation="sigmoid"),
        Dense(10, activation="sigmoid"),
        Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer=optimizers.Adam(learning_rate=0.05), loss="mse", metrics=["accuracy"])
    history = model.fit(x, y, epochs=500, batch_size=4, verbose=0)
    assert history.history["accuracy"][-1] == 1.0
    assert history.history["loss"][-1] < 0.01
    np.testing.assert_array_equal(model.predict(x, verbose=0) > 0.5, y > 0.5)
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert accuracy == 1.0


def test_softmax_classifier_separates_blobs(rng):
    pyminidl.random.seed(1)
    centers = np.array([[3, 0, 0, 0], [0, 3, 0, 0], [0, 0, 3, 0]], dtype=np.float32)
    labels = rng.integers(0, 3, 600)
    x = (centers[labels] + rng.standard_normal((600, 4))).astype(np.float32)
    model = Sequential([Dense(16, activation="relu", input_dim=4), Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    onehot = np.eye(3, dtype=np.float32)[labels]
    history = model.fit(x[:500], onehot[:500], epochs=15, batch_size=32,
                        validation_data=(x[500:], onehot[500:]), verbose=0)
    assert history.history["val_accuracy"][-1] > 0.95
    assert history.history["loss"][-1] < history.history["loss"][0] / 2
    _, accuracy = model.evaluate(x[500:], onehot[500:], verbose=0)
    assert accuracy > 0.95
