"""Depthwise convolution kernels (cpu backend) against the float64 reference: odd shapes, every
padding, strides, dilation, depth multipliers, batch 1, 1-D, non-contiguous views, each ISA path
and its bits, thread-count independence, and the binding's checks."""

import numpy as np
import pytest

import pyminidl
from pyminidl.backend._compat import _C
from pyminidl.backend.base import Backend
from pyminidl.testing import assert_close

REF = Backend()
GEOMETRIES = [  # x shape, kernel (..., C, M) shape, strides, padding, dilation
    ((1, 1, 1, 1), (1, 1, 1, 1), (1, 1), "valid", (1, 1)),
    ((2, 7, 9, 3), (3, 3, 3, 1), (1, 1), "same", (1, 1)),
    ((3, 7, 9, 17), (3, 2, 17, 2), (2, 1), "same", (1, 1)),
    ((1, 9, 8, 33), (3, 3, 33, 1), (1, 1), "valid", (2, 3)),
    ((2, 6, 6, 16), (2, 2, 16, 3), (3, 3), "valid", (1, 1)),
    ((1, 4, 4, 5), (5, 5, 5, 1), (1, 1), "same", (1, 1)),  # a kernel wider than the image
    ((2, 11, 4, 31), (3, 3, 31, 1), (2, 2), "same", (1, 1)),
    ((1, 5, 7, 48), (1, 1, 48, 4), (1, 2), "valid", (1, 1)),
    ((2, 13, 7), (3, 7, 1), (1,), "same", (1,)),  # 1-D
    ((1, 9, 20), (3, 20, 2), (1,), "causal", (2,)),
    ((3, 8, 5), (2, 5, 1), (3,), "valid", (1,)),
    # Full 16-channel blocks with multiplier 1 and rows wide enough for the four-cell paths.
    ((2, 9, 23, 32), (3, 3, 32, 1), (1, 1), "same", (1, 1)),
    ((1, 6, 19, 48), (3, 5, 48, 1), (1, 1), "valid", (1, 2)),
    ((2, 10, 21, 40), (3, 3, 40, 1), (2, 2), "same", (1, 1)),
    ((2, 30, 21), (5, 21, 1), (1,), "same", (1,)),
    # Channel tails (C*M % 16 != 0) on the register-blocked paths: masked loads and stores.
    ((2, 7, 30, 20), (3, 3, 20, 1), (1, 1), "same", (1, 1)),
    ((1, 5, 37, 7), (3, 3, 7, 1), (1, 1), "same", (1, 1)),
    # Multipliers as C*M lanes: full blocks, tails, with strides and 1-D.
    ((2, 14, 14, 16), (5, 5, 16, 2), (1, 1), "same", (1, 1)),
    ((2, 9, 26, 12), (3, 3, 12, 2), (1, 1), "same", (1, 1)),
    ((1, 12, 37, 7), (3, 3, 7, 3), (2, 2), "same", (1, 1)),
    ((2, 50, 5), (3, 5, 3), (2,), "same", (1,)),
    # Strided input gradient in parity classes (stride 2 and 3), wide kernels (weight-gradient
    # tap groups of 4 + 3), dilation.
    ((2, 8, 40, 16), (3, 3, 16, 1), (2, 2), "same", (1, 1)),
    ((1, 6, 61, 33), (3, 5, 33, 1), (1, 3), "valid", (1, 1)),
    ((1, 5, 30, 17), (2, 7, 17, 1), (1, 1), "same", (1, 1)),
    ((1, 7, 41, 18), (3, 3, 18, 2), (1, 1), "same", (2, 3)),
]


def _case(rng, x_shape, w_shape):
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[-2] * w_shape[-1]).astype(np.float32)
    return x, w, b


def _f64(*arrays):
    return [None if a is None else a.astype(np.float64) for a in arrays]


def _all(cpu, x, w, b, s, pad, d, dy_seed=1):
    y = cpu.depthwise_conv_forward(x, w, b, s, pad, d)
    dy = np.random.default_rng(dy_seed).standard_normal(y.shape).astype(np.float32)
    return (y,) + tuple(cpu.depthwise_conv_backward(dy, x, w, s, pad, d)), dy


def _check_against_reference(got, x, w, b, dy, s, pad, d):
    y, dx, dw, db = got
    taps = int(np.prod(w.shape[:-2]))
    x64, w64, b64, dy64 = _f64(x, w, b, dy)
    assert_close(y, REF.depthwise_conv_forward(x64, w64, b64, s, pad, d), k=taps)
    dx_ref, dw_ref, db_ref = REF.depthwise_conv_backward(dy64, x64, w64, s, pad, d)
    assert_close(dx, dx_ref, k=taps * w.shape[-1])
    assert_close(dw, dw_ref, k=int(np.prod(dy.shape[:-1])))
    assert_close(db, db_ref, k=int(np.prod(dy.shape[:-1])))
    assert y.dtype == dx.dtype == dw.dtype == db.dtype == np.float32


@pytest.mark.parametrize("x_shape,w_shape,s,pad,d", GEOMETRIES)
def test_depthwise_matches_reference(cpu, rng, x_shape, w_shape, s, pad, d):
    x, w, b = _case(rng, x_shape, w_shape)
    got, dy = _all(cpu, x, w, b, s, pad, d)
    _check_against_reference(got, x, w, b, dy, s, pad, d)


def test_without_bias_and_without_dx(cpu, rng):
    x, w, _ = _case(rng, (2, 6, 5, 7), (3, 3, 7, 2))
    y = cpu.depthwise_conv_forward(x, w, None, (1, 1), "same", (1, 1))
    assert_close(y, REF.depthwise_conv_forward(*_f64(x, w), None, (1, 1), "same", (1, 1)), k=9)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dw, db = cpu.depthwise_conv_backward(dy, x, w, (1, 1), "same", (1, 1), has_bias=False, need_dx=False)
    assert dx is None and db is None
    assert_close(dw, REF.depthwise_conv_backward(*_f64(dy, x, w), (1, 1), "same", (1, 1))[1], k=60)


def test_non_contiguous_inputs_are_copied(cpu, rng):
    base = rng.standard_normal((3, 9, 8, 10)).astype(np.float32)
    x = base[:, ::2, :, ::3]  # (3, 5, 8, 4)
    w = np.asfortranarray(rng.standard_normal((3, 3, 4, 2)).astype(np.float32))
    b = rng.standard_normal(16).astype(np.float32)[::2]
    y = cpu.depthwise_conv_forward(x, w, b, (1, 1), "same", (1, 1))
    dy = rng.standard_normal((3, 5, 8, 8)).astype(np.float32)[..., ::-1]
    got = (y,) + tuple(cpu.depthwise_conv_backward(dy, x, w, (1, 1), "same", (1, 1)))
    _check_against_reference(got, x, w, b, dy, (1, 1), "same", (1, 1))


def test_float64_runs_the_reference(cpu, rng):
    x, w, b = _f64(*_case(rng, (1, 5, 5, 3), (3, 3, 3, 2)))
    np.testing.assert_array_equal(cpu.depthwise_conv_forward(x, w, b, 1, "same", 1),
                                  REF.depthwise_conv_forward(x, w, b, 1, "same", 1))


ISAS = ["baseline", "avx2", "avx512"]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("x_shape,w_shape,s,pad,d", GEOMETRIES)
def test_each_isa_path_matches_reference(cpu, rng, isa, x_shape, w_shape, s, pad, d):
    # The kernels run the baseline, AVX2 or AVX-512 copy (csrc/depthwise_isa.h) as capped here.
    pyminidl.config.set_cpu_capability(isa)
    x, w, b = _case(rng, x_shape, w_shape)
    got, dy = _all(cpu, x, w, b, s, pad, d)
    _check_against_reference(got, x, w, b, dy, s, pad, d)


@pytest.mark.parametrize("x_shape,w_shape,s,pad,d", GEOMETRIES)
def test_every_isa_path_gives_the_same_bits(cpu, rng, x_shape, w_shape, s, pad, d):
    # Per-channel sums in the same order on every path, no FMA contraction: identical bits, NaN
    # and infinities included.
    x, w, b = _case(rng, x_shape, w_shape)
    x.flat[::7] = np.nan
    x.flat[3::11] = np.inf
    w.flat[5::13] = -np.inf
    results = []
    for isa in ISAS:
        pyminidl.config.set_cpu_capability(isa)
        results.append(_all(cpu, x, w, b, s, pad, d, 2)[0])
    for other in results[1:]:
        for a, c in zip(results[0], other):
            np.testing.assert_array_equal(a, c)


def test_padding_multiplies_like_zeros(cpu):
    # A padded cell is a zero times the weight (forward) or times dy (weight gradient): an
    # infinite weight or dy gives NaN at the border, as the zero-padded reference gives.
    x = np.ones((1, 3, 3, 2), np.float32)
    w = np.ones((3, 3, 2, 1), np.float32)
    w[0, 0, 0, 0] = np.inf
    y = cpu.depthwise_conv_forward(x, w, None, 1, "same", 1)
    dy = np.ones_like(y)
    dy[0, 0, 0, 1] = np.inf
    got = cpu.depthwise_conv_backward(dy, x, w, 1, "same", 1)
    with np.errstate(invalid="ignore"):  # 0 * inf in the reference: the point of the test
        y_ref = REF.depthwise_conv_forward(*_f64(x, w), None, 1, "same", 1)
        want = REF.depthwise_conv_backward(*_f64(dy, x, w), 1, "same", 1)
    assert np.isnan(y[0, 0, 0, 0]) and np.isnan(got[1][0, 0, 1, 0])
    np.testing.assert_array_equal(y, y_ref)
    for a, r in zip(got, want):
        np.testing.assert_array_equal(a, r)


@pytest.mark.parametrize("m", [1, 3])
def test_results_do_not_depend_on_the_thread_count(cpu, rng, m):
    x, w, b = _case(rng, (4, 23, 21, 40), (3, 3, 40, m))
    results = []
    for threads in (1, 2, 3, 5):  # the root conftest restores the count
        pyminidl.config.set_num_threads(threads)
        results.append(_all(cpu, x, w, b, (1, 1), "same", (1, 1))[0])
    for other in results[1:]:
        for a, c in zip(results[0], other):
            np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("bad,message", [
    (dict(w=np.zeros((3, 3, 4, 1), np.float32)), "the kernel must be"),
    (dict(w=np.zeros((0, 3, 3, 1), np.float32)), "the kernel must be"),
    (dict(b=np.zeros(4, np.float32)), "argument 'b' must have shape"),
    (dict(strides=(0, 1)), "argument 'strides'"),
    (dict(padding=(5, 0)), "leaves a window outside the input"),
    (dict(output_size=(9, 7)), "leaves a window outside the input"),
    (dict(dilation_rate=(1, -1)), "argument 'dilation_rate'"),
])
def test_forward_binding_refuses_bad_arguments(bad, message):
    args = dict(x=np.zeros((1, 5, 7, 3), np.float32), w=np.zeros((3, 3, 3, 2), np.float32),
                b=np.zeros(6, np.float32), strides=(1, 1), padding=(1, 1), output_size=(5, 7), dilation_rate=(1, 1))
    args.update(bad)
    with pytest.raises(ValueError, match=message):
        _C.depthwise_conv_forward(**args)


def test_bindings_refuse_other_dtypes_and_bad_dy():
    x, w = np.zeros((1, 5, 7, 3), np.float32), np.zeros((3, 3, 3, 2), np.float32)
    with pytest.raises(TypeError, match="argument 'x' must have dtype float32"):
        _C.depthwise_conv_forward(x.astype(np.float64), w, None, (1, 1), (1, 1), (5, 7), (1, 1))
    with pytest.raises(TypeError, match="argument 'w' must have dtype float32"):
        _C.depthwise_conv_backward(np.zeros((1, 5, 7, 6), np.float32), x, w.astype(np.float64), (1, 1), (1, 1),
                                   (1, 1))
    with pytest.raises(ValueError, match=r"dy must be \(N, OH, OW, C \* depth_multiplier\)"):
        _C.depthwise_conv_backward(np.zeros((1, 5, 7, 3), np.float32), x, w, (1, 1), (1, 1), (1, 1))


def test_empty_axes_give_zeros(cpu):
    # N = 0 and a kernel larger than the image ('valid', no output): nothing to sum.
    dx, dw, db = cpu.depthwise_conv_backward(np.zeros((0, 3, 3, 4), np.float32), np.zeros((0, 5, 5, 2), np.float32),
                                             np.ones((3, 3, 2, 2), np.float32), 1, "valid", 1)
    assert dx.shape == (0, 5, 5, 2) and not dw.any() and not db.any()
    y = cpu.depthwise_conv_forward(np.ones((2, 2, 2, 3), np.float32), np.ones((3, 3, 3, 1), np.float32), None, 1,
                                   "valid", 1)
    assert y.shape == (2, 0, 0, 3)
