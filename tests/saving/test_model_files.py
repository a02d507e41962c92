"""The .keras file: compile settings and optimizer state (training resumes bit-identically), custom
objects, and bad files refused with a clear error while nothing is changed."""

import json
import os
import zipfile

import numpy as np
import pytest

import pyminidl as keras
from pyminidl import layers
from pyminidl.saving import saving_lib


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((64, 6)).astype("float32"), rng.integers(0, 3, 64)


def _model():
    model = keras.Sequential([keras.Input((6,)), layers.Dense(16, activation="relu"), layers.Dropout(0.3),
                              layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(1e-2, amsgrad=True), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


@pytest.mark.parametrize("optimizer", ["adam", "sgd_momentum", "rmsprop_centered", "adagrad"])
def test_load_model_then_fit_initial_epoch_is_bit_identical(optimizer, tmp_path):
    x, y = _data()
    opt = {"adam": lambda: keras.optimizers.Adam(1e-2, amsgrad=True),
           "sgd_momentum": lambda: keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
           "rmsprop_centered": lambda: keras.optimizers.RMSprop(1e-2, momentum=0.5, centered=True),
           "adagrad": lambda: keras.optimizers.Adagrad(0.1)}[optimizer]

    def run(split):
        keras.utils.set_random_seed(7)
        model = _model()
        model.compile(optimizer=opt(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        if not split:
            model.fit(x, y, epochs=4, batch_size=16, verbose=0)
            return model
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)
        model.save(tmp_path / "half.keras")
        loaded = keras.models.load_model(tmp_path / "half.keras")
        loaded.fit(x, y, epochs=4, initial_epoch=2, batch_size=16, verbose=0)
        return loaded

    whole, resumed = run(False), run(True)
    assert resumed.optimizer.iterations == whole.optimizer.iterations == 16
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_compile_settings_are_restored(tmp_path):
    model = _model()
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.5), loss=keras.losses.Huber(delta=2.0),
                  metrics=["mae", keras.metrics.BinaryAccuracy(threshold=0.3)])
    model.save(tmp_path / "m.keras")
    config = json.loads(zipfile.ZipFile(tmp_path / "m.keras").read("config.json"))
    assert config["compile_config"]["loss"]["class_name"] == "Huber"
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.optimizer, keras.optimizers.SGD) and loaded.optimizer.momentum == 0.5
    assert isinstance(loaded._loss_fn, keras.losses.Huber) and loaded._loss_fn.delta == 2.0
    assert loaded._metric_ids[0][0] == "mae" and loaded._metric_ids[0][1].threshold == 0.3
    uncompiled = keras.models.load_model(tmp_path / "m.keras", compile=False)
    assert not uncompiled.compiled


@keras.saving.register_keras_serializable(package="Tests")
class Scale(layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

    def call(self, x):
        return keras.ops.multiply(x, self.w * self.factor)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def cube(x):
    return keras.ops.multiply(x, keras.ops.multiply(x, x))


def test_custom_objects_registered_or_passed(tmp_path, rng):
    x = rng.random((3, 4)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), Scale(3.0), layers.Dense(2, activation=cube)])
    model.save(tmp_path / "m.keras")
    config = json.loads(zipfile.ZipFile(tmp_path / "m.keras").read("config.json"))
    assert config["config"]["layers"][1]["registered_name"] == "Tests>Scale"
    with pytest.raises(ValueError, match="custom_objects"):
        keras.models.load_model(tmp_path / "m.keras")  # cube is neither built in nor registered
    loaded = keras.models.load_model(tmp_path / "m.keras", custom_objects={"cube": cube})
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    with keras.saving.custom_object_scope({"cube": cube}):
        assert keras.models.load_model(tmp_path / "m.keras").layers[0].factor == 3.0


def _saved(tmp_path):
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3), layers.Dense(2)])
    model.save(tmp_path / "good.keras")
    return model, tmp_path / "good.keras"


def _rewrite(src, dst, replace):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            zout.writestr(name, replace.get(name, data) if not callable(replace.get(name)) else replace[name](data))


def test_unknown_format_and_truncated_zip(tmp_path):
    _, good = _saved(tmp_path)
    (tmp_path / "text.keras").write_text("hello")
    with pytest.raises(ValueError, match="not a .keras archive"):
        keras.models.load_model(tmp_path / "text.keras")
    data = good.read_bytes()
    for cut in (len(data) // 3, len(data) - 30):
        (tmp_path / "cut.keras").write_bytes(data[:cut])
        with pytest.raises(ValueError, match="cut.keras"):
            keras.models.load_model(tmp_path / "cut.keras")
    with pytest.raises(ValueError, match="legacy Keras 2 HDF5"):
        keras.models.load_model(tmp_path / "model.h5")


def test_tampered_bytes_are_caught_by_the_crc(tmp_path):
    _, good = _saved(tmp_path)
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as z:
        info = z.getinfo("model.weights.h5")
    offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2
    data[offset] ^= 0xFF
    (tmp_path / "bad.keras").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt|not a readable|not a .keras"):
        keras.models.load_model(tmp_path / "bad.keras")


def test_config_naming_an_unknown_layer_suggests_custom_objects(tmp_path):
    _, good = _saved(tmp_path)
    swap = {"config.json": lambda d: d.replace(b'"class_name": "Dense"', b'"class_name": "Evil"')}
    _rewrite(good, tmp_path / "evil.keras", swap)
    with pytest.raises(ValueError, match=r"Unknown layer: 'Evil'.*custom_objects"):
        keras.models.load_model(tmp_path / "evil.keras")
    _rewrite(good, tmp_path / "junk.keras", {"config.json": b"{not json"})
    with pytest.raises(ValueError, match="config.json is not valid JSON"):
        keras.models.load_model(tmp_path / "junk.keras")
    _rewrite(good, tmp_path / "args.keras", {"config.json": lambda d: d.replace(b'"units"', b'"os_system"')})
    with pytest.raises(TypeError, match="Dense.from_config"):
        keras.models.load_model(tmp_path / "args.keras")


def test_oversized_member_is_refused_before_reading(tmp_path, monkeypatch):
    _, good = _saved(tmp_path)
    monkeypatch.setattr(saving_lib, "MAX_JSON_BYTES", 100)
    with pytest.raises(ValueError, match="more than allowed"):
        keras.models.load_model(good)


def test_pickled_or_object_arrays_are_refused(tmp_path):
    model, _ = _saved(tmp_path)
    np.savez(tmp_path / "obj.weights.npz", **{"layers/dense/vars/0": np.array([object()], dtype=object)})
    before = model.get_weights()
    with pytest.raises(ValueError, match="not a readable .npz|numeric"):
        model.load_weights(tmp_path / "obj.weights.npz")
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_load_weights_into_another_architecture_names_layer_and_shapes(tmp_path):
    model, _ = _saved(tmp_path)
    model.save_weights(tmp_path / "w.weights.h5")
    other = keras.Sequential([keras.Input((4,)), layers.Dense(5), layers.Dense(2)])
    before = other.get_weights()
    with pytest.raises(ValueError, match=r"Layer 'dense_\d+' weight 'kernel' has shape \(4, 5\).*\(4, 3\)"):
        other.load_weights(tmp_path / "w.weights.h5")
    for a, b in zip(before, other.get_weights()):
        np.testing.assert_array_equal(a, b)  # all or nothing
    deeper = keras.Sequential([keras.Input((4,)), layers.Dense(3), layers.Dense(2), layers.Dense(2)])
    with pytest.raises(ValueError, match="expects 2 weight"):
        deeper.load_weights(tmp_path / "w.weights.h5")
    with pytest.raises(ValueError, match="must end in `.weights.h5`"):
        model.save_weights(tmp_path / "w.h5")


def test_a_failed_save_leaves_the_previous_file(tmp_path, monkeypatch):
    model, good = _saved(tmp_path)
    before = good.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(saving_lib, "_write_h5", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        model.save(good)
    assert good.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["good.keras"]  # no temporary file left behind
