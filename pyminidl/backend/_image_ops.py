"""Image geometry on NHWC arrays: resize, crop-to-aspect, affine sampling, each with its exact adjoint.

Every transform here is linear in the image for fixed parameters, so its backward is the transpose
of the same sparse map (``dx = A^T dy``), computed from the indices and weights the forward used.
The functions take ``xp`` (the array module of the current backend), so they run on NumPy and CuPy
alike; ``pyminidl.utils.image_utils`` uses the same code for arrays outside a model.

Conventions follow Keras 3 on PyTorch: bilinear resize with half-pixel centres and no antialias
(``F.interpolate(align_corners=False)``), nearest as ``"nearest-exact"`` (source index
``floor((i + 0.5) * in / out)``), area as the fractional box average of ``tf.image.resize(AREA)``;
affine sampling at integer pixel coordinates with Keras's index fixers for each ``fill_mode``.
"""

RESIZE_INTERPOLATIONS = ("bilinear", "nearest", "area")
AFFINE_INTERPOLATIONS = ("bilinear", "nearest")
FILL_MODES = ("reflect", "wrap", "constant", "nearest")


# ---------------------------------------------------------------------------- resize


def _bilinear_taps(xp, n_in, n_out):
    """Source rows i0, i1 and weight w of i1 for each output row (half-pixel centres, clamped).

    Computed as PyTorch's CPU kernel does: scale = float32(n_in / n_out), and the source coordinate
    scale * (i + 0.5) - 0.5 as one fused multiply-add (exact, then rounded once to float32).
    """
    f32 = xp.float32
    scale = float(f32(n_in / n_out))
    src = ((xp.arange(n_out, dtype=xp.float64) + 0.5) * scale - 0.5).astype(f32)
    src = xp.maximum(src, f32(0.0))  # PyTorch clamps negative sources to the first pixel
    i0 = xp.minimum(xp.floor(src).astype(xp.int64), n_in - 1)
    i1 = xp.minimum(i0 + 1, n_in - 1)
    return i0, i1, (src - i0.astype(f32)).astype(xp.float64)


def _nearest_index(xp, n_in, n_out):
    """PyTorch's "nearest-exact": floor((i + 0.5) * n_in / n_out) in float32, clamped."""
    f32 = xp.float32
    src = (xp.arange(n_out, dtype=f32) + f32(0.5)) * f32(n_in / n_out)
    return xp.minimum(xp.floor(src).astype(xp.int64), n_in - 1)


def _area_matrix(xp, n_in, n_out):
    """(n_out, n_in) weights: output cell i averages input [i*s, (i+1)*s) by overlap, s = n_in / n_out."""
    scale = n_in / n_out
    lo = xp.arange(n_out, dtype=xp.float64)[:, None] * scale
    hi = lo + scale
    pix = xp.arange(n_in, dtype=xp.float64)[None, :]
    overlap = xp.clip(xp.minimum(hi, pix + 1.0) - xp.maximum(lo, pix), 0.0, None)
    return overlap / scale


def resize_matrix(xp, n_in, n_out, interpolation):
    """The (n_out, n_in) linear map one axis of a resize applies (dense; for backward and tests)."""
    if interpolation == "area":
        return _area_matrix(xp, n_in, n_out)
    m = xp.zeros((n_out, n_in), dtype=xp.float64)
    rows = xp.arange(n_out)
    if interpolation == "nearest":
        m[rows, _nearest_index(xp, n_in, n_out)] = 1.0
        return m
    i0, i1, w = _bilinear_taps(xp, n_in, n_out)
    xp.add.at(m, (rows, i0), 1.0 - w)
    xp.add.at(m, (rows, i1), w)
    return m


def _resize_axis(xp, x, axis, n_out, interpolation):
    """Resize one spatial axis of x (axis 1 or 2 of NHWC) to n_out."""
    n_in = x.shape[axis]
    if n_in == n_out:
        return x
    if interpolation == "nearest":
        return xp.take(x, _nearest_index(xp, n_in, n_out), axis=axis)
    if interpolation == "area":
        m = _area_matrix(xp, n_in, n_out).astype(x.dtype)
        return xp.moveaxis(xp.tensordot(m, xp.moveaxis(x, axis, 0), axes=(1, 0)), 0, axis)
    i0, i1, w = _bilinear_taps(xp, n_in, n_out)
    shape = [1] * x.ndim
    shape[axis] = n_out
    w = w.astype(x.dtype).reshape(shape)
    lo = xp.take(x, i0, axis=axis)
    out = xp.take(x, i1, axis=axis)
    out -= lo  # lo + w * (hi - lo), in place: two temporaries instead of four
    out *= w
    out += lo
    return out


def resize(xp, x, size, interpolation="bilinear"):
    """x: (N, H, W, C) floating -> (N, size[0], size[1], C); separable, height first."""
    y = _resize_axis(xp, x, 1, int(size[0]), interpolation)
    y = _resize_axis(xp, y, 2, int(size[1]), interpolation)
    return y if y is not x else x.copy()


def resize_backward(xp, dy, in_hw, interpolation="bilinear"):
    """dL/dx = R_h^T dy R_w for the resize x -> R_h x R_w^T (the transpose of each axis's map)."""
    (h, w), (oh, ow) = in_hw, dy.shape[1:3]
    rw = resize_matrix(xp, w, ow, interpolation).astype(dy.dtype)
    rh = resize_matrix(xp, h, oh, interpolation).astype(dy.dtype)
    t = xp.einsum("nhwc,wv->nhvc", dy, rw)  # undo the width pass: (N, oh, W, C)
    return xp.einsum("nhvc,hu->nuvc", t, rh)


def aspect_crop_box(height, width, target_h, target_w):
    """(top, left, crop_h, crop_w): the largest centred window with the target aspect ratio (Keras's)."""
    crop_h = max(min(height, int(float(width * target_h) / target_w)), 1)
    crop_w = max(min(width, int(float(height * target_w) / target_h)), 1)
    return int(float(height - crop_h) / 2), int(float(width - crop_w) / 2), crop_h, crop_w


def aspect_pad_box(height, width, target_h, target_w):
    """(top, left, padded_h, padded_w): the smallest centred canvas with the target aspect ratio."""
    pad_h = max(height, int(float(width * target_h) / target_w))
    pad_w = max(width, int(float(height * target_w) / target_h))
    return int(float(pad_h - height) / 2), int(float(pad_w - width) / 2), pad_h, pad_w


# ---------------------------------------------------------------------------- affine sampling


def _fix_index(xp, index, size, fill_mode):
    """Keras's index fixers: where an out-of-range integer index reads from."""
    if fill_mode == "wrap":
        return index % size
    if fill_mode == "reflect":  # (d c b a | a b c d | d c b a): mirror about the pixel edge
        period = 2 * size
        index = index % period
        return xp.where(index >= size, period - 1 - index, index)
    return xp.clip(index, 0, size - 1)  # nearest, and constant (whose invalid taps are masked)


def affine_taps(xp, transforms, height, width, interpolation, fill_mode):
    """Source pixel indices and weights for each output pixel of each image.

    Args:
        transforms: (N, 8) Keras transforms [a0, a1, a2, b0, b1, b2, c0, c1]; output pixel (row r,
            column c) reads input column (a0 c + a1 r + a2) / k and row (b0 c + b1 r + b2) / k,
            k = c0 c + c1 r + 1.

    Returns:
        ``(index, weight)``: int64 flat indices into (N * H * W) and float64 weights, both of shape
        (taps, N, H * W) with taps = 4 (bilinear) or 1 (nearest); constant-mode taps that fall
        outside the image have weight 0 (the fill value is added separately).
    """
    # float32 coordinates summed in Keras's order, so rounding (nearest) and floors match Keras's
    t = xp.asarray(transforms, dtype=xp.float32).reshape(-1, 8)
    rows, cols = xp.meshgrid(xp.arange(height, dtype=xp.float32), xp.arange(width, dtype=xp.float32),
                             indexing="ij")
    rows, cols = rows.reshape(1, -1), cols.reshape(1, -1)
    src_r = (rows * t[:, 4:5] + cols * t[:, 3:4]) + t[:, 5:6]
    src_c = (rows * t[:, 1:2] + cols * t[:, 0:1]) + t[:, 2:3]
    if xp.any(t[:, 6:8]):  # a projective transform divides by k
        k = t[:, 6:7] * cols + t[:, 7:8] * rows + 1.0
        src_r, src_c = src_r / k, src_c / k
    if interpolation == "nearest":
        r_nodes = [(xp.round(src_r).astype(xp.int64), 1.0)]
        c_nodes = [(xp.round(src_c).astype(xp.int64), 1.0)]
    else:
        r0, c0 = xp.floor(src_r), xp.floor(src_c)
        wr, wc = src_r - r0, src_c - c0
        r0, c0 = r0.astype(xp.int64), c0.astype(xp.int64)
        wr, wc = wr.astype(xp.float64), wc.astype(xp.float64)
        r_nodes = [(r0, 1.0 - wr), (r0 + 1, wr)]
        c_nodes = [(c0, 1.0 - wc), (c0 + 1, wc)]
    base = (xp.arange(t.shape[0], dtype=xp.int64) * (height * width))[:, None]
    index, weight = [], []
    for r, wr_ in r_nodes:
        for c, wc_ in c_nodes:
            w = xp.broadcast_to(xp.asarray(wr_ * wc_, dtype=xp.float64), r.shape)
            if fill_mode == "constant":
                w = w * ((r >= 0) & (r < height) & (c >= 0) & (c < width))
            rf, cf = _fix_index(xp, r, height, fill_mode), _fix_index(xp, c, width, fill_mode)
            index.append(base + rf * width + cf)
            weight.append(w)
    return xp.stack(index), xp.stack(weight)


def affine_apply(xp, x, index, weight, fill_value=0.0, fill_mode="reflect"):
    """y[n, p, :] = sum_t weight[t, n, p] * x_flat[index[t, n, p], :] (+ fill for constant mode)."""
    n, h, w, c = x.shape
    flat = x.reshape(n * h * w, c)
    wt = weight.astype(x.dtype)
    y = flat[index[0].reshape(-1)] * wt[0].reshape(-1, 1)
    for t in range(1, index.shape[0]):
        y += flat[index[t].reshape(-1)] * wt[t].reshape(-1, 1)
    if fill_mode == "constant" and fill_value:
        # the weight missing from the taps (outside the image) reads the fill value
        y += (1.0 - wt.sum(axis=0)).reshape(-1, 1) * x.dtype.type(fill_value)
    return y.reshape(n, h, w, c)


def affine_backward(xp, dy, index, weight):
    """dL/dx_flat[q] = sum over taps reading q of weight * dy: the transpose of ``affine_apply``."""
    n, h, w, c = dy.shape
    size = n * h * w
    g = dy.reshape(1, size, c)
    idx = index.reshape(-1, size)
    wt = weight.reshape(-1, size, 1).astype(dy.dtype)
    contrib = (wt * g).reshape(-1, c)  # (taps * size, C)
    flat_idx = (idx.reshape(-1, 1) * c + xp.arange(c)).reshape(-1)
    dx = xp.bincount(flat_idx, weights=contrib.reshape(-1), minlength=size * c)
    return dx.astype(dy.dtype).reshape(n, h, w, c)


def rotation_transforms(xp, angles, height, width):
    """(N, 8) Keras transforms rotating each image by ``angles`` (radians) about its centre."""
    cos, sin = xp.cos(angles), xp.sin(angles)
    cx, cy = 0.5 * (width - 1), 0.5 * (height - 1)
    zeros = xp.zeros_like(angles)
    a2 = cx - cx * cos + cy * sin
    b2 = cy - cx * sin - cy * cos
    return xp.stack([cos, -sin, a2, sin, cos, b2, zeros, zeros], axis=1)


def zoom_transforms(xp, zoom_w, zoom_h, height, width):
    """(N, 8) Keras transforms scaling the sampling grid by (zoom_w, zoom_h) about the centre."""
    zeros = xp.zeros_like(zoom_w)
    x_off = ((width - 1.0) / 2.0) * (1.0 - zoom_w)
    y_off = ((height - 1.0) / 2.0) * (1.0 - zoom_h)
    return xp.stack([zoom_w, zeros, x_off, zeros, zoom_h, y_off, zeros, zeros], axis=1)


def translation_transforms(xp, dx, dy):
    """(N, 8) Keras transforms shifting each image right by dx and down by dy pixels."""
    ones, zeros = xp.ones_like(dx), xp.zeros_like(dx)
    return xp.stack([ones, zeros, -dx, zeros, ones, -dy, zeros, zeros], axis=1)


def check_size(size, who, what="size"):
    """(height, width) as positive ints, or a ValueError naming ``who`` and the value received."""
    try:
        h, w = (int(s) for s in size)
        ok = all(float(s) == int(s) for s in size)
    except (TypeError, ValueError):
        ok = False
    if not ok or h <= 0 or w <= 0:
        raise ValueError(f"{who}: `{what}` must be two positive integers (height, width). Received: {what}={size!r}")
    return h, w

