"""Run under Keras 3 (``KERAS_BACKEND=torch python keras_interop.py write|read [read] DIR``), never by pytest.

``write DIR``: builds and trains a small model of built-in layers with Keras, and writes
``keras_mlp.keras``, ``keras_mlp.weights.h5`` and ``keras_mlp_io.npz`` (inputs and Keras's predictions)
into DIR: the fixtures pyminidl's tests load. ``read DIR``: loads ``pyminidl_mlp.keras`` and
``pyminidl_mlp.weights.h5`` (written by pyminidl) with Keras and writes Keras's predictions of the
inputs in ``pyminidl_mlp_io.npz`` to ``keras_predictions.npz``.
"""

import os
import sys

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402


def build():
    return keras.Sequential([
        keras.Input((2, 3)),
        keras.layers.Flatten(),
        keras.layers.Normalization(mean=[0.5] * 6, variance=[0.25] * 6),
        keras.layers.Dense(8, activation="relu"),
        keras.layers.Dropout(0.25),
        keras.layers.Dense(4),
        keras.layers.Activation("tanh"),
        keras.layers.Reshape((2, 2)),
        keras.layers.Flatten(),
        keras.layers.Rescaling(0.5, offset=0.1),
        keras.layers.Dense(3, activation="softmax"),
    ])


def write(folder):
    keras.utils.set_random_seed(0)
    model = build()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.random((16, 2, 3)).astype("float32")
    y = rng.integers(0, 3, 16)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    model.save(os.path.join(folder, "keras_mlp.keras"))
    model.save_weights(os.path.join(folder, "keras_mlp.weights.h5"))
    np.savez(os.path.join(folder, "keras_mlp_io.npz"), x=x, y=y, predictions=model.predict(x, verbose=0),
             iterations=int(model.optimizer.iterations.numpy()))


def read(folder):
    data = np.load(os.path.join(folder, "pyminidl_mlp_io.npz"))
    model = keras.models.load_model(os.path.join(folder, "pyminidl_mlp.keras"))
    from_keras = model.predict(data["x"], verbose=0)
    model.load_weights(os.path.join(folder, "pyminidl_mlp.weights.h5"))
    np.savez(os.path.join(folder, "keras_predictions.npz"), predictions=from_keras,
             after_load_weights=model.predict(data["x"], verbose=0),
             iterations=int(model.optimizer.iterations.numpy()))


if __name__ == "__main__":  # keras_interop.py write|read [write|read] DIR: one Keras start-up for both
    for command in sys.argv[1:-1]:
        {"write": write, "read": read}[command](sys.argv[-1])
