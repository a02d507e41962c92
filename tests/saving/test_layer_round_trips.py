"""Save -> load round trips of every built-in layer give identical predictions (.keras, h5 and npz)."""

import numpy as np
import pytest

import pyminidl as keras
from pyminidl import layers
from pyminidl.saving import saving_lib, serialization_lib

FLOAT_IMAGES = (4, 6, 3)

# name -> (input shape, layer factory, input maker); inputs in [0, 1) unless the layer reads ids or text
SPECS = {
    "Activation": ((5,), lambda: layers.Activation("tanh"), None),
    "Dense": ((5,), lambda: layers.Dense(3, activation="relu", kernel_regularizer="l2"), None),
    "Dropout": ((5,), lambda: layers.Dropout(0.5, seed=3), None),
    "Flatten": ((2, 3), lambda: layers.Flatten(), None),
    "Reshape": ((6,), lambda: layers.Reshape((3, 2)), None),
    "Rescaling": ((5,), lambda: layers.Rescaling(2.0, offset=-1.0), None),
    "Normalization": ((5,), lambda: layers.Normalization(mean=0.5, variance=0.25), None),
    "CenterCrop": (FLOAT_IMAGES, lambda: layers.CenterCrop(2, 4), None),
    "Resizing": (FLOAT_IMAGES, lambda: layers.Resizing(3, 3), None),
    "RandomContrast": (FLOAT_IMAGES, lambda: layers.RandomContrast(0.3, seed=1), None),
    "RandomCrop": (FLOAT_IMAGES, lambda: layers.RandomCrop(3, 3, seed=1), None),
    "RandomFlip": (FLOAT_IMAGES, lambda: layers.RandomFlip(seed=1), None),
    "RandomRotation": (FLOAT_IMAGES, lambda: layers.RandomRotation(0.2, seed=1), None),
    "RandomTranslation": (FLOAT_IMAGES, lambda: layers.RandomTranslation(0.2, 0.2, seed=1), None),
    "RandomZoom": (FLOAT_IMAGES, lambda: layers.RandomZoom(0.2, seed=1), None),
    "IntegerLookup": ((3,), lambda: layers.IntegerLookup(vocabulary=[4, 9, 2]),
                      lambda rng: rng.choice([2, 4, 9, 7], size=(6, 3))),
    "StringLookup": ((3,), lambda: layers.StringLookup(vocabulary=["a", "b", "c"]),
                     lambda rng: rng.choice(np.array(["a", "b", "c", "z"]), size=(6, 3))),
    "TextVectorization": ((), lambda: layers.TextVectorization(vocabulary=["the", "cat", "sat"],
                                                               output_sequence_length=4),
                          lambda rng: np.array(["the cat sat", "a cat", "sat the the", "dog"])),
    "Embedding": ((4,), lambda: layers.Embedding(10, 3, mask_zero=True),
                  lambda rng: rng.integers(0, 10, size=(6, 4))),
    "Masking": ((4, 3), lambda: layers.Masking(0.5), None),
    "SimpleRNN": ((4, 3), lambda: layers.SimpleRNN(2, return_sequences=True), None),
    "LSTM": ((4, 3), lambda: layers.LSTM(2, go_backwards=True), None),
    "GRU": ((4, 3), lambda: layers.GRU(2, reset_after=False), None),
    "RNN": ((4, 3), lambda: layers.RNN(layers.LSTMCell(2), return_sequences=True), None),
    "Bidirectional": ((4, 3), lambda: layers.Bidirectional(layers.GRU(2), merge_mode="sum"), None),
    "TimeDistributed": ((4, 3), lambda: layers.TimeDistributed(layers.Dense(2)), None),
    # Convolution layers.
    "Conv1D": ((7, 3), lambda: layers.Conv1D(4, 3, padding="causal", activation="relu"), None),
    "Conv2D": (FLOAT_IMAGES, lambda: layers.Conv2D(4, 3, strides=2, padding="same", activation="relu"), None),
    "Conv1DTranspose": ((5, 3), lambda: layers.Conv1DTranspose(2, 3, strides=2, padding="same"), None),
    "Conv2DTranspose": (FLOAT_IMAGES, lambda: layers.Conv2DTranspose(2, 3, strides=2, output_padding=1), None),
    "DepthwiseConv1D": ((7, 3), lambda: layers.DepthwiseConv1D(3, depth_multiplier=2), None),
    "DepthwiseConv2D": (FLOAT_IMAGES, lambda: layers.DepthwiseConv2D(3, padding="same"), None),
    "SeparableConv1D": ((7, 3), lambda: layers.SeparableConv1D(4, 3), None),
    "SeparableConv2D": (FLOAT_IMAGES, lambda: layers.SeparableConv2D(4, 2, depth_multiplier=2), None),
    # Pooling, normalization and spatial utilities.
    "MaxPooling1D": ((7, 3), lambda: layers.MaxPooling1D(2, padding="same"), None),
    "MaxPooling2D": (FLOAT_IMAGES, lambda: layers.MaxPooling2D(2), None),
    "AveragePooling1D": ((7, 3), lambda: layers.AveragePooling1D(3, strides=2), None),
    "AveragePooling2D": (FLOAT_IMAGES, lambda: layers.AveragePooling2D(2, padding="same"), None),
    "GlobalMaxPooling1D": ((7, 3), lambda: layers.GlobalMaxPooling1D(keepdims=True), None),
    "GlobalMaxPooling2D": (FLOAT_IMAGES, lambda: layers.GlobalMaxPooling2D(), None),
    "GlobalAveragePooling1D": ((7, 3), lambda: layers.GlobalAveragePooling1D(), None),
    "GlobalAveragePooling2D": (FLOAT_IMAGES, lambda: layers.GlobalAveragePooling2D(keepdims=True), None),
    "BatchNormalization": (FLOAT_IMAGES, lambda: layers.BatchNormalization(momentum=0.9), None),
    "LayerNormalization": ((5,), lambda: layers.LayerNormalization(epsilon=1e-4), None),
    "SpatialDropout1D": ((7, 3), lambda: layers.SpatialDropout1D(0.3, seed=2), None),
    "SpatialDropout2D": (FLOAT_IMAGES, lambda: layers.SpatialDropout2D(0.3, seed=2), None),
    "ZeroPadding1D": ((7, 3), lambda: layers.ZeroPadding1D((1, 2)), None),
    "ZeroPadding2D": (FLOAT_IMAGES, lambda: layers.ZeroPadding2D(1), None),
    "Cropping1D": ((7, 3), lambda: layers.Cropping1D((1, 2)), None),
    "Cropping2D": (FLOAT_IMAGES, lambda: layers.Cropping2D(((1, 0), (2, 1))), None),
    "UpSampling1D": ((7, 3), lambda: layers.UpSampling1D(2), None),
    "UpSampling2D": (FLOAT_IMAGES, lambda: layers.UpSampling2D(2, interpolation="bilinear"), None),
}
# Registered but not a Sequential's layer on their own: cells live inside RNN (covered there); merge
# layers take several inputs (their graphs round-trip in tests/models/test_functional.py).
NOT_STANDALONE = {"InputLayer", "Sequential", "Functional", "Lambda", "SimpleRNNCell", "LSTMCell", "GRUCell",
                  "Add", "Average", "Concatenate", "Dot", "Maximum", "Minimum", "Multiply", "Subtract"}


def test_specs_cover_every_registered_layer():
    family = serialization_lib.family("layers")
    builtin = {name for name in family.listed if name not in NOT_STANDALONE}
    assert builtin == set(SPECS)


def test_a_lambda_model_saves_but_never_loads(tmp_path):
    model = keras.Sequential([keras.Input((3,)), layers.Lambda(keras.ops.negative)])
    model.save(tmp_path / "m.keras")
    with pytest.raises(ValueError, match="never runs code from a file"):
        keras.models.load_model(tmp_path / "m.keras")


def _model(name):
    shape, factory, _ = SPECS[name]
    dtype = "string" if name in ("StringLookup", "TextVectorization") else (
        "int64" if name in ("IntegerLookup", "Embedding") else None)
    return keras.Sequential([keras.Input(shape, dtype=dtype), factory()])


def _inputs(name, rng):
    shape, _, make = SPECS[name]
    return make(rng) if make is not None else rng.random((6,) + shape).astype("float32")


@pytest.mark.parametrize("name", sorted(SPECS))
def test_keras_file_round_trip_predicts_identically(name, tmp_path, rng):
    model = _model(name)
    x = _inputs(name, rng)
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.layers[0]) is type(model.layers[0])
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    assert loaded.get_config() == model.get_config()


@pytest.mark.parametrize("suffix", [".weights.h5", ".weights.npz"])
def test_weights_files_round_trip(suffix, tmp_path, rng):
    model = keras.Sequential([keras.Input((5,)), layers.Dense(4), layers.Normalization(), layers.Dense(2)])
    model.layers[1].adapt(rng.random((20, 4)))
    other = keras.models.model_from_json(model.to_json())
    model.save_weights(tmp_path / f"w{suffix}")
    other.load_weights(tmp_path / f"w{suffix}")
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_npz_archives_without_h5py(tmp_path, rng, monkeypatch):
    monkeypatch.setattr(saving_lib, "_H5PY", [None])
    model = keras.Sequential([keras.Input((3,)), layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(rng.random((8, 3)), rng.random((8, 2)), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    import zipfile

    assert "model.weights.npz" in zipfile.ZipFile(tmp_path / "m.keras").namelist()
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.optimizer.iterations == 1
    np.testing.assert_array_equal(loaded.get_weights()[0], model.get_weights()[0])
    with pytest.raises(ImportError, match="h5py"):
        model.save_weights(tmp_path / "w.weights.h5")


def test_nested_sequential_round_trip(tmp_path, rng):
    inner = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="tanh")], name="block")
    model = keras.Sequential([keras.Input((4,)), inner, layers.Dense(2)])
    x = rng.random((5, 4)).astype("float32")
    model.save(tmp_path / "m.keras")
    np.testing.assert_array_equal(keras.models.load_model(tmp_path / "m.keras").predict(x, verbose=0),
                                  model.predict(x, verbose=0))


def test_to_json_and_model_from_json_keep_architecture_not_compile(rng):
    model = keras.Sequential([keras.Input((3,)), layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    clone = keras.models.model_from_json(model.to_json())
    assert clone.get_config() == model.get_config() and not clone.compiled
    with pytest.raises(ValueError, match="not valid JSON"):
        keras.models.model_from_json("{nope")


class Block(layers.Layer):
    """A custom layer holding sublayers as an attribute and in a list (Keras names them by attribute)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.head = layers.Dense(3)
        self.stack = [layers.Dense(4), layers.Dense(4)]

    def call(self, x):
        for layer in self.stack:
            x = layer(x)
        return self.head(x)


def test_custom_layer_sublayers_are_saved_under_their_attribute_names(tmp_path, rng):
    from pyminidl.saving.saving_lib import _collect

    model = keras.Sequential([keras.Input((5,)), Block()])
    x = rng.random((2, 5)).astype("float32")
    model.predict(x, verbose=0)
    keys = sorted(_collect(model)[0])
    assert keys == ["layers/block/head/vars/0", "layers/block/head/vars/1", "layers/block/stack/dense/vars/0",
                    "layers/block/stack/dense/vars/1", "layers/block/stack/dense_1/vars/0",
                    "layers/block/stack/dense_1/vars/1"]
    model.save_weights(tmp_path / "w.weights.h5")
    other = keras.Sequential([keras.Input((5,)), Block()])
    other.predict(x, verbose=0)
    other.load_weights(tmp_path / "w.weights.h5")
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))
