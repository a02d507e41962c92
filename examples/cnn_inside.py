"""Seeing inside a CNN: train a small CNN on the shipped 8x8 digits, then draw its filters, the
feature maps it makes for one digit, and its training curves (matplotlib: pip install "pyminidl[plot]").

Run:  python examples/cnn_inside.py [--out-dir pictures]
"""

import argparse
import os
import sys

import pyminidl as keras
from pyminidl import visualize


def main(out_dir=".", epochs=15, verbose=1):
    """Train, then write filters.png, feature_maps.png and history.png into ``out_dir``; returns the paths."""
    keras.utils.set_random_seed(0)
    x, y = keras.datasets.load_digits()
    x = (x / 16.0).reshape(-1, 8, 8, 1).astype("float32")
    inputs = keras.Input(shape=(8, 8, 1))
    h = keras.layers.Conv2D(16, 3, activation="relu", padding="same", name="conv_1")(inputs)
    h = keras.layers.MaxPooling2D(2, name="pool_1")(h)
    h = keras.layers.Conv2D(32, 3, activation="relu", padding="same", name="conv_2")(h)
    h = keras.layers.Flatten()(keras.layers.MaxPooling2D(2, name="pool_2")(h))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(h))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=epochs, batch_size=32, validation_split=0.2, verbose=verbose)
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, name) for name in ("filters.png", "feature_maps.png", "history.png")]
    visualize.plot_filters(model.get_layer("conv_1"), to_file=paths[0])
    visualize.plot_feature_maps(model, x[0], layers=["conv_1", "pool_1", "conv_2"], to_file=paths[1])
    visualize.plot_history(history, to_file=paths[2])
    if verbose:
        print("wrote " + ", ".join(paths))
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=".")
    main(parser.parse_args().out_dir)
    sys.exit(0)
