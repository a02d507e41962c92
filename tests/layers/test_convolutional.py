"""Convolution layers: Keras parity (constants from Keras 3), contract, config and bad input."""

import numpy as np
import pytest

import pyminidl
from pyminidl import layers

# Outputs of Keras 3.x (torch backend) for the layers below, weights set with set_weights from
# _data(shape, 2 + index) and input _data(x_shape, 1); rounded to 5 decimals.
KERAS = {
    "conv2d_same_s2": [1.48939, 0.56677, 0.0, 0.45626, 0.17029, 0.0, 0.72286, 0.53812, 0.10029, 0.97397, 0.09418, 0.0, 0.0, 0.0, 0.58065, 0.14563, 0.0, 0.0],
    "conv2d_valid_d2_g2": [-0.36524, -1.21006, -1.44102, -1.60482, 0.77763, 0.12671, -0.33715, -0.27874, -0.55199, -1.08684, -1.62008, -1.46619, 0.54327, -0.57664, -0.56517, -0.99706, -0.04797, -0.25787, -1.13233, -0.63236, 0.0953, -0.99554, -0.99746, -1.40756, 0.75746, 0.13759, -0.3565, -0.26629, -0.5471, -1.11201, -1.61548, -1.49264, 0.8217, -0.10019, -0.29567, -0.51718],
    "conv1d_causal_d2": [1.36428, -0.04018, 0.81205, 0.06825, -1.77461, -0.83626, -1.5444, -1.67777, 1.99562, -1.06547, 2.88666, 0.84427],
    "conv1d_same_s2": [0.93474, 1.25137, -0.56259, -0.94077, 0.55504, 0.9297, 0.75746, -0.49871],
    "conv2dT_same_s2": [1.33008, -1.55632, -1.39678, -0.02614, 2.48222, -0.65918, -0.56109, -0.56191, -0.14171, 0.69348, 1.44032, -1.04444, -1.54173, -1.17919, 1.60324, 0.61654, -1.53183, -2.51197, 0.58146, 0.09106, 1.39056, -0.7395, -1.17131, -1.46515, -0.26318, 1.70274, 1.30435, -2.367, -1.00816, 0.62012, -0.52436, -0.67657, 1.37806, -2.43344, -1.24833, 1.25744, 1.24431, 0.10766, -0.74536, -1.46868, -0.39525, 0.3294, 1.15221, 0.08633, -2.13888, -2.14862, 1.3713, 0.61846],
    "conv2dT_valid_op": [0.90627, -0.17021, -0.07391, -1.21839, 0.14112, -0.52984, 1.04284, -0.10602, -0.11229, -1.34129, 0.14112, -0.52984, 0.14112, -0.52984, -0.69712, -1.12353, 0.0712, -0.0431, 0.14112, -0.52984, -0.84674, -1.2295, 0.05872, 0.04378, 0.14112, -0.52984, 0.14112, -0.52984, 1.56979, 0.51799, 0.3153, -1.31123, 0.14112, -0.52984, 1.13878, 0.38259, 0.53918, -0.83336, 0.14112, -0.52984, 0.14112, -0.52984, -0.53175, -1.0064, 0.085, -0.13912, 0.14112, -0.52984, 0.0997, -0.55917, 0.13767, -0.50578, 0.14112, -0.52984, 0.14112, -0.52984, 0.79491, 0.07955, 0.41949, -0.7134, 0.14112, -0.52984, 0.18137, -0.49232, 0.15826, -0.54114, 0.14112, -0.52984, 0.14112, -0.52984, 0.14112, -0.52984, 0.14112, -0.52984, 0.14112, -0.52984, 0.14112, -0.52984, 0.14112, -0.52984, 0.14112, -0.52984, 0.14112, -0.52984],
    "conv2dT_same_op_d": [1.33008, -0.88537, -0.76482, -0.06551, 0.64482, 1.85025, 0.18634, 0.83243, -2.51587, 0.44802, 1.33881, 0.20161, -0.37348, -1.33301, 0.01176, -1.05129],
    "conv1dT_same_s3": [1.33008, -1.55632, -1.39678, -0.02614, 1.85025, -0.45255, -0.90977, -1.38582, -0.56109, -0.56191, 0.83243, -0.26277, -1.43354, -0.0448, 1.44032, -1.04444, -1.33301, -0.51634],
    "depthwise_dm2": [-0.09815, -0.40446, -0.41493, -0.75377, 0.3658, -0.31085, -0.74975, -0.82344, 0.09063, -0.4331, -0.84987, -0.71177, -0.25065, -0.46686, -0.47733, -0.69673, -0.85499, -0.95879, -0.58047, 0.16426, -0.12778, -1.06706, -1.49797, -1.49413, 0.61998, -0.40172, -0.83795, -1.2154, -0.41196, -0.5584, -0.18008, 0.33371, 0.32894, -0.92451, -1.43555, -1.15644, 0.08084, -0.42536, -0.83367, -0.704, -0.07591, -0.69767, -1.13026, -0.98379, 0.22469, -1.09415, -1.60519, -1.31168],
    "separable": [-0.48063, -0.18151, 0.20299, -1.39728, -1.70465, -1.2103, -1.25069, -2.0579, -1.89725, -0.10227, 0.17536, 0.37051, -1.00689, -0.94549, -0.43941, -1.49635, -2.1567, -1.80272],
    "conv2d_cf": [-0.19374, -0.06451, 0.16142, 0.48288, 0.42721, 0.23699, -0.75587, -0.78775, -0.69833, -0.36108, -0.27186, -0.30398],}
# name -> (layer, input shape, Keras's output shape, Keras's count_params()).
CASES = {
    "conv2d_same_s2": (lambda: layers.Conv2D(3, 3, strides=2, padding="same", activation="relu"), (1, 4, 5, 2),
                       (1, 2, 3, 3), 57),
    "conv2d_valid_d2_g2": (lambda: layers.Conv2D(4, (2, 3), dilation_rate=(2, 1), groups=2), (1, 5, 5, 4),
                           (1, 3, 3, 4), 52),
    "conv1d_causal_d2": (lambda: layers.Conv1D(2, 3, padding="causal", dilation_rate=2), (1, 6, 2), (1, 6, 2), 14),
    "conv1d_same_s2": (lambda: layers.Conv1D(2, 4, strides=2, padding="same", use_bias=False), (1, 7, 2),
                       (1, 4, 2), 16),
    "conv2dT_same_s2": (lambda: layers.Conv2DTranspose(2, 3, strides=2, padding="same"), (1, 2, 3, 2),
                        (1, 4, 6, 2), 38),
    "conv2dT_valid_op": (lambda: layers.Conv2DTranspose(2, (3, 2), strides=(2, 3), output_padding=(1, 2)),
                         (1, 2, 2, 1), (1, 6, 7, 2), 14),
    "conv2dT_same_op_d": (lambda: layers.Conv2DTranspose(1, 3, strides=2, padding="same", output_padding=1),
                          (1, 2, 2, 2), (1, 4, 4, 1), 19),
    "conv1dT_same_s3": (lambda: layers.Conv1DTranspose(2, 4, strides=3, padding="same"), (1, 3, 2), (1, 9, 2), 18),
    "depthwise_dm2": (lambda: layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same"), (1, 3, 4, 2),
                      (1, 3, 4, 4), 40),
    "separable": (lambda: layers.SeparableConv2D(3, 2, depth_multiplier=2), (1, 3, 4, 2), (1, 2, 3, 3), 31),
    "conv2d_cf": (lambda: layers.Conv2D(2, 2, data_format="channels_first"), (1, 2, 3, 4), (1, 2, 2, 3), 18),
}


def _data(shape, seed):
    return np.sin(np.arange(int(np.prod(shape))) * 0.7 + seed).reshape(shape).astype("float32")


@pytest.mark.parametrize("backend_name", ["numpy", "cpu"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_keras_parity(name, backend_name):
    make, x_shape, y_shape, params = CASES[name]
    with pyminidl.backend.use_backend(backend_name):
        layer = make()
        layer.build(x_shape)
        layer.set_weights([_data(w.shape, 2 + i) for i, w in enumerate(layer.get_weights())])
        y = np.asarray(layer(_data(x_shape, 1)))
    assert y.shape == y_shape == layer.compute_output_shape(x_shape)
    assert layer.count_params() == params
    np.testing.assert_allclose(y.ravel(), KERAS[name], atol=2e-5)


@pytest.mark.parametrize("layer,names,shapes", [
    (layers.Conv2D(4, 3), ["kernel", "bias"], [(3, 3, 2, 4), (4,)]),
    (layers.Conv1D(4, 3, use_bias=False), ["kernel"], [(3, 2, 4)]),
    (layers.Conv2DTranspose(4, 3), ["kernel", "bias"], [(3, 3, 4, 2), (4,)]),
    (layers.DepthwiseConv2D(3, depth_multiplier=3), ["depthwise_kernel", "bias"], [(3, 3, 2, 3), (6,)]),
    (layers.SeparableConv2D(5, 3), ["depthwise_kernel", "pointwise_kernel", "bias"], [(3, 3, 2, 1), (1, 1, 2, 5), (5,)]),
], ids=lambda v: type(v).__name__ if isinstance(v, layers.Layer) else None)
def test_weight_names_and_shapes(layer, names, shapes):
    x = np.zeros((1, 6, 6, 2) if "1D" not in type(layer).__name__ else (1, 6, 2), "float32")
    layer(x)
    assert [n.split("/")[-1] for n in layer.weight_names] == names
    assert [tuple(w.shape) for w in layer.weights] == shapes


def test_glorot_uniform_kernel_and_zero_bias():
    layer = layers.Conv2D(8, 3)
    layer.build((None, 6, 6, 4))
    limit = np.sqrt(6.0 / (9 * 4 + 9 * 8))
    assert np.abs(layer.kernel).max() <= limit and np.abs(layer.kernel).max() > 0.5 * limit
    assert not np.any(layer.bias)


@pytest.mark.parametrize("layer", [
    layers.Conv2D(4, (3, 2), strides=(2, 1), padding="same", groups=2, activation="relu", use_bias=False),
    layers.Conv1D(3, 5, padding="causal", dilation_rate=2),
    layers.Conv2DTranspose(3, 3, strides=2, output_padding=1, padding="same"),
    layers.Conv1DTranspose(3, 3),
    layers.DepthwiseConv2D(3, depth_multiplier=2, data_format="channels_first"),
    layers.SeparableConv2D(6, 3, depth_multiplier=2, activation="tanh"),
    layers.SeparableConv1D(6, 3),
    layers.DepthwiseConv1D(2),
], ids=lambda v: type(v).__name__)
def test_config_round_trip(layer):
    cfg = layer.get_config()
    clone = type(layer).from_config(cfg)
    assert clone.get_config() == cfg
    assert layers.deserialize(layers.serialize(layer)).get_config() == cfg


def test_aliases():
    assert layers.Convolution2D is layers.Conv2D and layers.Convolution1D is layers.Conv1D
    assert layers.Convolution2DTranspose is layers.Conv2DTranspose
    assert layers.SeparableConvolution2D is layers.SeparableConv2D


def test_summary_parameter_counts():
    # Keras 3: per-layer output shapes and counts of this model, total 50,402.
    model = pyminidl.Sequential([
        layers.Input(shape=(28, 28, 1)), layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.Conv2D(64, 3, strides=2), layers.DepthwiseConv2D(3, depth_multiplier=2),
        layers.SeparableConv2D(16, 3), layers.Conv2DTranspose(8, 3, strides=2, padding="same"), layers.Flatten(),
        layers.Dense(10)])
    want = [((None, 28, 28, 32), 320), ((None, 13, 13, 64), 18496), ((None, 11, 11, 128), 1280),
            ((None, 9, 9, 16), 3216), ((None, 18, 18, 8), 1160), ((None, 2592), 0), ((None, 10), 25930)]
    shape = (None, 28, 28, 1)
    for layer, (out_shape, count) in zip(model.layers, want):
        shape = layer.compute_output_shape(shape)
        assert (tuple(shape), layer.count_params()) == (out_shape, count)
    assert model.count_params() == 50402
    lines = []
    model.summary(print_fn=lines.append)
    assert "50,402" in "\n".join(lines)


def test_channels_first_matches_channels_last(rng):
    x = rng.standard_normal((2, 7, 6, 3)).astype("float32")
    last, first = layers.Conv2D(4, 3, strides=2, padding="same"), layers.Conv2D(4, 3, strides=2, padding="same",
                                                                               data_format="channels_first")
    last.build(x.shape)
    first.build((2, 3, 7, 6))
    first.set_weights(last.get_weights())
    np.testing.assert_allclose(np.asarray(first(x.transpose(0, 3, 1, 2))), np.asarray(last(x)).transpose(0, 3, 1, 2),
                               rtol=1e-5, atol=1e-5)


def test_cnn_fits(rng):
    pyminidl.utils.set_random_seed(0)  # the initial weights, whatever ran before
    x = rng.standard_normal((64, 8, 8, 1)).astype("float32")
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype("int64")
    model = pyminidl.Sequential([layers.Input(shape=(8, 8, 1)), layers.Conv2D(8, 3, activation="relu", padding="same"),
                                 layers.Conv2D(8, 3, strides=2, activation="relu"), layers.Flatten(),
                                 layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=40, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.6 * history.history["loss"][0]
    assert history.history["accuracy"][-1] >= 0.9


# ---------------------------------------------------------------- bad input


def test_wrong_rank_names_layer_and_shape():
    layer = layers.Conv2D(4, 3, name="c2")
    with pytest.raises(ValueError, match=r"c2.*ndim=4.*\(2, 8, 8\)"):
        layer(np.zeros((2, 8, 8), "float32"))
    layer(np.zeros((1, 8, 8, 3), "float32"))
    with pytest.raises(ValueError, match=r"c2.*ndim=4.*\(8, 8, 3\)"):
        layer(np.zeros((8, 8, 3), "float32"))


def test_channel_mismatch_after_build():
    layer = layers.Conv2D(4, 3, name="c2")
    layer(np.zeros((1, 8, 8, 3), "float32"))
    with pytest.raises(ValueError, match=r"c2.*axis -1.*value 3.*\(1, 8, 8, 2\)"):
        layer(np.zeros((1, 8, 8, 2), "float32"))


def test_kernel_larger_than_valid_input():
    with pytest.raises(ValueError, match=r"'big'.*output would be empty.*input_shape=\((1|None), 4, 9, 2\).*kernel_size=\(5, 5\)"):
        layers.Conv2D(4, 5, name="big")(np.zeros((1, 4, 9, 2), "float32"))
    layer = layers.Conv2D(4, 3, name="later")
    layer(np.zeros((1, 8, 8, 2), "float32"))
    with pytest.raises(ValueError, match=r"'later'.*output would be empty.*\(1, 2, 8, 2\)"):
        layer(np.zeros((1, 2, 8, 2), "float32"))


@pytest.mark.parametrize("kwargs,match", [
    ({"strides": 0}, r"`strides` argument must be a tuple of 2 integers.*strides=0"),
    ({"strides": (1, -2)}, r"`strides`.*\(1, -2\)"),
    ({"kernel_size": 0}, r"`kernel_size`.*kernel_size=0"),
    ({"dilation_rate": (0, 1)}, r"`dilation_rate`"),
    ({"padding": "causal"}, r"`padding`.*'valid' or 'same'.*causal"),
    ({"padding": "full"}, r"`padding`.*full"),
    ({"groups": 3}, r"divisible by the number of groups.*groups=3, filters=4"),
    ({"strides": 2, "dilation_rate": 2}, r"strides > 1.*dilation_rate > 1"),
], ids=str)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.Conv2D(4, **{"kernel_size": 3, **kwargs})


def test_groups_not_dividing_channels():
    with pytest.raises(ValueError, match=r"'g'.*groups=2.*3 channels.*\((1|None), 6, 6, 3\)"):
        layers.Conv2D(4, 3, groups=2, name="g")(np.zeros((1, 6, 6, 3), "float32"))


def test_transpose_output_padding_below_strides():
    with pytest.raises(ValueError, match=r"Strides must be greater than output padding"):
        layers.Conv2DTranspose(2, 3, strides=2, output_padding=2)


def test_empty_batch_is_refused():
    with pytest.raises(ValueError, match=r"output would be empty.*\(0, 6, 6, 1\)"):
        layers.Conv2D(2, 3)(np.zeros((0, 6, 6, 1), "float32"))


def test_bindings_validate_before_touching_memory():
    from pyminidl.backend._compat import _C

    x, w = np.zeros((1, 5, 5, 2), "float32"), np.zeros((3, 3, 2, 4), "float32")
    with pytest.raises(ValueError, match="strides"):
        _C.conv_forward(x, w, None, (0, 1), (0, 0), (3, 3), (1, 1), 1)
    with pytest.raises(ValueError, match="window outside the input"):
        _C.conv_forward(x, w, None, (1, 1), (0, 0), (9, 3), (1, 1), 1)
    with pytest.raises(ValueError, match="groups"):
        _C.conv_forward(x, w, None, (1, 1), (0, 0), (3, 3), (1, 1), 2)
    with pytest.raises(TypeError, match="dtype"):
        _C.conv_forward(x, w.astype("float64"), None, (1, 1), (0, 0), (3, 3), (1, 1), 1)
