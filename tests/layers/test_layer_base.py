"""Layer base contract: kwargs, naming, add_weight, custom call()-based layers, trainable, config."""

import numpy as np
import pytest

import pyminidl
from pyminidl import layers, ops


@pytest.fixture(autouse=True)
def _fresh_names():
    layers.clear_session()


class Scale(layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")
        self.frozen = self.add_weight("frozen", (1,), "zeros", trainable=False)

    def call(self, x):
        return ops.multiply(ops.multiply(x, self.w), self.factor)


def test_unknown_kwargs_raise_type_error():
    with pytest.raises(TypeError, match="Unrecognized keyword arguments passed to Layer"):
        layers.Layer(foo=1)


def test_snake_case_auto_names():
    assert Scale().name == "scale"
    assert Scale().name == "scale_1"
    assert layers.InputLayer(shape=(1,)).name == "input_layer"


def test_custom_layer_weights_and_auto_config():
    layer = Scale(3.0)
    y = layer(np.ones((2, 4), np.float32))
    np.testing.assert_allclose(y, np.full((2, 4), 3.0))
    assert [w.shape for w in layer.trainable_weights] == [(4,)]
    assert [w.shape for w in layer.non_trainable_weights] == [(1,)]
    assert layer.weight_names == ["scale/w", "scale/frozen"]
    cfg = layer.get_config()
    assert cfg["factor"] == 3.0 and cfg["name"] == "scale"
    assert Scale.from_config(cfg).factor == 3.0


def test_custom_layer_trains_through_forward(rng):
    layer = Scale(dtype="float64")
    x = rng.standard_normal((3, 4))
    layer(x)
    y, backward = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = backward(dy)
    np.testing.assert_allclose(dx, dy * layer.w * 2.0)
    np.testing.assert_allclose(layer.gradients()[0], (dy * x * 2.0).sum(0))


def test_custom_layer_trains_in_a_model(rng):
    pyminidl.random.seed(0)
    model = pyminidl.Sequential([layers.Input((3,)), Scale(1.0), layers.Dense(1)])
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]])).astype(np.float32)
    model.compile(optimizer=pyminidl.optimizers.Adam(0.05), loss="mse")
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=30, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.5 * first
    assert not np.allclose(model.layers[0].w, 1.0)


def test_add_weight_keras3_and_contract_signatures():
    layer = layers.Layer()
    a = layer.add_weight((2, 3), "zeros", name="a")
    b = layer.add_weight("b", (4,), "ones")
    c = layer.add_weight(shape=(1,))
    assert a.shape == (2, 3) and b.shape == (4,) and c.shape == (1,)
    assert [n.split("/")[1] for n in layer.weight_names] == ["a", "b", "variable"]
    assert a.dtype == np.float32


def test_sublayers_are_tracked():
    class Two(layers.Layer):
        def __init__(self):
            super().__init__()
            self.a = layers.Dense(2)
            self.b = layers.Dense(1)

        def call(self, x):
            return self.b(self.a(x))

    m = Two()
    m(np.ones((1, 3), np.float32))
    assert len(m.weights) == 4 and m.count_params() == 3 * 2 + 2 + 2 + 1
    m.trainable = False
    assert m.trainable_weights == [] and not m.a.trainable


def test_set_floatx_float64_weights():
    pyminidl.config.set_floatx("float64")
    try:
        layer = layers.Dense(2)
        layer.build((None, 2))
        assert layer.kernel.dtype == np.float64
    finally:
        pyminidl.config.set_floatx("float32")


def test_apply_constraints():
    layer = layers.Dense(2, kernel_constraint=lambda w: np.clip(w, -0.01, 0.01))
    layer.build((None, 3))
    layer.apply_constraints()
    assert np.abs(layer.kernel).max() <= 0.01


def test_layers_serialize_deserialize():
    layer = layers.Dense(3, activation="relu")
    layer.build((None, 2))
    cfg = layers.serialize(layer)
    assert cfg["class_name"] == "Dense" and cfg["build_config"] == {"input_shape": [None, 2]}
    clone = layers.deserialize(cfg)
    assert clone.built and clone.kernel.shape == (2, 3)
    with pytest.raises(ValueError, match="Unknown layer"):
        layers.deserialize({"class_name": "Nope", "config": {}})


def test_sublayers_in_a_list_are_tracked(rng):
    class Stack(layers.Layer):
        def __init__(self):
            super().__init__()
            self.blocks = [layers.Dense(3, activation="relu"), layers.Dense(2)]

        def call(self, x):
            for block in self.blocks:
                x = block(x)
            return x

    m = Stack()
    y, backward = m._forward_full(rng.standard_normal((4, 5)).astype(np.float32))
    backward(np.ones_like(y))
    assert len(m.trainable_weights) == 4
    assert all(g.any() for g in m.gradients())


def test_get_config_needs_override_for_non_json_args():
    class Holder(layers.Layer):
        def __init__(self, fn, **kwargs):
            super().__init__(**kwargs)
            self.fn = fn

    with pytest.raises(NotImplementedError, match="Override get_config"):
        Holder(lambda v: v).get_config()
    assert layers.Layer(name="plain").get_config() == {"name": "plain", "trainable": True, "dtype": "float32"}


def test_string_constraint_rejected():
    with pytest.raises(ValueError, match="kernel_constraint"):
        layers.Dense(2, kernel_constraint="max_norm")


def test_numpy_call_without_a_gradient_is_a_clear_error():
    class NumpyLayer(layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")

        def call(self, x):
            return np.sin(x * self.w)  # pyminidl has no gradient for numpy.sin

    layer = NumpyLayer()
    x = np.ones((2, 3), np.float32)
    np.testing.assert_allclose(layer(x), np.sin(x))  # inference works
    y, backward = layer._forward_full(x)
    with pytest.raises(ValueError, match="numpy.sin was applied to a value recorded|not connected to its input"):
        backward(np.ones_like(y))


def test_numpy_arithmetic_in_call_is_recorded():
    # x is a traced view inside call(): NumPy operators and ufuncs with an op route are taped.
    class NumpyLayer(layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")

        def call(self, x):
            return np.tanh(x * self.w) + 0.5 * x

    rng = np.random.default_rng(0)
    layer = NumpyLayer(dtype="float64")
    x = rng.standard_normal((2, 3))
    layer(x)
    dy = rng.standard_normal((2, 3))
    y, backward = layer._forward_full(x)
    dx = backward(dy)
    t = np.tanh(x * layer.w)
    np.testing.assert_allclose(dx, dy * ((1 - t**2) * layer.w + 0.5), rtol=1e-10)
    np.testing.assert_allclose(layer.grads["variable"] if "variable" in layer.grads else list(layer.grads.values())[0],
                               (dy * (1 - t**2) * x).sum(axis=0), rtol=1e-10)

def test_weightless_numpy_call_is_fine():
    class Preprocess(layers.Layer):
        def call(self, x):
            return np.clip(x, 0, 1)

    y = Preprocess()(np.full((2, 3), 5.0, np.float32))
    np.testing.assert_array_equal(y, np.ones((2, 3)))


def test_numpy_activation_is_a_clear_error():
    layer = layers.Dense(2, activation=np.tanh)
    y, backward = layer._forward_full(np.ones((1, 2), np.float32))
    with pytest.raises(ValueError, match="not differentiable"):
        backward(np.ones_like(y))
