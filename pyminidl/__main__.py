"""``python -m pyminidl`` (or ``pyminidl demo``): train a digit classifier in a few seconds.

Loads the 8x8 handwritten digits shipped with pyminidl (1,797 images), holds out a fixed
test split, trains the CNN of the Keras tutorials (two Conv2D + MaxPooling2D blocks, Dense,
Dropout, softmax) with Adam and sparse categorical cross-entropy showing the Keras progress
bar, then prints the test accuracy, the time taken and the backend and ISA path it ran on.

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
        description="pyminidl demo: train a CNN on the 8x8 handwritten digits shipped with the package.",
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


def _cnn(layers):
    """The Fashion-MNIST CNN of the Keras tutorials, sized for 8x8 images."""
    import pyminidl

    return pyminidl.Sequential([
        pyminidl.Input(shape=(8, 8, 1)),
        layers.Conv2D(32, kernel_size=3, activation="relu", padding="same"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, kernel_size=3, activation="relu", padding="same"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(100, activation="relu"),
        layers.Dropout(0.4),
        layers.Dense(10, activation="softmax"),
    ])


def where_it_runs():
    """``"cpu backend, avx512, 2 threads"``: the backend, and for the C++ kernels the ISA path and threads."""
    import pyminidl

    name = pyminidl.backend.get_backend().name
    if name != "cpu":
        return f"{name} backend"
    isa = pyminidl.config.cpu_features().get("active", "baseline")
    return f"cpu backend, {isa}, {pyminidl.config.get_num_threads()} threads"


def run_demo(epochs=20, batch_size=32, seed=0, quiet=False):
    """Train and evaluate the digits CNN; returns (test_accuracy, seconds)."""
    import pyminidl
    from pyminidl import layers

    start = time.perf_counter()
    pyminidl.utils.set_random_seed(seed)
    x, y = pyminidl.datasets.load_digits()
    x = (x / 16.0).reshape(-1, 8, 8, 1)  # pixel counts 0..16 -> [0, 1], one channel
    (x_train, y_train), (x_test, y_test) = _split(x, y, 0.2, seed)
    model = _cnn(layers)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    if not quiet:
        print(f"pyminidl {pyminidl.__version__} ({where_it_runs()}): {len(x_train)} training and "
              f"{len(x_test)} test images of 8x8 digits")
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
    print(f"Test accuracy: {accuracy:.4f} ({args.epochs} epochs, {seconds:.2f} s, {where_it_runs()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
