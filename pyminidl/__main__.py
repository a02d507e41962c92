"""``python -m pyminidl`` (or ``pyminidl demo``): train a digit classifier in a few seconds.

Loads the 8x8 handwritten digits shipped with pyminidl (1,797 images), holds out a fixed
test split, trains a Keras-style MLP (64-64-10, ReLU, softmax) with Adam and sparse
categorical cross-entropy showing the Keras progress bar, then prints the test accuracy
and the time taken.

Example:
    $ python -m pyminidl --epochs 10
    $ pyminidl demo --quiet
    $ pyminidl config          # the build and runtime configuration
"""

import argparse
import sys
import time


def _parser():
    parser = argparse.ArgumentParser(
        prog="pyminidl",
        description="pyminidl demo: train an MLP on the 8x8 handwritten digits shipped with the package.",
    )
    parser.add_argument("command", nargs="?", default="demo", choices=("demo", "config"),
                        help="'demo' (default): train and evaluate; 'config': print the build configuration")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (default: 20)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size (default: 32)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the split and the weights (default: 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, only the result line")
    return parser


def _split(x, y, test_fraction, seed):
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return (x[train], y[train]), (x[test], y[test])


def run_demo(epochs=20, batch_size=32, seed=0, quiet=False):
    """Train and evaluate the digits MLP; returns (test_accuracy, seconds)."""
    import pyminidl
    from pyminidl.layers import Dense

    start = time.perf_counter()
    pyminidl.utils.set_random_seed(seed)
    x, y = pyminidl.datasets.load_digits()
    x = x / 16.0  # pixel counts 0..16 -> [0, 1]
    (x_train, y_train), (x_test, y_test) = _split(x, y, 0.2, seed)
    model = pyminidl.Sequential([
        pyminidl.Input(shape=(64,)),
        Dense(64, activation="relu"),
        Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    if not quiet:
        print(f"pyminidl {pyminidl.__version__} on the '{pyminidl.backend.get_backend().name}' backend: "
              f"{len(x_train)} training and {len(x_test)} test images of 8x8 digits")
    model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=0 if quiet else 1)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    return float(accuracy), time.perf_counter() - start


def main(argv=None):
    """Console entry point (``pyminidl`` / ``python -m pyminidl``); returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "config":
        import pyminidl

        pyminidl.show_config()
        return 0
    if args.epochs < 1 or args.batch_size < 1:
        print("pyminidl: --epochs and --batch-size must be >= 1", file=sys.stderr)
        return 2
    accuracy, seconds = run_demo(args.epochs, args.batch_size, args.seed, args.quiet)
    print(f"Test accuracy: {accuracy:.4f} ({args.epochs} epochs, {seconds:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
