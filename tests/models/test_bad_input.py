"""Bad input to compile / fit / evaluate / predict: Keras-like ValueErrors naming what is wrong."""

import re

import numpy as np
import pytest

from pyminidl import callbacks
from pyminidl.layers import Dense
from pyminidl.models import Sequential


def _model(compiled=True, **compile_kwargs):
    model = Sequential([Dense(1, input_dim=3)])
    if compiled:
        model.compile(optimizer="sgd", loss=compile_kwargs.pop("loss", "mse"), **compile_kwargs)
    return model


def test_mismatched_x_and_y_lengths():
    msg = ("Data cardinality is ambiguous: x sizes: 100, y sizes: 99. "
           "Make sure all arrays contain the same number of samples.")
    with pytest.raises(ValueError, match=re.escape(msg)):
        _model().fit(np.zeros((100, 3)), np.zeros((99, 1)), verbose=0)
    with pytest.raises(ValueError, match="sample_weight sizes: 5"):
        _model().fit(np.zeros((4, 3)), np.zeros((4, 1)), sample_weight=np.ones(5), verbose=0)
    with pytest.raises(ValueError, match="Data cardinality is ambiguous"):
        _model().evaluate(np.zeros((4, 3)), np.zeros((3, 1)), verbose=0)
    with pytest.raises(ValueError, match="Data cardinality is ambiguous"):
        _model().train_on_batch(np.zeros((4, 3)), np.zeros((3, 1)))


def test_fit_and_evaluate_before_compile():
    for call in (lambda m: m.fit(np.zeros((2, 3)), np.zeros((2, 1)), verbose=0),
                 lambda m: m.evaluate(np.zeros((2, 3)), np.zeros((2, 1)), verbose=0),
                 lambda m: m.train_on_batch(np.zeros((2, 3)), np.zeros((2, 1)))):
        with pytest.raises(ValueError, match=re.escape("You must call `compile()` before using the model.")):
            call(_model(compiled=False))
    # predict needs no compile
    assert _model(compiled=False).predict(np.zeros((2, 3)), verbose=0).shape == (2, 1)


def test_compile_without_loss_cannot_fit():
    model = Sequential([Dense(1, input_dim=3)])
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="No loss to compute. Provide a `loss` argument in `compile\\(\\)`"):
        model.fit(np.zeros((2, 3)), np.zeros((2, 1)), verbose=0)


def test_wrong_feature_count_names_the_layer_and_shapes():
    with pytest.raises(ValueError) as info:
        _model().fit(np.zeros((8, 5)), np.zeros((8, 1)), verbose=0)
    text = str(info.value)
    assert "dense" in text.lower() and "3" in text and "5" in text
    with pytest.raises(ValueError):
        _model().predict(np.zeros((8, 5)), verbose=0)


def test_targets_of_the_wrong_shape_for_the_loss():
    model = Sequential([Dense(3, activation="softmax", input_dim=3)])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    with pytest.raises(ValueError) as info:
        model.fit(np.zeros((8, 3)), np.zeros((8, 5)), verbose=0)
    assert "(8, 5)" in str(info.value) or "8, 5" in str(info.value)


def test_nan_loss_with_terminate_on_nan(capsys):
    x = np.ones((4, 3), np.float32)
    y = np.full((4, 1), np.nan, np.float32)
    with np.errstate(all="ignore"):
        history = _model().fit(x, y, epochs=3, verbose=0, callbacks=[callbacks.TerminateOnNaN()])
    assert "Batch 0: Invalid loss, terminating training" in capsys.readouterr().out
    assert len(history.epoch) == 1


def test_bad_arguments():
    x, y = np.zeros((10, 3)), np.zeros((10, 1))
    with pytest.raises(ValueError, match="batch_size"):
        _model().fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        _model().fit(x, y, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match="not sufficient to split"):
        _model().fit(x[:1], y[:1], validation_split=0.5, verbose=0)
    with pytest.raises(ValueError, match="steps"):
        _model().fit(x, y, steps_per_epoch=0, verbose=0)
    with pytest.raises(ValueError, match="Unrecognized data type"):
        _model().fit(None, y, verbose=0)
    with pytest.raises(ValueError, match="`y` should not be passed"):
        _model().fit(((x, y) for _ in range(2)), y, verbose=0)
    with pytest.raises(ValueError, match="class_weight` and `sample_weight"):
        _model().fit(x, y, class_weight={0: 1.0}, sample_weight=np.ones(10), verbose=0)
    with pytest.raises(ValueError, match="steps_per_execution"):
        _model(steps_per_execution=0)
    with pytest.raises(ValueError, match="only supported for Tensors or NumPy arrays"):
        _model().fit(((x, y) for _ in range(2)), validation_split=0.5, verbose=0)
    with pytest.raises(ValueError, match="Expected numeric input"):
        _model().fit(np.array([["a", "b", "c"]]), np.zeros((1, 1)), verbose=0)


def test_per_output_lists_for_a_single_output_model():
    x, y = np.ones((4, 3), np.float32), np.ones((4, 1), np.float32)
    model = Sequential([Dense(1, input_dim=3)])
    model.compile(optimizer="sgd", loss=["mse"], loss_weights={"dense": 0.5})
    assert model.evaluate(x, y, verbose=0) == pytest.approx(0.5 * float(((model.predict(x, verbose=0) - y) ** 2).mean()))
    with pytest.raises(ValueError, match="one entry per model output"):
        model.compile(optimizer="sgd", loss=["mse", "mae"])
    with pytest.raises(ValueError, match="one entry per model output"):
        model.compile(optimizer="sgd", loss="mse", loss_weights=[1.0, 2.0])
