"""What users pass to fit / evaluate / predict: pandas frames, 1-D arrays, empty data, a lone
callback, missing targets, steps_per_epoch beyond the data, bad learning rates, empty models."""

import math
import re
import warnings

import numpy as np
import pytest

import pyminidl as keras
from pyminidl import callbacks, optimizers
from pyminidl.data import Dataset, to_host_array
from pyminidl.layers import Dense
from pyminidl.models import Sequential


class FakeFrame:
    """The part of pandas' DataFrame/Series protocol pyminidl relies on (pandas is optional)."""

    def __init__(self, values, columns=None):
        self._values = np.asarray(values)
        self.columns = columns

    def to_numpy(self):
        return self._values.copy()

    def __iter__(self):  # a DataFrame iterates its column names, which is what went wrong before
        return iter(self.columns or [])

    def __len__(self):
        return len(self._values)


def _data(rng, n=40, features=3):
    x = rng.standard_normal((n, features)).astype(np.float32)
    y = (x @ np.arange(1, features + 1, dtype=np.float32))[:, None]
    return x, y


def _model(features=3, loss="mse", **compile_kwargs):
    model = Sequential([keras.Input(shape=(features,)), Dense(1)])
    model.compile(optimizer=optimizers.SGD(0.01), loss=loss, **compile_kwargs)
    return model


# ---------------------------------------------------------------------------- frames

def test_frames_train_evaluate_and_predict_like_their_arrays(rng):
    x, y = _data(rng)
    frame, series = FakeFrame(x, columns=["a", "b", "c"]), FakeFrame(y[:, 0])
    keras.utils.set_random_seed(1)
    by_frame = _model()
    w = by_frame.get_weights()
    h_frame = by_frame.fit(frame, series, epochs=2, validation_split=0.25, verbose=0)
    keras.utils.set_random_seed(1)
    by_array = _model()
    by_array.set_weights(w)
    h_array = by_array.fit(x, y[:, 0], epochs=2, validation_split=0.25, verbose=0)
    assert h_frame.history == h_array.history
    assert by_frame.evaluate(frame, series, verbose=0) == by_array.evaluate(x, y[:, 0], verbose=0)
    np.testing.assert_array_equal(by_frame.predict(frame, verbose=0), by_array.predict(x, verbose=0))
    val = by_frame.fit(frame, series, validation_data=(frame, series), verbose=0)
    assert "val_loss" in val.history


def test_real_pandas_frames_and_from_tensor_slices_of_a_dict():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.0, 1.0, 0.0, 1.0], "label": [0, 1, 0, 1]},
                      index=[10, 11, 12, 13])
    x, y = df.drop(columns=["label"]), df["label"]
    model = _model(features=2)
    model.fit(x, y, epochs=1, verbose=0)
    assert model.predict(x, verbose=0).shape == (4, 1)
    assert isinstance(model.evaluate(x, y, verbose=0), float)
    element = next(iter(Dataset.from_tensor_slices(dict(x))))
    assert all(isinstance(v, (np.ndarray, np.generic)) for v in element.values())  # not pandas objects
    assert float(element["a"]) == 1.0  # the first row, not the frame's index 10
    assert type(to_host_array(y)) is np.ndarray


# ---------------------------------------------------------------------------- 1-D inputs

def test_one_dimensional_x_is_a_column_for_an_input_of_shape_1(rng):
    x = rng.standard_normal(50).astype(np.float32)
    model = _model(features=1)
    history = model.fit(x, 3 * x, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x[:, None], verbose=0))
    assert isinstance(model.evaluate(x, 3 * x, verbose=0), float)


def test_an_extra_trailing_axis_of_size_1_is_dropped_and_other_ranks_are_refused(rng):
    x, _ = _data(rng, 8)
    model = _model()
    np.testing.assert_array_equal(model.predict(x[:, :, None], verbose=0), model.predict(x, verbose=0))
    with pytest.raises(ValueError, match="ndim|shape"):
        model.predict(x[:, :1].reshape(8), verbose=0)  # (8,) for an input of shape (3,)


# ---------------------------------------------------------------------------- empty data

def test_empty_arrays_are_refused_naming_the_argument(rng):
    x, y = _data(rng)
    model = _model()
    empty_x, empty_y = x[:0], y[:0]
    with pytest.raises(ValueError, match=re.escape("Expected input data to be non-empty. Received: x with shape (0, 3)")):
        model.evaluate(empty_x, empty_y, verbose=0)
    with pytest.raises(ValueError, match="non-empty. Received: x"):
        model.fit(empty_x, empty_y, epochs=2, verbose=0)
    with pytest.raises(ValueError, match="non-empty. Received: validation_data"):
        model.fit(x, y, validation_data=(empty_x, empty_y), verbose=0)
    with pytest.raises(ValueError, match="non-empty"):
        model.predict(empty_x, verbose=0)


def test_an_empty_dataset_in_evaluate_is_refused(rng):
    x, y = _data(rng)
    model = _model()
    empty = Dataset.from_tensor_slices((x[:0], y[:0])).batch(4)
    with pytest.raises(ValueError, match="non-empty: `x`"):
        model.evaluate(empty, verbose=0)
    with pytest.raises(ValueError, match="non-empty: `validation_data`"):
        model.fit(x, y, validation_data=empty, verbose=0)


# ---------------------------------------------------------------------------- empty models

@pytest.mark.parametrize("layers", [[], [keras.Input(shape=(3,))]])
def test_a_sequential_without_layers_cannot_train_or_predict(rng, layers):
    x, y = _data(rng)
    model = Sequential(layers)
    model.compile(optimizer="sgd", loss="mse")
    msg = "cannot be built because it has no layers. Call `model.add(layer)`."
    with pytest.raises(ValueError, match=re.escape(msg)):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match=re.escape(msg)):
        model.predict(x, verbose=0)


# ---------------------------------------------------------------------------- API edges

def test_a_single_callback_need_not_be_in_a_list(rng):
    x, y = _data(rng)
    model = _model()
    history = model.fit(x, y, epochs=2, verbose=0, callbacks=callbacks.TerminateOnNaN())
    assert len(history.history["loss"]) == 2
    stopper = callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=1e9)
    history = model.fit(x, y, epochs=5, verbose=0, callbacks=[[stopper]])  # nested lists flatten
    assert len(history.history["loss"]) == 2
    with pytest.raises(TypeError, match="`callbacks` must be a Callback"):
        model.fit(x, y, verbose=0, callbacks="TerminateOnNaN")


def test_fit_without_targets_says_they_are_missing(rng):
    x, _ = _data(rng)
    model = _model()
    with pytest.raises(ValueError, match="Target data is missing. Your model was compiled with loss=mse"):
        model.fit(x, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="Target data is missing"):
        model.fit(Dataset.from_tensor_slices(x).batch(8), epochs=1, verbose=0)


def test_steps_per_epoch_beyond_the_data_ends_the_epoch_with_keras_warning(rng):
    x, y = _data(rng, 40)  # 5 batches of 8
    model = _model()
    seen = []

    class Count(callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(0)

        def on_train_batch_end(self, batch, logs=None):
            seen[-1] += 1

    with pytest.warns(UserWarning, match="ran out of data"):
        history = model.fit(x, y, batch_size=8, epochs=2, steps_per_epoch=7, verbose=0, callbacks=[Count()])
    assert seen == [5, 5]  # each epoch stops at the end of the data; the next starts it again
    assert len(history.history["loss"]) == 2 and model.optimizer.iterations == 10


def test_steps_per_epoch_within_the_data_continues_the_stream_silently(rng):
    x, y = _data(rng, 48)  # 6 batches of 8, 3 per epoch: no epoch crosses the end
    model = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(x, y, batch_size=8, epochs=4, steps_per_epoch=3, verbose=0)
    assert model.optimizer.iterations == 12


@pytest.mark.parametrize("rate", [-0.1, float("nan"), float("inf")])
@pytest.mark.parametrize("cls", [optimizers.SGD, optimizers.Adam, optimizers.RMSprop])
def test_a_bad_learning_rate_is_refused_at_construction(cls, rate):
    with pytest.raises(ValueError, match=r"Argument `learning_rate` should be a non-negative finite float"):
        cls(learning_rate=rate)
    opt = cls(learning_rate=0.1)
    with pytest.raises(ValueError, match="learning_rate"):
        opt.learning_rate = rate


def test_a_schedule_giving_a_bad_rate_is_named(rng):
    x, y = _data(rng)
    model = Sequential([keras.Input(shape=(3,)), Dense(1)])
    model.compile(optimizer=optimizers.SGD(learning_rate=lambda: -1.0), loss="mse")
    with pytest.raises(ValueError, match="`learning_rate` schedule .* gave -1.0"):
        model.fit(x, y, verbose=0)
    assert math.isfinite(optimizers.SGD(learning_rate=0.0).learning_rate)
