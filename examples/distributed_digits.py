"""Data-parallel training of the 8x8 digits MLP on every process ``mpirun`` starts.

    $ pip install "pyminidl[mpi]"
    $ mpirun -np 2 python examples/distributed_digits.py          # one machine, 2 ranks
    $ mpirun -H a:2,b:2 python examples/distributed_digits.py     # two machines
    $ python examples/distributed_digits.py                       # one process: the same code

(As root, Open MPI also wants ``--allow-run-as-root`` or OMPI_ALLOW_RUN_AS_ROOT=1 and
OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; more ranks than cores need ``--oversubscribe``.)

``batch_size`` is the global batch: each of the N ranks trains on batch_size / N samples of
every step, gradients are averaged across ranks, and rank 0 alone prints and writes the CSV log.
"""

import numpy as np

import pyminidl as keras


def main(epochs=20, batch_size=64, verbose=2, log_path="digits_log.csv"):
    keras.distribution.initialize()
    keras.distribution.set_distribution(keras.distribution.DataParallel())
    x, y = keras.datasets.load_digits()
    order = np.random.default_rng(0).permutation(len(x))  # the same split on every rank
    x, y = (x[order] / 16.0).astype(np.float32), y[order]
    (x_train, y_train), (x_test, y_test) = (x[:1500], y[:1500]), (x[1500:], y[1500:])
    keras.random.seed(0)
    model = keras.Sequential([keras.layers.Input((64,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=verbose, validation_split=0.1,
              callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=3),
                         keras.callbacks.CSVLogger(log_path)])
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)  # reduced over every rank
    if keras.distribution.rank() == 0:
        print(f"{keras.distribution.size()} process(es): test accuracy {accuracy:.3f}, loss {loss:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
