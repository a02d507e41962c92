"""Pooling, normalization and spatial layers: Keras parity (constants generated with Keras 3.15.1 on
torch for the same inputs and weights), shapes, configs, summary counts, errors before any kernel
runs, and BatchNormalization's moving statistics through fit/predict."""

import numpy as np
import pytest

import pyminidl
from pyminidl import layers
from pyminidl.backend._compat import _C


@pytest.fixture(autouse=True)
def _fresh_names():
    layers.clear_session()


def _x(shape):
    """The deterministic input the Keras constants were computed from."""
    return (((np.arange(np.prod(shape)) * 7) % 11 - 5) / 4).reshape(shape).astype("float32")


# Keras 3.15.1, KERAS_BACKEND=torch. AVG_SAME_SYMMETRIC uses a symmetric 'same' padding: with an odd
# total padding Keras's torch backend pads by edge replication and averages the copies, unlike its
# TensorFlow backend and its documentation (padded cells left out of the mean), which pyminidl follows.
MAX_SAME = [[[[1.25, 1.25], [1.0, 1.0], [0.75, 0.75]], [[1.25, 1.25], [1.0, 1.0], [0.75, 1.25]], [[1.25, 1.0], [0.75, 0.75], [1.25, 1.25]]]]  # noqa: E501
AVG_VALID = [[[[-0.083333, 0.291667], [0.041667, -0.041667]], [[0.291667, 0.208333], [-0.041667, -0.125]], [[0.208333, 0.125], [-0.125, -0.208333]], [[0.125, 0.041667], [-0.208333, -0.291667]]]]  # noqa: E501
MAX1_SAME = [[[-0.5, 1.25], [1.0, 1.25], [1.0, 0.75], [0.5, -0.5]]]
AVG1_SAME = [[[-0.875, 0.875], [0.25, 0.166667], [-0.083333, -0.166667], [0.125, -0.875]]]
GAP_CF = [[[[-0.025]], [[0.05]], [[-0.0125]]], [[[-0.075]], [[0.0]], [[0.075]]]]
GMP_CF = [[1.25, 1.25, 1.25], [1.25, 1.25, 1.25]]
MAX_CF = [[[[1.0, 1.25], [0.25, 1.0]], [[1.25, 1.0], [1.25, 0.25]], [[0.5, 1.25], [1.0, 1.25]]], [[[1.0, 0.5], [0.75, 1.0]], [[1.25, 1.0], [1.25, 0.75]], [[1.0, 1.25], [1.0, 1.25]]]]  # noqa: E501
BN_TRAIN = [[-2.456012, 0.46975, -1.039499], [1.330672, 0.02325, -0.1465], [0.952004, -0.42325, 0.7465], [0.573335, -0.86975, 1.639499]]  # noqa: E501
BN_MOVING = [[0.3675, 0.035, -0.075], [1.292187, 1.83125, 0.48125]]
BN_INFER = [[-2.363322, 0.525839, 0.192], [4.231917, 0.341147, 0.912002], [3.572393, 0.156455, 1.632004], [2.912869, -0.028237, 2.352006]]  # noqa: E501
LN = [[[-1.31234, 1.149872, -0.062468, -1.012341], [0.199744, -2.696423, 0.899106, 0.499744], [-0.722301, 3.149716, 0.320384, 1.343324]], [[0.199744, -2.696423, 0.899106, 0.499745], [-0.722301, 3.149716, 0.320384, 1.343324], [1.043324, -0.381534, -0.562429, -0.422301]]]  # noqa: E501
LN_12 = [[[-1.37616, 0.725612, -0.475401, 1.626371], [0.425359, -0.775654, 1.326118, 0.125105], [-1.075907, 1.025865, -0.175148, -1.37616]], [[0.595181, -0.703396, 1.569113, 0.270537], [-1.02804, 1.244469, -0.054107, -1.352684], [0.919825, -0.378751, -1.677328, 0.595181]]]  # noqa: E501
UP_BILINEAR = [[[[-1.25], [-1.25], [-0.666667], [-0.083333], [0.5], [0.166667], [-0.166667], [-0.5], [-0.5]], [[-0.625], [-0.625], [-0.270833], [0.083333], [0.4375], [0.104167], [-0.229167], [-0.5625], [-0.5625]], [[0.625], [0.625], [0.520833], [0.416667], [0.3125], [-0.020833], [-0.354167], [-0.6875], [-0.6875]], [[1.25], [1.25], [0.916667], [0.583333], [0.25], [-0.083333], [-0.416667], [-0.75], [-0.75]]]]  # noqa: E501
BN_AXIS1_TRAIN_ROW = [[0.60124, -0.681406, 1.563225, 0.280579, -1.002067], [1.242563, -0.040083, -1.322729, 0.921902, -0.360744], [-1.64339, 0.60124, -0.681406, 1.563225, 0.280579], [-1.002067, 1.242563, -0.040083, -1.322729, 0.921902]]  # noqa: E501
AVG_SAME_SYMMETRIC = [[[[-0.375, 0.0], [0.291667, 0.208333], [-0.1875, 0.1875]], [[-0.25, -0.333333], [0.111111, 0.027778], [0.166667, 0.083333]], [[-0.125, -0.4375], [0.083333, 0.0], [0.0625, 0.4375]]]]  # noqa: E501
BN_WEIGHTS = [[1.5, 0.5, -1.0], [0.1, -0.2, 0.3], [0.2, -0.1, 0.0], [1.0, 2.0, 0.5]]  # gamma, beta, moving mean/var
LN_WEIGHTS = [[1.0, 2.0, 0.5, -1.0], [0.0, 0.1, 0.2, 0.3]]


@pytest.fixture(params=["numpy", "cpu"])
def each_backend(request):
    with pyminidl.backend.use_backend(request.param) as be:
        yield be


PARITY = [
    (lambda: layers.MaxPooling2D(3, strides=2, padding="same"), (1, 5, 6, 2), "MAX_SAME"),
    (lambda: layers.AveragePooling2D(3, strides=2, padding="same"), (1, 5, 5, 2), "AVG_SAME_SYMMETRIC"),
    (lambda: layers.AveragePooling2D((2, 3), strides=(1, 2)), (1, 5, 6, 2), "AVG_VALID"),
    (lambda: layers.MaxPooling1D(3, strides=2, padding="same"), (1, 7, 2), "MAX1_SAME"),
    (lambda: layers.AveragePooling1D(3, strides=2, padding="same"), (1, 7, 2), "AVG1_SAME"),
    (lambda: layers.GlobalAveragePooling2D(data_format="channels_first", keepdims=True), (2, 3, 4, 5), "GAP_CF"),
    (lambda: layers.GlobalMaxPooling2D(data_format="channels_first"), (2, 3, 4, 5), "GMP_CF"),
    (lambda: layers.MaxPooling2D(2, data_format="channels_first"), (2, 3, 4, 5), "MAX_CF"),
    (lambda: layers.LayerNormalization(axis=[1, 2]), (2, 3, 4), "LN_12"),
    (lambda: layers.UpSampling2D((2, 3), interpolation="bilinear"), (1, 2, 3, 1), "UP_BILINEAR"),
]


@pytest.mark.parametrize("make,shape,name", PARITY, ids=[p[2] for p in PARITY])
def test_keras_parity(each_backend, make, shape, name):
    np.testing.assert_allclose(make()(_x(shape)), globals()[name], atol=2e-6)


def test_batch_normalization_keras_parity(each_backend):
    bn = layers.BatchNormalization(momentum=0.9)
    bn.build((None, 3))
    bn.set_weights([np.array(w, "float32") for w in BN_WEIGHTS])
    x = _x((4, 3)) * 2 + 1
    np.testing.assert_allclose(bn(x, training=True), BN_TRAIN, atol=2e-6)
    np.testing.assert_allclose(bn.get_weights()[2:], BN_MOVING, atol=2e-6)
    np.testing.assert_allclose(bn(x, training=False), BN_INFER, atol=5e-6)
    np.testing.assert_allclose(layers.BatchNormalization(axis=1)(_x((2, 3, 4, 5)), training=True)[1, 2],
                               BN_AXIS1_TRAIN_ROW, atol=2e-6)


def test_layer_normalization_keras_parity(each_backend):
    ln = layers.LayerNormalization()
    ln.build((None, 3, 4))
    ln.set_weights([np.array(w, "float32") for w in LN_WEIGHTS])
    np.testing.assert_allclose(ln(_x((2, 3, 4))), LN, atol=2e-6)


def test_aliases_are_the_keras_classes():
    assert layers.MaxPool2D is layers.MaxPooling2D and layers.AvgPool1D is layers.AveragePooling1D
    assert layers.GlobalAvgPool2D is layers.GlobalAveragePooling2D and layers.GlobalMaxPool1D is layers.GlobalMaxPooling1D


CONFIGS = [
    (layers.MaxPooling2D, {}, {"pool_size": (2, 2), "padding": "valid", "strides": (2, 2), "data_format": "channels_last"}),
    (layers.AveragePooling1D, {"pool_size": 3, "strides": 1, "padding": "same"},
     {"pool_size": (3,), "padding": "same", "strides": (1,), "data_format": "channels_last"}),
    (layers.GlobalMaxPooling1D, {"keepdims": True}, {"data_format": "channels_last", "keepdims": True}),
    (layers.ZeroPadding2D, {}, {"padding": ((1, 1), (1, 1)), "data_format": "channels_last"}),
    (layers.ZeroPadding1D, {}, {"padding": (1, 1), "data_format": "channels_last"}),
    (layers.Cropping2D, {"cropping": 2}, {"cropping": ((2, 2), (2, 2)), "data_format": "channels_last"}),
    (layers.Cropping1D, {}, {"cropping": (1, 1)}),
    (layers.UpSampling2D, {}, {"size": (2, 2), "data_format": "channels_last", "interpolation": "nearest"}),
    (layers.UpSampling1D, {}, {"size": 2}),
    (layers.SpatialDropout2D, {"rate": 0.2}, {"rate": 0.2, "seed": None, "data_format": "channels_last"}),
    (layers.SpatialDropout1D, {"rate": 0.1}, {"rate": 0.1, "seed": None}),
    (layers.BatchNormalization, {}, {"axis": -1, "momentum": 0.99, "epsilon": 0.001, "center": True, "scale": True}),
    (layers.LayerNormalization, {}, {"axis": -1, "epsilon": 0.001, "center": True, "scale": True,
                                     "rms_scaling": False}),
]


@pytest.mark.parametrize("cls,kwargs,expected", CONFIGS, ids=[c[0].__name__ for c in CONFIGS])
def test_config_keys_and_round_trip(cls, kwargs, expected):
    layer = cls(**kwargs)
    cfg = layer.get_config()
    assert {k: cfg[k] for k in expected} == expected
    assert cls.from_config(cfg).get_config() == cfg


def test_summary_counts_and_weights_match_keras(capsys):
    model = pyminidl.Sequential([
        pyminidl.Input((8, 8, 3)), layers.BatchNormalization(), layers.MaxPooling2D(2), layers.ZeroPadding2D(1),
        layers.Cropping2D(((1, 0), (0, 1))), layers.UpSampling2D(2), layers.LayerNormalization(),
        layers.GlobalAveragePooling2D(), layers.Dense(4)])
    model.summary()
    out = capsys.readouterr().out
    # Keras 3.15.1 prints the same shapes and counts for this model.
    for line in ["(None, 4, 4, 3)", "(None, 6, 6, 3)", "(None, 5, 5, 3)", "(None, 10, 10, 3)",
                 "Total params: 34 (136.00 B)", "Trainable params: 28 (112.00 B)", "Non-trainable params: 6 (24.00 B)"]:
        assert line in out
    assert [n.split("/")[-1] for n in model.layers[0].weight_names] == ["gamma", "beta", "moving_mean",
                                                                        "moving_variance"]


@pytest.mark.parametrize("layer,shape,expected", [
    (layers.MaxPooling2D(3, strides=2, padding="same"), (None, 7, 8, 3), (None, 4, 4, 3)),
    (layers.AveragePooling2D(2, data_format="channels_first"), (None, 3, 7, 9), (None, 3, 3, 4)),
    (layers.MaxPooling1D(2, strides=1), (None, 5, 4), (None, 4, 4)),
    (layers.GlobalAveragePooling2D(keepdims=True), (None, 5, 5, 2), (None, 1, 1, 2)),
    (layers.GlobalMaxPooling1D(data_format="channels_first", keepdims=True), (None, 3, 9), (None, 3, 1)),
    (layers.ZeroPadding2D((1, 2), data_format="channels_first"), (None, 3, 4, 4), (None, 3, 6, 8)),
    (layers.Cropping2D(((1, 2), (0, 1))), (None, 5, 5, 3), (None, 2, 4, 3)),
    (layers.UpSampling1D(3), (None, 4, 2), (None, 12, 2)),
])
def test_compute_output_shape_matches_the_output(layer, shape, expected):
    assert layer.compute_output_shape(shape) == expected
    y = layer(np.zeros((2,) + shape[1:], np.float32))
    assert y.shape == (2,) + expected[1:]


def test_bad_input_is_refused_before_any_kernel(monkeypatch):
    calls = []
    for name in ("maxpool_forward", "avgpool_forward", "batch_norm_forward"):
        monkeypatch.setattr(_C, name, lambda *a, _n=name, **k: calls.append(_n))
    with pyminidl.backend.use_backend("cpu"):
        with pytest.raises(ValueError, match=r"max_pooling2d.*zero or negative.*\(1, 2, 2, 1\).*pool_size=\(3, 3\)"):
            layers.MaxPooling2D(3)(np.zeros((1, 2, 2, 1), np.float32))
        with pytest.raises(ValueError, match="expected ndim=4, found ndim=3"):
            layers.AveragePooling2D(2)(np.zeros((2, 4, 4), np.float32))
        with pytest.raises(ValueError, match=r"batch_normalization.*axis=5 is out of range.*\(None, 3\)"):
            layers.BatchNormalization(axis=5)(np.zeros((2, 3), np.float32))
        with pytest.raises(ValueError, match="leaves nothing"):
            layers.Cropping1D((2, 2))(np.zeros((1, 4, 3), np.float32))
        bn = layers.BatchNormalization()
        bn.build((None, 3))
        with pytest.raises(ValueError, match="expected axis 1 of input shape to have value 3"):
            bn(np.zeros((2, 4), np.float32))
    assert calls == []


@pytest.mark.parametrize("make,match", [
    (lambda: layers.MaxPooling2D(0), "pool_size"), (lambda: layers.MaxPooling2D(2, strides=0), "strides"),
    (lambda: layers.AveragePooling1D(2, strides=-1), "strides"), (lambda: layers.MaxPooling2D(2, padding="full"), "padding"),
    (lambda: layers.GlobalMaxPooling2D(data_format="nhwc"), "data_format"),
    (lambda: layers.ZeroPadding2D(-1), "padding"), (lambda: layers.UpSampling2D(0), "size"),
    (lambda: layers.UpSampling2D(interpolation="bicubic"), "interpolation"),
    (lambda: layers.BatchNormalization(renorm=True), "renorm"), (lambda: layers.LayerNormalization(rms_scaling=True),
                                                               "rms_scaling"),
    (lambda: layers.LayerNormalization(epsilon=-1), "epsilon"), (lambda: layers.SpatialDropout2D(1.5), "rate"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_spatial_dropout_drops_whole_channels():
    y = layers.SpatialDropout2D(0.5, seed=1)(np.ones((4, 3, 3, 8), np.float32), training=True)
    per_channel = y.reshape(4, 9, 8)
    assert np.all(per_channel.min(axis=1) == per_channel.max(axis=1))  # one value per (sample, channel)
    assert set(np.unique(y)) <= {0.0, 2.0}
    y = layers.SpatialDropout2D(0.5, data_format="channels_first", seed=1)(np.ones((2, 8, 3, 3), np.float32),
                                                                          training=True)
    assert np.all(y.min(axis=(2, 3)) == y.max(axis=(2, 3)))


def test_fit_uses_batch_statistics_and_updates_only_the_moving_stats_by_momentum(rng):
    x = (rng.standard_normal((64, 5)) * 3 + 4).astype(np.float32)
    y = rng.standard_normal((64, 2)).astype(np.float32)
    bn = layers.BatchNormalization(momentum=0.5)
    model = pyminidl.Sequential([pyminidl.Input((5,)), bn, layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=False)
    # one step: moving = 0.5 * initial + 0.5 * batch statistics (biased variance), not an optimizer update
    np.testing.assert_allclose(bn.moving_mean, 0.5 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance, 0.5 + 0.5 * x.var(0), rtol=1e-5)
    assert len(model.trainable_weights) == 4 and len(model.non_trainable_weights) == 2
    before = [w.copy() for w in bn.weights]
    pred = model.predict(x, verbose=0)  # inference: the moving statistics, unchanged
    for a, b in zip(before, bn.weights):
        np.testing.assert_array_equal(a, b)
    ref = (x - bn.moving_mean) / np.sqrt(bn.moving_variance + 1e-3) * bn.gamma + bn.beta
    np.testing.assert_allclose(pred, model.layers[-1](ref), rtol=1e-4, atol=1e-5)


def test_frozen_batch_normalization_runs_in_inference_mode(rng):
    bn = layers.BatchNormalization()
    x = rng.standard_normal((8, 3)).astype(np.float32) + 2
    bn.build(x.shape)
    bn.trainable = False
    np.testing.assert_allclose(bn(x, training=True), x / np.sqrt(1 + 1e-3), rtol=1e-6)
    np.testing.assert_array_equal(bn.moving_mean, np.zeros(3))


def test_a_cnn_with_pooling_and_batch_norm_trains(rng):
    pyminidl.utils.set_random_seed(0)  # the weights and the shuffle too, not only the data: no flaky runs
    x = rng.standard_normal((128, 8, 8, 1)).astype(np.float32)
    labels = (x[:, :4].max(axis=(1, 2, 3)) > x[:, 4:].max(axis=(1, 2, 3))).astype(np.int64)
    model = pyminidl.Sequential([
        pyminidl.Input((8, 8, 1)), layers.BatchNormalization(), layers.MaxPooling2D((4, 8)), layers.Flatten(),
        layers.Dense(2, activation="softmax")])
    model.compile(optimizer=pyminidl.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, labels, batch_size=32, epochs=20, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert model.evaluate(x, labels, verbose=0)[1] > 0.9
