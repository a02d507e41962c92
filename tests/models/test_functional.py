"""Functional models: Keras 3's graph API trains, matches a NumPy forward from get_weights(), and fails clearly."""

import json
import os

import numpy as np
import pytest

import pyminidl as keras
from pyminidl import layers
from pyminidl.layers.base import Layer
from pyminidl.testing import numeric_grad


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _relu(z):
    return np.maximum(z, 0.0)


def test_issue_example_trains_and_its_probe_shares_the_weights(rng):
    inputs = keras.Input(shape=(784,))
    hidden = layers.Dense(100, activation="sigmoid")(inputs)
    outputs = layers.Dense(10, activation="softmax")(hidden)
    model = keras.Model(inputs, outputs)
    probe = keras.Model(model.input, model.layers[1].output)  # intermediate activations
    assert isinstance(model, keras.Model) and type(model).__name__ == "Functional"
    assert [type(l).__name__ for l in model.layers] == ["InputLayer", "Dense", "Dense"]
    assert probe.layers[1] is model.layers[1] and model.final_activation == "softmax"
    x = rng.random((96, 784), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 96)]
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=4, batch_size=32, validation_split=0.25, verbose=0)
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert history.history["loss"][-1] < history.history["loss"][0]
    w1, b1, w2, b2 = model.get_weights()
    h = _sigmoid(x.astype(np.float64) @ w1 + b1)
    np.testing.assert_allclose(probe.predict(x, verbose=0), h, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.predict(x, verbose=0), _softmax(h @ w2 + b2), rtol=1e-4, atol=1e-6)
    assert model.layers[1].input is model.input and model.layers[2].output is model.output


def _two_io_model():
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    h = layers.Concatenate()([layers.Dense(5, activation="relu", name="d5")(a), b])
    return keras.Model([a, b], [layers.Dense(2, name="out1")(h), layers.Dense(1, activation="sigmoid", name="out2")(h)])


def _two_io_numpy(model, xa, xb):
    w = model.get_weights()
    h = np.concatenate([_relu(xa @ w[0] + w[1]), xb], axis=-1)
    return h @ w[2] + w[3], _sigmoid(h @ w[4] + w[5])


def test_two_inputs_two_outputs_train_with_keras_log_names(rng):
    model = _two_io_model()
    xa, xb = rng.random((64, 4), dtype=np.float32), rng.random((64, 3), dtype=np.float32)
    y1, y2 = xa[:, :2] - xb[:, :1], (xa[:, :1] > 0.5).astype(np.float32)
    model.compile("adam", loss=["mse", "binary_crossentropy"], loss_weights=[1.0, 0.5],
                  metrics=[["mae"], ["accuracy"]])
    history = model.fit([xa, xb], [y1, y2], epochs=5, batch_size=16, verbose=0, validation_split=0.25)
    assert sorted(history.history) == sorted(
        ["loss", "out1_loss", "out1_mae", "out2_loss", "out2_accuracy"]
        + ["val_loss", "val_out1_loss", "val_out1_mae", "val_out2_loss", "val_out2_accuracy"])
    logs = history.history
    assert logs["loss"][-1] < logs["loss"][0]
    values = model.evaluate([xa, xb], [y1, y2], verbose=0)
    assert model.metrics_names == ["loss", "out1_loss", "out2_loss", "out1_mae", "out2_accuracy"]
    assert values[0] == pytest.approx(values[1] + 0.5 * values[2], rel=1e-5)  # the weighted sum
    p1, p2 = model.predict([xa, xb], verbose=0, batch_size=7)
    r1, r2 = _two_io_numpy(model, xa.astype(np.float64), xb.astype(np.float64))
    np.testing.assert_allclose(p1, r1, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(p2, r2, rtol=1e-4, atol=1e-5)
    # dicts by input name and output name, as Keras takes them
    model.compile("sgd", loss={"out1": "mse", "out2": "binary_crossentropy"}, metrics={"out1": ["mae"]})
    logs = model.fit({"a": xa, "b": xb}, {"out1": y1, "out2": y2}, verbose=0).history
    assert sorted(logs) == ["loss", "out1_loss", "out1_mae", "out2_loss"]
    assert model.train_on_batch({"a": xa, "b": xb}, {"out1": y1, "out2": y2}, return_dict=True).keys() == \
        {"loss", "out1_loss", "out1_mae", "out2_loss"}


def test_dict_outputs_predict_a_dict(rng):
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    h = layers.Concatenate()([a, b])
    model = keras.Model({"a": a, "b": b}, {"x": layers.Dense(2)(h), "y": layers.Dense(1)(h)})
    data = {"a": rng.random((10, 4), dtype=np.float32), "b": rng.random((10, 3), dtype=np.float32)}
    model.compile("adam", loss={"x": "mse", "y": "mse"})
    logs = model.fit(data, {"x": np.ones((10, 2)), "y": np.zeros((10, 1))}, verbose=0, batch_size=4).history
    assert sorted(logs) == ["loss", "x_loss", "y_loss"]
    out = model.predict(data, verbose=0, batch_size=3)
    assert set(out) == {"x", "y"} and out["x"].shape == (10, 2) and out["y"].shape == (10, 1)


def test_siamese_shares_one_set_of_weights(rng):
    shared = layers.Dense(4, activation="tanh", name="shared")
    left, right = keras.Input((3,), name="left"), keras.Input((3,), name="right")
    out = layers.Dense(1, activation="sigmoid")(layers.Subtract()([shared(left), shared(right)]))
    model = keras.Model([left, right], out)
    assert len(model.weights) == 4 and len(shared._inbound_nodes) == 2
    xl, xr = rng.standard_normal((64, 3)).astype(np.float32), rng.standard_normal((64, 3)).astype(np.float32)
    y = (np.abs(xl - xr).sum(axis=1, keepdims=True) > 2.0).astype(np.float32)
    model.compile("adam", "binary_crossentropy")
    logs = model.fit([xl, xr], y, epochs=6, batch_size=16, verbose=0).history
    assert logs["loss"][-1] < logs["loss"][0]
    k, b, k2, b2 = model.get_weights()
    d = np.tanh(xl.astype(np.float64) @ k + b) - np.tanh(xr.astype(np.float64) @ k + b)
    np.testing.assert_allclose(model.predict([xl, xr], verbose=0), _sigmoid(d @ k2 + b2), rtol=1e-4, atol=1e-5)


def test_nested_sequential_and_functional_models(rng):
    inner = keras.Sequential([keras.Input((4,)), layers.Dense(6, activation="relu"), layers.Dense(3)], name="inner")
    xi = keras.Input((3,))
    head = keras.Model(xi, layers.Dense(2, activation="tanh")(xi), name="head")
    x = keras.Input((4,))
    model = keras.Model(x, head(inner(x)), name="outer")
    assert [type(l).__name__ for l in model.layers] == ["InputLayer", "Sequential", "Functional"]
    data = rng.standard_normal((48, 4)).astype(np.float32)
    model.compile("adam", "mse")
    logs = model.fit(data, np.tanh(data[:, :2]), epochs=5, batch_size=16, verbose=0).history
    assert logs["loss"][-1] < logs["loss"][0]
    w = model.get_weights()
    ref = np.tanh((_relu(data @ w[0] + w[1]) @ w[2] + w[3]) @ w[4] + w[5])
    np.testing.assert_allclose(model.predict(data, verbose=0), ref, rtol=1e-4, atol=1e-5)
    lines = []
    model.summary(expand_nested=True, print_fn=lines.append)
    text = lines[0]
    assert "inner (Sequential)" in text and "   └ dense" in text and "head (Functional)" in text


class SmallNet(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = layers.Dense(8, activation="relu")
        self.out = layers.Dense(1)

    def call(self, x, training=None):
        return self.out(self.hidden(x))


def test_subclassed_model_builds_trains_and_summarises(rng):
    model = SmallNet()
    assert model.name == "small_net" and [type(l).__name__ for l in model.layers] == ["Dense", "Dense"]
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = x[:, :1] * 2.0 - x[:, 1:2]
    model.compile("adam", "mse")
    logs = model.fit(x, y, epochs=8, batch_size=16, verbose=0).history
    assert logs["loss"][-1] < logs["loss"][0]
    w = model.get_weights()
    np.testing.assert_allclose(model.predict(x, verbose=0), _relu(x @ w[0] + w[1]) @ w[2] + w[3],
                               rtol=1e-4, atol=1e-5)
    lines = []
    model.summary(print_fn=lines.append)
    assert "Trainable params: 41 " in lines[0] and "dense" in lines[0]


def _fanout_graph():
    """x fans out to three readers; a Dense shared by two branches; Add, Multiply and Concatenate merges."""
    x = keras.Input((3,), dtype="float64")
    d1 = layers.Dense(4, activation="tanh", dtype="float64")
    shared = layers.Dense(4, activation="sigmoid", dtype="float64")
    h = d1(x)
    a, b = shared(h), shared(layers.Dense(4, dtype="float64")(x))
    merged = layers.Multiply(dtype="float64")([layers.Add(dtype="float64")([a, b, h]), h])
    out = layers.Dense(2, dtype="float64")(layers.Concatenate(dtype="float64")([merged, x]))
    return keras.Model(x, out)


def test_gradients_of_a_graph_with_fan_out_and_merges_match_finite_differences(rng):
    with keras.backend.use_backend("numpy"):
        model = _fanout_graph()
        x = rng.standard_normal((5, 3))
        y, backward = model.forward(x, training=True)
        dy = rng.standard_normal(y.shape)
        model.zero_grads()
        dx = backward(dy)
        grads = model.gradients()

        def loss_at(v):
            return float((model._infer(v) * dy).sum())

        np.testing.assert_allclose(dx, numeric_grad(loss_at, x.copy()), rtol=1e-6, atol=1e-8)
        for w, g in zip(model.trainable_weights, grads):
            np.testing.assert_allclose(g, numeric_grad(lambda _: loss_at(x), w), rtol=1e-6, atol=1e-8)


def test_unused_outputs_cost_nothing_and_fan_out_is_summed(rng):
    model = _two_io_model()
    out2 = model.get_layer("out2")
    y, backward = model.forward([np.ones((2, 4), "float32"), np.ones((2, 3), "float32")], training=True)
    model.zero_grads()
    backward([np.ones((2, 2), "float32"), None])  # no gradient reaches out2: its backward never runs
    assert out2.grads == {} and set(model.get_layer("out1").grads) == {"kernel", "bias"}
    assert model.get_layer(index=0).name == "a" and model.get_layer("d5").units == 5


class _TwoOut(Layer):
    """A layer with two outputs and a tensor keyword (the LSTM(return_state, initial_state) protocol)."""

    def build(self, input_shape):
        self.w = self.add_weight("w", (input_shape[-1], 3), "glorot_uniform")

    def compute_output_shape(self, input_shape):
        return [tuple(input_shape[:-1]) + (3,), tuple(input_shape[:-1]) + (3,)]

    def forward(self, x, training=False, initial_state=None):
        h0 = 0.0 if initial_state is None else initial_state[0]
        z = x @ self.w + h0
        y, s = np.tanh(z), z * 2.0

        def backward(dys):
            dy, ds = (d if d is not None else np.zeros_like(z) for d in dys)
            dz = dy * (1.0 - y * y) + 2.0 * ds
            self.accumulate_grad("w", x.T @ dz)
            dx = dz @ self.w.T
            return dx if initial_state is None else (dx, [dz])

        return (y, s), backward


def test_several_outputs_and_tensor_keywords_in_a_graph(rng):
    with keras.backend.use_backend("numpy"):
        layer = _TwoOut(dtype="float64")
        x, h0 = keras.Input((4,), dtype="float64"), keras.Input((3,), dtype="float64")
        y, s = layer(x, initial_state=[h0])
        assert y.shape == s.shape == (None, 3) and s._keras_history.tensor_index == 1
        model = keras.Model([x, h0], layers.Add(dtype="float64")([y, s]))
        xv, hv = rng.standard_normal((2, 4)), rng.standard_normal((2, 3))
        out, backward = model.forward([xv, hv], training=True)
        dy = rng.standard_normal(out.shape)
        dx, dh = backward(dy)
        np.testing.assert_allclose(dh, numeric_grad(lambda v: float((model._infer([xv, v]) * dy).sum()), hv.copy()),
                                   rtol=1e-6)
        np.testing.assert_allclose(dx, numeric_grad(lambda v: float((model._infer([v, hv]) * dy).sum()), xv.copy()),
                                   rtol=1e-6)
        eager = layer(xv, initial_state=[hv])  # eager: a list, as Keras returns
        assert isinstance(eager, list) and len(eager) == 2
        with keras.GradientTape() as tape:  # the tape records one node with a tuple of outputs
            tape.watch([xv, hv])
            ya, sa = layer(xv, initial_state=[hv])
            total = keras.ops.sum(keras.ops.add(ya, sa) * dy)
        gx, gh = tape.gradient(total, [xv, hv])
        np.testing.assert_allclose(gx, dx, rtol=1e-10)
        np.testing.assert_allclose(gh, dh, rtol=1e-10)


class _MakesMask(Layer):
    def compute_mask(self, inputs, mask=None):
        return inputs[..., 0] != 0

    def forward(self, x, training=False):
        return x, lambda dy: dy


class _ReadsMask(Layer):
    supports_masking = True
    seen = None

    def forward(self, x, training=False, mask=None):
        type(self).seen = mask
        return x * 2.0, lambda dy: dy * 2.0


def test_masks_propagate_through_graphs_and_sequential():
    x = np.array([[[1.0], [0.0]], [[0.0], [2.0]]], "float32")
    inp = keras.Input((2, 1))
    model = keras.Model(inp, _ReadsMask()(_ReadsMask()(_MakesMask()(inp))))
    model.predict(x, verbose=0)
    np.testing.assert_array_equal(_ReadsMask.seen, x[..., 0] != 0)  # passed on by the first reader too
    _ReadsMask.seen = None
    keras.Sequential([keras.Input((2, 1)), _MakesMask(), _ReadsMask()]).predict(x, verbose=0)
    np.testing.assert_array_equal(_ReadsMask.seen, x[..., 0] != 0)


def test_config_round_trip_rebuilds_the_graph(rng):
    model = _two_io_model()
    config = json.loads(json.dumps(model.get_config()))
    assert config["input_layers"] == [["a", 0, 0], ["b", 0, 0]]
    assert config["output_layers"] == [["out1", 0, 0], ["out2", 0, 0]]
    cat = next(l for l in config["layers"] if l["class_name"] == "Concatenate")
    assert [t["config"]["keras_history"] for t in cat["inbound_nodes"][0]["args"][0]] == [["d5", 0, 0], ["b", 0, 0]]
    clone = keras.Model.from_config(config)
    clone.set_weights(model.get_weights())
    data = [rng.random((3, 4), dtype=np.float32), rng.random((3, 3), dtype=np.float32)]
    for got, ref in zip(clone.predict(data, verbose=0), model.predict(data, verbose=0)):
        np.testing.assert_array_equal(got, ref)


def test_a_keras_written_functional_config_loads_and_predicts_identically():
    path = os.path.join(os.path.dirname(__file__), "data", "keras_functional_two_io.json")
    with open(path) as f:
        saved = json.load(f)
    model = keras.Model.from_config(saved["config"])
    assert model.name == "twoio" and [l.name for l in model.layers] == \
        ["a", "d5", "b", "d3", "cat", "sh", "out1", "addo"]
    model.set_weights([np.asarray(w, np.float32) for w in saved["weights"]])
    got = model.predict([np.asarray(v, np.float32) for v in saved["x"]], verbose=0)
    for g, ref in zip(got, saved["predictions"]):
        np.testing.assert_allclose(g, ref, rtol=1e-6, atol=1e-6)
    assert json.loads(json.dumps(model.get_config()))["output_layers"] == saved["config"]["output_layers"]


KERAS_SIAMESE_SUMMARY = """\
Model: "siamese"
┏━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┓
┃ Layer (type)        ┃ Output Shape      ┃    Param # ┃ Connected to      ┃
┡━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━┩
│ left (InputLayer)   │ (None, 3)         │          0 │ -                 │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ right (InputLayer)  │ (None, 3)         │          0 │ -                 │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ shared (Dense)      │ (None, 4)         │         16 │ left[0][0],       │
│                     │                   │            │ right[0][0]       │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ subtract (Subtract) │ (None, 4)         │          0 │ shared[0][0],     │
│                     │                   │            │ shared[1][0]      │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ dense (Dense)       │ (None, 1)         │          5 │ subtract[0][0]    │
└─────────────────────┴───────────────────┴────────────┴───────────────────┘
 Total params: 21 (84.00 B)
 Trainable params: 21 (84.00 B)
 Non-trainable params: 0 (0.00 B)
"""


def test_summary_of_a_graph_is_keras_text():
    keras.layers.clear_session()
    shared = layers.Dense(4, activation="relu", name="shared")
    a, b = keras.Input((3,), name="left"), keras.Input((3,), name="right")
    out = layers.Dense(1, activation="sigmoid")(layers.Subtract()([shared(a), shared(b)]))
    lines = []
    keras.Model([a, b], out, name="siamese").summary(line_length=76, print_fn=lines.append)
    assert lines[0] == KERAS_SIAMESE_SUMMARY  # real Keras 3.15 output, same width
    lines = []
    keras.Model(a, shared(a)).summary(line_length=88, print_fn=lines.append)
    assert "Connected to" not in lines[0]  # a chain: Keras's three columns


def test_plot_model_writes_dot_and_renders_with_dot_when_present(tmp_path, monkeypatch, capsys):
    model = _two_io_model()
    target = tmp_path / "model.png"
    path = os.environ.get("PATH", "")
    monkeypatch.setenv("PATH", str(tmp_path / "nobin"))
    assert keras.utils.plot_model(model, str(target), show_shapes=True) == [str(tmp_path / "model.dot")]
    text = (tmp_path / "model.dot").read_text()
    assert "Output shape: (None, 8)" in text and text.count("->") == 5 and not target.exists()
    assert "was not written" in capsys.readouterr().out
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "dot").write_text('#!/bin/sh\n# fake Graphviz: -T<fmt> <in> -o <out>\ncp "$2" "$4"\n')
    (fake / "dot").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake) + os.pathsep + path)
    written = keras.utils.plot_model(model, str(tmp_path / "m.svg"), rankdir="LR", show_dtype=True)
    assert written == [str(tmp_path / "m.dot"), str(tmp_path / "m.svg")] and (tmp_path / "m.svg").exists()
    assert 'rankdir="LR"' in (tmp_path / "m.svg").read_text() and "rendered" in capsys.readouterr().out
    with pytest.raises(ValueError, match="rankdir"):
        keras.utils.plot_model(model, str(target), rankdir="XY")


def test_bad_graphs_and_inputs_are_clear_errors():
    d = layers.Dense(3, name="dd")
    d(keras.Input((4,)))
    with pytest.raises(ValueError, match=r'"dd".*value 4.*\(None, 5\).*layer \'d5\''):
        d(layers.Dense(5, name="d5")(keras.Input((2,))))  # reported at the call, naming both layers
    i1, i2 = keras.Input((3,)), keras.Input((3,))
    with pytest.raises(ValueError, match="Graph disconnected"):
        keras.Model(i1, layers.Add()([layers.Dense(3)(i1), i2]))
    with pytest.raises(ValueError, match="not connected to `inputs`"):
        keras.Model(i1, i2)
    with pytest.raises(ValueError, match="must be KerasTensors"):
        keras.Model(np.ones(3), layers.Dense(2)(i1))
    with pytest.raises(ValueError, match="both `shape` and `batch_shape`"):
        keras.Input(shape=(3,), batch_shape=(None, 3))
    with pytest.raises(ValueError, match="shape"):
        keras.Input()
    with pytest.raises(TypeError, match="bogus_kwarg"):
        layers.Dense(3)(i1, bogus_kwarg=1)  # the dropped-keyword case, symbolic
    with pytest.raises(TypeError, match="holds no values"):
        np.asarray(i1)
    model = keras.Model(i1, layers.Dense(2)(i1))
    with pytest.raises(ValueError, match=r"expected shape=\(None, 3\), found shape=\(2, 4\)"):
        model.predict(np.ones((2, 4)), verbose=0)
    with pytest.raises(ValueError, match="expects 1 input"):
        model([np.ones((2, 3)), np.ones((2, 3))])
    two = _two_io_model()
    two.compile("sgd", ["mse", "mse"])
    with pytest.raises(ValueError, match="2 outputs"):
        two.fit([np.ones((4, 4)), np.ones((4, 3))], np.ones((4, 2)), verbose=0)
    with pytest.raises(ValueError, match="one entry per model output"):
        two.compile("sgd", ["mse"])


def test_sub_models_from_intermediate_tensors_and_from_a_sequential(rng):
    i = keras.Input((4,))
    a = layers.Dense(3, activation="relu", name="first")(i)
    b = layers.Dense(2, name="second")(a)
    full = keras.Model(i, b)
    tail = keras.Model(a, b)  # a new InputLayer stands for `a`; "second" and its weights are shared
    assert [type(l).__name__ for l in tail.layers] == ["InputLayer", "Dense"] and tail.layers[1] is full.layers[2]
    x = rng.random((5, 4), dtype=np.float32)
    np.testing.assert_array_equal(tail.predict(full.layers[1](x), verbose=0), full.predict(x, verbose=0))
    assert keras.Model.from_config(tail.get_config()).layers[0].batch_shape == (None, 3)
    seq = keras.Sequential([keras.Input((4,)), layers.Dense(6, activation="relu"), layers.Dense(2)])
    maps = keras.Model(seq.input, [layer.output for layer in seq.layers])  # feature maps of every layer
    hidden, out = maps.predict(x, verbose=0)
    w = seq.get_weights()
    np.testing.assert_allclose(hidden, _relu(x @ w[0] + w[1]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out, seq.predict(x, verbose=0), rtol=1e-6)


class CustomStep(keras.Model):
    """A functional subclass overriding train_step (Keras's "customize fit") on two outputs."""

    def train_step(self, data):
        x, y = data[0], data[1]
        with keras.GradientTape() as tape:
            loss = self.compute_loss(y=y, y_pred=self(x, training=True))
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply(grads, self.trainable_weights)
        return self.compute_metrics(x, y, self(x))


def test_a_custom_train_step_on_two_outputs(rng):
    graph = _two_io_model()
    model = CustomStep(graph.inputs, graph.outputs)  # Keras's "customize what happens in fit()" idiom
    assert isinstance(model, keras.models.Functional) and model.name == "custom_step"
    model.compile("adam", loss=["mse", "binary_crossentropy"])
    xa, xb = rng.random((32, 4), dtype=np.float32), rng.random((32, 3), dtype=np.float32)
    logs = model.fit([xa, xb], [xa[:, :2], (xb[:, :1] > 0.5).astype(np.float32)], epochs=4, verbose=0).history
    assert sorted(logs) == ["loss", "out1_loss", "out2_loss"] and logs["loss"][-1] < logs["loss"][0]
