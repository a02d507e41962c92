"""XOR with a small Keras-style MLP: the classic problem a single perceptron cannot learn.

The tutorial network: Dense(10, sigmoid) -> Dense(10, sigmoid) -> Dense(1, sigmoid),
mean squared error, SGD with momentum, full-batch. Runs in well under a second.

    $ python examples/xor.py
"""

import numpy as np

import pyminidl as keras
from pyminidl.layers import Dense
from pyminidl.models import Sequential

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
Y = np.array([[0], [1], [1], [0]], dtype=np.float32)


def build_model():
    """The tutorial model, compiled with mse and SGD(learning_rate=1.0, momentum=0.9)."""
    model = Sequential([
        Dense(10, input_dim=2, activation="sigmoid"),
        Dense(10, activation="sigmoid"),
        Dense(1, activation="sigmoid"),
    ])
    model.compile(loss="mean_squared_error", optimizer=keras.optimizers.SGD(learning_rate=1.0, momentum=0.9),
                  metrics=["accuracy"])
    return model


def train(epochs=1000, seed=0, verbose=0):
    """Train on the four XOR points; returns (model, history)."""
    keras.utils.set_random_seed(seed)
    model = build_model()
    history = model.fit(X, Y, epochs=epochs, batch_size=4, verbose=verbose)
    return model, history


if __name__ == "__main__":
    model, history = train()
    print(f"final loss: {history.history['loss'][-1]:.5f}  accuracy: {history.history['accuracy'][-1]:.2f}")
    for x, p in zip(X, model.predict(X, verbose=0)):
        print(f"{x.astype(int).tolist()} -> {p[0]:.3f}")
