"""Batch and layer normalization kernels (cpu backend) against the float64 reference: any axis,
odd shapes, batch 1, non-contiguous views, large means, thread-count independence, binding checks."""

import numpy as np
import pytest

import pyminidl
from pyminidl.backend._compat import _C
from pyminidl.backend.base import Backend
from pyminidl.testing import assert_close

REF = Backend()
BN_CASES = [((1, 1), -1), ((7, 3), -1), ((130, 17), -1), ((2, 5, 6, 65), -1), ((3, 4, 5, 7), 1), ((2, 9, 3), 1),
            ((5, 3), 0), ((1, 8, 8, 3), 3), ((257, 1), 1)]


def _f64(*arrays):
    return [None if a is None else a.astype(np.float64) for a in arrays]


def _params(rng, c):
    return (rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32))


@pytest.mark.parametrize("shape,axis", BN_CASES)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_matches_reference(cpu, rng, shape, axis, affine):
    x = (rng.standard_normal(shape) * 3 + 2).astype(np.float32)
    gamma, beta = _params(rng, shape[axis]) if affine else (None, None)
    got = cpu.batch_norm_forward(x, gamma, beta, axis, 1e-3)
    want = REF.batch_norm_forward(*_f64(x, gamma, beta), axis, 1e-3)
    k = x.size // shape[axis]
    for g, w in zip(got, want):
        assert_close(g, w, k=k)
    dy = rng.standard_normal(shape).astype(np.float32)
    for training in (True, False):
        got_b = cpu.batch_norm_backward(dy, x, gamma, got[1], got[2], axis, 1e-3, training)
        want_b = REF.batch_norm_backward(*_f64(dy, x, gamma, got[1], got[2]), axis, 1e-3, training)
        for g, w in zip(got_b, want_b):
            assert_close(g, w, k=k)


def test_batch_norm_inference_uses_the_given_statistics(cpu, rng):
    x = rng.standard_normal((6, 4, 5)).astype(np.float32)
    gamma, beta = _params(rng, 4)
    mean, var = rng.standard_normal(4).astype(np.float32), rng.random(4).astype(np.float32) + 0.5
    y, m, v = cpu.batch_norm_forward(x, gamma, beta, 1, 1e-3, mean, var)
    assert_close(y, REF.batch_norm_forward(*_f64(x, gamma, beta), 1, 1e-3, *_f64(mean, var))[0])
    np.testing.assert_array_equal(m, mean)
    np.testing.assert_array_equal(v, var)


def test_batch_norm_large_mean_keeps_the_variance(cpu, rng):
    # A sum of squares would cancel the variance away; the chunked moments do not.
    x = (1e4 + rng.standard_normal((4096, 3))).astype(np.float32)
    _, mean, var = cpu.batch_norm_forward(x, None, None, -1, 1e-3)
    _, m_ref, v_ref = REF.batch_norm_forward(x.astype(np.float64), None, None, -1, 1e-3)
    np.testing.assert_allclose(var, v_ref, rtol=1e-4)
    np.testing.assert_allclose(mean, m_ref, rtol=1e-6)


def test_non_contiguous_inputs(cpu, rng):
    base = rng.standard_normal((8, 10, 12)).astype(np.float32)
    x = base[::2, :, ::3]  # (4, 10, 4)
    assert_close(cpu.batch_norm_forward(x, None, None, -1, 1e-3)[0],
                 REF.batch_norm_forward(x.astype(np.float64), None, None, -1, 1e-3)[0], k=40)
    assert_close(cpu.layer_norm_forward(x, None, None, -1, 1e-3)[0],
                 REF.layer_norm_forward(x.astype(np.float64), None, None, -1, 1e-3)[0], k=4)


@pytest.mark.parametrize("shape,axis", [((1, 1), -1), ((3, 7), -1), ((2, 5, 65), -1), ((4, 3, 17), (1, 2)),
                                        ((130, 33), [-1]), ((2, 3, 4, 5), (-2, -1))])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_reference(cpu, rng, shape, axis, affine):
    x = (rng.standard_normal(shape) * 2 - 1).astype(np.float32)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    pshape = tuple(shape[a] for a in sorted(a % len(shape) for a in axes))
    gamma = rng.standard_normal(pshape).astype(np.float32) if affine else None
    beta = rng.standard_normal(pshape).astype(np.float32) if affine else None
    got = cpu.layer_norm_forward(x, gamma, beta, axis, 1e-3)
    want = REF.layer_norm_forward(*_f64(x, gamma, beta), axis, 1e-3)
    d = int(np.prod(pshape))
    for g, w in zip(got, want):
        assert_close(g, w, k=d)
    dy = rng.standard_normal(shape).astype(np.float32)
    got_b = cpu.layer_norm_backward(dy, x, gamma, got[1], got[2], axis, 1e-3)
    want_b = REF.layer_norm_backward(*_f64(dy, x, gamma, got[1], got[2]), axis, 1e-3)
    for g, w in zip(got_b, want_b):
        assert_close(g, w, k=x.size // d)


def test_layer_norm_inner_axis_takes_the_reference(cpu, rng):
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    y, mean, _ = cpu.layer_norm_forward(x, None, None, 1, 1e-3)
    assert mean.shape == (3, 1, 5)
    assert_close(y, REF.layer_norm_forward(x.astype(np.float64), None, None, 1, 1e-3)[0], k=4)


@pytest.mark.parametrize("op", ["bn_last", "bn_first", "ln"])
def test_one_and_two_threads_agree_bitwise(cpu, rng, op):
    # Fixed chunks combined in a fixed order: the thread count changes nothing, not even rounding.
    shape = (64, 16, 16, 32) if op != "bn_first" else (16, 32, 16, 16)
    x = rng.standard_normal(shape).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    out = []
    for threads in (1, 2):
        pyminidl.config.set_num_threads(threads)
        if op == "ln":
            y, m, v = cpu.layer_norm_forward(x, None, None, -1, 1e-3)
            out.append((y, m, v) + tuple(cpu.layer_norm_backward(dy, x, None, m, v, -1, 1e-3)))
        else:
            axis = -1 if op == "bn_last" else 1
            y, m, v = cpu.batch_norm_forward(x, None, None, axis, 1e-3)
            out.append((y, m, v) + tuple(cpu.batch_norm_backward(dy, x, None, m, v, axis, 1e-3)))
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


def test_bindings_refuse_bad_arguments():
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        _C.batch_norm_forward(x, None, None, 2, 1e-3)
    with pytest.raises(ValueError, match="gamma"):
        _C.batch_norm_forward(x, np.ones(4, np.float32), None, -1, 1e-3)
    with pytest.raises(ValueError, match="empty batch"):
        _C.batch_norm_forward(np.zeros((0, 3), np.float32), None, None, -1, 1e-3)
    with pytest.raises(ValueError, match="epsilon"):
        _C.batch_norm_forward(x, None, None, -1, float("nan"))
    with pytest.raises(ValueError, match="both mean and variance"):
        _C.batch_norm_forward(x, None, None, -1, 1e-3, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="trailing axes"):
        _C.layer_norm_forward(np.zeros((2, 3, 4), np.float32), None, None, [1], 1e-3)
    with pytest.raises(ValueError, match="variance"):
        _C.layer_norm_backward(x, x, None, np.zeros((4, 1), np.float32), np.zeros((3, 1), np.float32), [-1], 1e-3)
    with pytest.raises(TypeError, match="float32"):
        _C.batch_norm_backward(x, x.astype(np.float64), None, np.zeros(3, np.float32), np.ones(3, np.float32), -1,
                               1e-3)


ISAS = ["baseline", "avx2", "avx512"]
# Normalized sizes around every vector width (4, 8, 16 floats) and their tails, both layouts.
ISA_BN_CASES = BN_CASES + [((70, 31), -1), ((3, 48, 5, 5), 1), ((2, 3, 3, 129), -1)]
ISA_LN_SHAPES = [(1, 1), (5, 7), (9, 31), (4, 3, 48), (130, 129)]


def _bn_all(cpu, x, gamma, beta, axis, dy):
    y, mean, var = cpu.batch_norm_forward(x, gamma, beta, axis, 1e-3)
    return (y, mean, var) + tuple(cpu.batch_norm_backward(dy, x, gamma, mean, var, axis, 1e-3, True)) + tuple(
        cpu.batch_norm_backward(dy, x, gamma, mean, var, axis, 1e-3, False))


def _ln_all(cpu, x, gamma, beta, dy):
    y, mean, var = cpu.layer_norm_forward(x, gamma, beta, -1, 1e-3)
    return (y, mean, var) + tuple(cpu.layer_norm_backward(dy, x, gamma, mean, var, -1, 1e-3))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("shape,axis", ISA_BN_CASES)
def test_batch_norm_each_isa_path_matches_reference(cpu, rng, isa, shape, axis):
    # The norm kernels run the baseline, AVX2 or AVX-512 copy (csrc/norm_isa.h) as capped here.
    pyminidl.config.set_cpu_capability(isa)
    x = (rng.standard_normal(shape) * 3 + 2).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    gamma, beta = _params(rng, shape[axis])
    got = _bn_all(cpu, x, gamma, beta, axis, dy)
    want = _bn_all(REF, *_f64(x, gamma, beta), axis, dy.astype(np.float64))
    k = x.size // shape[axis]
    for g, w in zip(got[:3], want[:3]):
        assert_close(g, w, k=k)
    # The backward's reference runs on the float32 statistics, as in test_batch_norm_training_matches_reference.
    for training, part in ((True, slice(3, 6)), (False, slice(6, 9))):
        want_b = REF.batch_norm_backward(*_f64(dy, x, gamma, got[1], got[2]), axis, 1e-3, training)
        for g, w in zip(got[part], want_b):
            assert_close(g, w, k=k)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("shape", ISA_LN_SHAPES)
def test_layer_norm_each_isa_path_matches_reference(cpu, rng, isa, shape):
    pyminidl.config.set_cpu_capability(isa)
    x = (rng.standard_normal(shape) * 2 - 1).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    gamma, beta = _params(rng, shape[-1])
    got = _ln_all(cpu, x, gamma, beta, dy)
    for g, w in zip(got[:3], REF.layer_norm_forward(*_f64(x, gamma, beta), -1, 1e-3)):
        assert_close(g, w, k=shape[-1])
    want_b = REF.layer_norm_backward(*_f64(dy, x, gamma, got[1], got[2]), -1, 1e-3)
    for g, w in zip(got[3:], want_b):
        assert_close(g, w, k=x.size // shape[-1])


@pytest.mark.parametrize("case", [("bn", s, a) for s, a in ISA_BN_CASES] + [("ln", s, -1) for s in ISA_LN_SHAPES],
                         ids=lambda c: f"{c[0]}-{'x'.join(map(str, c[1]))}-axis{c[2]}")
def test_every_isa_path_gives_the_same_bits(cpu, rng, case):
    # Eight named float accumulators (never a width-dependent split), channels independent, no
    # FMA contraction: the three paths agree bit for bit, infinities and NaN included.
    kind, shape, axis = case
    x = (rng.standard_normal(shape) * 3 + 2).astype(np.float32)
    x.flat[5:: 17] = np.nan  # a NaN channel stays NaN on every path
    dy = rng.standard_normal(shape).astype(np.float32)
    gamma, beta = _params(rng, shape[axis])
    results = []
    for isa in ISAS:
        pyminidl.config.set_cpu_capability(isa)
        results.append(_bn_all(cpu, x, gamma, beta, axis, dy) if kind == "bn" else _ln_all(cpu, x, gamma, beta, dy))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
