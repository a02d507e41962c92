"""Conv1D/Conv2D with an activation run in place on the convolution's output, and a backward
writing dz into a buffer of the layer reused across steps: the same values as the reference
backend for every activation, and no array a caller holds is ever overwritten."""

import numpy as np
import pytest

import pyminidl
from pyminidl import layers
from pyminidl.backend import use_backend
from pyminidl.layers.convolutional import _OUTPUT_ONLY
from pyminidl.testing import assert_close

# The in-place set, two that keep the separate arrays (their derivative reads the input), none.
ACTIVATIONS = sorted(_OUTPUT_ONLY) + ["gelu", "softplus", "leaky_relu", None]


def _conv(activation, data_format="channels_last", rank=2, dtype="float32"):
    cls = layers.Conv2D if rank == 2 else layers.Conv1D
    return cls(5, 3, padding="same", activation=activation, data_format=data_format, dtype=dtype)


def _shape(rank, data_format, n=2):
    spatial = (7, 6) if rank == 2 else (9,)
    return (n,) + spatial + (3,) if data_format == "channels_last" else (n, 3) + spatial


def _run(layer, x, dy, backend):
    """y, dx, dkernel, dbias of one forward/backward on ``backend``."""
    with use_backend(backend):
        layer.zero_grads()
        y, backward = layer._forward_full(x, True)
        y = np.array(y)
        dx = backward(dy)
        grads = [np.array(g) for g in layer.gradients()]
    return y, dx, grads


@pytest.mark.parametrize("rank,data_format", [(2, "channels_last"), (2, "channels_first"), (1, "channels_last")])
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=str)
def test_cpu_matches_the_reference_backend(rng, activation, rank, data_format):
    layer = _conv(activation, data_format, rank)
    x = rng.standard_normal(_shape(rank, data_format)).astype(np.float32)
    dy = rng.standard_normal(layer.compute_output_shape(x.shape)).astype(np.float32)
    y_ref, dx_ref, g_ref = _run(layer, x.astype(np.float64), dy.astype(np.float64), "numpy")
    for _ in range(2):  # the second step runs on the reused buffer
        y, dx, grads = _run(layer, x, dy, "cpu")
        k = 3 * 3 * 3
        assert_close(y, y_ref, k=k)
        assert_close(dx, dx_ref, k=k * 5)
        for g, r in zip(grads, g_ref):
            assert_close(g, r, k=2 * 7 * 6 * 9)


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_no_array_a_caller_holds_is_overwritten(rng, backend, activation):
    """Outputs, the dy given to backward and the dx it returned stay as they were through
    later forwards and backwards of the same layer (whose buffer is reused)."""
    with use_backend(backend):
        layer = _conv(activation)
        x1, x2 = (rng.standard_normal(_shape(2, "channels_last")).astype(np.float32) for _ in range(2))
        y1, back1 = layer._forward_full(x1, True)
        dy1 = rng.standard_normal(y1.shape).astype(np.float32)
        keep = [a.copy() for a in (y1, dy1)]
        dx1 = back1(dy1)
        keep_dx1 = dx1.copy()
        y2, back2 = layer._forward_full(x2, True)
        dy2 = rng.standard_normal(y2.shape).astype(np.float32)
        dx2 = back2(dy2)
        back1(dy1)  # a tape run twice (a persistent GradientTape) takes the buffer again
        predicted = layer(x1)
        for a, b in zip((y1, dy1, dx1), keep + [keep_dx1]):
            np.testing.assert_array_equal(a, b)
        assert not np.shares_memory(dx1, dx2) and not np.shares_memory(y1, y2)
        assert not np.shares_memory(predicted, y1)


def test_a_shared_layer_interleaves_its_backwards(rng):
    """Two calls of one layer (a shared layer in a graph), backwards in either order: each
    gives what it gives alone."""
    layer = _conv("relu")
    xs = [rng.standard_normal(_shape(2, "channels_last")).astype(np.float32) for _ in range(2)]
    dys = [rng.standard_normal((2, 7, 6, 5)).astype(np.float32) for _ in range(2)]
    alone = []
    for x, dy in zip(xs, dys):
        layer.zero_grads()
        _, back = layer._forward_full(x, True)
        alone.append(back(dy))
    (_, back0), (_, back1) = (layer._forward_full(x, True) for x in xs)
    np.testing.assert_array_equal(back1(dys[1]), alone[1])
    np.testing.assert_array_equal(back0(dys[0]), alone[0])


def test_the_buffer_is_reused_across_steps(rng):
    with use_backend("cpu"):
        layer = _conv("relu")
        x = rng.standard_normal(_shape(2, "channels_last")).astype(np.float32)
        buffers = []
        for _ in range(2):
            y, back = layer._forward_full(x, True)
            back(np.ones_like(y))
            buffers.append(layer.__dict__["_dz_buffer"])
        assert buffers[0] is buffers[1]
        y, back = layer._forward_full(x[:1], True)  # another batch size: a buffer of its shape
        back(np.ones_like(y))
        assert layer.__dict__["_dz_buffer"].shape == y.shape


def test_a_cnn_trains_the_same_on_both_backends(rng):
    """A short fit of the benchmark's CNN (relu convolutions) on cpu and numpy from one seed."""
    x = rng.random((32, 12, 12, 1), dtype=np.float32)
    y = rng.integers(0, 3, 32)
    losses = {}
    for backend in ("cpu", "numpy"):
        with use_backend(backend):
            pyminidl.utils.set_random_seed(3)
            model = pyminidl.Sequential([
                layers.Input(shape=(12, 12, 1)), layers.Conv2D(4, 3, activation="relu", padding="same"),
                layers.MaxPooling2D(2), layers.Conv2D(6, 3, activation="relu", padding="same"),
                layers.Flatten(), layers.Dense(3, activation="softmax")])
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            hist = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
            losses[backend] = hist.history["loss"]
    np.testing.assert_allclose(losses["cpu"], losses["numpy"], rtol=1e-4)
