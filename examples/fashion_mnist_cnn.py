"""The Fashion-MNIST CNN of the Keras tutorials, with only the import changed.

Loads Fashion-MNIST (downloaded once into ~/.pyminidl/datasets, checksums verified), rescales the
pixels to [0, 1], trains the tutorial's CNN with a validation split, evaluates it on the test
set and prints a few predictions with their class names.

Run:  python examples/fashion_mnist_cnn.py [--epochs 5] [--samples 60000]

Without network access and without the files in the cache, it says so (and where to put the
files) and exits with status 1.
"""

import argparse
import sys

import numpy as np

import pyminidl as keras
from pyminidl.datasets import fashion_mnist
from pyminidl.utils.file_utils import DownloadError


def build_model():
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, kernel_size=3, activation="relu", padding="same"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, kernel_size=3, activation="relu", padding="same"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(100, activation="relu"),
        keras.layers.Dropout(0.4),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main(epochs=5, samples=None, data=None, verbose=1, seed=0):
    """Train and evaluate; returns the test accuracy. ``data`` replaces the download (tests pass arrays)."""
    keras.utils.set_random_seed(seed)
    (x_train, y_train), (x_test, y_test) = data if data is not None else fashion_mnist.load_data()
    if samples is not None:
        x_train, y_train = x_train[:samples], y_train[:samples]
    x_train = (x_train / 255.0).reshape(-1, 28, 28, 1).astype("float32")
    x_test = (x_test / 255.0).reshape(-1, 28, 28, 1).astype("float32")
    model = build_model()
    model.fit(x_train, y_train, epochs=epochs, batch_size=128, validation_split=0.1, verbose=verbose)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    predicted = np.argmax(model.predict(x_test[:5], verbose=0), axis=1)
    if verbose:
        print(f"Test accuracy: {accuracy:.4f}")
        for got, want in zip(predicted, y_test[:5]):
            print(f"  predicted {fashion_mnist.CLASS_NAMES[got]:<12} true {fashion_mnist.CLASS_NAMES[want]}")
    return float(accuracy)


def _cli(argv=None):
    parser = argparse.ArgumentParser(description="Fashion-MNIST CNN (the Keras tutorial's).")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=None, help="train on the first N images only")
    args = parser.parse_args(argv)
    try:
        main(args.epochs, args.samples)
    except DownloadError as e:
        print(f"Fashion-MNIST is not available offline: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
