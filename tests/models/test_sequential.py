"""Sequential: construction, add/pop, building, forward/backward, final_logits, config."""

import numpy as np
import pytest

import pyminidl
from pyminidl import layers
from pyminidl.models import Sequential
from pyminidl.layers.base import forward_options


@pytest.fixture(autouse=True)
def _fresh_names():
    layers.clear_session()


def _mlp():
    return Sequential([layers.Dense(10, input_dim=2, activation="relu"), layers.Dense(10), layers.Dense(1)])


def test_list_constructor_builds_from_input_dim():
    model = _mlp()
    assert model.built and model.name == "sequential"
    assert model.input_shape == (None, 2) and model.output_shape == (None, 1)
    assert [l.name for l in model.layers] == ["dense", "dense_1", "dense_2"]
    assert model.count_params() == 151
    assert len(model.weights) == 6 and len(model.trainable_weights) == 6


def test_input_as_first_element_and_add():
    model = Sequential(name="m")
    model.add(pyminidl.Input(shape=(4,)))
    model.add(layers.Dense(3))
    assert model.built and model.layers[0].kernel.shape == (4, 3)
    model.add(layers.Dense(2, activation="softmax"))
    assert model.output_shape == (None, 2) and model.final_activation == "softmax"
    assert len(model.layers) == 2  # no InputLayer in .layers (Keras 3)


def test_unbuilt_model_builds_on_first_call(rng):
    model = Sequential([layers.Dense(3), layers.Dense(1)])
    assert not model.built
    with pytest.raises(AttributeError, match="no defined input shape"):
        model.input_shape  # noqa: B018
    y = model(rng.standard_normal((5, 7)).astype(np.float32))
    assert y.shape == (5, 1) and model.built and model.input_shape == (None, 7)


def test_build_explicit_and_missing_shape():
    model = Sequential([layers.Dense(3)])
    with pytest.raises(ValueError, match="input_shape"):
        model.build()
    model.build((None, 5))
    assert model.layers[0].kernel.shape == (5, 3)


def test_pop():
    model = _mlp()
    last = model.pop()
    assert last.name == "dense_2" and model.output_shape == (None, 10)
    assert len(model.trainable_weights) == 4
    model.pop()
    model.pop()
    with pytest.raises(TypeError, match="no layers"):
        model.pop()


def test_add_errors():
    model = Sequential([layers.Dense(2, name="a")])
    with pytest.raises(ValueError, match="unique names"):
        model.add(layers.Dense(2, name="a"))
    with pytest.raises(ValueError, match="Only instances of `keras.Layer`"):
        model.add("dense")
    with pytest.raises(ValueError, match="first layer"):
        model.add(pyminidl.Input((3,)))


def test_forward_backward_matches_layers(rng):
    model = _mlp()
    x = rng.standard_normal((8, 2)).astype(np.float32)
    y, backward = model.forward(x, training=True)
    np.testing.assert_allclose(y, model(x), rtol=1e-6)
    model.zero_grads()
    dx = backward(np.ones_like(y))
    assert dx.shape == x.shape
    grads = model.gradients()
    assert [g.shape for g in grads] == [w.shape for w in model.trainable_weights]
    np.testing.assert_allclose(grads[-1], [8.0])
    model.zero_grads()
    assert all((g == 0).all() for g in model.gradients())


def test_need_dx_false_skips_input_gradient(rng):
    model = _mlp()
    with forward_options(need_dx=False):  # the trainer's per-step decision, carried to the first layer
        y, backward = model.forward(rng.standard_normal((4, 2)).astype(np.float32))
    assert backward(np.ones_like(y)) is None
    assert model.layers[0].grads["kernel"].shape == (2, 10)


def test_final_logits_skips_last_softmax(rng):
    model = Sequential([layers.Input((3,)), layers.Dense(4, activation="softmax")])
    x = rng.standard_normal((2, 3)).astype(np.float32)
    probs, _ = model.forward(x)
    with forward_options(logits=True):
        logits, _ = model.forward(x)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(probs, e / e.sum(-1, keepdims=True), rtol=1e-5)
    assert model.final_activation == "softmax"
    assert Sequential([layers.Dense(1)]).final_activation == "linear"
    assert Sequential().final_activation is None


def test_losses_collects_regularizers(rng):
    model = Sequential([layers.Input((3,)), layers.Dense(2, kernel_regularizer=pyminidl.regularizers.L2(0.1)),
                        layers.Dense(1, activity_regularizer="l1")])
    model.forward(rng.standard_normal((4, 3)).astype(np.float32))
    assert len(model.losses) == 2
    k = model.layers[0].kernel
    assert model.losses[0] == pytest.approx(0.1 * float((k * k).sum()), rel=1e-5)


def test_trainable_false_freezes_all():
    model = _mlp()
    model.layers[0].trainable = False
    assert len(model.trainable_weights) == 4 and len(model.non_trainable_weights) == 2
    model.trainable = False
    assert model.trainable_weights == [] and len(model.weights) == 6


def test_set_get_weights_roundtrip(rng):
    a, b = _mlp(), _mlp()
    b.set_weights(a.get_weights())
    x = rng.standard_normal((3, 2)).astype(np.float32)
    np.testing.assert_array_equal(a(x), b(x))


def test_get_config_from_config(rng):
    model = Sequential([pyminidl.Input((4,)), layers.Dense(3, activation="relu"), layers.Dropout(0.5),
                        layers.Dense(2, activation="softmax")], name="clf")
    cfg = model.get_config()
    assert cfg["name"] == "clf" and [c["class_name"] for c in cfg["layers"]] == [
        "InputLayer", "Dense", "Dropout", "Dense"]
    clone = Sequential.from_config(cfg)
    assert clone.built and clone.count_params() == model.count_params()
    assert [l.name for l in clone.layers] == [l.name for l in model.layers]
    assert clone.get_config() == cfg
    clone.set_weights(model.get_weights())
    x = rng.standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_array_equal(clone(x), model(x))


def test_nested_sequential(rng):
    inner = Sequential([layers.Dense(3, activation="tanh")], name="inner")
    outer = Sequential([layers.Input((2,)), inner, layers.Dense(1)])
    assert outer.count_params() == 9 + 4
    y, backward = outer.forward(rng.standard_normal((5, 2)).astype(np.float32))
    backward(np.ones_like(y))
    assert len(outer.gradients()) == 4 and inner.layers[0].grads


def test_fit_converges_on_a_tiny_regression(rng):
    pyminidl.random.seed(0)
    x = rng.standard_normal((128, 2)).astype(np.float32)
    y = (x[:, :1] * 2 - x[:, 1:] + 0.5).astype(np.float32)
    model = Sequential([layers.Dense(8, input_dim=2, activation="tanh"), layers.Dense(1)])
    model.compile(optimizer=pyminidl.optimizers.Adam(0.05), loss="mse")
    model.fit(x, y, epochs=40, batch_size=32, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.05


def test_wrong_feature_count_on_built_model():
    model = _mlp()
    with pytest.raises(ValueError, match='layer "dense".*expected axis -1 of input shape to have value 2'):
        model.predict(np.zeros((4, 3), np.float32), verbose=0)


def test_get_layer():
    model = _mlp()
    assert model.get_layer("dense_1") is model.layers[1]
    assert model.get_layer(index=2) is model.layers[2]
    with pytest.raises(ValueError, match="No such layer"):
        model.get_layer("x")
    with pytest.raises(ValueError, match="either"):
        model.get_layer()


def test_custom_call_last_layer_disables_logits_shortcut():
    class Wrapped(layers.Dense):
        def call(self, x):
            return super().call(x)

    model = Sequential([layers.Input((3,)), Wrapped(2, activation="softmax")])
    assert model.final_activation is None


KERAS3_CONFIG = {
    "name": "sequential_7", "trainable": True,
    "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None},
    "layers": [
        {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
         "config": {"batch_shape": [None, 4], "dtype": "float32", "sparse": False, "ragged": False,
                    "name": "input_layer_3"}},
        {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
         "build_config": {"input_shape": [None, 4]},
         "config": {"name": "dense_9", "trainable": True,
                    "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
                              "registered_name": None},
                    "units": 8, "activation": "relu", "use_bias": True,
                    "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform",
                                           "config": {"seed": None}, "registered_name": None},
                    "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {},
                                         "registered_name": None},
                    "kernel_regularizer": None, "bias_regularizer": None, "kernel_constraint": None,
                    "bias_constraint": None, "lora_rank": None}},
    ],
    "build_input_shape": [None, 4],
}


def test_from_keras3_written_config():
    model = Sequential.from_config(KERAS3_CONFIG)
    assert model.name == "sequential_7" and model.built and model.count_params() == 40
    assert model.layers[0].name == "dense_9" and model.layers[0].dtype == "float32"


def test_sublayers_is_read_only_not_a_write_that_vanishes():
    model = Sequential([layers.Input((3,)), layers.Dense(2)])
    with pytest.raises(AttributeError):
        model._sublayers = []
    assert [l.name for l in model._sublayers] == [l.name for l in model.layers]
