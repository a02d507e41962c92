"""Image augmentation layers (Keras 3), active only in training: at inference they pass images through.

RandomFlip, RandomRotation, RandomTranslation, RandomZoom, RandomContrast and RandomCrop draw their
parameters per batch from the layer's generator (``seed`` makes the sequence reproducible; without
it they draw from pyminidl's global generator, which ``set_random_seed`` fixes). Each transform is
linear in the image for the parameters drawn, so backward is its exact adjoint for that draw: the
flipped dy, the transposed sampling map of the affine warps, the contrast map's transpose (zero
where the output was clipped).

Example:
    >>> augment = Sequential([RandomFlip("horizontal", seed=1), RandomRotation(0.1, seed=2)])
    >>> augment(images, training=True)    # flipped and rotated copies
    >>> augment(images)                   # the images unchanged
"""

import math
import numbers

from pyminidl import random as pmd_random
from pyminidl.backend import get_backend
from pyminidl.backend import _image_ops as imops
from pyminidl.layers.base import FORWARD_OPTIONS
from pyminidl.layers.preprocessing import ImageLayer, _data_format, resize_images, resize_images_backward

_HORIZONTAL, _VERTICAL, _BOTH = "horizontal", "vertical", "horizontal_and_vertical"


def _check_choice(who, name, value, choices):
    if value not in choices:
        raise ValueError(f"{who}: `{name}` must be one of {choices}. Received: {name}={value!r}")
    return value


def _symmetric_factor(who, name, factor, lo=-1.0, hi=1.0, lo_open=False):
    """Keras's factor convention: a number f means (-|f|, |f|); a pair is (lower, upper), sorted."""
    def bad():
        return ValueError(f"{who}: `{name}` must be a float or a tuple of two floats in "
                          f"{'(' if lo_open else '['}{lo}, {hi}]. Received: {name}={factor!r}")

    if isinstance(factor, (tuple, list)):
        if len(factor) != 2 or not all(isinstance(f, numbers.Real) and not isinstance(f, bool) for f in factor):
            raise bad()
        pair = tuple(sorted(float(f) for f in factor))
    elif isinstance(factor, numbers.Real) and not isinstance(factor, bool):
        pair = (-abs(float(factor)), abs(float(factor)))
    else:
        raise bad()
    if any(f > hi or f < lo or (lo_open and f == lo) for f in pair):
        raise bad()
    return pair


class RandomLayer(ImageLayer):
    """Seeded generator and the training switch shared by the augmentation layers."""

    def __init__(self, seed=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self._rng = None if seed is None else pmd_random.make_rng(seed)
        self.data_format = _data_format(data_format, type(self).__name__)
        self.built = True

    def _generator(self):
        return self._rng if self._rng is not None else pmd_random.global_rng()

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x, training=False):
        need_dx = FORWARD_OPTIONS.need_dx  # False as a model's first layer: no input gradient
        if not training:
            return self._inference(x, need_dx)
        x4, restore = self._as_nhwc(x)
        y4, back4 = self._augment(x4, self._generator())
        if not need_dx:
            return restore(y4), lambda dy: None

        def backward(dy):
            dy4, _ = self._as_nhwc(dy)
            return restore(back4(dy4))

        return restore(y4), backward

    def _inference(self, x, need_dx):
        return x, (lambda dy: dy) if need_dx else (lambda dy: None)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"seed": self.seed, "data_format": self.data_format})
        return cfg


class RandomFlip(RandomLayer):
    """Flips each image with probability 1/2 (for "horizontal_and_vertical", Keras flips both axes at once).

    Args:
        mode: "horizontal" (left-right), "vertical" (up-down) or "horizontal_and_vertical".
        seed: int for a reproducible sequence of flips.

    Example:
        >>> RandomFlip("horizontal", seed=0)(images, training=True).shape == images.shape
        True
    """

    def __init__(self, mode=_BOTH, seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.mode = _check_choice("RandomFlip", "mode", mode, (_HORIZONTAL, _VERTICAL, _BOTH))

    def _flip(self, x, flips):
        xp = get_backend().xp
        y = x.copy()
        sel = xp.nonzero(flips)[0]
        if len(sel):
            part = x[sel]
            if self.mode in (_HORIZONTAL, _BOTH):
                part = part[:, :, ::-1]
            if self.mode in (_VERTICAL, _BOTH):
                part = part[:, ::-1]
            y[sel] = part
        return y

    def _augment(self, x, rng):
        xp = get_backend().xp
        flips = xp.asarray(rng.random(x.shape[0]) <= 0.5)  # Keras: uniform <= 0.5 flips
        return self._flip(x, flips), lambda dy: self._flip(dy, flips)  # a flip is its own adjoint

    def get_config(self):
        cfg = super().get_config()
        cfg["mode"] = self.mode
        return cfg


class _AffineLayer(RandomLayer):
    """An augmentation that resamples each image through a per-image affine map (Keras's affine_transform)."""

    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0,
                 data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        who = type(self).__name__
        self.fill_mode = _check_choice(who, "fill_mode", fill_mode, imops.FILL_MODES)
        self.interpolation = _check_choice(who, "interpolation", interpolation, imops.AFFINE_INTERPOLATIONS)
        self.fill_value = float(fill_value)

    def _augment(self, x, rng):
        be = get_backend()
        n, h, w = x.shape[:3]
        transforms = self._transforms(be.xp, rng, n, h, w)
        y = be.affine_transform_forward(x, transforms, self.interpolation, self.fill_mode, self.fill_value)
        # dL/dx = A^T dy
        return y, lambda dy: be.affine_transform_backward(dy, transforms, self.interpolation, self.fill_mode)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"fill_mode": self.fill_mode, "interpolation": self.interpolation, "fill_value": self.fill_value})
        return cfg


class RandomRotation(_AffineLayer):
    """Rotates each image by a random angle about its centre.

    Args:
        factor: a fraction of a full turn: f means an angle in [-f * 360, f * 360] degrees; a pair
            (lower, upper) gives the range directly (positive = counter-clockwise in Keras's sense).
        fill_mode: "reflect" (default), "wrap", "constant" or "nearest": how pixels outside are read.
        interpolation: "bilinear" or "nearest".
        fill_value: the value outside the image for fill_mode="constant".
        value_range: accepted for Keras compatibility (the rotation does not rescale values).

    Example:
        >>> RandomRotation(0.1, seed=0)(images, training=True).shape == images.shape
        True
    """

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0,
                 value_range=(0, 255), data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.factor = _symmetric_factor("RandomRotation", "factor", factor, lo=-math.inf, hi=math.inf)
        self.value_range = tuple(value_range)

    def _transforms(self, xp, rng, n, h, w):
        degrees = rng.uniform(self.factor[0] * 360.0, self.factor[1] * 360.0, size=n)
        return imops.rotation_transforms(xp, xp.asarray(degrees * (math.pi / 180.0)), h, w)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"factor": list(self.factor), "value_range": list(self.value_range)})
        return cfg


class RandomTranslation(_AffineLayer):
    """Shifts each image by a random fraction of its height and width.

    Args:
        height_factor: f shifts by a fraction of the height in [-f, f] (a pair gives (lower, upper));
            positive moves the image down.
        width_factor: the same for the width; positive moves the image right.
        fill_mode, interpolation, fill_value: as RandomRotation.

    Example:
        >>> RandomTranslation(0.1, 0.1, seed=0)(images, training=True).shape == images.shape
        True
    """

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor = _symmetric_factor("RandomTranslation", "height_factor", height_factor)
        self.width_factor = _symmetric_factor("RandomTranslation", "width_factor", width_factor)

    def _transforms(self, xp, rng, n, h, w):
        dy = rng.uniform(*self.height_factor, size=n) * h  # Keras draws the height shift first
        dx = rng.uniform(*self.width_factor, size=n) * w
        return imops.translation_transforms(xp, xp.asarray(dx), xp.asarray(dy))

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"height_factor": list(self.height_factor), "width_factor": list(self.width_factor)})
        return cfg


class RandomZoom(_AffineLayer):
    """Zooms each image in or out about its centre by a random factor.

    Args:
        height_factor: f zooms the height by 1 + u, u in [-f, f] (a pair gives (lower, upper), each in
            (-1, 1]); positive zooms out (the image shrinks), negative zooms in.
        width_factor: the same for the width; None keeps the aspect ratio (the height's draw).
        fill_mode, interpolation, fill_value: as RandomRotation.

    Example:
        >>> RandomZoom(0.2, seed=0)(images, training=True).shape == images.shape
        True
    """

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor = _symmetric_factor("RandomZoom", "height_factor", height_factor, lo_open=True)
        self.width_factor = None if width_factor is None else _symmetric_factor(
            "RandomZoom", "width_factor", width_factor, lo_open=True)

    def _transforms(self, xp, rng, n, h, w):
        zoom_h = 1.0 + rng.uniform(*self.height_factor, size=n)
        zoom_w = zoom_h if self.width_factor is None else 1.0 + rng.uniform(*self.width_factor, size=n)
        return imops.zoom_transforms(xp, xp.asarray(zoom_w), xp.asarray(zoom_h), h, w)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"height_factor": list(self.height_factor),
                    "width_factor": None if self.width_factor is None else list(self.width_factor)})
        return cfg


class RandomContrast(RandomLayer):
    """Scales each image's deviation from its per-channel mean by a random factor, then clips to value_range.

    y = clip((x - mean) * c + mean, *value_range), mean over height and width, c in [1 - lower, 1 + upper].

    Args:
        factor: a float f in [0, 1] (c in [1 - f, 1 + f]) or a pair (lower, upper).
        value_range: the range of the input values, (0, 255) by default.

    Example:
        >>> RandomContrast(0.5, seed=0)(images, training=True).shape == images.shape
        True
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if isinstance(factor, (tuple, list)) and len(factor) == 2:
            lower, upper = factor
        elif isinstance(factor, numbers.Real) and not isinstance(factor, bool):
            lower = upper = factor
        else:
            lower = upper = None
        if lower is None or not (0 <= lower <= 1 and 0 <= upper):
            raise ValueError("RandomContrast: `factor` must be a float in [0, 1] or a pair (lower, upper) with "
                             f"0 <= lower <= 1 and upper >= 0. Received: factor={factor!r}")
        self.factor = (float(lower), float(upper))
        if len(tuple(value_range)) != 2 or value_range[0] >= value_range[1]:
            raise ValueError(f"RandomContrast: `value_range` must be (low, high) with low < high. "
                             f"Received: value_range={value_range!r}")
        self.value_range = (float(value_range[0]), float(value_range[1]))

    def _augment(self, x, rng):
        xp = get_backend().xp
        c = xp.asarray(rng.uniform(1.0 - self.factor[0], 1.0 + self.factor[1], size=(x.shape[0], 1, 1, 1)),
                       dtype=x.dtype)
        mean = _spatial_mean(xp, x)
        y = x * c  # (x - mean) * c + mean = x c + mean (1 - c), then the clip, in place
        y += mean * (1.0 - c)
        lo, hi = self.value_range
        xp.clip(y, lo, hi, out=y)

        def backward(dy):
            # the clip passes the gradient only where it did not clip (outputs at a bound count as clipped)
            g = dy * ((y > lo) & (y < hi))
            return g * c + (1.0 - c) * _spatial_mean(xp, g)  # dL/dx = c g + (1 - c) mean_hw(g)

        return y, backward

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"factor": list(self.factor), "value_range": list(self.value_range)})
        return cfg


def _spatial_mean(xp, x):
    """(N, 1, 1, C) means over height and width, as one GEMV per image (NumPy's strided mean is ~15x slower)."""
    n, h, w, c = x.shape
    ones = xp.full((h * w,), 1.0 / (h * w), dtype=x.dtype)
    return xp.matmul(ones, x.reshape(n, h * w, c)).reshape(n, 1, 1, c)


class RandomCrop(RandomLayer):
    """Crops a random (height, width) window in training (one offset per batch, as Keras).

    At inference, or when the input is not larger than the crop in both dimensions, it takes the largest
    centred window with the target aspect ratio and resizes it to (height, width) (bilinear), as Keras does.

    Args:
        height, width: the output size.
        seed: int for a reproducible sequence of offsets.

    Example:
        >>> RandomCrop(24, 24, seed=0)(np.zeros((2, 32, 32, 3)), training=True).shape
        (2, 24, 24, 3)
    """

    def __init__(self, height, width, seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.height, self.width = imops.check_size((height, width), "RandomCrop", "(height, width)")

    def compute_output_shape(self, input_shape):
        return self._spatial_shape(input_shape, self.height, self.width)

    def _inference(self, x, need_dx):
        size = (self.height, self.width)
        xp = get_backend().xp
        return self._linear(x, lambda x4: resize_images(xp, x4, size, "bilinear", True),
                            lambda dy4, shape: resize_images_backward(xp, dy4, shape, "bilinear", True))

    def _augment(self, x, rng):
        n, h, w, c = x.shape
        if not (h > self.height and w > self.width):
            size = (self.height, self.width)
            xp = get_backend().xp
            y = resize_images(xp, x, size, "bilinear", True)
            return y, lambda dy: resize_images_backward(xp, dy, x.shape, "bilinear", True)
        top = int(rng.uniform(0, h - self.height + 1))
        left = int(rng.uniform(0, w - self.width + 1))
        y = x[:, top:top + self.height, left:left + self.width]  # a view, as Keras's slice on torch: no copy

        def backward(dy):
            dx = get_backend().xp.zeros(x.shape, dtype=dy.dtype)  # dL/dx: dy inside the window, 0 outside
            dx[:, top:top + self.height, left:left + self.width] = dy
            return dx

        return y, backward

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"height": self.height, "width": self.width})
        return cfg
