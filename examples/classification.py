"""Iris-style multi-class classification, on the 8x8 digits shipped with pyminidl.

Standardises the features, one-hot encodes the labels, trains a small MLP with
categorical cross-entropy and early stopping on a validation split, and prints the
test accuracy plus a confusion matrix.

    $ python examples/classification.py
"""

import numpy as np

import pyminidl as keras
from pyminidl.layers import Dense
from pyminidl.models import Sequential


def load(seed=0):
    """Standardised digits split 70/15/15 into train / validation / test, labels one-hot."""
    x, y = keras.datasets.load_digits()
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    n_train, n_val = int(0.7 * len(x)), int(0.15 * len(x))
    mean, std = x[:n_train].mean(0), x[:n_train].std(0) + 1e-6  # statistics of the training part only
    x = ((x - mean) / std).astype(np.float32)
    y1h = keras.utils.to_categorical(y, 10)
    cut = (n_train, n_train + n_val)
    return (x[:cut[0]], y1h[:cut[0]]), (x[cut[0]:cut[1]], y1h[cut[0]:cut[1]]), (x[cut[1]:], y[cut[1]:])


def main(epochs=40, seed=0, verbose=2):
    keras.utils.set_random_seed(seed)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = load(seed)
    model = Sequential([Dense(32, activation="relu", input_dim=64), Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-3), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True)
    model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=epochs, batch_size=32,
              callbacks=[stop], verbose=verbose)
    predicted = np.argmax(model.predict(x_test, verbose=0), axis=1)
    accuracy = float(np.mean(predicted == y_test))
    confusion = np.zeros((10, 10), dtype=int)
    np.add.at(confusion, (y_test, predicted), 1)
    return accuracy, confusion


if __name__ == "__main__":
    accuracy, confusion = main()
    print(f"test accuracy: {accuracy:.4f}")
    print("confusion matrix (rows: true digit, columns: predicted):")
    print(confusion)
