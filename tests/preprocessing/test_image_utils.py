"""Image utilities: Pillow round trips, colour conversion and resizing against the definitions, atomic
writes, the error without Pillow, and clear errors for bad paths, files and sizes."""

import builtins
import os

import numpy as np
import pytest

from pyminidl import utils
from pyminidl.preprocessing import image as keras_image
from pyminidl.testing import assert_close
from pyminidl.utils import image_utils


def _ref_bilinear(x, oh, ow):
    """Half-pixel-centre bilinear resize of (N, H, W, C), output pixel by output pixel."""
    n, h, w, c = x.shape

    def taps(i, n_in, n_out):
        s = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
        i0 = min(int(np.floor(s)), n_in - 1)
        return i0, min(i0 + 1, n_in - 1), s - i0

    out = np.zeros((n, oh, ow, c))
    for i in range(oh):
        r0, r1, a = taps(i, h, oh)
        for j in range(ow):
            c0, c1, b = taps(j, w, ow)
            out[:, i, j] = ((1 - a) * ((1 - b) * x[:, r0, c0] + b * x[:, r0, c1])
                            + a * ((1 - b) * x[:, r1, c0] + b * x[:, r1, c1]))
    return out


def test_smart_resize_crops_to_aspect_then_resizes_without_pillow(rng):
    x = rng.uniform(0, 255, (12, 20, 3))
    y = utils.smart_resize(x, (6, 6))  # the centred 12x12 window (columns 4..15), then bilinear
    assert y.shape == (6, 6, 3) and y.dtype == np.float64
    assert_close(y, _ref_bilinear(x[None, :, 4:16], 6, 6)[0], k=4)
    batch = utils.smart_resize(x[None].astype(np.uint8), (5, 10), interpolation="nearest")
    assert batch.shape == (1, 5, 10, 3) and batch.dtype == np.float32
    first = utils.smart_resize(x.transpose(2, 0, 1), (6, 6), data_format="channels_first")
    assert_close(first, y.transpose(2, 0, 1), k=1)


@pytest.mark.parametrize("size", [(0, 5), (5, 0), (-1, 3), (2,), "ab"])
def test_smart_resize_rejects_bad_sizes(size):
    with pytest.raises(ValueError, match="size="):
        utils.smart_resize(np.zeros((4, 4, 3)), size)


def test_color_conversion_matches_definitions(rng):
    rgb = rng.integers(0, 256, (4, 5, 3)).astype(np.uint8)
    gray = image_utils.convert_color(rgb, "grayscale")
    want = np.rint(rgb @ np.array([0.299, 0.587, 0.114]))[..., None]
    np.testing.assert_array_equal(gray, want.astype(np.uint8))
    rgba = image_utils.convert_color(gray, "rgba")
    assert rgba.shape == (4, 5, 4) and (rgba[..., 3] == 255).all() and (rgba[..., 0] == gray[..., 0]).all()
    np.testing.assert_array_equal(image_utils.convert_color(rgba, "rgb"), np.repeat(gray, 3, axis=-1))


def test_img_to_array_layouts():
    x = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    assert utils.img_to_array(x).dtype == np.float32
    assert utils.img_to_array(x, data_format="channels_first").shape == (3, 2, 4)
    assert utils.img_to_array(x[..., 0]).shape == (2, 4, 1)
    with pytest.raises(ValueError, match=r"\(2, 2, 2, 2\)"):
        utils.img_to_array(np.zeros((2, 2, 2, 2)))


def test_missing_pillow_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_pil(name, *args, **kwargs):
        if name == "PIL" or name.startswith("PIL."):
            raise ImportError("No module named 'PIL'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pil)
    with pytest.raises(ImportError, match=r'pip install "pyminidl\[image\]"'):
        utils.load_img("whatever.png")
    with pytest.raises(ImportError, match=r'pyminidl\[image\]'):
        utils.array_to_img(np.zeros((2, 2, 3)))


def test_round_trip_png_and_keras_paths(tmp_path, rng):
    pytest.importorskip("PIL")
    x = rng.integers(0, 256, (6, 7, 3)).astype(np.float32)
    path = tmp_path / "img.png"
    keras_image.save_img(path, x, scale=False)
    assert sorted(os.listdir(tmp_path)) == ["img.png"]  # no temporary file left behind
    img = keras_image.load_img(path)
    assert img.size == (7, 6) and img.mode == "RGB"
    np.testing.assert_array_equal(keras_image.img_to_array(img), x)
    gray = utils.img_to_array(utils.load_img(path, color_mode="grayscale"))
    np.testing.assert_array_equal(gray, np.rint(x @ np.array([0.299, 0.587, 0.114]))[..., None])
    assert utils.img_to_array(utils.load_img(path, color_mode="rgba")).shape == (6, 7, 4)


def test_load_img_resizes_with_our_kernels(tmp_path, rng):
    pytest.importorskip("PIL")
    x = rng.integers(0, 256, (8, 12, 3)).astype(np.uint8)
    path = tmp_path / "img.png"
    utils.save_img(path, x, scale=False)
    near = utils.img_to_array(utils.load_img(path, target_size=(4, 6)))  # nearest-exact: every other pixel
    np.testing.assert_array_equal(near, x[1::2, 1::2])
    kept = utils.img_to_array(utils.load_img(path, target_size=(4, 4), keep_aspect_ratio=True))
    np.testing.assert_array_equal(kept, x[1::2, 3:11][:, 0::2])  # the centred 8x8 window, then nearest
    bil = utils.img_to_array(utils.load_img(path, target_size=(3, 5), interpolation="bilinear"))
    np.testing.assert_allclose(bil, np.rint(_ref_bilinear(x[None].astype(np.float64), 3, 5)[0]), atol=1)
    assert utils.load_img(path, target_size=(5, 5), interpolation="bicubic").size == (5, 5)


def test_array_to_img_scales_and_save_img_is_atomic(tmp_path, rng, monkeypatch):
    pytest.importorskip("PIL")
    img = utils.array_to_img(np.array([[[-1.0], [1.0]]]))
    np.testing.assert_array_equal(np.asarray(img), [[0, 255]])
    path = tmp_path / "keep.jpg"
    utils.save_img(path, rng.uniform(size=(4, 4, 4)))  # RGBA to JPEG drops alpha
    before = path.read_bytes()
    from PIL import Image

    def failing_save(self, fp, format=None, **kwargs):
        fp.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        utils.save_img(path, rng.uniform(size=(4, 4, 3)))
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["keep.jpg"]
    with pytest.raises(ValueError, match=r"img\.unknownext"):
        utils.save_img(tmp_path / "img.unknownext", np.zeros((2, 2, 3)))


def test_bad_paths_and_files_name_the_value(tmp_path):
    pytest.importorskip("PIL")
    missing = tmp_path / "nope.png"
    with pytest.raises(FileNotFoundError, match="nope.png"):
        utils.load_img(missing)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ValueError, match=r"notes\.png"):
        utils.load_img(text)
    utils.save_img(tmp_path / "ok.png", np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match=r"target_size=\(0, 4\)"):
        utils.load_img(tmp_path / "ok.png", target_size=(0, 4))
    with pytest.raises(ValueError, match="color_mode='cmyk'"):
        utils.load_img(tmp_path / "ok.png", color_mode="cmyk")
