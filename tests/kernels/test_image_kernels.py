"""CpuBackend resize and affine sampling (the C++ image kernels) vs the reference Backend, float32."""

import math

import numpy as np
import pytest

import pyminidl
from pyminidl.backend import _image_ops
from pyminidl.backend._compat import _C
from pyminidl.backend.base import Backend
from pyminidl.testing import assert_close

pytestmark = [pytest.mark.sanitize, pytest.mark.skipif(_C is None, reason="the C++ extension is not built")]

REF = Backend()
RESIZE_CASES = [  # (N, H, W, C) -> (OH, OW)
    ((1, 1, 1, 1), (1, 1)), ((1, 1, 1, 1), (3, 5)), ((2, 7, 5, 3), (7, 5)), ((2, 7, 5, 3), (17, 3)),
    ((3, 28, 28, 1), (32, 32)), ((1, 33, 17, 4), (8, 65)), ((4, 64, 48, 3), (24, 20)), ((2, 9, 9, 2), (1, 1)),
]
FILL_MODES = ["reflect", "wrap", "constant", "nearest"]


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("shape,size", RESIZE_CASES, ids=str)
def test_resize_matches_reference(cpu, rng, interpolation, shape, size):
    x = (10.0 * rng.standard_normal(shape)).astype(np.float32)
    got = cpu.resize_forward(x, size, interpolation)
    assert got.dtype == np.float32 and got.shape == (shape[0],) + size + (shape[3],)
    assert_close(got, REF.resize_forward(x.astype(np.float64), size, interpolation), k=4)


def test_resize_strided_input_and_area_fallback(cpu, rng):
    base = rng.standard_normal((2, 20, 30, 6)).astype(np.float32)
    view = base[:, ::2, 1::3, ::2]  # a non-contiguous view reaches the kernel through one copy
    assert_close(cpu.resize_forward(view, (7, 9)), REF.resize_forward(view.astype(np.float64), (7, 9)), k=4)
    area = cpu.resize_forward(base, (5, 6), "area")  # no C++ kernel: the reference answers
    np.testing.assert_array_equal(area, REF.resize_forward(base, (5, 6), "area"))


def _random_transforms(rng, n, h, w, projective):
    angles = rng.uniform(-math.pi, math.pi, n)
    t = np.asarray(_image_ops.rotation_transforms(np, angles, h, w), dtype=np.float64)
    t[:, 2] += rng.uniform(-0.6 * w, 0.6 * w, n)  # and a shift past the edges, so fill modes matter
    t[:, 5] += rng.uniform(-0.6 * h, 0.6 * h, n)
    if projective:
        t[:, 6:8] = rng.uniform(-0.2 / max(h, w), 0.2 / max(h, w), (n, 2))
    return t.astype(np.float32)


@pytest.mark.parametrize("projective", [False, True])
@pytest.mark.parametrize("fill_mode", FILL_MODES)
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 7, 5, 3), (2, 28, 28, 1), (2, 17, 33, 4)], ids=str)
def test_affine_matches_reference(cpu, rng, shape, interpolation, fill_mode, projective):
    x = (5.0 * rng.standard_normal(shape)).astype(np.float32)
    t = _random_transforms(rng, shape[0], shape[1], shape[2], projective)
    got = cpu.affine_transform_forward(x, t, interpolation, fill_mode, 0.5)
    ref = REF.affine_transform_forward(x.astype(np.float64), t, interpolation, fill_mode, 0.5)
    if interpolation == "nearest":  # a coordinate on a .5 boundary may round either way in float64 vs 32
        assert np.mean(np.isclose(got, ref, rtol=1e-5, atol=1e-5)) > 0.995
    else:
        assert_close(got, ref, k=4)


def test_results_do_not_depend_on_the_thread_count(rng):
    x = rng.standard_normal((8, 64, 64, 3)).astype(np.float32)
    t = _random_transforms(rng, 8, 64, 64, False)
    before = pyminidl.config.get_num_threads()
    runs = []
    try:
        for threads in (1, 2, 1):
            pyminidl.config.set_num_threads(threads)
            runs.append((_C.resize_forward(x, 50, 70, "bilinear"),
                         _C.affine_transform_forward(x, t, "bilinear", "reflect", 0.0)))
    finally:
        pyminidl.config.set_num_threads(before)
    for resized, sampled in runs[1:]:
        np.testing.assert_array_equal(resized, runs[0][0])
        np.testing.assert_array_equal(sampled, runs[0][1])


def test_bad_arguments_are_refused_before_the_kernel(rng):
    x = rng.standard_normal((2, 4, 4, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="height and width must be in"):
        _C.resize_forward(x, 0, 3, "bilinear")
    with pytest.raises(ValueError, match="interpolation must be"):
        _C.resize_forward(x, 2, 3, "bicubic")
    with pytest.raises(TypeError, match="float32"):
        _C.resize_forward(x.astype(np.float64), 2, 3, "bilinear")
    with pytest.raises(ValueError, match="4-D"):
        _C.resize_forward(x[0], 2, 3, "bilinear")
    with pytest.raises(ValueError, match=r"\(N, 8\)"):
        _C.affine_transform_forward(x, np.zeros((3, 8), np.float32), "bilinear", "reflect", 0.0)
    bad = np.zeros((2, 8), np.float32)
    bad[1, 4] = np.nan
    with pytest.raises(ValueError, match="finite"):
        _C.affine_transform_forward(x, bad, "bilinear", "reflect", 0.0)
    with pytest.raises(ValueError, match="fill_mode"):
        _C.affine_transform_forward(x, np.zeros((2, 8), np.float32), "bilinear", "mirror", 0.0)
