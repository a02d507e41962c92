"""Contract of the sequence layers: build, shapes, weights (names, Keras layout, counts), configs,
masks through Sequential and into the loss, stateful layers, multi-output rules, bad input."""

import numpy as np
import pytest

import pyminidl
from pyminidl import layers
from pyminidl.models import Sequential


def _x(n=2, t=5, i=3):
    return np.random.default_rng(0).standard_normal((n, t, i)).astype("float32")


@pytest.mark.parametrize("cls,gates", [(layers.SimpleRNN, 1), (layers.LSTM, 4), (layers.GRU, 3)])
def test_weights_shapes_and_config_round_trip(cls, gates):
    layer = cls(4, return_sequences=True)
    y = layer(_x())
    assert y.shape == (2, 5, 4)
    bias = (2, 12) if cls is layers.GRU else (gates * 4,)
    assert [w.shape for w in layer.weights] == [(3, gates * 4), (4, gates * 4), bias]
    assert [w.name for w in layer._tracked_variables()] == ["kernel", "recurrent_kernel", "bias"]
    clone = cls.from_config(layer.get_config())
    clone.build((None, 5, 3))
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(_x()), y)


def test_lstm_summary_count_and_unit_forget_bias():
    model = Sequential([layers.Input((10, 32)), layers.LSTM(32)])
    assert model.count_params() == 8320
    bias = model.layers[0].cell.bias
    np.testing.assert_array_equal(bias[32:64], 1.0)
    np.testing.assert_array_equal(bias[:32], 0.0)
    gru = layers.GRU(5, reset_after=False)
    gru.build((None, 3, 2))
    assert gru.count_params() == 3 * 5 * (2 + 5 + 1)


def test_return_state_returns_a_list_and_initial_state_is_used():
    lstm = layers.LSTM(3, return_state=True)
    out, h, c = lstm(_x())
    np.testing.assert_array_equal(out, h)
    h0, c0 = np.ones((2, 3), "float32"), np.full((2, 3), 0.5, "float32")
    out2, _, _ = lstm(_x(), initial_state=[h0, c0])
    assert not np.allclose(out, out2)
    with pytest.raises(ValueError, match=r"initial_state.*\(2, 3\).*\(2, 4\)"):
        lstm(_x(), initial_state=[np.ones((2, 4), "float32"), c0])


def test_go_backwards_reverses_the_sequence():
    a, b = layers.GRU(3, return_sequences=True), layers.GRU(3, go_backwards=True, return_sequences=True)
    x = _x()
    a.build(x.shape)
    b.build(x.shape)
    b.set_weights(a.get_weights())
    np.testing.assert_allclose(b(x), a(x[:, ::-1].copy()), rtol=1e-6)


def test_stateful_carries_states_and_reset_states():
    layer = layers.SimpleRNN(3, stateful=True)
    x = _x()
    first, second = layer(x), layer(x)
    assert not np.allclose(first, second)
    layer.reset_states()
    np.testing.assert_allclose(layer(x), first, rtol=1e-6)
    with pytest.raises(ValueError, match=r"stateful with batch size 2.*\(3, 5, 3\)"):
        layer(_x(n=3))


def test_bad_inputs_name_the_layer_and_shapes():
    with pytest.raises(ValueError, match=r'"lstm_bad".*expected ndim=3, found ndim=2'):
        layers.LSTM(3, name="lstm_bad")(np.zeros((4, 5), "float32"))
    emb = layers.Embedding(10, 2, name="emb")
    with pytest.raises(ValueError, match=r"emb.*input_dim=10.*largest id 12"):
        emb(np.array([[1, 12, 3]]))
    with pytest.raises(ValueError, match=r"emb.*largest id 3, smallest id -1"):
        emb(np.array([[1, -1, 3]]))
    with pytest.raises(ValueError, match="fractional"):
        emb(np.array([[1.5, 2.0]]))
    np.testing.assert_array_equal(emb(np.array([[1.0, 2.0]])), emb(np.array([[1, 2]])))
    with pytest.raises(ValueError, match="activation.*gelu"):
        layers.LSTM(3, activation="no_such_activation")


def test_sequential_refuses_a_multi_output_layer():
    with pytest.raises(ValueError, match="single output tensor"):
        Sequential([layers.Input((4, 2)), layers.LSTM(3, return_state=True)])


def test_masks_flow_through_sequential_into_the_rnn():
    ids = np.array([[3, 4, 0, 0], [5, 0, 0, 0]])
    emb = layers.Embedding(8, 2, mask_zero=True)
    lstm = layers.LSTM(3)
    model = Sequential([layers.Input((4,), dtype="int32"), emb, lstm])
    y = model.predict(ids, verbose=0)
    # padded steps are skipped: the output equals the run on the unpadded prefix
    np.testing.assert_allclose(y[:1], lstm(emb(ids[:1, :2])), rtol=1e-6)
    np.testing.assert_allclose(y[1:], lstm(emb(ids[1:, :1])), rtol=1e-6)
    masked = Sequential([layers.Input((4, 1)), layers.Masking(), layers.SimpleRNN(2)])
    x = np.array([[[1.0], [2.0], [0.0], [0.0]]], "float32")
    np.testing.assert_allclose(masked.predict(x, verbose=0), masked.layers[1](x[:, :2]), rtol=1e-6)


def test_the_output_mask_weighs_the_loss():
    model = Sequential([layers.Input((3,), dtype="int32"), layers.Embedding(5, 1, mask_zero=True,
                                                                            embeddings_initializer="ones"),
                        layers.SimpleRNN(1, return_sequences=True, activation="linear",
                                         kernel_initializer="ones", recurrent_initializer="zeros")])
    model.compile(optimizer="sgd", loss="mse")
    ids = np.array([[1, 2, 0]])
    y = np.zeros((1, 3, 1), "float32")
    # outputs 1, 1, 1 (the masked step repeats); Keras averages over the two valid steps only
    loss = model.evaluate(ids, y, verbose=0)
    assert loss == pytest.approx(1.0, rel=1e-5)


def test_bidirectional_and_time_distributed_shapes_and_configs():
    bi = layers.Bidirectional(layers.LSTM(3, return_sequences=True), merge_mode="concat")
    assert bi(_x()).shape == (2, 5, 6)
    assert [l.name for l in (bi.forward_layer, bi.backward_layer)] == ["forward_" + bi.forward_layer.name[8:],
                                                                     "backward_" + bi.forward_layer.name[8:]]
    assert bi.backward_layer.go_backwards
    assert len(bi.weights) == 6
    clone = layers.deserialize(layers.serialize(bi))
    assert clone.merge_mode == "concat" and clone.backward_layer.go_backwards
    assert layers.Bidirectional(layers.GRU(2), merge_mode=None)(_x())[0].shape == (2, 2)
    td = layers.TimeDistributed(layers.Dense(4))
    assert td(_x()).shape == (2, 5, 4)
    assert Sequential([layers.Input((5, 3)), td]).output_shape == (None, 5, 4)
    with pytest.raises(ValueError, match="merge mode"):
        layers.Bidirectional(layers.LSTM(2), merge_mode="max")


def test_fit_reduces_the_loss():
    rng = np.random.default_rng(0)
    x = rng.integers(1, 20, (64, 6))
    y = (x[:, -1] > 10).astype("float32")
    model = Sequential([layers.Input((6,), dtype="int32"), layers.Embedding(20, 8), layers.GRU(8),
                        layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=pyminidl.optimizers.Adam(0.02), loss="binary_crossentropy")
    hist = model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    assert hist.history["loss"][-1] < 0.8 * hist.history["loss"][0]


class MinimalRNNCell(layers.Layer):
    """Keras's custom-cell example: h_t = x_t W + h_{t-1} R."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform", name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), initializer="orthogonal",
                                                name="recurrent_kernel")

    def call(self, inputs, states):
        out = pyminidl.ops.matmul(inputs, self.kernel) + pyminidl.ops.matmul(states[0], self.recurrent_kernel)
        return out, [out]


def test_rnn_with_a_custom_cell_matches_the_fused_simple_rnn():
    x = _x()
    mask = np.array([[True, True, True, False, False], [False, True, True, True, True]])
    custom = layers.RNN(MinimalRNNCell(3), return_sequences=True, go_backwards=True)
    fused = layers.SimpleRNN(3, activation="linear", use_bias=False, return_sequences=True, go_backwards=True)
    custom.build(x.shape)
    fused.build(x.shape)
    fused.set_weights(custom.get_weights())
    np.testing.assert_allclose(custom(x, mask=mask), fused(x, mask=mask), rtol=1e-5, atol=1e-6)
    y, backward = custom._forward_full(x, False, mask=mask)
    dy = np.random.default_rng(1).standard_normal(y.shape).astype("float32")
    dx = backward(dy)
    fy, fback = fused._forward_full(x, False, mask=mask)
    np.testing.assert_allclose(dx, fback(dy), rtol=1e-4, atol=1e-5)
    for a, b in zip(custom.gradients(), fused.gradients()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


STEP_KINDS = [(layers.SimpleRNN, {}), (layers.LSTM, {}), (layers.GRU, {}), (layers.GRU, {"reset_after": False})]


def _biased(cls, kw, x, **more):
    layer = cls(4, return_sequences=True, **kw, **more)
    layer.build(x.shape)
    layer.cell.bias[...] = np.random.default_rng(3).standard_normal(layer.cell.bias.shape).astype("float32")
    return layer


@pytest.mark.parametrize("cls,kw", STEP_KINDS)
def test_step_path_with_unit_masks_matches_the_fused_kernels(cls, kw, monkeypatch):
    # recurrent_dropout in training runs cell.call per step; with every mask drawn as ones
    # (rate 0 in the draw) it must give the fused kernels' sequence, masks and states included.
    x, mask = _x(), np.array([[True, True, True, False, False], [False, True, True, True, True]])
    stepped = _biased(cls, kw, x, recurrent_dropout=0.5, dropout=0.5)
    fused = _biased(cls, kw, x)
    fused.set_weights(stepped.get_weights())
    draw = stepped.cell.draw_step_masks
    monkeypatch.setattr(stepped.cell, "draw_step_masks",
                        lambda n, f, dtype, training: (draw(n, f, dtype, training),
                                                       setattr(stepped.cell, "_step_masks", tuple(
                                                           [np.ones_like(m) for m in ms] for ms in
                                                           stepped.cell._step_masks))))
    assert not stepped.cell.fused(True) and fused.cell.fused(True)
    h0 = [np.random.default_rng(4).standard_normal((2, 4)).astype("float32") for _ in stepped._state_sizes()]
    got, back = stepped._forward_full(x, True, mask=mask, initial_state=h0)
    want, fback = fused._forward_full(x, True, mask=mask, initial_state=h0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    dy = np.random.default_rng(5).standard_normal(got.shape).astype("float32")
    (dx, dh0), (fdx, fdh0) = back(dy), fback(dy)
    np.testing.assert_allclose(dx, fdx, rtol=1e-4, atol=1e-5)
    for a, b in zip(dh0, fdh0):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for a, b in zip(stepped.gradients(), fused.gradients()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls,kw", STEP_KINDS)
def test_recurrent_dropout_of_one_cuts_the_recurrence(cls, kw):
    # rate 1: every state mask is 0, so h_{t-1} enters no recurrent product (GRU's z h_{t-1} term
    # still reads the undropped state, as Keras 3); the same as a zero recurrent kernel.
    x = _x()
    dropped = _biased(cls, kw, x, recurrent_dropout=1.0)
    plain = _biased(cls, kw, x)
    weights = dropped.get_weights()
    plain.set_weights([weights[0], np.zeros_like(weights[1])] + weights[2:])
    np.testing.assert_allclose(dropped(x, training=True), plain(x), rtol=1e-5, atol=1e-6)
    plain.set_weights(weights)
    np.testing.assert_allclose(dropped(x), plain(x), rtol=1e-6, atol=1e-7)  # inference: no dropout
    assert not np.allclose(dropped(x, training=True), dropped(x))


def test_recurrent_dropout_masks_are_drawn_once_per_call():
    x = _x()
    layer = layers.LSTM(4, recurrent_dropout=0.5, return_sequences=True, seed=1)
    first, second = layer(x, training=True), layer(x, training=True)
    assert not np.allclose(first, second)  # a new mask each call
    cell = layer.cell
    cell.draw_step_masks(2, x.shape[2], x.dtype, True)
    dm, rm = cell._step_masks
    assert dm is None and len(rm) == 4 and all(m.shape == (2, 4) for m in rm)
    assert set(np.unique(np.concatenate(rm))) <= {0.0, 2.0}


def test_custom_cell_return_state_and_stateful():
    x = _x()
    layer = layers.RNN(MinimalRNNCell(3), return_state=True, stateful=True)
    out, h = layer(x)
    np.testing.assert_allclose(out, h)
    np.testing.assert_allclose(layer.states[0], h)
    fresh = layers.RNN(MinimalRNNCell(3), return_state=True)
    fresh.build(x.shape)
    fresh.set_weights(layer.get_weights())
    out2, _ = layer(x)  # continues from the kept state
    np.testing.assert_allclose(out2, fresh(x, initial_state=[h])[0], rtol=1e-5, atol=1e-6)
    layer.reset_states()
    np.testing.assert_allclose(layer(x)[0], fresh(x)[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="initial_state"):
        fresh(x, initial_state=[np.zeros((2, 5), "float32")])


def test_bidirectional_initial_state_is_split_forward_then_backward():
    x = _x()
    bi = layers.Bidirectional(layers.LSTM(3, return_sequences=True))
    bi.build(x.shape)
    rng = np.random.default_rng(7)
    states = [rng.standard_normal((2, 3)).astype("float32") for _ in range(4)]
    got = bi(x, initial_state=states)
    fwd = bi.forward_layer(x, initial_state=states[:2])
    bwd = bi.backward_layer(x, initial_state=states[2:])[:, ::-1]
    np.testing.assert_allclose(got, np.concatenate([fwd, bwd], axis=-1), rtol=1e-6, atol=1e-6)
    assert not np.allclose(got, bi(x))
    with pytest.raises(ValueError, match=r"Bidirectional.*4 arrays.*Received: 3"):
        bi(x, initial_state=states[:3])


def test_bidirectional_initial_state_in_a_functional_model():
    x_in, s_in = layers.Input((5, 3)), [layers.Input((4,)) for _ in range(2)]
    bi = layers.Bidirectional(layers.GRU(4))
    model = pyminidl.Model([x_in] + s_in, bi(x_in, initial_state=s_in))
    rng = np.random.default_rng(8)
    xs = [rng.standard_normal((6, 5, 3)).astype("float32")] + [rng.standard_normal((6, 4)).astype("float32")
                                                               for _ in range(2)]
    np.testing.assert_allclose(model.predict(xs, verbose=0), bi(xs[0], initial_state=xs[1:]), rtol=1e-5, atol=1e-6)
    model.compile(optimizer="adam", loss="mse")
    model.fit(xs, np.zeros((6, 8), "float32"), epochs=1, verbose=0)


def test_the_output_mask_weighs_the_compiled_mean_metrics():
    # Keras 3: a MeanMetricWrapper applies y_pred's mask (reduction "sum": masked entries weigh 0,
    # valid ones 1), times the sample weights for weighted_metrics; the loss is unchanged.
    rng = np.random.default_rng(9)
    x = rng.integers(1, 9, (8, 6))
    x[:4, 3:] = 0  # post-padding
    x[4:, :2] = 0  # pre-padding
    y = rng.integers(0, 2, (8, 6, 1)).astype("float32")
    sw = rng.random(8).astype("float32")
    model = Sequential([layers.Input((6,), dtype="int32"), layers.Embedding(10, 4, mask_zero=True),
                        layers.LSTM(3, return_sequences=True), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy", "mse"],
                  weighted_metrics=["accuracy"])
    logs = model.evaluate(x, y, sample_weight=sw, batch_size=8, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0)[..., 0]
    mask = (x != 0).astype("float64")
    hit = ((p > 0.5) == (y[..., 0] > 0.5)).astype("float64")
    np.testing.assert_allclose(logs["accuracy"], (hit * mask).sum() / mask.sum(), rtol=1e-6)
    np.testing.assert_allclose(logs["mse"], (((p - y[..., 0]) ** 2) * mask).sum() / mask.sum(), rtol=1e-5)
    weights = mask * sw[:, None]
    np.testing.assert_allclose(logs["weighted_accuracy"], (hit * weights).sum() / weights.sum(), rtol=1e-6)
    bce = -(y[..., 0] * np.log(p) + (1 - y[..., 0]) * np.log(1 - p))
    np.testing.assert_allclose(logs["loss"], (bce * weights).sum() / mask.sum(), rtol=1e-4)
