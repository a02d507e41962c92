"""Inference keeps no training memory; training closures keep only what backward reads; the fused
loss hands its softmax to the metrics; model-level forward options reach layers that know none."""

import tracemalloc

import numpy as np

from pyminidl import activations, losses
from pyminidl.backend import get_backend
from pyminidl.layers import Activation, Dense, Input, Layer
from pyminidl.models import Sequential


def test_predict_peak_memory_is_a_few_activations(rng):
    batch, width, n = 256, 1024, 512
    model = Sequential([Input((width,))] + [Dense(width, activation="relu") for _ in range(12)])
    x = rng.standard_normal((n, width)).astype("float32")
    model.predict(x[:batch], batch_size=batch, verbose=0)  # warm caches outside the measurement
    tracemalloc.start()
    try:
        model.predict(x, batch_size=batch, verbose=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    activation = batch * width * 4
    outputs = 2 * n * width * 4  # the per-batch outputs and their concatenation
    # the training forward keeps all 12 activations (and a backward each): >= 12 activations per batch
    assert peak < outputs + 4 * activation, f"predict peaked at {peak / 2**20:.1f} MiB"


def test_evaluate_runs_the_inference_path(rng, monkeypatch):
    model = Sequential([Input((3,)), Dense(2)])
    model.compile(loss="mse")
    monkeypatch.setattr(type(model), "forward", lambda *a, **k: (_ for _ in ()).throw(AssertionError("forward")))
    model.evaluate(rng.standard_normal((4, 3)).astype("float32"), np.zeros((4, 2), "float32"), verbose=0)


def _closure_values(fn):
    return [c.cell_contents for c in fn.__closure__ or ()]


def test_activation_backward_keeps_only_what_it_reads(rng):
    x = rng.standard_normal((4, 5)).astype("float32")
    for name, keeps_x, keeps_y in (("tanh", False, True), ("sigmoid", False, True), ("relu", True, False),
                                   ("gelu", True, False), ("elu", True, True)):
        y, backward = activations._resolve(name)[1](x)
        held = _closure_values(backward)
        assert any(v is x for v in held) == keeps_x, name
        assert any(v is y for v in held) == keeps_y, name


def test_fused_step_hands_the_loss_softmax_to_the_metrics(rng, monkeypatch):
    model = Sequential([Input((4,)), Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    calls = []
    be = type(get_backend())
    original = be.softmax_forward
    monkeypatch.setattr(be, "softmax_forward", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    x, y = rng.standard_normal((8, 4)).astype("float32"), rng.integers(0, 3, 8)
    logs = model.train_on_batch(x, y, return_dict=True)
    assert calls == []  # the metrics got the kernel's probabilities, not a recomputed softmax
    assert 0.0 <= logs["accuracy"] <= 1.0


class _Scale(Layer):
    """A layer family that knows nothing of logits or input gradients: forward(x, training) only."""

    def build(self, input_shape):
        self.w = self.add_weight("w", (input_shape[-1],), "ones")

    def forward(self, x, training=False):
        w = self.w

        def backward(dy):
            self.accumulate_grad("w", (dy * x).sum(axis=0))
            return dy * w

        return x * w, backward


def test_plain_forward_layers_train_first_and_last_in_a_fused_model(rng):
    x, y = rng.standard_normal((16, 4)).astype("float32"), rng.integers(0, 4, 16)
    fused = Sequential([Input((4,)), _Scale(), Dense(4), _Scale(), Activation("softmax")])
    fused.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    plain = Sequential([Input((4,)), _Scale(), Dense(4), _Scale()])
    plain.compile(optimizer="sgd", loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    plain.set_weights(fused.get_weights())
    fused.train_on_batch(x, y)
    plain.train_on_batch(x, y)
    assert fused._fused and not plain._fused
    for a, b in zip(fused.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
