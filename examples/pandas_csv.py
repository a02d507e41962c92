"""A CSV file through pandas into a model, as most tabular tutorials start.

The shipped 8x8 digits are written as a CSV with a header (``pixel0`` ... ``pixel63``,
``label``), read back with pandas, and the DataFrame and Series go straight into ``fit``,
``evaluate`` and ``predict`` -- and, the second way, through ``Dataset.from_tensor_slices``
of a dict of columns. Needs pandas (``pip install pandas``); pyminidl itself does not.

    python examples/pandas_csv.py
"""

import os
import tempfile

import numpy as np
import pandas as pd

import pyminidl as keras


def write_digits_csv(path):
    """The digits as a CSV file with named columns: what a user's own data usually looks like."""
    x, y = keras.datasets.load_digits()
    frame = pd.DataFrame(x, columns=[f"pixel{i}" for i in range(x.shape[1])])
    frame["label"] = y
    frame.to_csv(path, index=False)


def build_model():
    model = keras.Sequential([
        keras.Input(shape=(64,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main(epochs=20, verbose=1, seed=0):
    """Train from the CSV twice (frames, then a Dataset); returns the two test accuracies."""
    keras.utils.set_random_seed(seed)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "digits.csv")
        write_digits_csv(path)
        df = pd.read_csv(path)
    df = df.sample(frac=1.0, random_state=seed)              # shuffled rows: a non-trivial index
    train, test = df.iloc[:1500], df.iloc[1500:]
    x_train, y_train = train.drop(columns=["label"]) / 16.0, train["label"]   # pixels 0..16 -> 0..1
    x_test, y_test = test.drop(columns=["label"]) / 16.0, test["label"]

    model = build_model()                                      # 1. DataFrame and Series
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, validation_split=0.1, verbose=verbose)
    _, accuracy = model.evaluate(x_test, y_test, verbose=verbose)
    predicted = model.predict(x_test, verbose=0).argmax(axis=-1)
    assert np.mean(predicted == y_test.to_numpy()) == accuracy

    features = dict(x_train)                                   # 2. a dict of columns -> one array
    columns = list(features)
    dataset = keras.data.Dataset.from_tensor_slices((features, y_train)).map(
        lambda row, label: (np.stack([row[c] for c in columns], axis=-1).astype("float32"), label))
    model = build_model()
    model.fit(dataset.shuffle(1500, seed=seed).batch(32), epochs=epochs, verbose=verbose)
    _, dataset_accuracy = model.evaluate(x_test, y_test, verbose=verbose)
    return accuracy, dataset_accuracy


if __name__ == "__main__":
    frame_accuracy, dataset_accuracy = main()
    print(f"test accuracy: {frame_accuracy:.3f} (DataFrame), {dataset_accuracy:.3f} (Dataset of columns)")
