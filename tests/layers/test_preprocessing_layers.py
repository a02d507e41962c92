"""Rescaling, Resizing, CenterCrop, Normalization: NumPy references from the definitions, exact
backwards (float64 finite differences), Keras's shapes and errors, use in Sequential.fit and Dataset.map."""

import math

import numpy as np
import pytest

import pyminidl
from pyminidl import layers
from pyminidl.data import Dataset
from pyminidl.testing import assert_close, numeric_grad


def ref_bilinear(x, oh, ow):
    """Half-pixel-centre bilinear resize, pixel by pixel (the definition, no antialias)."""
    n, h, w, c = x.shape
    out = np.zeros((n, oh, ow, c))

    def taps(i, n_in, n_out):
        s = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
        i0 = min(int(math.floor(s)), n_in - 1)
        return i0, min(i0 + 1, n_in - 1), s - i0

    for i in range(oh):
        r0, r1, wr = taps(i, h, oh)
        for j in range(ow):
            c0, c1, wc = taps(j, w, ow)
            out[:, i, j] = ((1 - wr) * ((1 - wc) * x[:, r0, c0] + wc * x[:, r0, c1])
                            + wr * ((1 - wc) * x[:, r1, c0] + wc * x[:, r1, c1]))
    return out


def ref_nearest(x, oh, ow):
    h, w = x.shape[1:3]
    rows = [min(int(math.floor((i + 0.5) * h / oh)), h - 1) for i in range(oh)]
    cols = [min(int(math.floor((j + 0.5) * w / ow)), w - 1) for j in range(ow)]
    return x[:, rows][:, :, cols]


def ref_area(x, oh, ow):
    """Each output pixel: the mean of its box [i*s, (i+1)*s) weighted by overlap with each input pixel."""
    n, h, w, c = x.shape
    out = np.zeros((n, oh, ow, c))
    sh, sw = h / oh, w / ow
    for i in range(oh):
        for j in range(ow):
            acc = 0.0
            for r in range(h):
                ov_r = max(0.0, min((i + 1) * sh, r + 1) - max(i * sh, r))
                for q in range(w):
                    ov_c = max(0.0, min((j + 1) * sw, q + 1) - max(j * sw, q))
                    acc = acc + ov_r * ov_c * x[:, r, q]
            out[:, i, j] = acc / (sh * sw)
    return out


REFS = {"bilinear": ref_bilinear, "nearest": ref_nearest, "area": ref_area}


def _grad_check(layer, x, training=False, rng=None):
    """dx from the layer's backward against central finite differences of sum(y * dy), float64."""
    rng = rng or np.random.default_rng(0)
    with pyminidl.backend.use_backend("numpy"):
        layer(x)  # builds (inference: draws nothing)
        state = getattr(layer, "_rng", None)
        snapshot = None if state is None else state.bit_generator.state
        y, backward = layer.forward(x, training=training)
        dy = rng.standard_normal(y.shape)
        dx = backward(dy)

        def loss(x_):
            if snapshot is not None:
                layer._rng.bit_generator.state = snapshot  # the same random draw each evaluation
            return float((layer.forward(x_, training=training)[0] * dy).sum())

        num = numeric_grad(loss, x.copy(), eps=1e-6)
    assert dx.shape == x.shape
    assert_close(dx, num, rtol=1e-5, atol=1e-7)  # central differences: ~1e-9 noise at eps=1e-6


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest", "area"])
@pytest.mark.parametrize("shape,size", [((2, 7, 5, 3), (3, 11)), ((1, 8, 8, 1), (4, 4)), ((3, 1, 17, 2), (5, 1)),
                                        ((1, 13, 6, 2), (13, 6))])
def test_resizing_matches_reference(rng, interpolation, shape, size):
    x = rng.standard_normal(shape).astype(np.float32)
    got = layers.Resizing(*size, interpolation=interpolation)(x)
    assert got.shape == (shape[0],) + size + (shape[3],) and got.dtype == np.float32
    assert_close(got, REFS[interpolation](x.astype(np.float64), *size), k=4)


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest", "area"])
@pytest.mark.parametrize("crop,pad", [(False, False), (True, False), (False, True)])
def test_resizing_backward_is_exact(rng, interpolation, crop, pad):
    x = rng.standard_normal((2, 6, 9, 2))
    _grad_check(layers.Resizing(4, 5, interpolation=interpolation, crop_to_aspect_ratio=crop,
                                pad_to_aspect_ratio=pad, dtype="float64"), x)


def test_resizing_crop_and_pad_to_aspect_ratio(rng):
    x = rng.standard_normal((1, 6, 12, 1)).astype(np.float32)
    cropped = layers.Resizing(4, 4, crop_to_aspect_ratio=True)(x)  # the centred 6x6 window, then resize
    assert_close(cropped, ref_bilinear(x[:, :, 3:9].astype(np.float64), 4, 4), k=4)
    padded = layers.Resizing(4, 4, pad_to_aspect_ratio=True, fill_value=2.0)(x)  # 12x12 canvas, x in rows 3..8
    canvas = np.full((1, 12, 12, 1), 2.0)
    canvas[:, 3:9] = x
    assert_close(padded, ref_bilinear(canvas, 4, 4), k=4)


def test_resizing_unbatched_channels_first_and_uint8(rng):
    x = rng.integers(0, 256, (5, 7, 3)).astype(np.uint8)
    y = layers.Resizing(3, 4)(x)
    assert y.shape == (3, 4, 3) and y.dtype == np.float32
    assert_close(y, ref_bilinear(x[None].astype(np.float64), 3, 4)[0], k=4)
    xf = rng.standard_normal((2, 3, 5, 7)).astype(np.float32)
    yf = layers.Resizing(3, 4, data_format="channels_first")(xf)
    assert_close(yf, ref_bilinear(xf.transpose(0, 2, 3, 1).astype(np.float64), 3, 4).transpose(0, 3, 1, 2), k=4)


@pytest.mark.parametrize("bad", [dict(height=0, width=4), dict(height=3, width=-1), dict(height=2.5, width=2)])
def test_resizing_rejects_bad_sizes(bad):
    with pytest.raises(ValueError, match=r"Resizing.*Received"):
        layers.Resizing(**bad)


def test_resizing_rejects_unknown_interpolation_and_rank():
    with pytest.raises(ValueError, match="interpolation='cubic'"):
        layers.Resizing(2, 2, interpolation="cubic")
    with pytest.raises(ValueError, match=r"shape=\(2, 3\)"):
        layers.Resizing(2, 2)(np.zeros((2, 3), "float32"))


def test_rescaling_reference_and_gradient(rng):
    x = rng.integers(0, 256, (2, 4, 4, 3)).astype(np.uint8)
    y = layers.Rescaling(1 / 127.5, offset=-1)(x)
    assert y.dtype == np.float32
    assert_close(y, x.astype(np.float64) / 127.5 - 1, k=1)
    per_channel = layers.Rescaling([1.0, 2.0, 3.0], offset=[0.0, 1.0, 2.0])(x)
    assert_close(per_channel, x * np.array([1.0, 2.0, 3.0]) + np.array([0.0, 1.0, 2.0]), k=1)
    _grad_check(layers.Rescaling([0.5, -2.0, 3.0], offset=1.0, dtype="float64"), rng.standard_normal((2, 3, 3, 3)))
    with pytest.raises(ValueError, match="scale='a'"):
        layers.Rescaling("a")


def test_center_crop_reference_gradient_and_small_input(rng):
    x = rng.standard_normal((2, 7, 8, 3)).astype(np.float32)
    y = layers.CenterCrop(4, 5)(x)
    np.testing.assert_array_equal(y, x[:, 1:5, 1:6])
    _grad_check(layers.CenterCrop(4, 5, dtype="float64"), x.astype(np.float64))
    small = layers.CenterCrop(10, 10)(x)  # smaller input: crop to aspect (7x7 centred), then resize
    assert_close(small, ref_bilinear(x[:, :, 0:7].astype(np.float64), 10, 10), k=4)
    _grad_check(layers.CenterCrop(10, 10, dtype="float64"), x.astype(np.float64))
    with pytest.raises(ValueError, match=r"\(0, 3\)"):
        layers.CenterCrop(0, 3)


def test_normalization_adapt_matches_numpy_statistics(rng):
    x = rng.standard_normal((50, 4, 4, 3)) * [1.0, 5.0, 0.1] + [0.0, 3.0, -2.0]
    layer = layers.Normalization()
    layer.adapt(x)
    assert_close(layer.mean.reshape(-1), x.reshape(-1, 3).mean(0), k=800)
    assert_close(layer.variance.reshape(-1), x.reshape(-1, 3).var(0), k=800)
    y = layer(x.astype(np.float32))
    assert_close(y, (x - x.reshape(-1, 3).mean(0)) / x.reshape(-1, 3).std(0), k=800)


def test_normalization_streaming_adapt_equals_one_pass(rng):
    x = rng.standard_normal((103, 6)) * np.arange(1, 7) + np.arange(6)
    whole, streamed = layers.Normalization(), layers.Normalization()
    whole.adapt(x)
    streamed.adapt(Dataset.from_tensor_slices(x).batch(10))  # uneven last batch
    assert_close(streamed.mean, x.mean(0, keepdims=True), k=103)
    assert_close(streamed.variance, x.var(0, keepdims=True), k=103)
    assert_close(streamed.mean, whole.mean, k=103)


def test_normalization_axes_invert_given_stats_and_gradient(rng):
    x = rng.standard_normal((8, 5, 3))
    layer = layers.Normalization(axis=(1, 2))
    layer.adapt(x)
    assert layer.mean.shape == (1, 5, 3)
    assert_close(layer.mean[0], x.mean(0), k=8)
    scalar = layers.Normalization(axis=None)
    scalar.adapt(x)
    assert_close(scalar.mean, np.array(x.mean()).reshape(1, 1, 1), k=120)
    given = layers.Normalization(mean=[1.0, 2.0], variance=[4.0, 9.0])
    assert_close(given(np.array([[3.0, 8.0]], "float32")), np.array([[1.0, 2.0]]), k=1)
    inverse = layers.Normalization(mean=[1.0, 2.0], variance=[4.0, 9.0], invert=True)
    assert_close(inverse(np.array([[1.0, 2.0]], "float32")), np.array([[3.0, 8.0]]), k=1)
    _grad_check(layers.Normalization(mean=[1.0, 2.0, 3.0], variance=[4.0, 0.25, 1.0], dtype="float64"),
                rng.standard_normal((4, 3)))
    floor = layers.Normalization(mean=0.0, variance=0.0, dtype="float64")  # std floored at 1e-7, no inf
    assert_close(floor(np.array([[1e-7]])), np.array([[1.0]]), k=1)


def test_normalization_adapt_bad_data():
    with pytest.raises(ValueError, match=r"no samples.*shape \(0, 3\)"):
        layers.Normalization().adapt(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="no samples"):
        layers.Normalization().adapt(Dataset.from_tensor_slices(np.zeros((0, 3))).batch(4))
    with pytest.raises(TypeError, match=r"lambda x, y: x"):
        layers.Normalization().adapt(Dataset.from_tensor_slices((np.zeros((4, 3)), np.zeros(4))).batch(2))
    with pytest.raises(ValueError, match="both `mean` and `variance`"):
        layers.Normalization(mean=1.0)


def test_preprocessing_layers_train_in_sequential_and_map_over_datasets(rng):
    x = rng.integers(0, 256, (64, 6, 6, 1)).astype(np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 127.5).astype(np.float32)
    norm = layers.Normalization(axis=None)
    norm.adapt(x)
    model = pyminidl.Sequential([layers.Input((6, 6, 1)), layers.Rescaling(1.0), norm, layers.Resizing(4, 4),
                                 layers.CenterCrop(3, 3), layers.Flatten(), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert model.predict(x, verbose=0).shape == (64, 1)
    resize = layers.Resizing(3, 3)
    ds = Dataset.from_tensor_slices((x, y)).batch(8).map(lambda a, b: (resize(a), b))
    first = next(iter(ds))[0]
    assert_close(first, ref_bilinear(x[:8].astype(np.float64), 3, 3), k=4)


def test_config_round_trip():
    for layer in [layers.Resizing(3, 4, interpolation="nearest", crop_to_aspect_ratio=True), layers.CenterCrop(2, 3),
                  layers.Rescaling(0.5, 1.0), layers.Normalization(axis=-1, mean=[1.0], variance=[2.0], invert=True)]:
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
    assert layers.Resizing(3, 4).compute_output_shape((None, 9, 9, 2)) == (None, 3, 4, 2)


def test_as_first_layer_the_input_gradient_is_skipped_and_otherwise_computed():
    from pyminidl.layers.base import forward_options

    layer = layers.Rescaling(0.5)
    x = np.ones((2, 4, 4, 1), np.float32)
    with forward_options(need_dx=False):
        _, backward = layer.forward(x, training=True)
    assert backward(np.ones_like(x)) is None
    _, backward = layer.forward(x, training=True)
    np.testing.assert_array_equal(backward(np.ones_like(x)), np.full_like(x, 0.5))


def test_an_image_layer_needs_only_its_map_and_adjoint():
    # ImageLayer's default forward runs _apply/_apply_backward (NHWC) and reads need_dx itself
    from pyminidl.layers.base import forward_options
    from pyminidl.layers.preprocessing import ImageLayer

    class FlipRows(ImageLayer):
        data_format = "channels_first"

        def _apply(self, x4):
            return x4[:, ::-1].copy()

        def _apply_backward(self, dy4, in_shape):
            return dy4[:, ::-1].copy()

    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)  # (N, C, H, W)
    y, backward = FlipRows().forward(x)
    np.testing.assert_array_equal(y, x[:, :, ::-1])
    dy = np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(backward(dy), dy[:, :, ::-1])
    with forward_options(need_dx=False):
        _, backward = FlipRows().forward(x[0])
    assert backward(dy[0]) is None
