"""CpuBackend fused softmax cross-entropy vs the reference Backend (dense, sparse, smoothing)."""

import numpy as np
import pytest

import pyminidl
from pyminidl.backend._compat import _C
from pyminidl.backend.base import Backend
from pyminidl.testing import assert_close

SHAPES = [(1, 1), (1, 7), (3, 2), (17, 3), (65, 10), (5, 257), (600, 65)]  # the last > PARALLEL_GRAIN


def _problem(rng, n, c, sparse, dtype=np.float32, label_dtype=np.int64):
    logits = (3.0 * rng.standard_normal((n, c))).astype(dtype)
    if sparse:
        labels = rng.integers(0, c, n).astype(label_dtype)
    else:  # soft labels, rows summing to 1 except a few (Keras does not renormalise)
        labels = rng.random((n, c)).astype(dtype)
        labels /= labels.sum(axis=-1, keepdims=True)
        labels[::4] *= 1.5
    dloss = rng.standard_normal(n).astype(dtype)
    return logits, labels, dloss


def _f64(a):
    return a.astype(np.float64) if a.dtype.kind == "f" else a


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_matches_reference_float32(cpu, rng, shape, sparse, smoothing):
    logits, labels, dloss = _problem(rng, *shape, sparse)
    loss, probs = cpu.softmax_cross_entropy_forward(logits, labels, sparse, smoothing)
    ref_loss, ref_probs = Backend().softmax_cross_entropy_forward(_f64(logits), _f64(labels), sparse, smoothing)
    assert loss.dtype == probs.dtype == np.float32 and loss.shape == (shape[0],) and probs.shape == shape
    assert_close(loss, ref_loss, k=shape[1])
    assert_close(probs, ref_probs, k=shape[1])
    d = cpu.softmax_cross_entropy_backward(dloss, probs, labels, sparse, smoothing)
    ref_d = Backend().softmax_cross_entropy_backward(_f64(dloss), _f64(probs), _f64(labels), sparse, smoothing)
    assert d.dtype == np.float32
    assert_close(d, ref_d, k=shape[1])


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("label_dtype", [np.int32, np.int64, np.uint8, np.float32])
def test_float64_label_dtypes_and_strided_views(cpu, rng, sparse, label_dtype):
    logits, labels, dloss = _problem(rng, 40, 9, sparse, np.float64, label_dtype)
    lv = logits[::2, ::-1]  # strided, reversed classes
    labv = labels[::2] if sparse else labels[::2, ::-1]
    loss, probs = cpu.softmax_cross_entropy_forward(lv, labv, sparse, 0.2)
    ref_loss, ref_probs = Backend().softmax_cross_entropy_forward(lv, labv, sparse, 0.2)
    assert_close(loss, ref_loss, k=9)
    assert_close(probs, ref_probs, k=9)
    d = cpu.softmax_cross_entropy_backward(dloss[::2], probs, labv, sparse, 0.2)
    assert_close(d, Backend().softmax_cross_entropy_backward(dloss[::2], probs, labv, sparse, 0.2), k=9)


@pytest.mark.parametrize("classes", [6, 40, 1000])  # 40 and 1000: blocks of 16 lanes and a tail
def test_sparse_gives_the_bits_of_one_hot(cpu, rng, classes):
    logits, labels, dloss = _problem(rng, 33, classes, True)
    one_hot = np.eye(classes, dtype=np.float32)[labels]
    for ls in (0.0, 0.3):
        ls_, ps = cpu.softmax_cross_entropy_forward(logits, labels, True, ls)
        ld, pd = cpu.softmax_cross_entropy_forward(logits, one_hot, False, ls)
        np.testing.assert_array_equal(ls_, ld)
        np.testing.assert_array_equal(ps, pd)
        np.testing.assert_array_equal(cpu.softmax_cross_entropy_backward(dloss, ps, labels, True, ls),
                                      cpu.softmax_cross_entropy_backward(dloss, pd, one_hot, False, ls))


def test_nan_inf_propagate_like_reference(cpu):
    logits = np.array([[np.nan, 0.0, 1.0], [np.inf, 0.0, 1.0], [-np.inf, 0.0, 1.0], [1.0, 2.0, 3.0]], np.float32)
    for sparse, labels in ((True, np.array([1, 2, 1, 0])), (False, np.eye(3, dtype=np.float32)[[1, 2, 1, 0]])):
        with np.errstate(all="ignore"):
            ref_loss, ref_probs = Backend().softmax_cross_entropy_forward(logits, labels, sparse)
        loss, probs = cpu.softmax_cross_entropy_forward(logits, labels, sparse)
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-6, equal_nan=True)
        np.testing.assert_allclose(probs, ref_probs, rtol=1e-6, atol=1e-7, equal_nan=True)
        assert np.isnan(loss[0]) and np.isnan(loss[2]) and np.isfinite(loss[3])  # 0 * log(0) is NaN, as the reference


@pytest.mark.parametrize("at", [3, 20, 47])  # in the first block of 16 lanes, the second, the tail
def test_nan_inf_anywhere_in_a_long_row_like_reference(cpu, at):
    c = 50
    logits = np.tile(np.linspace(-2.0, 2.0, c, dtype=np.float32), (6, 1))
    logits[0, at] = np.nan
    logits[1, at] = np.inf
    logits[2, at] = -np.inf  # 0 * log(0) where the label is elsewhere: NaN
    logits[3, at] = -np.inf  # the label's own class: loss +inf
    labels = np.array([0, 0, 0 if at else 1, at, 5, at])
    for sparse, lab in ((True, labels), (False, np.eye(c, dtype=np.float32)[labels])):
        with np.errstate(all="ignore"):
            ref_loss, ref_probs = Backend().softmax_cross_entropy_forward(logits.astype(np.float64), _f64(lab), sparse)
        loss, probs = cpu.softmax_cross_entropy_forward(logits, lab, sparse)
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-6, equal_nan=True)
        np.testing.assert_allclose(probs, ref_probs, rtol=1e-6, atol=1e-7, equal_nan=True)
        assert np.isnan(loss[:3]).all() and loss[3] == np.inf and np.isfinite(loss[4:]).all()


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("classes", [10, 16, 37, 1000])
def test_every_isa_path_gives_the_same_bits(cpu, rng, sparse, classes):
    logits, labels, dloss = _problem(rng, 21, classes, sparse)
    label_sets = (labels, labels.astype(np.int32)) if sparse else (labels,)
    results = []
    for cap in ("baseline", "avx2", "avx512"):
        pyminidl.config.set_cpu_capability(cap)
        for lab in label_sets:
            for ls in (0.0, 0.1):
                loss, probs = cpu.softmax_cross_entropy_forward(logits, lab, sparse, ls)
                results.append((cap, loss, probs, cpu.softmax_cross_entropy_backward(dloss, probs, lab, sparse, ls)))
    per_path = len(results) // 3
    for k, (cap, *arrays) in enumerate(results[per_path:]):
        for got, want in zip(arrays, results[k % per_path][1:]):
            np.testing.assert_array_equal(got, want, err_msg=cap)


def test_threads_do_not_change_bits(cpu, rng):
    logits, labels, dloss = _problem(rng, 600, 65, True)
    out = []
    for n in (1, 2, 2):
        pyminidl.config.set_num_threads(n)
        loss, probs = cpu.softmax_cross_entropy_forward(logits, labels, True, 0.1)
        out.append((loss, probs, cpu.softmax_cross_entropy_backward(dloss, probs, labels, True, 0.1)))
    for a, b in zip(out, out[1:]):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("bad", [-1, 5, 2**31 - 1])
@pytest.mark.parametrize("label_dtype", [np.int32, np.int64])
def test_out_of_range_sparse_labels_raise(bad, label_dtype):
    logits = np.zeros((3, 5), np.float32)
    labels = np.array([0, bad, 1], label_dtype)
    msg = rf"label value {bad} at index 1 is out of range for 5 classes"
    with pytest.raises(ValueError, match=msg):
        _C.softmax_cross_entropy_forward(logits, labels, True)
    with pytest.raises(ValueError, match=msg):
        _C.softmax_cross_entropy_backward(np.ones(3, np.float32), logits, labels, True)
    with pytest.raises(ValueError, match=rf"label value of {bad} .* \[0, 5\)"):
        Backend().softmax_cross_entropy_forward(logits, labels, sparse=True)


def test_binding_rejects_bad_input():
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(TypeError, match="'logits' must have dtype float32 or float64. Received: dtype=int64"):
        _C.softmax_cross_entropy_forward(np.zeros((4, 3), np.int64), x)
    with pytest.raises(ValueError, match=r"'logits' must be 2-D. Received: shape=\(4, 3, 1\)"):
        _C.softmax_cross_entropy_forward(x[..., None], x[..., None])
    with pytest.raises(ValueError, match=r"logits.shape=\(4, 3\), labels.shape=\(4, 2\)"):
        _C.softmax_cross_entropy_forward(x, np.zeros((4, 2), np.float32))
    with pytest.raises(TypeError, match="same dtype"):
        _C.softmax_cross_entropy_forward(x, np.zeros((4, 3)))
    with pytest.raises(TypeError, match="sparse 'labels' must have dtype int32 or int64. Received: dtype=float32"):
        _C.softmax_cross_entropy_forward(x, np.zeros(4, np.float32), True)
    with pytest.raises(ValueError, match=r"labels.shape=\(4, 1\)"):
        _C.softmax_cross_entropy_forward(x, np.zeros((4, 1), np.int64), True)
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        _C.softmax_cross_entropy_forward(x, x, False, 1.5)
    with pytest.raises(ValueError, match=r"dloss.shape=\(3,\)"):
        _C.softmax_cross_entropy_backward(np.zeros(3, np.float32), x, x)
    with pytest.raises(ValueError, match="at least one class"):
        _C.softmax_cross_entropy_forward(np.zeros((4, 0), np.float32), np.zeros((4, 0), np.float32))


def test_empty_batch():
    loss, probs = _C.softmax_cross_entropy_forward(np.zeros((0, 3), np.float32), np.zeros(0, np.int32), True)
    assert loss.shape == (0,) and probs.shape == (0, 3)
