"""The examples run and learn: XOR's tutorial model, digits classification, regression."""

import importlib.util
import pathlib

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed", [0, 1])
def test_xor_example_learns_xor(seed):
    xor = _load("xor")
    model, history = xor.train(seed=seed)
    assert history.history["accuracy"][-1] == 1.0
    assert history.history["loss"][-1] < 0.01
    np.testing.assert_array_equal(model.predict(xor.X, verbose=0) > 0.5, xor.Y > 0.5)
    assert [layer.units for layer in model.layers] == [10, 10, 1]


def test_classification_example():
    accuracy, confusion = _load("classification").main(epochs=10, verbose=0)
    assert accuracy > 0.9 and confusion.sum() == 271


def test_regression_example_beats_linear_fit():
    mse, linear_mse = _load("regression").main(epochs=15, verbose=0)
    assert mse < linear_mse / 5


def test_pandas_csv_example_trains_from_frames_and_from_a_dataset_of_columns():
    pytest.importorskip("pandas")
    frame_accuracy, dataset_accuracy = _load("pandas_csv").main(epochs=8, verbose=0)
    assert frame_accuracy > 0.9 and dataset_accuracy > 0.9


def test_distributed_digits_example_in_one_process(tmp_path):
    from pyminidl import distribution

    try:
        accuracy = _load("distributed_digits").main(epochs=15, verbose=0, log_path=str(tmp_path / "log.csv"))
    finally:
        distribution.set_distribution(None)
    assert accuracy > 0.9 and (tmp_path / "log.csv").exists()


def test_sentiment_example_learns_negations_with_lstm_and_bidirectional_gru():
    results = _load("sentiment").main(samples=1600, epochs=6, verbose=0)
    assert results["lstm"] > 0.85 and results["bidirectional_gru"] > 0.85


def _fashion_like(n, seed):
    """Ten classes of 28x28 uint8 images: each class a bright band at its own rows, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, size=n).astype("uint8")
    x = rng.integers(0, 60, size=(n, 28, 28))
    for i, label in enumerate(y):
        x[i, 2 * label + 3:2 * label + 7, 4:24] += 180
    return x.astype("uint8"), y


def test_fashion_mnist_cnn_example_trains_on_generated_images():
    example = _load("fashion_mnist_cnn")
    accuracy = example.main(epochs=2, data=(_fashion_like(1200, 0), _fashion_like(300, 1)), verbose=0)
    assert accuracy > 0.9


def test_fashion_mnist_cnn_example_offline_exits_non_zero(monkeypatch, capsys):
    example = _load("fashion_mnist_cnn")

    def offline():
        raise example.DownloadError("URL fetch failure on https://example.invalid: offline.")

    monkeypatch.setattr(example.fashion_mnist, "load_data", offline)
    assert example._cli(["--epochs", "1"]) == 1
    assert "not available offline" in capsys.readouterr().err


def test_cnn_inside_example_writes_filters_feature_maps_and_curves(tmp_path):
    pytest.importorskip("matplotlib")
    paths = _load("cnn_inside").main(out_dir=str(tmp_path), epochs=2, verbose=0)
    for path in paths:
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", path
