"""Regression: fit a noisy non-linear function of 3 inputs with an MLP, using a Dataset pipeline.

Shows ``pyminidl.data.Dataset`` (shuffle + batch), a learning-rate schedule, Huber loss
and MAE as a metric, then compares the model to the best linear fit.

    $ python examples/regression.py
"""

import numpy as np

import pyminidl as keras
from pyminidl.data import Dataset
from pyminidl.layers import Dense
from pyminidl.models import Sequential


def make_data(n, rng):
    x = rng.uniform(-2, 2, (n, 3)).astype(np.float32)
    y = np.sin(x[:, :1]) * 2 + x[:, 1:2] ** 2 - 0.5 * x[:, 2:3] + 0.05 * rng.standard_normal((n, 1))
    return x, y.astype(np.float32)


def main(epochs=60, seed=0, verbose=2):
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x_train, y_train = make_data(2000, rng)
    x_test, y_test = make_data(500, rng)
    train = Dataset.from_tensor_slices((x_train, y_train)).shuffle(2000, seed=seed).batch(64)
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=len(train) * 10, decay_rate=0.7)
    model = Sequential([Dense(64, activation="tanh", input_dim=3), Dense(64, activation="tanh"), Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule), loss=keras.losses.Huber(delta=1.0),
                  metrics=["mae"])
    model.fit(train, epochs=epochs, verbose=verbose)
    mse = float(np.mean((model.predict(x_test, verbose=0) - y_test) ** 2))
    design = np.hstack([x_train, np.ones((len(x_train), 1), np.float32)])
    coef, *_ = np.linalg.lstsq(design, y_train, rcond=None)
    linear_mse = float(np.mean((np.hstack([x_test, np.ones((len(x_test), 1), np.float32)]) @ coef - y_test) ** 2))
    return mse, linear_mse


if __name__ == "__main__":
    mse, linear_mse = main()
    print(f"test MSE: MLP {mse:.4f} vs best linear fit {linear_mse:.4f}")
