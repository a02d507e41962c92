"""Keras's image utilities: ``load_img``, ``img_to_array``, ``array_to_img``, ``save_img``, ``smart_resize``.

Decoding and encoding go through Pillow, an optional extra (``pip install "pyminidl[image]"``),
imported only when a file is read or written. Resizing (bilinear, nearest, area), colour
conversion and scaling are NumPy code of ours, so arrays can be preprocessed without Pillow.

Example:
    >>> img = load_img("cat.png", target_size=(64, 64))
    >>> x = img_to_array(img)          # (64, 64, 3) float32
    >>> save_img("small.png", x)
"""

import os
import tempfile

import numpy as np

from pyminidl.backend import _image_ops as imops
from pyminidl.backend import backend_for

PIL_INSTALL_HINT = 'pip install "pyminidl[image]"'
_PIL_RESAMPLE = ("bicubic", "hamming", "box", "lanczos")  # Keras accepts these; Pillow does them
# ITU-R 601-2 luma, the weights of Pillow's and Keras's RGB -> grayscale conversion
_LUMA = np.array([0.299, 0.587, 0.114])


def _pil_image():
    """``PIL.Image``, or an ImportError that names the extra to install."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("Reading and writing image files needs Pillow, an optional dependency of pyminidl. "
                          f"Install it with: {PIL_INSTALL_HINT}") from None
    return Image


def _data_format(data_format, who):
    data_format = data_format or "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"{who}: unknown data_format: {data_format!r}")
    return data_format


def rgb_to_grayscale(x):
    """(..., 3 or 4) RGB(A) -> (..., 1) luma with Pillow's weights (alpha dropped), same dtype as x."""
    x = np.asarray(x)
    gray = np.tensordot(x[..., :3].astype(np.float64), _LUMA, axes=([-1], [0]))[..., None]
    if x.dtype.kind in "ui":  # Pillow rounds its integer conversion
        return np.clip(np.rint(gray), np.iinfo(x.dtype).min, np.iinfo(x.dtype).max).astype(x.dtype)
    return gray.astype(x.dtype)


def convert_color(x, color_mode):
    """An (H, W, C) array (C = 1, 2, 3 or 4) in the channels of ``color_mode``: "grayscale", "rgb" or "rgba"."""
    x = np.asarray(x)
    c = x.shape[-1]
    if color_mode == "grayscale":
        return x[..., :1] if c in (1, 2) else rgb_to_grayscale(x)
    rgb = np.repeat(x[..., :1], 3, axis=-1) if c in (1, 2) else x[..., :3]
    if color_mode == "rgb":
        return rgb
    alpha = x[..., -1:] if c in (2, 4) else np.full(x.shape[:-1] + (1,), 255 if x.dtype == np.uint8 else 1,
                                                         dtype=x.dtype)
    return np.concatenate([rgb, alpha], axis=-1)


def _decode(path):
    """The pixels of the image file at ``path`` as a (H, W, C) uint8 array (C = 1, 2, 3 or 4)."""
    image = _pil_image()
    if isinstance(path, (str, os.PathLike)) and not os.path.exists(path):
        raise FileNotFoundError(f"load_img: no such image file: {os.fspath(path)!r}")
    try:
        with image.open(path) as img:
            img.load()
            if img.mode not in ("L", "LA", "RGB", "RGBA"):  # palette, CMYK, 16-bit: decode to RGB(A)
                img = img.convert("RGBA" if "A" in img.mode or "transparency" in img.info else "RGB")
            arr = np.asarray(img, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as e:  # Pillow's UnidentifiedImageError is an OSError
        raise ValueError(f"load_img: cannot decode {os.fspath(path) if not hasattr(path, 'read') else path!r} "
                         f"as an image ({type(e).__name__}: {e})") from None
    return arr[..., None] if arr.ndim == 2 else arr


def load_img(path, color_mode="rgb", target_size=None, interpolation="nearest", keep_aspect_ratio=False):
    """Loads an image into a PIL image (Keras's ``keras.utils.load_img``).

    Args:
        path: a file path (str or PathLike) or a binary file object.
        color_mode: "grayscale", "rgb" or "rgba".
        target_size: None (the file's size) or (height, width).
        interpolation: "nearest" (default), "bilinear" or "area" (ours), or Pillow's "bicubic",
            "hamming", "box", "lanczos".
        keep_aspect_ratio: crop the largest centred window with the target aspect ratio before resizing.

    Returns:
        A PIL image.

    Raises:
        ImportError: Pillow is not installed (the message names ``pip install "pyminidl[image]"``).
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not an image, or a bad color_mode, target_size or interpolation.

    Example:
        >>> img = load_img("cat.png", color_mode="grayscale", target_size=(28, 28))
        >>> img.size
        (28, 28)
    """
    if color_mode not in ("grayscale", "rgb", "rgba"):
        raise ValueError(f'color_mode must be "grayscale", "rgb", or "rgba". Received: color_mode={color_mode!r}')
    if interpolation not in imops.RESIZE_INTERPOLATIONS + _PIL_RESAMPLE:
        raise ValueError(f"load_img: `interpolation` must be one of {imops.RESIZE_INTERPOLATIONS + _PIL_RESAMPLE}. "
                         f"Received: interpolation={interpolation!r}")
    if target_size is not None:
        target_size = imops.check_size(target_size, "load_img", "target_size")
    x = convert_color(_decode(path), color_mode)
    image = _pil_image()
    if target_size is not None and tuple(x.shape[:2]) != target_size:
        if keep_aspect_ratio:
            top, left, ch, cw = imops.aspect_crop_box(x.shape[0], x.shape[1], *target_size)
            x = x[top:top + ch, left:left + cw]
        if interpolation in _PIL_RESAMPLE:
            img = _to_pil(x)
            return img.resize((target_size[1], target_size[0]), getattr(image.Resampling, interpolation.upper()))
        batch = x[None].astype(np.float32)
        y = backend_for(batch).resize_forward(batch, target_size, interpolation)[0]
        x = np.clip(np.rint(y), 0, 255).astype(np.uint8)
    return _to_pil(x)


def _to_pil(x):
    """A PIL image from an (H, W, C) uint8 array, C = 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA)."""
    image = _pil_image()
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[x.shape[-1]]
    return image.fromarray(np.ascontiguousarray(x[..., 0] if mode == "L" else x), mode=mode)


def img_to_array(img, data_format=None, dtype=None):
    """A PIL image (or anything array-like) as a 3-D array: (H, W, C), or (C, H, W) for channels_first.

    Args:
        img: a PIL image or an array.
        data_format: "channels_last" (default) or "channels_first".
        dtype: default float32.

    Raises:
        ValueError: the image is not 2-D (grayscale) or 3-D.

    Example:
        >>> img_to_array(load_img("cat.png")).shape
        (480, 640, 3)
    """
    data_format = _data_format(data_format, "img_to_array")
    x = np.asarray(img, dtype=dtype or "float32")
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3:
        raise ValueError(f"Unsupported image shape: {x.shape}")
    return x.transpose(2, 0, 1) if data_format == "channels_first" else x


def array_to_img(x, data_format=None, scale=True, dtype=None):
    """A 3-D array as a PIL image; with ``scale`` the values are stretched to [0, 255] first (Keras's rule).

    Args:
        x: (H, W, C) (or (C, H, W) for channels_first) with C in {1, 3, 4}.
        data_format: "channels_last" (default) or "channels_first".
        scale: shift the minimum to 0 and the maximum to 255.
        dtype: accepted for Keras compatibility.

    Raises:
        ValueError: a shape that is not 3-D or a channel count other than 1, 3 or 4.

    Example:
        >>> array_to_img(np.random.rand(8, 8, 3)).mode
        'RGB'
    """
    data_format = _data_format(data_format, "array_to_img")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"Expected image array to have rank 3 (single image). Got array with shape: {x.shape}")
    if data_format == "channels_first":
        x = x.transpose(1, 2, 0)
    if x.shape[-1] not in (1, 3, 4):
        raise ValueError(f"Unsupported channel number: {x.shape[-1]}")
    if scale:
        x = x - x.min()
        peak = x.max()
        if peak != 0:
            x = x / peak
        x = x * 255.0
    return _to_pil(np.clip(x, 0, 255).astype(np.uint8))  # Keras truncates, as uint8 casting does


def save_img(path, x, data_format=None, file_format=None, scale=True, **kwargs):
    """Saves an array as an image file, atomically (a temporary file beside ``path``, then a rename).

    Args:
        path: the file to write.
        x: (H, W, C) array (or (C, H, W) with channels_first).
        data_format: "channels_last" (default) or "channels_first".
        file_format: e.g. "png", "jpeg"; default from the file extension.
        scale: as ``array_to_img``.
        **kwargs: passed to ``PIL.Image.save`` (e.g. ``quality=90``).

    Raises:
        ValueError: no format can be told from the extension and none was given.

    Example:
        >>> save_img("out.png", np.random.rand(8, 8, 3))
    """
    image = _pil_image()
    img = array_to_img(x, data_format=data_format, scale=scale)
    path = os.fspath(path)
    if file_format is None:
        ext = os.path.splitext(path)[1].lower()
        file_format = image.registered_extensions().get(ext)
        if file_format is None:
            raise ValueError(f"save_img: cannot tell the image format from the extension of {path!r}; "
                             "pass file_format (e.g. 'png').")
    if img.mode == "RGBA" and str(file_format).lower() in ("jpg", "jpeg"):
        img = img.convert("RGB")  # JPEG has no alpha (Keras warns and drops it)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            img.save(f, format=file_format, **kwargs)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def smart_resize(x, size, interpolation="bilinear", data_format="channels_last", backend_module=None):
    """Resizes images to ``size`` without distortion: crops the largest centred window of the target
    aspect ratio, then resizes it (Keras's ``keras.utils.smart_resize``).

    Args:
        x: (H, W, C) or (N, H, W, C) array (channels first with data_format="channels_first").
        size: (height, width).
        interpolation: "bilinear", "nearest" or "area".
        data_format: "channels_last" or "channels_first".
        backend_module: accepted for Keras compatibility (NumPy is used).

    Returns:
        A float array (float32 unless x is float64) of the new size.

    Raises:
        ValueError: a size with a zero or negative entry, an input that is not 3-D or 4-D.

    Example:
        >>> smart_resize(np.zeros((480, 640, 3)), (224, 224)).shape
        (224, 224, 3)
    """
    size = imops.check_size(size, "smart_resize", "size")
    if interpolation not in imops.RESIZE_INTERPOLATIONS:
        raise ValueError(f"smart_resize: `interpolation` must be one of {imops.RESIZE_INTERPOLATIONS}. "
                         f"Received: interpolation={interpolation!r}")
    data_format = _data_format(data_format, "smart_resize")
    x = np.asarray(x)
    if x.ndim not in (3, 4):
        raise ValueError("Expected an image array with shape `(height, width, channels)`, or "
                         "`(batch_size, height, width, channels)`, but got input with incorrect rank, "
                         f"of shape {x.shape}.")
    x = x if x.dtype == np.float64 else x.astype(np.float32)
    batch = x if x.ndim == 4 else x[None]
    if data_format == "channels_first":
        batch = batch.transpose(0, 2, 3, 1)
    top, left, ch, cw = imops.aspect_crop_box(batch.shape[1], batch.shape[2], *size)
    y = backend_for(batch).resize_forward(batch[:, top:top + ch, left:left + cw], size, interpolation)
    if data_format == "channels_first":
        y = y.transpose(0, 3, 1, 2)
    return y if x.ndim == 4 else y[0]
