"""Convolution kernels (conv_forward/backward, conv_transpose_forward/backward) against the reference."""

import numpy as np
import pytest

import pyminidl
from pyminidl.backend._compat import _C
from pyminidl.testing import assert_close

# (x shape, kernel (KH, KW), strides, padding, dilation, groups): kernel sizes 1-5 and 7, strides
# 1-3, both paddings, dilation 1-2, groups, odd and prime spatial sizes, batch 1.
CASES_2D = [
    ((2, 5, 7, 3), (1, 1), (1, 1), "valid", (1, 1), 1),
    ((1, 9, 9, 4), (1, 1), (2, 2), "same", (1, 1), 2),
    ((3, 6, 5, 2), (2, 2), (1, 1), "same", (1, 1), 1),
    ((2, 11, 13, 3), (3, 3), (1, 1), "same", (1, 1), 1),
    ((1, 28, 28, 1), (3, 3), (1, 1), "same", (1, 1), 1),
    ((2, 10, 9, 5), (3, 3), (2, 2), "valid", (1, 1), 1),
    ((3, 8, 8, 6), (3, 3), (1, 1), "same", (2, 2), 3),
    ((1, 17, 7, 4), (4, 2), (3, 1), "same", (1, 1), 2),
    ((2, 9, 12, 3), (5, 5), (1, 2), "same", (1, 1), 1),
    ((2, 13, 11, 2), (5, 3), (3, 3), "valid", (1, 1), 1),
    ((1, 15, 15, 3), (7, 7), (2, 2), "same", (1, 1), 1),
    ((2, 12, 12, 4), (7, 7), (1, 1), "valid", (1, 1), 1),
    ((2, 9, 9, 8), (3, 3), (1, 1), "same", (1, 1), 8),   # depthwise
    ((1, 7, 7, 33), (3, 3), (1, 1), "same", (1, 1), 1),  # K off the GEMM's tiles
    ((2, 14, 14, 32), (3, 3), (1, 1), "same", (1, 1), 1),
    ((1, 5, 5, 2), (5, 5), (1, 1), "valid", (1, 1), 1),  # 1x1 output
    ((2, 10, 10, 4), (3, 2), (2, 3), "same", (2, 1), 2),
]
# 1-D: (x shape, kernel, stride, padding, dilation, groups).
CASES_1D = [
    ((2, 11, 3), 3, 1, "causal", 2, 1),
    ((1, 16, 4), 5, 2, "same", 1, 2),
    ((3, 9, 2), 4, 3, "valid", 1, 1),
]
FILTERS = 6


def _f8(*arrays):
    return [None if a is None else a.astype(np.float64) for a in arrays]


def _inputs(rng, x_shape, w_shape, dtype, bias=True):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[-1]).astype(dtype) if bias else None
    return x, w, b


def _conv_case(rng, case, dtype, bias=True):
    x_shape, k, s, pad, d, g = case
    kernel = (k,) if np.ndim(k) == 0 else k
    filters = FILTERS * g if g > 1 else FILTERS
    x, w, b = _inputs(rng, x_shape, tuple(kernel) + (x_shape[-1] // g, filters), dtype, bias)
    return x, w, b, (s, pad, d, g), int(np.prod(kernel)) * (x_shape[-1] // g)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES_2D + CASES_1D, ids=str)
def test_conv_forward_matches_reference(fast_backend, ref, rng, case, dtype):
    x, w, b, args, k = _conv_case(rng, case, dtype)
    got = fast_backend.conv_forward(x, w, b, *args)
    assert got.dtype == dtype
    assert_close(got, ref.conv_forward(*_f8(x, w, b), *args), k=k)
    assert_close(fast_backend.conv_forward(x, w, None, *args), ref.conv_forward(*_f8(x, w), None, *args), k=k)


@pytest.mark.parametrize("need_dx", [True, False])
@pytest.mark.parametrize("case", CASES_2D + CASES_1D, ids=str)
def test_conv_backward_matches_reference(fast_backend, ref, rng, case, need_dx):
    x, w, b, args, k = _conv_case(rng, case, np.float32)
    dy = rng.standard_normal(ref.conv_forward(x, w, b, *args).shape).astype(np.float32)
    dx, dw, db = fast_backend.conv_backward(dy, x, w, *args, has_bias=True, need_dx=need_dx)
    rdx, rdw, rdb = ref.conv_backward(*_f8(dy, x, w), *args, has_bias=True, need_dx=need_dx)
    pixels = dy.shape[0] * int(np.prod(dy.shape[1:-1]))
    assert_close(dw, rdw, k=pixels)
    assert_close(db, rdb, k=pixels)
    if need_dx:
        assert_close(dx, rdx, k=w.shape[-1] * int(np.prod(w.shape[:-2])))
    else:
        assert dx is None
    _, _, none = fast_backend.conv_backward(dy, x, w, *args, has_bias=False)
    assert none is None


# (x shape, kernel, strides, padding, output_padding, dilation, out channels)
CASES_T = [
    ((2, 3, 4, 5), (3, 3), (2, 2), "same", None, (1, 1), 4),
    ((1, 4, 3, 2), (3, 2), (2, 3), "valid", (1, 2), (1, 1), 3),
    ((2, 5, 5, 3), (4, 4), (3, 3), "same", (2, 1), (1, 1), 2),
    ((1, 6, 7, 4), (3, 3), (1, 1), "valid", None, (2, 2), 5),
    ((3, 7, 6), 5, 2, "same", None, 1, 3),
    ((2, 5, 3), 3, 3, "valid", 2, 1, 4),
]


@pytest.mark.parametrize("case", CASES_T, ids=str)
def test_conv_transpose_matches_reference(fast_backend, ref, rng, case):
    x_shape, k, s, pad, opad, d, cout = case
    kernel = (k,) if np.ndim(k) == 0 else k
    x, w, _ = _inputs(rng, x_shape, tuple(kernel) + (cout, x_shape[-1]), np.float32, bias=False)
    b = rng.standard_normal(cout).astype(np.float32)
    args = (s, pad, opad, d)
    y = fast_backend.conv_transpose_forward(x, w, b, *args)
    assert_close(y, ref.conv_transpose_forward(*_f8(x, w, b), *args), k=int(np.prod(kernel)) * x_shape[-1])
    dy = rng.standard_normal(y.shape).astype(np.float32)
    got = fast_backend.conv_transpose_backward(dy, x, w, *args)
    want = ref.conv_transpose_backward(*_f8(dy, x, w), *args)
    for g, r in zip(got, want):
        assert_close(g, r, k=int(np.prod(dy.shape[:-1])))


def test_conv_takes_non_contiguous_views(fast_backend, ref, rng):
    base = rng.standard_normal((3, 12, 20, 8)).astype(np.float32)
    x = base[::2, 1:10, ::2, 1:6]  # strided on every axis
    w = rng.standard_normal((8, 3, 3, 5)).astype(np.float32).transpose(1, 2, 3, 0)[:, :, :, :4]
    b = rng.standard_normal(8).astype(np.float32)[::2]
    args = ((2, 1), "same", (1, 1), 1)
    y = fast_backend.conv_forward(x, w, b, *args)
    assert_close(y, ref.conv_forward(*_f8(x, w, b), *args), k=45)
    dy = rng.standard_normal(y.shape + (2,)).astype(np.float32)[..., 0]
    got = fast_backend.conv_backward(dy, x, w, *args)
    for g, r in zip(got, ref.conv_backward(*_f8(dy, x, w), *args)):
        assert_close(g, r, k=100)


@pytest.mark.parametrize("case", [((9, 14, 14, 16), (3, 3), (1, 1), "same", (1, 1), 1),
                                  ((5, 9, 8, 6), (3, 3), (2, 2), "same", (1, 1), 2),
                                  ((1, 17, 19, 4), (5, 5), (1, 1), "valid", (1, 1), 1)], ids=str)
def test_conv_thread_count(fast_backend, rng, case):
    """Same thread count: bit-identical; 1 vs 2 threads: equal within rounding (the kernels' sums
    do not depend on the thread count, so they are in fact identical)."""
    x, w, b, args, k = _conv_case(rng, case, np.float32)
    dy = rng.standard_normal(fast_backend.conv_forward(x, w, b, *args).shape).astype(np.float32)
    before = pyminidl.config.get_num_threads()

    def run():
        return (fast_backend.conv_forward(x, w, b, *args),) + fast_backend.conv_backward(dy, x, w, *args)

    try:
        pyminidl.config.set_num_threads(2)
        two, again = run(), run()
        pyminidl.config.set_num_threads(1)
        one = run()
    finally:
        pyminidl.config.set_num_threads(before)
    for a, b2, c in zip(two, again, one):
        np.testing.assert_array_equal(a, b2)
        assert_close(c, a.astype(np.float64), k=k * 64)


# The float32 forward's register tiles (conv_simd.h) by filters per group: 1 vector (<= 8/16,
# masked), 2 vectors (17, 33, 48, with a masked tail), 4 vectors (AVX2: 32, 64, 128; AVX-512: 64, 128); first layers
# (C = 1, 3) and a grouped layer of 64 filters per group; 'same' and strided/dilated 'valid'.
TILE_CASES = [
    ((2, 9, 7, 1), 1, 32, (1, 1), "same", (1, 1)),
    ((1, 28, 28, 1), 1, 17, (1, 1), "same", (1, 1)),
    ((2, 11, 10, 3), 1, 64, (2, 2), "same", (1, 1)),
    ((1, 13, 9, 5), 1, 33, (1, 1), "valid", (2, 2)),
    ((2, 7, 8, 6), 1, 48, (1, 2), "same", (1, 1)),
    ((1, 10, 11, 4), 1, 128, (1, 1), "same", (1, 1)),
    ((2, 6, 9, 8), 2, 128, (1, 1), "same", (1, 1)),
    ((1, 8, 7, 3), 1, 7, (3, 3), "same", (1, 1)),
]


@pytest.mark.parametrize("isa", ["avx512", "avx2", "baseline"])
@pytest.mark.parametrize("case", TILE_CASES, ids=str)
def test_conv_forward_tiles_match_reference_on_every_isa_path(cpu, ref, rng, case, isa):
    x_shape, groups, filters, strides, padding, dilation = case
    x, w, b = _inputs(rng, x_shape, (3, 3, x_shape[-1] // groups, filters), np.float32)
    pyminidl.config.set_cpu_capability(isa)
    args = (strides, padding, dilation, groups)
    got = cpu.conv_forward(x, w, b, *args)
    assert_close(got, ref.conv_forward(*_f8(x, w, b), *args), k=9 * x_shape[-1] // groups)
    assert_close(cpu.conv_forward(x, w, None, *args), ref.conv_forward(*_f8(x, w), None, *args),
                 k=9 * x_shape[-1] // groups)
    dy = rng.standard_normal(got.shape).astype(np.float32)
    dx, _, _ = cpu.conv_backward(dy, x, w, *args)  # stride 1: the input gradient is a forward too
    assert_close(dx, ref.conv_backward(*_f8(dy, x, w), *args)[0], k=9 * filters)


def test_conv_forward_is_bit_identical_across_thread_counts(cpu, rng):
    x, w, b = _inputs(rng, (5, 12, 12, 8), (3, 3, 8, 64), np.float32)
    pyminidl.config.set_num_threads(1)
    one = cpu.conv_forward(x, w, b, 1, "same", 1, 1)
    pyminidl.config.set_num_threads(2)
    np.testing.assert_array_equal(cpu.conv_forward(x, w, b, 1, "same", 1, 1), one)
    np.testing.assert_array_equal(cpu.conv_forward(x, w, b, 1, "same", 1, 1), one)


# Taps in the padding for whole tiles: a kernel taller than the image, dilated taps past the top
# and bottom rows, the 14x14 layer's top and bottom rows, in the forward tiles, the stride-1 input
# gradient (the same tiles on dy) and the weight gradient's pixel spans (wgrad_tile); tiles by
# channels per tap.
# (x shape, kernel, filters, dilation)
SKIP_CASES = [
    ((2, 4, 9, 16), (7, 7), 6, (1, 1)),
    ((1, 6, 30, 5), (5, 3), 40, (3, 1)),
    ((2, 14, 14, 32), (3, 3), 64, (1, 1)),
    ((1, 3, 17, 8), (5, 5), 128, (1, 1)),
    # 16 or more channels per tap with 2-vector filter strips (AVX-512's 8-row tile), masked tails.
    ((2, 9, 11, 24), (3, 3), 40, (1, 1)),
    ((1, 5, 7, 16), (3, 3), 17, (2, 1)),
]


@pytest.mark.parametrize("isa", ["avx512", "avx2", "baseline"])
@pytest.mark.parametrize("case", SKIP_CASES, ids=str)
def test_conv_tiles_skipping_padded_taps_match_reference_on_every_isa_path(cpu, ref, rng, case, isa):
    x_shape, kernel, filters, dilation = case
    x, w, b = _inputs(rng, x_shape, kernel + (x_shape[-1], filters), np.float32)
    pyminidl.config.set_cpu_capability(isa)
    args, k = (1, "same", dilation, 1), int(np.prod(kernel)) * x_shape[-1]
    got = cpu.conv_forward(x, w, b, *args)
    assert_close(got, ref.conv_forward(*_f8(x, w, b), *args), k=k)
    dy = rng.standard_normal(got.shape).astype(np.float32)
    dx, dw, _ = cpu.conv_backward(dy, x, w, *args)
    rdx, rdw, _ = ref.conv_backward(*_f8(dy, x, w), *args)
    assert_close(dx, rdx, k=int(np.prod(kernel)) * filters)
    assert_close(dw, rdw, k=int(np.prod(dy.shape[:-1])))


# The float32 weight gradient's register tiles (conv_simd.h, wgrad_tile) by filters per group:
# 1 vector (<= 8 / 16), 2 vectors (17, 33, 48: masked tails), 4 vectors (64, 128: AVX-512); patch
# rows that end off a tile (K = 9, 27, 45, 63) and tiles that cross taps (first layers, C = 1, 3);
# strides 1-3, dilation, groups, padding on every side, odd sizes, batch 1, a 1-D case.
# (x shape, kernel, groups, filters, strides, padding, dilation)
WGRAD_CASES = [
    ((3, 28, 28, 1), (3, 3), 1, 32, (1, 1), "same", (1, 1)),
    ((2, 11, 13, 3), (3, 3), 1, 32, (1, 1), "same", (1, 1)),
    ((1, 9, 7, 3), (5, 5), 1, 16, (2, 2), "same", (1, 1)),
    ((2, 9, 10, 1), (3, 3), 1, 8, (1, 1), "valid", (1, 1)),
    ((1, 13, 9, 5), (3, 3), 1, 33, (1, 1), "valid", (2, 2)),
    ((2, 7, 8, 6), (3, 3), 1, 48, (1, 2), "same", (1, 1)),
    ((1, 10, 11, 4), (3, 3), 1, 128, (1, 1), "same", (1, 1)),
    ((2, 14, 14, 32), (3, 3), 1, 64, (1, 1), "same", (1, 1)),
    ((2, 6, 9, 8), (3, 3), 2, 128, (1, 1), "same", (1, 1)),
    ((3, 10, 10, 6), (3, 2), 3, 51, (2, 3), "same", (2, 1)),
    ((1, 8, 7, 3), (3, 3), 1, 7, (3, 3), "same", (1, 1)),
    ((2, 17, 7, 7), (4, 2), 1, 17, (3, 1), "same", (1, 1)),
    ((1, 5, 5, 2), (5, 5), 1, 20, (1, 1), "valid", (1, 1)),
    ((2, 1, 23, 5), (1, 5), 1, 40, (1, 2), "same", (1, 3)),
    ((1, 3, 1400, 64), (3, 3), 1, 8, (1, 1), "same", (1, 1)),  # one band row too wide: im2col
    # Taps in the padding, skipped per tile (wgrad_tile's pixel spans): a kernel larger than the
    # image (taps never inside), dilated taps past the edges, several bands of rows per image
    # (spans that differ from the first band to the last), stride 2 with 'same' on odd sizes.
    ((2, 3, 4, 5), (7, 7), 1, 16, (1, 1), "same", (1, 1)),
    ((1, 6, 5, 4), (5, 5), 1, 64, (1, 1), "same", (2, 2)),
    ((2, 20, 300, 8), (3, 3), 1, 64, (1, 1), "same", (1, 1)),
    ((1, 21, 160, 16), (5, 3), 1, 32, (2, 1), "same", (1, 2)),
    ((3, 9, 7, 32), (3, 3), 1, 64, (2, 2), "same", (1, 1)),
]


@pytest.mark.parametrize("isa", ["avx512", "avx2", "baseline"])
@pytest.mark.parametrize("case", WGRAD_CASES, ids=str)
def test_conv_weight_gradient_tiles_match_reference_on_every_isa_path(cpu, ref, rng, case, isa):
    x_shape, kernel, groups, filters, strides, padding, dilation = case
    x, w, _ = _inputs(rng, x_shape, kernel + (x_shape[-1] // groups, filters), np.float32, bias=False)
    pyminidl.config.set_cpu_capability(isa)
    args = (strides, padding, dilation, groups)
    dy = rng.standard_normal(ref.conv_forward(x, w, None, *args).shape).astype(np.float32)
    _, dw, _ = cpu.conv_backward(dy, x, w, *args, has_bias=False, need_dx=False)
    _, rdw, _ = ref.conv_backward(*_f8(dy, x, w), *args, has_bias=False, need_dx=False)
    assert dw.dtype == np.float32 and dw.shape == w.shape
    assert_close(dw, rdw, k=int(np.prod(dy.shape[:-1])))


def _at_offset(a, offset_bytes):
    """A copy of a whose data starts offset_bytes past a 64-byte boundary."""
    buf = np.empty(a.size + 64, a.dtype)
    start = (-buf.ctypes.data % 64 + offset_bytes) // a.itemsize
    out = buf[start:start + a.size].reshape(a.shape)
    out[...] = a
    return out


# The implicit forward copies a kernel that is off a 64-byte boundary to an aligned place in its
# work, and builds the input gradient's flipped kernel at one: the same bits from every offset.
@pytest.mark.parametrize("isa", ["avx512", "avx2", "baseline"])
@pytest.mark.parametrize("filters", [64, 33])
def test_conv_results_do_not_depend_on_the_kernel_alignment(cpu, ref, rng, isa, filters):
    x, w, b = _inputs(rng, (3, 7, 9, 16), (3, 3, 16, filters), np.float32)
    dy = rng.standard_normal((3, 7, 9, filters)).astype(np.float32)
    pyminidl.config.set_cpu_capability(isa)
    outs = []
    for offset in (0, 4, 16, 32, 48):
        wo = _at_offset(w, offset)
        outs.append((cpu.conv_forward(x, wo, b, 1, "same", 1, 1), cpu.conv_backward(dy, x, wo, 1, "same", 1, 1)[0]))
    for y, dx in outs[1:]:
        np.testing.assert_array_equal(y, outs[0][0])
        np.testing.assert_array_equal(dx, outs[0][1])
    assert_close(outs[0][0], ref.conv_forward(*_f8(x, w, b), 1, "same", 1, 1), k=9 * 16)


# An inf or NaN in dy reaches every dw row it multiplies, those of taps in the padding too (0 * inf
# is NaN in the reference): the tiles' padded-pixel skip stays off for that part of the sum, on a
# corner pixel (all taps but one partly in the padding), in an image of a later part (batch 20:
# 16 parts), and in a transposed convolution, whose weight gradient takes x as its dy.
@pytest.mark.parametrize("isa", ["avx512", "avx2", "baseline"])
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("at", [(0, 0, 0, 3), (17, 13, 0, 0), (5, 6, 7, 63)], ids=str)
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_conv_weight_gradient_keeps_non_finite_dy_in_padded_taps(cpu, ref, rng, isa, bad, at):
    x, w, _ = _inputs(rng, (20, 14, 14, 32), (3, 3, 32, 64), np.float32, bias=False)
    dy = rng.standard_normal((20, 14, 14, 64)).astype(np.float32)
    dy[at] = bad
    pyminidl.config.set_cpu_capability(isa)
    _, dw, _ = cpu.conv_backward(dy, x, w, 1, "same", 1, 1, has_bias=False, need_dx=False)
    _, rdw, _ = ref.conv_backward(*_f8(dy, x, w), 1, "same", 1, 1, has_bias=False, need_dx=False)
    np.testing.assert_array_equal(np.isnan(dw), np.isnan(rdw))
    np.testing.assert_array_equal(np.isposinf(dw), np.isposinf(rdw))
    finite = np.isfinite(rdw)
    assert_close(np.where(finite, dw, 0), np.where(finite, rdw, 0), k=20 * 14 * 14)
    xt = dy[:, ::2, ::2, :32].copy()  # the transposed convolution's input, 7x7 -> 14x14
    _, dwt, _ = cpu.conv_transpose_backward(x, xt, w[..., :32].copy(), 2, "same", None, 1)
    _, rdwt, _ = ref.conv_transpose_backward(*_f8(x, xt, w[..., :32]), 2, "same", None, 1)
    np.testing.assert_array_equal(np.isnan(dwt), np.isnan(rdwt))


@pytest.mark.parametrize("isa", ["avx512", "avx2", "baseline"])
@pytest.mark.parametrize("batch", [1, 5, 37])  # 1, 5 and 16 parts of the sum
def test_conv_weight_gradient_is_bit_identical_across_thread_counts(cpu, rng, isa, batch):
    x, w, _ = _inputs(rng, (batch, 9, 11, 3), (3, 3, 3, 40), np.float32, bias=False)
    dy = rng.standard_normal((batch, 9, 11, 40)).astype(np.float32)
    pyminidl.config.set_cpu_capability(isa)
    pyminidl.config.set_num_threads(1)
    one = cpu.conv_backward(dy, x, w, 1, "same", 1, 1, has_bias=True, need_dx=False)[1:]
    pyminidl.config.set_num_threads(2)
    for _ in range(2):  # dw and db (summed by the same parts)
        for got, want in zip(cpu.conv_backward(dy, x, w, 1, "same", 1, 1, has_bias=True, need_dx=False)[1:], one):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("x_shape,w_shape", [((0, 0, 0, 1), (1, 1, 1, 0)), ((0, 5, 5, 3), (3, 3, 3, 4)),
                                             ((2, 3, 4, 2), (1, 1, 2, 0))])
@pytest.mark.parametrize("strides", [(1, 1), (1, 2), (2, 2)])
@pytest.mark.parametrize("need_dx", [False, True])
def test_empty_problems_need_no_workspace(x_shape, w_shape, strides, need_dx):
    # The workspace of an empty problem was sized from its empty output (OH - 1 < 0): negative, a
    # MemoryError (std::bad_array_new_length) before any kernel ran. There is nothing to compute.
    out = [max(0, (x_shape[1 + a] - w_shape[a]) // strides[a] + 1) for a in (0, 1)]
    dy_shape = (x_shape[0], *out, w_shape[-1])
    x, w, dy = np.ones(x_shape, np.float32), np.ones(w_shape, np.float32), np.ones(dy_shape, np.float32)
    assert _C.conv_forward(x, w, None, strides, (0, 0), out, (1, 1), 1).shape == dy_shape
    dx, dw, db = _C.conv_backward(dy, x, w, strides, (0, 0), (1, 1), 1, True, need_dx)
    assert dw.shape == w.shape and not dw.any() and db.shape == (w_shape[-1],) and not db.any()
    assert dx is None if not need_dx else (dx.shape == x_shape and not dx.any())


@pytest.mark.parametrize("channels", [1, 3])
def test_first_layer_paths_give_the_same_bits(cpu, rng, channels):
    # A batch of at least one image per thread runs the first layer on zero-padded copies of its
    # images (conv.cpp, padded_path); a single image keeps the tiles on x itself. Same products in
    # the same order: the same bits.
    x, w, b = _inputs(rng, (4, 13, 11, channels), (3, 3, channels, 32), np.float32)
    pyminidl.config.set_num_threads(2)
    for isa in ("avx512", "avx2"):
        pyminidl.config.set_cpu_capability(isa)
        batch = cpu.conv_forward(x, w, b, 1, "same", 1, 1)
        for n in range(4):
            np.testing.assert_array_equal(cpu.conv_forward(x[n:n + 1], w, b, 1, "same", 1, 1)[0], batch[n])
