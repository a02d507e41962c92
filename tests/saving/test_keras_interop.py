"""Files written by Keras 3 load into pyminidl and predict identically; files pyminidl writes load in Keras.

The fixtures in ``fixtures/`` were written by ``keras_interop.py write`` (Keras 3.15, torch backend):
a Sequential of Flatten, Normalization, Dense, Dropout, Activation, Reshape, Rescaling trained two
epochs with Adam. Where a Keras 3 interpreter is at hand (``PYMINIDL_KERAS_PYTHON``, or the
development venv /work/venvs/keras; CI has neither) the tests also write the fixtures anew and let
Keras read what pyminidl writes.
"""

import os
import pathlib
import subprocess

import numpy as np
import pytest

import pyminidl as keras

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
SCRIPT = pathlib.Path(__file__).parent / "keras_interop.py"
MAX_DIFF = 1e-6  # float32 rounding of two GEMM implementations; measured: 6e-8


def _keras_python():
    candidate = os.environ.get("PYMINIDL_KERAS_PYTHON", "/work/venvs/keras/bin/python")
    return candidate if os.path.exists(candidate) else None


def _run_keras(*args, cwd):
    python = _keras_python()
    if python is None:
        pytest.skip("no Keras 3 interpreter (set PYMINIDL_KERAS_PYTHON)")
    env = {**os.environ, "KERAS_BACKEND": "torch", "PYTHONPATH": ""}
    out = subprocess.run([python, str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]


def _check_keras_files(folder):
    io = np.load(folder / "keras_mlp_io.npz")
    model = keras.models.load_model(folder / "keras_mlp.keras")
    assert [type(layer).__name__ for layer in model.layers] == [
        "Flatten", "Normalization", "Dense", "Dropout", "Dense", "Activation", "Reshape", "Flatten", "Rescaling",
        "Dense"]
    assert model.optimizer.iterations == int(io["iterations"])
    diff = np.abs(model.predict(io["x"], verbose=0) - io["predictions"]).max()
    assert diff <= MAX_DIFF, diff
    fresh = keras.models.model_from_json(model.to_json())
    fresh.load_weights(folder / "keras_mlp.weights.h5")
    assert np.abs(fresh.predict(io["x"], verbose=0) - io["predictions"]).max() <= MAX_DIFF
    model.fit(io["x"], io["y"], epochs=1, verbose=0)  # the restored Adam state trains on
    return diff


def test_committed_keras_fixtures_load_and_predict_identically():
    _check_keras_files(FIXTURES)


@pytest.fixture(scope="module")
def keras_round(tmp_path_factory):
    """One Keras run: it writes fresh fixtures and reads the files pyminidl wrote (from the committed ones)."""
    if _keras_python() is None:
        pytest.skip("no Keras 3 interpreter (set PYMINIDL_KERAS_PYTHON)")
    folder = tmp_path_factory.mktemp("keras")
    keras.utils.set_random_seed(0)
    model = keras.models.load_model(FIXTURES / "keras_mlp.keras")  # the same built-in layers
    io = np.load(FIXTURES / "keras_mlp_io.npz")
    model.fit(io["x"], io["y"], epochs=1, verbose=0)
    model.save(folder / "pyminidl_mlp.keras")
    model.save_weights(folder / "pyminidl_mlp.weights.h5")
    np.savez(folder / "pyminidl_mlp_io.npz", x=io["x"])
    _run_keras("write", "read", str(folder), cwd=folder)
    return folder, model, model.predict(io["x"], verbose=0)


def test_fixtures_written_anew_by_keras(keras_round):
    _check_keras_files(keras_round[0])


def test_keras_reads_what_pyminidl_writes(keras_round):
    folder, model, ours = keras_round
    theirs = np.load(folder / "keras_predictions.npz")
    assert np.abs(theirs["predictions"] - ours).max() <= MAX_DIFF
    assert np.abs(theirs["after_load_weights"] - ours).max() <= MAX_DIFF
    assert int(theirs["iterations"]) == model.optimizer.iterations


def test_fixture_files_stay_small():
    assert sum(p.stat().st_size for p in FIXTURES.iterdir()) < 250_000  # four small models, HDF5 overhead mostly


@pytest.mark.parametrize("name", ["keras_cnn", "keras_sequence_functional"])
def test_keras_written_cnn_and_sequence_models_load_and_predict_identically(name, tmp_path):
    # Written by Keras 3.15.1 (torch backend): a Sequential CNN (Conv2D, BatchNormalization after one fit
    # step, MaxPooling2D, GlobalAveragePooling2D, Dense) and a functional model (Embedding, LSTM,
    # Bidirectional(GRU), GlobalAveragePooling1D, Concatenate, Dense), with Keras's predictions.
    pytest.importorskip("h5py")
    io = np.load(FIXTURES / f"{name}_io.npz")
    model = keras.models.load_model(FIXTURES / f"{name}.keras")
    np.testing.assert_allclose(model.predict(io["x"], verbose=0), io["y"], rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "again.keras")  # and pyminidl's own file of it predicts the same
    again = keras.models.load_model(tmp_path / "again.keras")
    np.testing.assert_array_equal(again.predict(io["x"], verbose=0), model.predict(io["x"], verbose=0))
