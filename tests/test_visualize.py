"""pyminidl.visualize draws training curves, filters and feature maps into PNG files (Agg)."""

import numpy as np
import pytest

import pyminidl
from pyminidl import layers, visualize

pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _FourFilters(pyminidl.Layer):
    """A layer carrying a (kh, kw, in, filters) kernel, as a 2-D convolution does."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(3, 3, 2, 5), initializer="glorot_uniform", name="kernel")

    def call(self, x):
        return x


def _is_png(path):
    return path.read_bytes()[:8] == PNG_MAGIC


def test_plot_history_draws_train_and_validation_curves(tmp_path):
    x = np.random.default_rng(0).random((64, 3)).astype("float32")
    model = pyminidl.Sequential([pyminidl.Input((3,)), layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, (x[:, 0] > 0.5).astype("int32"), epochs=3, validation_split=0.25, verbose=0)
    figure = visualize.plot_history(history, to_file=tmp_path / "curves.png")
    assert _is_png(tmp_path / "curves.png")
    assert [ax.get_title() for ax in figure.axes] == ["accuracy", "loss"]
    assert [line.get_label() for line in figure.axes[1].lines] == ["loss", "val_loss"]
    np.testing.assert_allclose(figure.axes[1].lines[0].get_ydata(), history.history["loss"])


def test_plot_history_bad_input():
    with pytest.raises(ValueError, match="non-empty dict"):
        visualize.plot_history({})
    with pytest.raises(ValueError, match="holds: \\['loss'\\]"):
        visualize.plot_history({"loss": [1.0]}, metrics=["accuracy"])


def test_plot_filters_one_tile_per_filter(tmp_path):
    layer = _FourFilters()
    layer.build((None, 4, 4, 2))
    figure = visualize.plot_filters(layer, to_file=tmp_path / "filters.png", channel=1)
    assert _is_png(tmp_path / "filters.png")
    images = [ax.images[0].get_array() for ax in figure.axes if ax.images]
    assert len(images) == 5
    w = np.asarray(layer.kernel)[:, :, 1, 3]
    np.testing.assert_allclose(images[3], (w - w.min()) / (w.max() - w.min()), rtol=1e-6)
    with pytest.raises(ValueError, match="channel=2 is out of range"):
        visualize.plot_filters(layer, channel=2)
    with pytest.raises(ValueError, match="2-D convolution layer"):
        visualize.plot_filters(layers.Dense(3))


def test_plot_feature_maps_one_row_per_4d_output(tmp_path):
    model = pyminidl.Sequential([pyminidl.Input((64,)), layers.Reshape((8, 8, 1), name="image"),
                                 layers.Reshape((4, 4, 4), name="folded"), layers.Flatten()])
    x = np.arange(64, dtype="float32")
    figure = visualize.plot_feature_maps(model, x, to_file=tmp_path / "maps.png")
    assert _is_png(tmp_path / "maps.png")
    titles = [sub._suptitle.get_text() for sub in figure.subfigs]
    assert titles == ["image (8, 8, 1)", "folded (4, 4, 4)"]
    folded = [ax.images[0].get_array() for ax in figure.subfigs[1].axes if ax.images]
    expected = x.reshape(4, 4, 4)[:, :, 2]
    np.testing.assert_allclose(folded[2], (expected - expected.min()) / np.ptp(expected), rtol=1e-6)
    only = visualize.plot_feature_maps(model, x[None], layers=["folded"])
    assert len(only.subfigs) == 1
    with pytest.raises(ValueError, match="4-D"):
        visualize.plot_feature_maps(model, x, layers=[2])
