"""pyminidl.ops forward values and GradientTape semantics (Keras/TF behaviour)."""

import numpy as np
import pytest

import pyminidl
from pyminidl import layers, ops
from pyminidl.backend import use_backend


@pytest.fixture(autouse=True)
def _numpy_backend():
    with use_backend("numpy"):
        yield


def test_forward_values_match_numpy(rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4,))
    np.testing.assert_allclose(ops.add(a, b), a + b)
    np.testing.assert_allclose(ops.subtract(a, b), a - b)
    np.testing.assert_allclose(ops.multiply(a, b), a * b)
    np.testing.assert_allclose(ops.divide(a, b), a / b)
    np.testing.assert_allclose(ops.matmul(a, b), a @ b)
    np.testing.assert_allclose(ops.sum(a, axis=0), a.sum(0))
    np.testing.assert_allclose(ops.mean(a), a.mean())
    np.testing.assert_allclose(ops.max(a, axis=1), a.max(1))
    np.testing.assert_allclose(ops.relu(a), np.maximum(a, 0))
    np.testing.assert_allclose(ops.softmax(a).sum(-1), np.ones(3))
    np.testing.assert_allclose(ops.clip(a, -0.1, 0.1), np.clip(a, -0.1, 0.1))
    np.testing.assert_allclose(ops.transpose(a), a.T)
    np.testing.assert_allclose(ops.concatenate([a, a], axis=1), np.concatenate([a, a], 1))
    np.testing.assert_allclose(ops.stack([b, b]), np.stack([b, b]))
    np.testing.assert_allclose(ops.where(a > 0, a, 0.0), np.where(a > 0, a, 0.0))
    assert ops.shape(a) == (3, 4)
    np.testing.assert_allclose(ops.var(a, axis=0), a.var(0))
    np.testing.assert_allclose(ops.std(a), a.std())
    np.testing.assert_allclose(ops.logsumexp(a, axis=1), np.log(np.exp(a).sum(1)))
    np.testing.assert_allclose(ops.logsumexp(a), np.log(np.exp(a).sum()))
    np.testing.assert_array_equal(ops.argmax(a), a.argmax(-1))
    assert ops.zeros((2,)).dtype == np.float32 and ops.ones_like(a).shape == a.shape


def test_outside_a_tape_ops_only_compute(rng):
    assert not ops.recording()
    y = ops.square(rng.standard_normal(3))
    assert isinstance(y, np.ndarray)


def test_python_scalars_keep_float32():
    x = np.ones(3, np.float32)
    assert ops.multiply(x, 2.0).dtype == np.float32
    assert ops.add(1.0, x).dtype == np.float32


def test_gradient_single_and_list_sources():
    x = np.array([1.0, 2.0, 3.0])
    w = np.array(2.0)
    with pyminidl.GradientTape(persistent=True) as tape:
        tape.watch([x, w])
        y = ops.sum(ops.multiply(ops.square(x), w))
    np.testing.assert_allclose(tape.gradient(y, x), 2 * x * 2.0)
    gx, gw = tape.gradient(y, [x, w])
    np.testing.assert_allclose(gw, (x * x).sum())
    assert isinstance(tape.gradient(y, (x,)), list)


def test_unconnected_source_is_none_or_zero():
    x, z = np.ones(3), np.ones(2)
    with pyminidl.GradientTape(persistent=True) as tape:
        tape.watch([x, z])
        y = ops.sum(x)
    assert tape.gradient(y, [x, z])[1] is None
    np.testing.assert_array_equal(tape.gradient(y, z, unconnected_gradients="zero"), np.zeros(2))


def test_unwatched_arrays_are_constants():
    x, c = np.ones(3), np.full(3, 2.0)
    with pyminidl.GradientTape() as tape:
        tape.watch(x)
        y = ops.sum(ops.multiply(x, c))
    np.testing.assert_allclose(tape.gradient(y, [x, c])[0], c)


def test_non_persistent_tape_allows_one_gradient():
    x = np.ones(2)
    with pyminidl.GradientTape() as tape:
        tape.watch(x)
        y = ops.sum(x)
    tape.gradient(y, x)
    with pytest.raises(RuntimeError, match="non-persistent"):
        tape.gradient(y, x)


def test_broadcast_gradient_summed_to_source_shape():
    x, b = np.ones((4, 3)), np.zeros((1, 3))
    with pyminidl.GradientTape() as tape:
        tape.watch(b)
        y = ops.add(x, b)
    g = tape.gradient(y, b)
    assert g.shape == (1, 3)
    np.testing.assert_allclose(g, np.full((1, 3), 4.0))


def test_fan_out_accumulates():
    x = np.array([3.0])
    with pyminidl.GradientTape() as tape:
        tape.watch(x)
        y = ops.add(ops.multiply(x, x), x)  # x used three times
    np.testing.assert_allclose(tape.gradient(y, x), 2 * x + 1)


def test_identity_like_op_output_is_a_new_object():
    x = np.ones((2, 2))
    with pyminidl.GradientTape() as tape:
        tape.watch(x)
        y = ops.reshape(x, (2, 2))
        z = ops.multiply(y, 3.0)
    assert y is not x
    np.testing.assert_allclose(tape.gradient(z, x), np.full((2, 2), 3.0))


def test_nested_tapes_second_order():
    x = np.array(1.5)
    with pyminidl.GradientTape() as outer:
        outer.watch(x)
        with pyminidl.GradientTape() as inner:
            inner.watch(x)
            y = ops.multiply(ops.square(x), x)  # x**3
        dy = inner.gradient(y, x)  # 3x**2 (plain array; not recorded on the outer tape)
    np.testing.assert_allclose(dy, 3 * 1.5**2)
    assert outer.watched_variables()[0] is x


def test_layer_weights_on_a_user_tape(rng):
    """tf.keras idiom: tape.gradient(loss, model.trainable_weights) through built-in layers."""
    model = pyminidl.Sequential([layers.Input((3,), dtype="float64"),
                                 layers.Dense(4, activation="tanh", dtype="float64"),
                                 layers.Dense(1, dtype="float64")])
    x, t = rng.standard_normal((5, 3)), rng.standard_normal((5, 1))
    with pyminidl.GradientTape() as tape:
        loss = ops.mean(ops.square(ops.subtract(model(x), t)))
    grads = tape.gradient(loss, model.trainable_weights)
    model.zero_grads()
    y, backward = model.forward(x)
    backward(2 * (y - t) / y.size)
    for g, ref in zip(grads, model.gradients()):
        np.testing.assert_allclose(g, ref, rtol=1e-10, atol=1e-12)


def test_layer_call_on_tape_leaves_layer_grads_untouched(rng):
    layer = layers.Dense(2, dtype="float64")
    x = rng.standard_normal((3, 2))
    layer(x)
    layer.grads = {"kernel": np.full((2, 2), 7.0)}
    with pyminidl.GradientTape() as tape:
        y = ops.sum(layer(x))
    tape.gradient(y, layer.kernel)
    np.testing.assert_array_equal(layer.grads["kernel"], np.full((2, 2), 7.0))


def test_convert_helpers():
    t = ops.convert_to_tensor([1, 2], dtype="float32")
    assert t.dtype == np.float32
    assert isinstance(ops.convert_to_numpy(t), np.ndarray)


def test_several_targets_sum():
    x = np.array([1.0, 2.0])
    with pyminidl.GradientTape() as tape:
        tape.watch(x)
        a, b = ops.square(x), ops.multiply(x, 3.0)
    np.testing.assert_allclose(tape.gradient([a, b], x), 2 * x + 3)


def test_numpy_function_without_gradient_on_a_recorded_value_refuses_a_gradient():
    # A mixed expression whose output is still tracked: without the check, the sin term's
    # gradient would be silently missing.
    import pyminidl
    from pyminidl import ops

    x = np.linspace(-1.0, 1.0, 5)
    with pyminidl.GradientTape() as tape:
        tape.watch(x)
        y = ops.square(x)
        z = ops.sum(y + np.sin(y))
    with pytest.raises(ValueError, match="numpy.sin was applied to a value recorded"):
        tape.gradient(z, x)


def test_numpy_operators_on_op_outputs_are_recorded():
    import pyminidl
    from pyminidl import ops

    x = np.linspace(-1.0, 1.0, 5)
    with pyminidl.GradientTape() as tape:
        tape.watch(x)
        y = ops.square(x)
        z = (3.0 * y - y / 2.0 + y**2).mean()
    np.testing.assert_allclose(tape.gradient(z, x), (2.5 * 2 * x + 4 * x**3) / 5, rtol=1e-12)
    assert type(z) is not np.ndarray or z.ndim == 0
    assert type(ops.square(x)) is np.ndarray  # outside a tape, plain arrays


class _CountingC:
    """Stands in for the extension module and counts the GEMM calls that reach it."""

    def __init__(self, real):
        self.real, self.gemm_calls = real, 0

    def __getattr__(self, name):
        return getattr(self.real, name)

    def gemm(self, *args):
        self.gemm_calls += 1
        return self.real.gemm(*args)


# (x1 shape, x2 shape, op): 2-D products, and the N-D ones that are a 2-D product once reshaped
_GEMM_PRODUCTS = [((7, 5), (5, 3), ops.matmul), ((2, 3, 5), (5, 4), ops.matmul), ((5,), (5, 3), ops.matmul),
                  ((2, 3, 5), (5,), ops.matmul), ((2, 3, 5), (4, 5, 2), ops.dot), ((5,), (2, 5, 3), ops.dot)]


@pytest.mark.parametrize("s1,s2,op", _GEMM_PRODUCTS)
def test_float32_products_reach_the_cpu_gemm_kernel_both_ways(monkeypatch, rng, s1, s2, op):
    # A custom layer written with ops.matmul/ops.dot runs on the C++ GEMM: one kernel call
    # forward, two backward (dx1, dx2), with values and gradients matching the reference.
    from pyminidl.backend import cpu_backend
    from pyminidl.testing import assert_close

    counting = _CountingC(cpu_backend._C)
    monkeypatch.setattr(cpu_backend, "_C", counting)
    x1, x2 = rng.standard_normal(s1).astype(np.float32), rng.standard_normal(s2).astype(np.float32)
    ref = np.matmul if op is ops.matmul else np.dot
    dy = rng.standard_normal(np.shape(ref(x1, x2))).astype(np.float32)
    with use_backend("cpu"):
        with pyminidl.GradientTape() as tape:
            tape.watch([x1, x2])
            y = op(x1, x2)
        assert counting.gemm_calls == 1
        dx1, dx2 = tape.gradient(y, [x1, x2], output_gradients=dy)
    assert counting.gemm_calls == 3
    assert y.dtype == dx1.dtype == dx2.dtype == np.float32
    with pyminidl.GradientTape() as tape:  # the reference, in float64 from the same inputs
        a, b = x1.astype(np.float64), x2.astype(np.float64)
        tape.watch([a, b])
        y_ref = op(a, b)
    da, db = tape.gradient(y_ref, [a, b], output_gradients=dy.astype(np.float64))
    assert_close(y, y_ref, k=5)
    assert_close(dx1, da, k=int(np.prod(dy.shape)))
    assert_close(dx2, db, k=int(np.prod(dy.shape)))


def test_batched_matmul_stays_one_product_per_batch_entry(rng):
    # (B, M, K) @ (B, K, N) is not one 2-D product: it keeps NumPy's batched matmul.
    a, b = rng.standard_normal((3, 2, 4)), rng.standard_normal((3, 4, 5))
    np.testing.assert_allclose(ops.matmul(a, b), a @ b)


@pytest.mark.parametrize("op,s1,s2", [(ops.matmul, (3, 4), (5, 2)), (ops.dot, (2, 3, 4), (2, 5, 6)),
                                      (ops.matmul, (4,), (3,))])
def test_product_shape_mismatch_names_the_shapes(op, s1, s2):
    with pytest.raises(ValueError, match=r"x1.shape=.*x2.shape="):
        op(np.ones(s1), np.ones(s2))


def test_empty_products_keep_numpy_shapes():
    for s1, s2 in (((0, 4), (4, 3)), ((3, 0), (0, 2)), ((2, 0), (3, 0, 4))):
        assert ops.dot(np.ones(s1), np.ones(s2)).shape == np.dot(np.ones(s1), np.ones(s2)).shape
