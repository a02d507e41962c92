"""Backend: the specification of every op, written in vectorised NumPy against ``self.xp``.

This class is the NumPy reference backend and the oracle of the parity tests. Faster
backends subclass it and override ops (never add new public ones): ``CpuBackend`` with the
C++ kernels for float32, ``CupyBackend`` by setting ``xp = cupy``. It accepts float32 and
float64 (float64 exists for finite-difference gradient checks).

Conventions: ``<op>_forward`` returns the output (plus whatever backward needs, returned,
never cached); ``<op>_backward`` takes ``dy`` (dLoss/dy) first. Optimizer updates work in
place on the parameter and its slots.
"""

import math
import threading

import numpy as np

from pyminidl.backend import _image_ops

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715

RNN_ACTIVATIONS = ("tanh", "sigmoid", "relu", "hard_sigmoid", "linear")  # derivative from the output

ACTIVATIONS = (
    "linear", "step", "sigmoid", "hard_sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu",
    "softplus", "softsign", "swish", "silu", "gelu", "exponential",
)


# erf(x) = x * sum_n c_n x^(2n), c_n = 2/sqrt(pi) (-1)^n / (n! (2n + 1)); 45 terms reach 1e-17 at |x| = 2.5
_ERF_SERIES = tuple(2.0 / math.sqrt(math.pi) * (-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(45))
_ERF_CF_TERMS = 80  # depth of the erfc continued fraction: converged to double precision for z >= 2.5


def checked_seed(seed):
    """A dropout mask's seed as an int in [0, 2**128) (Philox's key); else the ValueError every
    host backend raises."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**128:
        raise ValueError(f"Expected a non-negative integer seed below 2**128. Received: seed={seed!r}")
    return int(seed)


class _KeyedPhilox(threading.local):
    """One Philox generator per thread, re-keyed by each call's seed: the draw is that of
    ``Generator(Philox(key=seed))`` (a counter-based stream, so distinct keys give independent
    streams, as in Random123) for a state write of ~3 us instead of seeding a new generator
    (``default_rng(seed)`` runs a SeedSequence: ~10-35 us, paid on every Dropout call)."""

    _ZERO = np.zeros(4, np.uint64)

    def __init__(self):
        self.bits = np.random.Philox(key=0)
        self.generator = np.random.Generator(self.bits)

    def uniform(self, shape, seed):
        seed = checked_seed(seed)
        key = np.array([seed & 0xFFFFFFFFFFFFFFFF, seed >> 64], np.uint64)
        self.bits.state = {"bit_generator": "Philox", "state": {"counter": self._ZERO, "key": key},
                           "buffer": self._ZERO, "buffer_pos": 4, "has_uint32": 0, "uinteger": 0}
        return self.generator.random(shape)


_HOST_UNIFORM = _KeyedPhilox()  # host backends share it: a thread's draw depends only on the seed


class Backend:
    """NumPy reference backend (also the base class of every other backend)."""

    name = "numpy"

    def __init__(self, xp=np):
        self.xp = xp

    # ------------------------------------------------------------------ arrays

    def asarray(self, x, dtype=None):
        """Host data (list, NumPy array) -> this backend's array type."""
        return self.xp.asarray(x, dtype=dtype)

    def to_numpy(self, x):
        """This backend's array -> numpy.ndarray."""
        return np.asarray(x)

    def take_rows(self, x, idx):
        """x.take(idx, axis=0): the rows of a (shuffled) batch. x: (n, ...), idx: (k,) integers in
        [-n, n) -> (k, ...).

        Raises:
            IndexError: an index outside [-n, n).
        """
        return self.xp.take(x, idx, axis=0)

    # ------------------------------------------------------------------ gemm / dense

    def gemm(self, a, b, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, c=None):
        """alpha * op(a) @ op(b) + beta * c. op(a): (M, K), op(b): (K, N), c: (M, N). Returns a new array."""
        a = a.T if trans_a else a
        b = b.T if trans_b else b
        y = self.xp.matmul(a, b)
        if alpha != 1.0:
            y = y * alpha
        if c is not None and beta != 0.0:
            y = y + beta * c
        return y

    def bias_add(self, x, b):
        """y = x + b broadcast over the last axis. x: (..., U), b: (U,)."""
        return x + b

    def bias_grad(self, dy):
        """db = sum of dy over every axis but the last. dy: (..., U) -> (U,)."""
        return dy.sum(axis=tuple(range(dy.ndim - 1)))

    def dense_forward(self, x, w, b=None, activation=None):
        """y = x @ w + b. x: (N, I), w: (I, U), b: (U,) or None -> (N, U).

        With ``activation`` ('relu', 'sigmoid' or 'tanh', default parameters) y is then activated
        in place (``activation_forward(activation, y, out=y)``): a Dense layer keeps only that output,
        which its backward reads (dense_backward's ``y``)."""
        y = self.gemm(x, w)
        y = y if b is None else self.bias_add(y, b)
        if activation is None:
            return y
        if activation not in ("relu", "sigmoid", "tanh"):
            raise ValueError(f"dense_forward: activation must be None, 'relu', 'sigmoid' or 'tanh'. "
                             f"Received: {activation!r}")
        return self.activation_forward(activation, y, out=y)

    def dense_backward(self, dy, x, w, has_bias=True, need_dx=True, activation=None, y=None):
        """dx = dy @ w.T, dw = x.T @ dy, db = sum(dy, 0). Returns (dx or None, dw, db or None).

        With ``activation`` ('relu', 'sigmoid' or 'tanh') and y, the layer's output (N, U), dy is
        dL/dy and is first overwritten with dL/dz = dense_activation_backward(activation, dy, y, y)
        (relu's mask y > 0 is z > 0): the caller owns dy."""
        if activation is not None:
            dy = self.dense_activation_backward(activation, dy, y, y)
        dw = self.gemm(x, dy, trans_a=True)
        db = self.bias_grad(dy) if has_bias else None
        dx = self.gemm(dy, w, trans_b=True) if need_dx else None
        return dx, dw, db

    def dense_activation_backward(self, name, dz, z, y):
        """dz <- activation_backward(name, dz, z, y), written into dz (the fused Dense backward owns
        its incoming gradient, so dL/dz needs no new array). name: 'relu' (reads z), 'sigmoid' or
        'tanh' (read y). dz, z, y: (N, U). Returns dz."""
        dz[...] = self.activation_backward(name, dz, z, y)
        return dz

    # ------------------------------------------------------------------ convolution
    # NHWC with Keras's kernel layout (KH, KW, C / groups, F); 1-D runs as 2-D with height 1.
    # The geometry helpers (_conv_geometry, _conv_transpose_geometry) turn Keras's paddings
    # into explicit pads and output sizes, which the reference below and the kernels share.

    def conv_forward(self, x, w, b, strides, padding, dilation_rate, groups=1):
        """y[n, o, f] = b[f] + sum_{k, c} x[n, o*s - p + k*d, c] w[k, c, f] within each group.

        x: (N, W, C) or (N, H, W, C); w: (KW, C/groups, F) or (KH, KW, C/groups, F); b: (F,) or
        None; padding 'valid', 'same' (Keras's: the extra pad goes after) or 'causal' (1-D).
        Returns (N, OW, F) or (N, OH, OW, F)."""
        g = _conv_geometry(x.shape, w.shape, strides, padding, dilation_rate, groups, "conv_forward")
        y = self._conv2d(_to_2d(x), _kernel_to_2d(w), g)
        if b is not None:
            y = y + b
        return _from_2d(y, x.ndim)

    def conv_maxpool_forward(self, x, w, b, strides, padding, dilation_rate, groups, pool_size, pool_strides,
                             pool_padding="valid"):
        """``maxpool_forward(conv_forward(x, w, b, ...), pool_size, pool_strides, pool_padding)``: a 2-D
        convolution and the max pooling after it in one call, returning ``(y, argmax)`` as
        maxpool_forward does (argmax indexes the convolution's output, for maxpool_backward)."""
        z = self.conv_forward(x, w, b, strides, padding, dilation_rate, groups)
        return self.maxpool_forward(z, pool_size, pool_strides, pool_padding)

    def conv_maxpool_backward(self, dp, argmax, x, w, strides, padding, dilation_rate, groups, pool_size,
                              pool_strides, pool_padding="valid", has_bias=True):
        """``(dw, db or None)`` of conv_maxpool_forward from the pooling's gradient ``dp`` and the
        ``argmax`` that call returned: conv_backward's weight and bias gradients of
        ``maxpool_backward(dp, argmax, ...)``, the input gradient not computed (a first layer's)."""
        g = _conv_geometry(x.shape, w.shape, strides, padding, dilation_rate, groups, "conv_maxpool_backward")
        z_shape = (x.shape[0],) + tuple(g.out) + (w.shape[-1],)
        dz = self.maxpool_backward(dp, argmax, z_shape, pool_size, pool_strides, pool_padding)
        _, dw, db = self.conv_backward(dz, x, w, strides, padding, dilation_rate, groups, has_bias, need_dx=False)
        return dw, db

    def conv_backward(self, dy, x, w, strides, padding, dilation_rate, groups=1, has_bias=True, need_dx=True):
        """dx = conv^T(dy, w), dw = sum_n patches(x)^T dy, db = sum of dy over (N, spatial).

        Shapes as conv_forward; dy: its output's shape. Returns (dx or None, dw, db or None)."""
        g = _conv_geometry(x.shape, w.shape, strides, padding, dilation_rate, groups, "conv_backward")
        dy4, x4 = _to_2d(dy), _to_2d(x)
        dw = self._conv2d_weight(dy4, x4, _kernel_to_2d(w).shape, g).reshape(w.shape)
        db = dy.sum(axis=tuple(range(dy.ndim - 1))) if has_bias else None
        dx = _from_2d(self._conv2d_input(dy4, _kernel_to_2d(w), x4.shape, g), x.ndim) if need_dx else None
        return dx, dw, db

    def conv_transpose_forward(self, x, w, b, strides, padding, output_padding=None, dilation_rate=1):
        """The input gradient of a convolution, run forward (Keras's Conv{1,2}DTranspose).

        x: (N, [H,] W, Cin); w: ([KH,] KW, Cout, Cin); b: (Cout,) or None; output_padding: None
        or ints per axis. Output length per axis as Keras: (in - 1) * s + k_eff - pads + output_padding.
        Returns (N, [OH,] OW, Cout)."""
        g, out_shape = _conv_transpose_geometry(x.shape, w.shape, strides, padding, output_padding,
                                                dilation_rate, "conv_transpose_forward")
        y = self._conv2d_input(_to_2d(x), _kernel_to_2d(w), out_shape, g)
        if b is not None:
            y = y + b
        return _from_2d(y, x.ndim)

    def conv_transpose_backward(self, dy, x, w, strides, padding, output_padding=None, dilation_rate=1,
                                has_bias=True, need_dx=True):
        """dx = conv(dy, w), dw = sum_n patches(dy)^T x, db = sum of dy over (N, spatial).

        Shapes as conv_transpose_forward; dy: its output's shape. Returns (dx or None, dw, db or None)."""
        g, _ = _conv_transpose_geometry(x.shape, w.shape, strides, padding, output_padding, dilation_rate,
                                        "conv_transpose_backward")
        dy4, x4 = _to_2d(dy), _to_2d(x)
        dw = self._conv2d_weight(x4, dy4, _kernel_to_2d(w).shape, g).reshape(w.shape)
        db = dy.sum(axis=tuple(range(dy.ndim - 1))) if has_bias else None
        dx = _from_2d(self._conv2d(dy4, _kernel_to_2d(w), g), x.ndim) if need_dx else None
        return dx, dw, db

    def _conv_patches(self, x, g, kernel_hw, out_hw):
        """A (N, OH, OW, KH, KW, G, C/G) strided view of x zero-padded by g's pads (no copy of the windows)."""
        xp = self.xp
        (n, h, w, c), (kh, kw), (oh, ow) = x.shape, kernel_hw, out_hw
        (sh, sw), (ph, pw), (dh, dw) = g.strides, g.pads, g.dilation
        ph_total = max((oh - 1) * sh + (kh - 1) * dh + 1, ph + h)
        pw_total = max((ow - 1) * sw + (kw - 1) * dw + 1, pw + w)
        padded = xp.zeros((n, ph_total, pw_total, c), dtype=x.dtype)
        padded[:, ph:ph + h, pw:pw + w] = x
        s0, s1, s2, s3 = padded.strides
        cg = c // g.groups
        shape = (n, oh, ow, kh, kw, g.groups, cg)
        strides = (s0, s1 * sh, s2 * sw, s1 * dh, s2 * dw, s3 * cg, s3)
        return xp.lib.stride_tricks.as_strided(padded, shape, strides), padded.shape

    def _conv2d(self, x, w, g):
        """The 2-D forward without bias: x (N, H, W, C), w (KH, KW, C/G, F) -> (N, OH, OW, F)."""
        kh, kw, cg, f = w.shape
        patches, _ = self._conv_patches(x, g, (kh, kw), g.out)
        wg = w.reshape(kh, kw, cg, g.groups, f // g.groups)
        y = self.xp.einsum("nhwijgc,ijcgf->nhwgf", patches, wg, optimize=True)
        return y.reshape(x.shape[0], g.out[0], g.out[1], f)

    def _conv2d_weight(self, dy, x, w_shape, g):
        """dw (KH, KW, C/G, F) = sum over n, pixels of patches(x) (x) dy."""
        kh, kw, cg, f = w_shape
        patches, _ = self._conv_patches(x, g, (kh, kw), g.out)
        dyg = dy.reshape(dy.shape[:3] + (g.groups, f // g.groups))
        return self.xp.einsum("nhwijgc,nhwgf->ijcgf", patches, dyg, optimize=True).reshape(w_shape)

    def _conv2d_input(self, dy, w, x_shape, g):
        """dx (x_shape) = the adjoint of the patch extraction applied to dy w^T, tap by tap."""
        xp = self.xp
        (n, h, wd, c), (kh, kw, cg, f) = x_shape, w.shape
        (oh, ow), (sh, sw), (ph, pw), (dh, dw) = g.out, g.strides, g.pads, g.dilation
        dx = xp.zeros((n, max((oh - 1) * sh + (kh - 1) * dh + 1, ph + h),
                       max((ow - 1) * sw + (kw - 1) * dw + 1, pw + wd), c), dtype=dy.dtype)
        if oh * ow > 0 and n > 0:
            dyg = dy.reshape(n, oh, ow, g.groups, f // g.groups)
            wg = w.reshape(kh, kw, cg, g.groups, f // g.groups)
            dpatch = xp.einsum("nhwgf,ijcgf->nhwijgc", dyg, wg, optimize=True)
            for i in range(kh):
                for j in range(kw):  # dL/dx[tap] += dL/dpatch[tap]: one strided add per kernel tap
                    dx[:, i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw] += \
                        dpatch[:, :, :, i, j].reshape(n, oh, ow, c)
        return dx[:, ph:ph + h, pw:pw + wd]

    # ------------------------------------------------------------------ depthwise convolution
    # Keras's depthwise kernel (KH, KW, C, M), M = depth_multiplier: output channel c * M + m
    # is input channel c convolved with w[..., c, m]. Same paddings and 1-D rule as conv_forward.

    def depthwise_conv_forward(self, x, w, b, strides, padding, dilation_rate):
        """y[n, o, c*M + m] = b[c*M + m] + sum_k x[n, o*s - p + k*d, c] w[k, c, m] (x zero-padded).

        x: (N, W, C) or (N, H, W, C); w: (KW, C, M) or (KH, KW, C, M); b: (C*M,) or None.
        Returns (N, OW, C*M) or (N, OH, OW, C*M)."""
        g = _depthwise_geometry(x.shape, w.shape, strides, padding, dilation_rate, "depthwise_conv_forward")
        y = self._depthwise2d(_to_2d(x), _kernel_to_2d(w), g)
        if b is not None:
            y = y + b
        return _from_2d(y, x.ndim)

    def depthwise_conv_backward(self, dy, x, w, strides, padding, dilation_rate, has_bias=True, need_dx=True):
        """dx[cell, c] = sum over the taps reaching it of sum_m dy[., c*M + m] w[k, c, m];
        dw[k, c, m] = sum over (n, o) of x[n, o*s - p + k*d, c] dy[n, o, c*M + m]; db = sum of dy.

        Shapes as depthwise_conv_forward; dy: its output's shape. Returns (dx or None, dw, db or None)."""
        g = _depthwise_geometry(x.shape, w.shape, strides, padding, dilation_rate, "depthwise_conv_backward")
        dx, dw = self._depthwise2d_backward(_to_2d(dy), _to_2d(x), _kernel_to_2d(w), g, need_dx)
        db = dy.sum(axis=tuple(range(dy.ndim - 1))) if has_bias else None
        return (None if dx is None else _from_2d(dx, x.ndim)), dw.reshape(w.shape), db

    def _depthwise_taps(self, shape, g, kernel_hw):
        """(zero-padded buffer shape, [((i, j), index of tap (i, j)'s (N, OH, OW, C) view of it)])."""
        (n, h, w, c), (kh, kw), (oh, ow) = shape, kernel_hw, g.out
        (sh, sw), (ph, pw), (dh, dw) = g.strides, g.pads, g.dilation
        padded = (n, max((oh - 1) * sh + (kh - 1) * dh + 1, ph + h), max((ow - 1) * sw + (kw - 1) * dw + 1, pw + w), c)

        def axis(start, out, stride):  # `out` cells from `start` (none for out = 0: no negative stop)
            return slice(start, start + (out - 1) * stride + 1 if out else start, stride)

        return padded, [((i, j), (slice(None), axis(i * dh, oh, sh), axis(j * dw, ow, sw)))
                        for i in range(kh) for j in range(kw)]

    def _depthwise2d(self, x, w, g):
        """The 2-D forward without bias: x (N, H, W, C), w (KH, KW, C, M) -> (N, OH, OW, C*M)."""
        (n, h, wd, c), (kh, kw, _, m), (ph, pw) = x.shape, w.shape, g.pads
        shape, taps = self._depthwise_taps(x.shape, g, (kh, kw))
        xp = self.xp.zeros(shape, dtype=x.dtype)
        xp[:, ph:ph + h, pw:pw + wd] = x
        y = self.xp.zeros((n, g.out[0], g.out[1], c, m), dtype=self.xp.result_type(x, w))
        for (i, j), tap in taps:  # y += x(tap) * w[tap], broadcast over the multiplier
            y += xp[tap][..., None] * w[i, j]
        return y.reshape(n, g.out[0], g.out[1], c * m)

    def _depthwise2d_backward(self, dy, x, w, g, need_dx=True):
        """(dx (N, H, W, C) or None, dw (KH, KW, C, M)) of _depthwise2d, tap by tap."""
        (n, h, wd, c), (kh, kw, _, m), (ph, pw) = x.shape, w.shape, g.pads
        shape, taps = self._depthwise_taps(x.shape, g, (kh, kw))
        xp = self.xp.zeros(shape, dtype=x.dtype)
        xp[:, ph:ph + h, pw:pw + wd] = x
        dy5 = dy.reshape(n, g.out[0], g.out[1], c, m)
        dxp = self.xp.zeros(shape, dtype=dy.dtype) if need_dx else None
        dw = self.xp.zeros(w.shape, dtype=self.xp.result_type(dy, x))
        for (i, j), tap in taps:
            dw[i, j] = self.xp.einsum("nhwc,nhwcm->cm", xp[tap], dy5)  # dL/dw[tap] = sum of x(tap) dy
            if need_dx:
                dxp[tap] += (dy5 * w[i, j]).sum(axis=-1)  # dL/dx(tap) += sum over m of dy w[tap]
        return (None if dxp is None else dxp[:, ph:ph + h, pw:pw + wd]), dw

    # ------------------------------------------------------------------ activations
    # Every activation is a pair: <name>_forward(x, **params) -> y and
    # <name>_backward(dy, x, y, **params) -> dx (each uses whichever of x, y is cheaper).

    def activation_forward(self, name, x, *, out=None, **params):
        """Dispatch to ``<name>_forward``; ``name`` is one of ACTIVATIONS. ``out`` (None, x itself
        for the in-place form, or an array of x's shape and dtype) receives y and is returned."""
        y = getattr(self, f"{name}_forward")(x, **params)
        return y if out is None else _write_out(out, y, "activation_forward", "x")

    def activation_backward(self, name, dy, x, y, *, out=None, **params):
        """Dispatch to ``<name>_backward``. ``out`` (None, dy itself for the in-place form, or an
        array of dy's shape and dtype) receives dx and is returned."""
        dx = getattr(self, f"{name}_backward")(dy, x, y, **params)
        return dx if out is None else _write_out(out, dx, "activation_backward", "dy")

    def linear_forward(self, x):
        """y = x."""
        return x

    def linear_backward(self, dy, x, y):
        """dL/dx = dy."""
        return dy

    def step_forward(self, x):
        """Heaviside step of the classic perceptron: y = 1 if x > 0 else 0."""
        return (x > 0).astype(x.dtype)

    def step_backward(self, dy, x, y):
        """The step is flat almost everywhere: dL/dx = 0."""
        return self.xp.zeros_like(dy)

    def sigmoid_forward(self, x):
        """y = 1 / (1 + exp(-x)), evaluated without overflow for large |x|."""
        xp = self.xp
        e = xp.exp(-xp.abs(x))
        return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)

    def sigmoid_backward(self, dy, x, y):
        """dL/dx = dy * y * (1 - y)."""
        return dy * y * (1.0 - y)

    def hard_sigmoid_forward(self, x):
        """y = clip(x / 6 + 0.5, 0, 1) (Keras 3: relu6(x + 3) / 6)."""
        return self.xp.clip(x / 6.0 + 0.5, 0.0, 1.0).astype(x.dtype, copy=False)

    def hard_sigmoid_backward(self, dy, x, y):
        """dL/dx = dy / 6 inside (-3, 3), else 0."""
        return self.xp.where((x > -3.0) & (x < 3.0), dy / 6.0, 0.0).astype(dy.dtype, copy=False)

    def tanh_forward(self, x):
        """y = tanh(x)."""
        return self.xp.tanh(x)

    def tanh_backward(self, dy, x, y):
        """dL/dx = dy * (1 - y**2)."""
        return dy * (1.0 - y * y)

    def relu_forward(self, x, negative_slope=0.0, max_value=None, threshold=0.0):
        """Keras 3 relu: above ``threshold`` y = x (clipped to [0, max_value] when max_value is set);
        at or below it y = negative_slope * (x - threshold). NaN stays NaN."""
        xp = self.xp
        y = xp.where(x > threshold, x, 0.0)
        if max_value is not None:
            y = xp.clip(y, 0.0, max_value)
        if negative_slope:
            # minimum, not a select: relu(-inf) must be 0 (slope 0), not 0 * -inf = NaN.
            y = y + negative_slope * xp.minimum(x - threshold, 0.0)
        return xp.where(xp.isnan(x), x, y).astype(x.dtype, copy=False)

    def relu_backward(self, dy, x, y, negative_slope=0.0, max_value=None, threshold=0.0):
        """dL/dx = dy above the threshold (0 where max_value clips, at x >= max_value or x < 0),
        negative_slope * dy at or below it."""
        xp = self.xp
        above = x > threshold
        g = xp.where(above, 1.0, negative_slope)
        if max_value is not None:
            g = xp.where(above & ((x >= max_value) | (x < 0)), 0.0, g)
        return (dy * g).astype(dy.dtype, copy=False)

    def leaky_relu_forward(self, x, negative_slope=0.2):
        """y = x if x >= 0 else negative_slope * x."""
        return self.xp.where(x >= 0, x, negative_slope * x).astype(x.dtype, copy=False)

    def leaky_relu_backward(self, dy, x, y, negative_slope=0.2):
        """dL/dx = dy if x > 0 else negative_slope * dy."""
        return self.xp.where(x > 0, dy, negative_slope * dy).astype(dy.dtype, copy=False)

    def elu_forward(self, x, alpha=1.0):
        """y = x if x > 0 else alpha * (exp(x) - 1)."""
        xp = self.xp
        return xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0))).astype(x.dtype, copy=False)

    def elu_backward(self, dy, x, y, alpha=1.0):
        """dL/dx = dy if x > 0 else dy * (y + alpha)."""
        return self.xp.where(x > 0, dy, dy * (y + alpha)).astype(dy.dtype, copy=False)

    def selu_forward(self, x):
        """y = scale * elu(x, alpha) with the self-normalising constants."""
        return (_SELU_SCALE * self.elu_forward(x, _SELU_ALPHA)).astype(x.dtype, copy=False)

    def selu_backward(self, dy, x, y):
        """dL/dx = dy * scale if x > 0 else dy * (y + scale * alpha)."""
        g = self.xp.where(x > 0, _SELU_SCALE, y + _SELU_SCALE * _SELU_ALPHA)
        return (dy * g).astype(dy.dtype, copy=False)

    def softplus_forward(self, x):
        """y = log(1 + exp(x)), stable for large |x|."""
        return self.xp.logaddexp(0.0, x).astype(x.dtype, copy=False)

    def softplus_backward(self, dy, x, y):
        """dL/dx = dy * sigmoid(x)."""
        return dy * self.sigmoid_forward(x)

    def softsign_forward(self, x):
        """y = x / (1 + |x|)."""
        return x / (1.0 + self.xp.abs(x))

    def softsign_backward(self, dy, x, y):
        """dL/dx = dy / (1 + |x|)**2."""
        d = 1.0 + self.xp.abs(x)
        return dy / (d * d)

    def swish_forward(self, x):
        """y = x * sigmoid(x)."""
        return x * self.sigmoid_forward(x)

    def swish_backward(self, dy, x, y):
        """dL/dx = dy * (s + x * s * (1 - s)), s = sigmoid(x)."""
        s = self.sigmoid_forward(x)
        return dy * (s + x * s * (1.0 - s))

    def silu_forward(self, x):
        """silu is swish."""
        return self.swish_forward(x)

    def silu_backward(self, dy, x, y):
        """silu is swish."""
        return self.swish_backward(dy, x, y)

    def _erf(self, x):
        """Elementwise erf in vectorised array code (NumPy has none): the Maclaurin series in Horner form
        below |x| = 2.5, the continued fraction of erfc above; within 1e-14 of math.erf in float64."""
        xp = self.xp
        single = x.dtype.itemsize <= 4  # float32 needs fewer terms (its eps is 6e-8)
        series, depth = (_ERF_SERIES[:28], 24) if single else (_ERF_SERIES, _ERF_CF_TERMS)
        a = xp.abs(x).astype(xp.float64)
        out = xp.empty_like(a)
        small = a < 2.5
        s = a[small]
        s2, p = s * s, xp.full_like(s, series[-1])
        for c in series[-2::-1]:
            p = p * s2 + c
        out[small] = s * p
        big = ~small
        z = a[big]
        f = z.copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            for k in range(depth, 0, -1):  # erfc(z) = exp(-z^2)/sqrt(pi) / (z + 1/2 / (z + 1 / (z + 3/2 / ...)))
                f = z + (0.5 * k) / f
            tail = xp.exp(-z * z) / (math.sqrt(math.pi) * f)
        out[big] = 1.0 - xp.where(xp.isinf(z), 0.0, tail)
        return (xp.sign(x) * out).astype(x.dtype, copy=False)

    def gelu_forward(self, x, approximate=False):
        """Exact: y = x/2 * (1 + erf(x/sqrt 2)); approximate: x/2 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x**3)))."""
        xp = self.xp
        if approximate:
            return 0.5 * x * (1.0 + xp.tanh(_SQRT_2_OVER_PI * (x + _GELU_C * x * x * x)))
        return 0.5 * x * (1.0 + self._erf(x / math.sqrt(2.0)))

    def gelu_backward(self, dy, x, y, approximate=False):
        """Exact: dL/dx = dy * (Phi(x) + x phi(x)); approximate: derivative of the tanh form."""
        xp = self.xp
        if approximate:
            t = xp.tanh(_SQRT_2_OVER_PI * (x + _GELU_C * x * x * x))
            dt = (1.0 - t * t) * _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_C * x * x)
            return dy * (0.5 * (1.0 + t) + 0.5 * x * dt)
        cdf = 0.5 * (1.0 + self._erf(x / math.sqrt(2.0)))
        pdf = xp.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        return dy * (cdf + x * pdf)

    def exponential_forward(self, x):
        """y = exp(x)."""
        return self.xp.exp(x)

    def exponential_backward(self, dy, x, y):
        """dL/dx = dy * y."""
        return dy * y

    # ------------------------------------------------------------------ softmax

    def softmax_forward(self, x, axis=-1):
        """y = exp(x - max) / sum(exp(x - max)) along ``axis``."""
        xp = self.xp
        e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
        return e / xp.sum(e, axis=axis, keepdims=True)

    def softmax_backward(self, dy, y, axis=-1):
        """dL/dx = y * (dy - sum(dy * y)) along ``axis``."""
        return y * (dy - self.xp.sum(dy * y, axis=axis, keepdims=True))

    def log_softmax_forward(self, x, axis=-1):
        """y = x - max - log(sum(exp(x - max))) along ``axis``."""
        xp = self.xp
        z = x - xp.max(x, axis=axis, keepdims=True)
        return z - xp.log(xp.sum(xp.exp(z), axis=axis, keepdims=True))

    def log_softmax_backward(self, dy, y, axis=-1):
        """dL/dx = dy - exp(y) * sum(dy) along ``axis``."""
        return dy - self.xp.exp(y) * self.xp.sum(dy, axis=axis, keepdims=True)

    # ------------------------------------------------------------------ dropout

    def dropout_forward(self, x, rate, seed, noise_shape=None):
        """y = x * mask, mask = (u >= rate) / (1 - rate), u ~ U[0, 1) of ``noise_shape`` (x's shape
        when None; broadcast over x), drawn by this backend's generator (on the device for CuPy)
        keyed by the integer ``seed`` (same seed, same mask). x: any shape. Returns (y, mask)."""
        xp = self.xp
        dtype = x.dtype if x.dtype.kind == "f" else xp.dtype(xp.float32)  # integers: a float mask
        u = self._uniform(x.shape if noise_shape is None else tuple(noise_shape), seed)
        scale = 0.0 if rate >= 1.0 else 1.0 / (1.0 - rate)
        mask = (u >= rate).astype(dtype) * dtype.type(scale)
        return x * mask, mask

    def _uniform(self, shape, seed):
        """u ~ U[0, 1) of ``shape`` (float64), a function of ``seed`` alone: Philox keyed by it."""
        return _HOST_UNIFORM.uniform(shape, seed)

    def dropout_backward(self, dy, mask):
        """dL/dx = dy * mask, the mask ``dropout_forward`` returned (it broadcasts over dy as over x)."""
        return dy * mask

    # ------------------------------------------------------------------ image geometry

    def resize_forward(self, x, size, interpolation="bilinear"):
        """y = R_h x R_w^T per image and channel: x (N, H, W, C) floating -> (N, size[0], size[1], C).

        Half-pixel centres without antialias ("bilinear"), "nearest-exact" ("nearest"), or the
        fractional box average ("area"); the maps are in ``pyminidl.backend._image_ops``."""
        return _image_ops.resize(self.xp, x, size, interpolation)

    def resize_backward(self, dy, in_hw, interpolation="bilinear"):
        """dL/dx = R_h^T dy R_w: dy (N, OH, OW, C) -> (N, H, W, C) with (H, W) = ``in_hw``."""
        return _image_ops.resize_backward(self.xp, dy, in_hw, interpolation)

    def affine_transform_forward(self, x, transforms, interpolation="bilinear", fill_mode="reflect",
                                 fill_value=0.0):
        """y[n] = x[n] sampled through Keras's projective transform ``transforms[n]``.

        x: (N, H, W, C) floating; transforms: (N, 8) [a0, a1, a2, b0, b1, b2, c0, c1] (output pixel
        (r, c) reads column (a0 c + a1 r + a2) / k and row (b0 c + b1 r + b2) / k, k = c0 c + c1 r + 1)."""
        index, weight = _image_ops.affine_taps(self.xp, transforms, x.shape[1], x.shape[2], interpolation, fill_mode)
        return _image_ops.affine_apply(self.xp, x, index, weight, fill_value, fill_mode)

    def affine_transform_backward(self, dy, transforms, interpolation="bilinear", fill_mode="reflect"):
        """dL/dx = A^T dy, the transpose of the sampling map (the fill value is a constant: no gradient)."""
        index, weight = _image_ops.affine_taps(self.xp, transforms, dy.shape[1], dy.shape[2], interpolation,
                                               fill_mode)
        return _image_ops.affine_backward(self.xp, dy, index, weight)

    # ------------------------------------------------------------------ fused losses

    def softmax_cross_entropy_forward(self, logits, labels, sparse=False, label_smoothing=0.0):
        """Per-sample CE of softmax(logits). logits: (N, C); labels: (N, C) probabilities,
        or (N,) integer classes when ``sparse``. Returns (loss (N,), probs (N, C))."""
        xp = self.xp
        log_p = self.log_softmax_forward(logits, axis=-1)
        target = self._smoothed_targets(labels, logits.shape[-1], logits.dtype, sparse, label_smoothing)
        return -xp.sum(target * log_p, axis=-1), xp.exp(log_p)

    def softmax_cross_entropy_backward(self, dloss, probs, labels, sparse=False, label_smoothing=0.0):
        """dL/dlogits = dloss[:, None] * (probs - target). dloss: (N,), probs: (N, C)."""
        target = self._smoothed_targets(labels, probs.shape[-1], probs.dtype, sparse, label_smoothing)
        # Targets need not sum to 1 (Keras does not renormalise them): d/dz of
        # -sum(t * log softmax(z)) is probs * sum(t) - t.
        total = self.xp.sum(target, axis=-1, keepdims=True)
        return dloss[:, None] * (probs * total - target)

    def _smoothed_targets(self, labels, classes, dtype, sparse, label_smoothing):
        xp = self.xp
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1]. Received: label_smoothing={label_smoothing}")
        if sparse:
            labels = self._check_sparse_labels(labels, classes)
            target = xp.zeros((labels.shape[0], classes), dtype=dtype)
            target[xp.arange(labels.shape[0]), labels] = 1.0
        else:
            target = labels.astype(dtype, copy=False)
        if label_smoothing:
            target = target * (1.0 - label_smoothing) + label_smoothing / classes
        return target

    def _check_sparse_labels(self, labels, classes):
        # Keras (TF) rejects out-of-range class indices; NumPy indexing would wrap -1 to the
        # last class silently, so check here and name the bad value.
        xp = self.xp
        labels = labels.astype(xp.int64)
        if labels.ndim != 1:
            raise ValueError(f"Sparse labels must have shape (N,). Received: labels.shape={labels.shape}")
        bad = (labels < 0) | (labels >= classes)
        if labels.size and bool(bad.any()):
            value = int(labels[bad][0])
            raise ValueError(f"Received a label value of {value} which is outside the valid range of "
                             f"[0, {classes}) ({classes} classes).")
        return labels

    # ------------------------------------------------------------------ optimizer updates
    # All in place on ``param`` and the slot arrays; ``weight_decay`` is decoupled as in
    # Keras 3 (param -= lr * weight_decay * param, before the update). The C++ kernels flush
    # subnormals to zero (csrc/optim.cpp's FlushSubnormals says why); this reference keeps
    # them, so a slot decaying towards 0 may differ from it by less than 1.2e-35.

    def _decay(self, param, lr, weight_decay):
        if weight_decay:
            param -= (lr * weight_decay) * param

    def sgd_update(self, param, grad, velocity, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        """Keras SGD: v = momentum*v - lr*g; p += v (nesterov: p += momentum*v - lr*g); plain: p -= lr*g."""
        self._decay(param, lr, weight_decay)
        if momentum == 0.0 or velocity is None:
            param -= lr * grad
            return
        velocity *= momentum
        velocity -= lr * grad
        if nesterov:
            param += momentum * velocity - lr * grad
        else:
            param += velocity

    def adam_update(self, param, grad, m, v, vhat, lr, step, beta_1=0.9, beta_2=0.999,
                    epsilon=1e-7, amsgrad=False, weight_decay=0.0):
        """Keras Adam(W): m += (g-m)(1-b1); v += (g^2-v)(1-b2); p -= lr_t m / (sqrt(v or max v) + eps),
        lr_t = lr sqrt(1-b2^t) / (1-b1^t); ``step`` counts from 1."""
        xp = self.xp
        self._decay(param, lr, weight_decay)
        alpha = lr * math.sqrt(1.0 - beta_2 ** step) / (1.0 - beta_1 ** step)
        m += (grad - m) * (1.0 - beta_1)
        v += (grad * grad - v) * (1.0 - beta_2)
        if amsgrad:
            xp.maximum(vhat, v, out=vhat)
            denom = vhat
        else:
            denom = v
        param -= (alpha * m) / (xp.sqrt(denom) + epsilon)

    # Multi-tensor updates: one call per step for all of an optimizer's variables (a fast
    # backend runs them in one kernel launch); the reference is the per-variable update.

    def sgd_update_multi(self, params, grads, velocities, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        """``sgd_update`` of each (params[j], grads[j], velocities[j]); velocities None: plain SGD."""
        for j, (p, g) in enumerate(zip(params, grads)):
            self.sgd_update(p, g, None if velocities is None else velocities[j], lr, momentum, nesterov, weight_decay)

    def adam_update_multi(self, params, grads, ms, vs, vhats, lr, step, beta_1=0.9, beta_2=0.999,
                          epsilon=1e-7, amsgrad=False, weight_decay=0.0):
        """``adam_update`` of each (params[j], grads[j], ms[j], vs[j], vhats[j]); vhats None without amsgrad."""
        for j, (p, g) in enumerate(zip(params, grads)):
            self.adam_update(p, g, ms[j], vs[j], None if vhats is None else vhats[j], lr, step, beta_1, beta_2,
                             epsilon, amsgrad, weight_decay)

    def rmsprop_update(self, param, grad, velocity, momentum_buf, average_grad, lr, rho=0.9,
                       momentum=0.0, epsilon=1e-7, centered=False, weight_decay=0.0):
        """Keras RMSprop: v = rho v + (1-rho) g^2; inc = lr g / sqrt(v [- avg_g^2] + eps); momentum optional."""
        xp = self.xp
        self._decay(param, lr, weight_decay)
        velocity *= rho
        velocity += (1.0 - rho) * grad * grad
        denom = velocity
        if centered:
            average_grad *= rho
            average_grad += (1.0 - rho) * grad
            denom = velocity - average_grad * average_grad
        increment = lr * grad / xp.sqrt(denom + epsilon)
        if momentum > 0.0:
            momentum_buf *= momentum
            momentum_buf += increment
            param -= momentum_buf
        else:
            param -= increment

    def adagrad_update(self, param, grad, accumulator, lr, epsilon=1e-7, weight_decay=0.0):
        """Keras Adagrad: acc += g^2; p -= lr g / sqrt(acc + eps)."""
        self._decay(param, lr, weight_decay)
        accumulator += grad * grad
        param -= lr * grad / self.xp.sqrt(accumulator + epsilon)

    # ------------------------------------------------------------------ embedding and recurrent layers
    # Sequences are batch-major as in Keras: x (N, T, I), outputs (N, T, U). The recurrent ops run
    # the whole sequence in one call and return what their backward needs (gate values, the state
    # entering every step), so backward is one call too. Masks (N, T) are boolean: a masked step
    # carries the state over and repeats the previous output (zeros before the first valid step),
    # exactly as Keras's rnn loop. Activations are named; only the ones whose derivative follows
    # from their output are supported (RNN_ACTIVATIONS).

    def embedding_forward(self, ids, table):
        """y = table[ids]. ids: integer, any shape; table: (V, D) -> ids.shape + (D,).

        Raises:
            ValueError: an id outside [0, V).
        """
        self._check_ids(ids, table.shape[0])
        return table[ids]

    def embedding_backward(self, dy, ids, input_dim):
        """dtable[v] = sum of dy at the positions where ids == v, in position order. -> (V, D)."""
        xp = self.xp
        self._check_ids(ids, input_dim)
        d = dy.shape[-1]
        dtable = xp.zeros((input_dim, d), dtype=dy.dtype)
        xp.add.at(dtable, ids.reshape(-1), dy.reshape(ids.size, d))
        return dtable

    def _check_ids(self, ids, input_dim):
        if ids.dtype.kind not in "iu":
            raise TypeError(f"Embedding ids must be integers. Received: dtype={ids.dtype}")
        if ids.size and (int(ids.max()) >= input_dim or int(ids.min()) < 0):
            raise ValueError(f"Embedding ids must lie in [0, input_dim={input_dim}). Received: largest id "
                             f"{int(ids.max())}, smallest id {int(ids.min())}")

    def _rnn_act(self, name, x):
        if name not in RNN_ACTIVATIONS:
            raise ValueError(f"Recurrent activation {name!r} is not supported; use one of {RNN_ACTIVATIONS}")
        return self.activation_forward(name, x)

    def _rnn_act_grad(self, name, y):
        """d act / d x written from the output y = act(x) (why only RNN_ACTIVATIONS qualify)."""
        if name == "tanh":
            return 1.0 - y * y
        if name == "sigmoid":
            return y * (1.0 - y)
        if name == "relu":
            return (y > 0).astype(y.dtype)
        if name == "hard_sigmoid":
            return ((y > 0) & (y < 1)).astype(y.dtype) / 6.0
        return self.xp.ones_like(y)

    def _rnn_prologue(self, x, kernel, bias, h0, units):
        """The input projection of every step as one GEMM, and the initial state (zeros if None)."""
        n, t, i = x.shape
        xw = self.gemm(x.reshape(n * t, i), kernel).reshape(n, t, kernel.shape[1])
        if bias is not None:
            xw = xw + bias
        h = self.xp.zeros((n, units), dtype=x.dtype) if h0 is None else h0
        return xw, h

    def _rnn_carry(self, mask, t, new, old):
        """The masked update of a state or output: new where the step is valid, old where masked."""
        if mask is None:
            return new
        return self.xp.where(mask[:, t, None], new, old)

    def _rnn_back_step(self, mask, t, dy, dh, carry):
        """(grad reaching the new state, grad passed straight to the previous state, output carry).

        The output of a masked step is the previous output, so its gradient carries backward to the
        previous step's output; the state of a masked step is the previous state, so dh passes."""
        g = dy[:, t] + carry
        if mask is None:
            return dh + g, None, self.xp.zeros_like(g)
        m = mask[:, t, None]
        zero = self.xp.zeros_like(g)
        return self.xp.where(m, dh + g, zero), self.xp.where(m, zero, dh), self.xp.where(m, zero, g)

    def _rnn_epilogue(self, dz, x, kernel, hprev, bias_shape, need_dx=True):
        """dkernel = x^T dz, drecurrent = hprev^T dz, dbias = sum dz, dx = dz kernel^T (one GEMM each)."""
        n, t, i = x.shape
        dz2 = dz.reshape(n * t, dz.shape[-1])
        dk = self.gemm(x.reshape(n * t, i), dz2, trans_a=True)
        dr = self.gemm(hprev.reshape(n * t, hprev.shape[-1]), dz2, trans_a=True)
        db = dz2.sum(axis=0).reshape(bias_shape) if bias_shape is not None else None
        dx = self.gemm(dz2, kernel, trans_b=True).reshape(n, t, i) if need_dx else None
        return dx, dk, dr, db

    def simple_rnn_forward(self, x, kernel, recurrent_kernel, bias=None, h0=None, mask=None, activation="tanh"):
        """h_t = act(x_t W + h_{t-1} U + b). x: (N, T, I), W: (I, U), U: (U, U), b: (U,) or None,
        h0: (N, U) or None (zeros), mask: (N, T) bool or None.

        Returns (y (N, T, U), h_T (N, U), gates (N, T, U): act(...) of every step, hprev (N, T, U):
        the state entering every step)."""
        xp, units = self.xp, recurrent_kernel.shape[0]
        xw, h = self._rnn_prologue(x, kernel, bias, h0, units)
        n, steps = x.shape[:2]
        y, gates, hprev = (xp.empty((n, steps, units), dtype=x.dtype) for _ in range(3))
        out = xp.zeros_like(h)
        for t in range(steps):
            hprev[:, t] = h
            hn = self._rnn_act(activation, xw[:, t] + self.gemm(h, recurrent_kernel))
            gates[:, t] = hn
            h, out = self._rnn_carry(mask, t, hn, h), self._rnn_carry(mask, t, hn, out)
            y[:, t] = out
        return y, h, gates, hprev

    def simple_rnn_inference(self, x, kernel, recurrent_kernel, bias=None, h0=None, mask=None, activation="tanh"):
        """simple_rnn_forward when no backward follows: the same arguments; returns only (y (N, T, U), h_T)."""
        return self.simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0, mask, activation)[:2]

    def simple_rnn_backward(self, dy, dh, x, kernel, recurrent_kernel, mask, gates, hprev, has_bias=True,
                            activation="tanh", need_dx=True):
        """Backpropagation through time of simple_rnn_forward. dy: (N, T, U); dh: (N, U) or None (the
        gradient of h_T). Returns (dx, dkernel, drecurrent_kernel, dbias or None, dh0)."""
        xp = self.xp
        dz = xp.empty_like(gates)
        dh = xp.zeros((x.shape[0], recurrent_kernel.shape[0]), dtype=dy.dtype) if dh is None else dh
        carry = xp.zeros_like(dh)
        for t in reversed(range(x.shape[1])):
            dhn, passed, carry = self._rnn_back_step(mask, t, dy, dh, carry)
            dz[:, t] = dhn * self._rnn_act_grad(activation, gates[:, t])  # dL/dpre = dh * act'(pre)
            dh = self.gemm(dz[:, t], recurrent_kernel, trans_b=True)
            if passed is not None:
                dh = dh + passed
        dx, dk, dr, db = self._rnn_epilogue(dz, x, kernel, hprev, (dz.shape[-1],) if has_bias else None, need_dx)
        return dx, dk, dr, db, dh

    def lstm_forward(self, x, kernel, recurrent_kernel, bias=None, h0=None, c0=None, mask=None,
                     activation="tanh", recurrent_activation="sigmoid"):
        """Keras LSTM, gates i, f, c, o: z = x_t W + h U + b; i, f, o = ract(z_i, z_f, z_o);
        g = act(z_c); c_t = f c + i g; h_t = o act(c_t). x: (N, T, I), W: (I, 4U), U: (U, 4U),
        b: (4U,) or None, h0, c0: (N, U) or None (zeros), mask: (N, T) bool or None.

        Returns (y (N, T, U), h_T, c_T, gates (N, T, 4U): [i, f, g, o] per step, hprev, cprev
        (N, T, U): the states entering every step)."""
        xp, units = self.xp, recurrent_kernel.shape[0]
        xw, h = self._rnn_prologue(x, kernel, bias, h0, units)
        c = xp.zeros_like(h) if c0 is None else c0
        n, steps = x.shape[:2]
        y, hprev, cprev = (xp.empty((n, steps, units), dtype=x.dtype) for _ in range(3))
        gates = xp.empty((n, steps, 4 * units), dtype=x.dtype)
        out = xp.zeros_like(h)
        for t in range(steps):
            hprev[:, t], cprev[:, t] = h, c
            z = xw[:, t] + self.gemm(h, recurrent_kernel)
            i, f, o = (self._rnn_act(recurrent_activation, z[:, k * units:(k + 1) * units]) for k in (0, 1, 3))
            g = self._rnn_act(activation, z[:, 2 * units:3 * units])
            cn = f * c + i * g
            hn = o * self._rnn_act(activation, cn)
            gates[:, t] = xp.concatenate([i, f, g, o], axis=1)
            h, c, out = (self._rnn_carry(mask, t, a, b) for a, b in ((hn, h), (cn, c), (hn, out)))
            y[:, t] = out
        return y, h, c, gates, hprev, cprev

    def lstm_inference(self, x, kernel, recurrent_kernel, bias=None, h0=None, c0=None, mask=None,
                       activation="tanh", recurrent_activation="sigmoid"):
        """lstm_forward when no backward follows (predict, evaluate): the same arguments; returns only
        (y (N, T, U), h_T, c_T), so faster backends need not keep the per-step caches."""
        return self.lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask, activation,
                                 recurrent_activation)[:3]

    def lstm_backward(self, dy, dh, dc, x, kernel, recurrent_kernel, mask, gates, hprev, cprev, has_bias=True,
                      activation="tanh", recurrent_activation="sigmoid", need_dx=True):
        """Backpropagation through time of lstm_forward. dy: (N, T, U); dh, dc: (N, U) or None (the
        gradients of h_T, c_T). Returns (dx, dkernel, drecurrent_kernel, dbias or None, dh0, dc0)."""
        xp, units = self.xp, recurrent_kernel.shape[0]
        dz = xp.empty_like(gates)
        dh = xp.zeros((x.shape[0], units), dtype=dy.dtype) if dh is None else dh
        dc = xp.zeros_like(dh) if dc is None else dc
        carry = xp.zeros_like(dh)
        ra, act = recurrent_activation, activation
        for t in reversed(range(x.shape[1])):
            dhn, passed, carry = self._rnn_back_step(mask, t, dy, dh, carry)
            i, f, g, o = (gates[:, t, k * units:(k + 1) * units] for k in range(4))
            a = self._rnn_act(act, f * cprev[:, t] + i * g)
            dcn = self._rnn_carry(mask, t, dc, xp.zeros_like(dc)) + dhn * o * self._rnn_act_grad(act, a)
            dz[:, t] = xp.concatenate([dcn * g * self._rnn_act_grad(ra, i), dcn * cprev[:, t] * self._rnn_act_grad(ra, f),
                                       dcn * i * self._rnn_act_grad(act, g), dhn * a * self._rnn_act_grad(ra, o)], axis=1)
            dc_new = dcn * f  # dL/dc_{t-1} = dL/dc_t * f
            dh = self.gemm(dz[:, t], recurrent_kernel, trans_b=True)
            if passed is not None:
                dh, dc_new = dh + passed, dc_new + self._rnn_carry(mask, t, xp.zeros_like(dc), dc)
            dc = dc_new
        dx, dk, dr, db = self._rnn_epilogue(dz, x, kernel, hprev, (4 * units,) if has_bias else None, need_dx)
        return dx, dk, dr, db, dh, dc

    def gru_forward(self, x, kernel, recurrent_kernel, bias=None, h0=None, mask=None, activation="tanh",
                    recurrent_activation="sigmoid", reset_after=True):
        """Keras GRU, gates z, r, h. reset_after=True (bias (2, 3U): input and recurrent biases):
        q = h U + b_rec; z, r = ract(x W_zr + b_zr + q_zr); hh = act(x W_h + b_h + r q_h).
        reset_after=False (bias (3U,)): z, r = ract(x W_zr + h U_zr + b_zr);
        hh = act(x W_h + (r h) U_h + b_h). Then h_t = z h + (1 - z) hh. x: (N, T, I), W: (I, 3U),
        U: (U, 3U), h0: (N, U) or None, mask: (N, T) bool or None.

        Returns (y (N, T, U), h_T, gates (N, T, 3U): [z, r, hh], hprev (N, T, U), extra (N, T, U):
        q_h per step when reset_after, else r h_{t-1})."""
        xp, units = self.xp, recurrent_kernel.shape[0]
        b_in = None if bias is None else (bias[0] if reset_after else bias)
        xw, h = self._rnn_prologue(x, kernel, b_in, h0, units)
        n, steps = x.shape[:2]
        y, hprev, extra = (xp.empty((n, steps, units), dtype=x.dtype) for _ in range(3))
        gates = xp.empty((n, steps, 3 * units), dtype=x.dtype)
        out = xp.zeros_like(h)
        u2 = 2 * units
        for t in range(steps):
            hprev[:, t] = h
            q = self.gemm(h, recurrent_kernel if reset_after else recurrent_kernel[:, :u2])
            if reset_after and bias is not None:
                q = q + bias[1]
            zr = self._rnn_act(recurrent_activation, xw[:, t, :u2] + q[:, :u2])
            r = zr[:, units:]
            if reset_after:
                extra[:, t] = q[:, u2:]
                hh = self._rnn_act(activation, xw[:, t, u2:] + r * q[:, u2:])
            else:
                extra[:, t] = r * h
                hh = self._rnn_act(activation, xw[:, t, u2:] + self.gemm(extra[:, t], recurrent_kernel[:, u2:]))
            z = zr[:, :units]
            hn = z * h + (1.0 - z) * hh
            gates[:, t] = xp.concatenate([zr, hh], axis=1)
            h, out = self._rnn_carry(mask, t, hn, h), self._rnn_carry(mask, t, hn, out)
            y[:, t] = out
        return y, h, gates, hprev, extra

    def gru_inference(self, x, kernel, recurrent_kernel, bias=None, h0=None, mask=None, activation="tanh",
                      recurrent_activation="sigmoid", reset_after=True):
        """gru_forward when no backward follows (predict, evaluate): the same arguments; returns only
        (y (N, T, U), h_T), so faster backends need not keep the per-step caches."""
        return self.gru_forward(x, kernel, recurrent_kernel, bias, h0, mask, activation, recurrent_activation,
                                reset_after)[:2]

    def gru_backward(self, dy, dh, x, kernel, recurrent_kernel, mask, gates, hprev, extra, has_bias=True,
                     activation="tanh", recurrent_activation="sigmoid", reset_after=True, need_dx=True):
        """Backpropagation through time of gru_forward. dy: (N, T, U); dh: (N, U) or None.
        Returns (dx, dkernel, drecurrent_kernel, dbias (2, 3U) / (3U,) or None, dh0)."""
        xp, units = self.xp, recurrent_kernel.shape[0]
        u2 = 2 * units
        dgx = xp.empty_like(gates)  # gradients of the input-side pre-activations
        dgr = xp.empty_like(gates) if reset_after else None  # of the recurrent side (differs in the h third)
        dh = xp.zeros((x.shape[0], units), dtype=dy.dtype) if dh is None else dh
        carry = xp.zeros_like(dh)
        ra, act = recurrent_activation, activation
        for t in reversed(range(x.shape[1])):
            dhn, passed, carry = self._rnn_back_step(mask, t, dy, dh, carry)
            z, r, hh = (gates[:, t, k * units:(k + 1) * units] for k in range(3))
            hp = hprev[:, t]
            dz = dhn * (hp - hh) * self._rnn_act_grad(ra, z)  # dh_t/dz = h_{t-1} - hh
            dhh = dhn * (1.0 - z) * self._rnn_act_grad(act, hh)
            if reset_after:
                dr = dhh * extra[:, t] * self._rnn_act_grad(ra, r)
                dgx[:, t] = xp.concatenate([dz, dr, dhh], axis=1)
                dgr[:, t] = xp.concatenate([dz, dr, dhh * r], axis=1)
                dh = dhn * z + self.gemm(dgr[:, t], recurrent_kernel, trans_b=True)
            else:
                drh = self.gemm(dhh, recurrent_kernel[:, u2:], trans_b=True)  # dL/d(r h)
                dr = drh * hp * self._rnn_act_grad(ra, r)
                dgx[:, t] = xp.concatenate([dz, dr, dhh], axis=1)
                dh = dhn * z + drh * r + self.gemm(dgx[:, t, :u2], recurrent_kernel[:, :u2], trans_b=True)
            if passed is not None:
                dh = dh + passed
        return self._gru_epilogue(dgx, dgr, x, kernel, hprev, extra, has_bias, reset_after, need_dx) + (dh,)

    def _gru_epilogue(self, dgx, dgr, x, kernel, hprev, extra, has_bias, reset_after, need_dx):
        """dkernel = x^T dgx; drecurrent = hprev^T dgr (reset_after) or [hprev^T dgx_zr, (r h)^T dgx_h];
        dbias = the sums of dgx (and dgr); dx = dgx kernel^T."""
        units = hprev.shape[-1]
        n2 = x.shape[0] * x.shape[1]
        gx, hp = dgx.reshape(n2, 3 * units), hprev.reshape(n2, units)
        dk = self.gemm(x.reshape(n2, x.shape[2]), gx, trans_a=True)
        if reset_after:
            gr = dgr.reshape(n2, 3 * units)
            dr = self.gemm(hp, gr, trans_a=True)
            db = self.xp.stack([gx.sum(axis=0), gr.sum(axis=0)]) if has_bias else None
        else:
            dr = self.xp.concatenate([self.gemm(hp, gx[:, :2 * units], trans_a=True),
                                      self.gemm(extra.reshape(n2, units), gx[:, 2 * units:], trans_a=True)], axis=1)
            db = gx.sum(axis=0) if has_bias else None
        dx = self.gemm(gx, kernel, trans_b=True).reshape(x.shape) if need_dx else None
        return dx, dk, dr, db

    # ------------------------------------------------------------------ pooling (issue 9)
    # NHWC, windows (KH, KW) every (SH, SW); 'same' pads as Keras (out = ceil(size / stride), the
    # odd padded cell at the bottom/right). Padded cells are never a maximum and are left out of
    # an average's count. 1-D pooling is 2-D with H = 1; global pooling is one window.

    def _pool_windows(self, x_shape, pool_size, strides, padding):
        """Each window offset (i, j) with its row/column slices into the padded input, the (OH, OW)
        mask of windows whose cell (i, j) is an input cell, and the flat input index of that cell."""
        n, h, w, c = x_shape
        (oh, pt), (ow, pl) = (_pool_out_and_pad(h, pool_size[0], strides[0], padding),
                              _pool_out_and_pad(w, pool_size[1], strides[1], padding))
        if oh < 1 or ow < 1:
            raise ValueError(f"The pooling output would be empty: input shape {tuple(x_shape)}, pool_size="
                             f"{tuple(pool_size)}, strides={tuple(strides)}, padding={padding!r}")
        xp, (sh, sw) = self.xp, strides
        rows, cols = xp.arange(oh) * sh - pt, xp.arange(ow) * sw - pl  # window starts in input coordinates
        for i in range(pool_size[0]):
            for j in range(pool_size[1]):
                ih, iw = rows + i, cols + j
                valid = ((ih >= 0) & (ih < h))[:, None] & ((iw >= 0) & (iw < w))[None, :]
                yield i, j, valid[None, :, :, None], (ih[:, None] * w + iw[None, :])[None, :, :, None]

    def _pool_padded(self, x, pool_size, strides, padding):
        """x zero-padded so that every window (i, j) is the strided slice [i::SH][:OH], [j::SW][:OW]."""
        n, h, w, c = x.shape
        (oh, pt), (ow, pl) = (_pool_out_and_pad(h, pool_size[0], strides[0], padding),
                              _pool_out_and_pad(w, pool_size[1], strides[1], padding))
        hp = max((oh - 1) * strides[0] + pool_size[0], pt + h)
        wp = max((ow - 1) * strides[1] + pool_size[1], pl + w)
        out = self.xp.zeros((n, hp, wp, c), dtype=x.dtype)
        out[:, pt:pt + h, pl:pl + w] = x
        return out, (oh, ow, pt, pl)

    def maxpool_forward(self, x, pool_size, strides, padding="valid"):
        """y = the max of each window. x: (N, H, W, C) -> (y, argmax), both (N, OH, OW, C); argmax
        (int32) is ih * W + iw of the maximum: the first in row-major window order on ties, the first
        NaN over numbers (NaN propagates)."""
        xp = self.xp
        xpad, (oh, ow, _, _) = self._pool_padded(x, pool_size, strides, padding)
        sh, sw = strides
        best = xp.zeros((x.shape[0], oh, ow, x.shape[3]), dtype=x.dtype)
        arg = xp.zeros(best.shape, dtype=xp.int32)
        have = xp.zeros((1, oh, ow, 1), dtype=bool)
        for i, j, valid, flat in self._pool_windows(x.shape, pool_size, strides, padding):
            v = xpad[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
            take = valid & (~have | (v > best) | (xp.isnan(v) & ~xp.isnan(best)))
            best = xp.where(take, v, best)
            arg = xp.where(take, flat.astype(xp.int32), arg)
            have = have | valid
        return best, arg

    def maxpool_backward(self, dy, argmax, input_shape, pool_size, strides, padding="valid"):
        """dL/dx[n, argmax, c] += dy[n, i, j, c]. dy, argmax: (N, OH, OW, C) -> dx: input_shape (N, H, W, C)."""
        xp = self.xp
        n, h, w, c = input_shape
        dx = xp.zeros((n, h * w, c), dtype=dy.dtype)
        ni = xp.broadcast_to(xp.arange(n)[:, None, None, None], dy.shape)
        ci = xp.broadcast_to(xp.arange(c)[None, None, None, :], dy.shape)
        xp.add.at(dx, (ni, argmax.astype(xp.int64), ci), dy)
        return dx.reshape(n, h, w, c)

    def _pool_counts(self, x_shape, pool_size, strides, padding):
        """(1, OH, OW, 1): how many input cells each window holds."""
        return sum(valid.astype(self.xp.int64) for _, _, valid, _ in
                   self._pool_windows(x_shape, pool_size, strides, padding))

    def avgpool_forward(self, x, pool_size, strides, padding="valid"):
        """y = the mean of each window's input cells (padded cells left out). x: (N, H, W, C) -> (N, OH, OW, C)."""
        xpad, (oh, ow, _, _) = self._pool_padded(x, pool_size, strides, padding)
        sh, sw = strides
        total = sum(xpad[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
                    for i in range(pool_size[0]) for j in range(pool_size[1]))
        return total / self._pool_counts(x.shape, pool_size, strides, padding).astype(x.dtype)

    def avgpool_backward(self, dy, input_shape, pool_size, strides, padding="valid"):
        """dL/dx = the sum over the windows holding x of dy / count. dy: (N, OH, OW, C) -> dx: input_shape."""
        n, h, w, c = input_shape
        g = dy / self._pool_counts(input_shape, pool_size, strides, padding).astype(dy.dtype)
        dpad, (oh, ow, pt, pl) = self._pool_padded(self.xp.zeros(input_shape, dtype=dy.dtype), pool_size,
                                                   strides, padding)
        sh, sw = strides
        for i in range(pool_size[0]):
            for j in range(pool_size[1]):
                dpad[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] += g
        return dpad[:, pt:pt + h, pl:pl + w]

    # ------------------------------------------------------------------ normalization (issue 9)

    def _bn_layout(self, x, axis, training):
        """(normalized axis, the other axes, the broadcast shape of a per-channel vector)."""
        if not -x.ndim <= axis < x.ndim:
            raise ValueError(f"axis {axis} is out of range for x of shape {tuple(x.shape)}")
        ax = axis % x.ndim
        reduce = tuple(k for k in range(x.ndim) if k != ax)
        if training and math.prod(x.shape[k] for k in reduce) == 0:
            raise ValueError(f"batch statistics of an empty batch: x.shape={tuple(x.shape)}")
        return reduce, tuple(x.shape[k] if k == ax else 1 for k in range(x.ndim))

    def batch_norm_forward(self, x, gamma, beta, axis=-1, epsilon=1e-3, mean=None, variance=None):
        """y = (x - mean) / sqrt(variance + epsilon) * gamma + beta along ``axis``; mean and the biased
        variance over every other axis (the batch statistics) unless given (inference: the moving ones).
        x: any shape; gamma, beta (None: 1, 0), mean, variance: (x.shape[axis],). Returns (y, mean, variance)."""
        reduce, bshape = self._bn_layout(x, axis, mean is None)
        if mean is None:
            mean = x.mean(axis=reduce)
            variance = ((x - mean.reshape(bshape)) ** 2).mean(axis=reduce)
        y = (x - mean.reshape(bshape)) / self.xp.sqrt(variance.reshape(bshape) + epsilon)
        if gamma is not None:
            y = y * gamma.reshape(bshape)
        if beta is not None:
            y = y + beta.reshape(bshape)
        return y, mean, variance

    def batch_norm_backward(self, dy, x, gamma, mean, variance, axis=-1, epsilon=1e-3, training=True):
        """(dx, dgamma, dbeta) of ``batch_norm_forward``: dbeta = sum dy, dgamma = sum dy * xhat and, with batch
        statistics (training), dx = g inv / n (n dy - dbeta - xhat dgamma); else dx = g inv dy (inv = 1 / sqrt(var + eps))."""
        reduce, bshape = self._bn_layout(x, axis, False)
        inv = 1.0 / self.xp.sqrt(variance + epsilon)
        xhat = (x - mean.reshape(bshape)) * inv.reshape(bshape)
        dbeta, dgamma = dy.sum(axis=reduce), (dy * xhat).sum(axis=reduce)
        g = inv if gamma is None else gamma * inv
        if not training:
            return dy * g.reshape(bshape), dgamma, dbeta
        n = math.prod(x.shape[k] for k in reduce)
        dx = g.reshape(bshape) / n * (n * dy - dbeta.reshape(bshape) - xhat * dgamma.reshape(bshape))
        return dx, dgamma, dbeta

    def _ln_layout(self, x, axis):
        """(sorted normalized axes, the broadcast shape of gamma/beta)."""
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        if not axes or any(not -x.ndim <= a < x.ndim for a in axes) or len({a % x.ndim for a in axes}) != len(axes):
            raise ValueError(f"Invalid axis {axis!r} for x of shape {tuple(x.shape)}")
        axes = tuple(sorted(a % x.ndim for a in axes))
        if any(x.shape[a] == 0 for a in axes):
            raise ValueError(f"normalizing over zero elements: x.shape={tuple(x.shape)}")
        return axes, tuple(x.shape[k] if k in axes else 1 for k in range(x.ndim))

    def layer_norm_forward(self, x, gamma, beta, axis=-1, epsilon=1e-3):
        """y = (x - mean) / sqrt(variance + epsilon) * gamma + beta, mean and biased variance over ``axis``
        (an int or a tuple) per sample. x: any shape; gamma, beta (None: 1, 0): the sizes of the axes, sorted.
        Returns (y, mean, variance), the statistics with keepdims."""
        axes, bshape = self._ln_layout(x, axis)
        mean = x.mean(axis=axes, keepdims=True)
        variance = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
        y = (x - mean) / self.xp.sqrt(variance + epsilon)
        if gamma is not None:
            y = y * gamma.reshape(bshape)
        if beta is not None:
            y = y + beta.reshape(bshape)
        return y, mean, variance

    def layer_norm_backward(self, dy, x, gamma, mean, variance, axis=-1, epsilon=1e-3):
        """(dx, dgamma, dbeta) of ``layer_norm_forward``: with gd = dy * gamma, xhat = (x - mean) inv,
        dx = inv (gd - mean(gd) - xhat mean(gd xhat)) over ``axis``; dgamma = sum dy xhat, dbeta = sum dy
        over the other axes."""
        axes, bshape = self._ln_layout(x, axis)
        others = tuple(k for k in range(x.ndim) if k not in axes)
        inv = 1.0 / self.xp.sqrt(variance + epsilon)
        xhat = (x - mean) * inv
        gd = dy if gamma is None else dy * gamma.reshape(bshape)
        dx = inv * (gd - gd.mean(axis=axes, keepdims=True) - xhat * (gd * xhat).mean(axis=axes, keepdims=True))
        pshape = tuple(x.shape[a] for a in axes)
        return dx, (dy * xhat).sum(axis=others).reshape(pshape), dy.sum(axis=others).reshape(pshape)


# ---------------------------------------------------------------------- convolution geometry
# Shared by the reference ops above and the kernel overrides (cpu_backend.py): Keras's paddings
# as explicit numbers. A 1-D convolution is a 2-D one of height 1.

class _ConvGeom:
    """A 2-D convolution's geometry: output (OH, OW), strides, pads before, dilation, groups."""

    __slots__ = ("out", "strides", "pads", "dilation", "groups")

    def __init__(self, out, strides, pads, dilation, groups):
        self.out, self.strides, self.pads, self.dilation, self.groups = out, strides, pads, dilation, groups


def _write_out(out, value, op, like):
    """out[...] = value for an op's ``out`` argument, which must match the result exactly (no
    broadcast, no cast: the C++ kernels refuse those too)."""
    if out.dtype != value.dtype:
        raise TypeError(f"{op}: argument 'out' must have the dtype of '{like}'. Received: out.dtype={out.dtype}, "
                        f"{like}.dtype={value.dtype}")
    if out.shape != value.shape:
        raise ValueError(f"{op}: arguments '{like}' and 'out' must have the same shape. Received: "
                         f"{like}.shape={value.shape}, out.shape={out.shape}")
    if out is not value:
        out[...] = value
    return out


def _to_2d(a):
    """Data (N, W, C) -> (N, 1, W, C); 4-D unchanged."""
    return a if a.ndim == 4 else a.reshape(a.shape[:1] + (1,) + a.shape[1:])


def _kernel_to_2d(w):
    """A 1-D kernel (KW, C, F) -> (1, KW, C, F); 4-D unchanged."""
    return w if w.ndim == 4 else w.reshape((1,) + w.shape)


def _kernel_2d_shape(shape):
    return tuple(shape) if len(shape) == 4 else (1,) + tuple(shape)


def _from_2d(a, ndim):
    return a if ndim == 4 else a.reshape(a.shape[:1] + a.shape[2:])


def _per_axis(value, rank, what, op, minimum=1):
    """An int or a tuple of `rank` ints, each >= minimum, as a tuple."""
    values = (value,) * rank if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != rank or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum
                                  for v in values):
        raise ValueError(f"{op}: `{what}` must be an integer >= {minimum} or a tuple of {rank} of them. "
                         f"Received: {what}={value!r}")
    return tuple(int(v) for v in values)


def _conv_axis(size, k, s, d, padding):
    """(output length, pad before) of one axis, as Keras computes them."""
    k_eff = (k - 1) * d + 1
    if padding == "valid":
        return (size - k_eff) // s + 1 if size >= k_eff else 0, 0
    out = -(-size // s)
    if padding == "causal":
        return out, k_eff - 1
    return out, max((out - 1) * s + k_eff - size, 0) // 2


def _check_conv_args(x_shape, w_shape, padding, op):
    if len(x_shape) not in (3, 4) or len(w_shape) != len(x_shape):
        raise ValueError(f"{op}: expected x of rank 3 (N, W, C) or 4 (N, H, W, C) and a kernel of the same rank. "
                         f"Received: x.shape={tuple(x_shape)}, w.shape={tuple(w_shape)}")
    if padding not in ("valid", "same", "causal") or (padding == "causal" and len(x_shape) != 3):
        raise ValueError(f"{op}: `padding` must be 'valid' or 'same' ('causal' for 1-D). Received: padding={padding!r}")


def _conv_geometry(x_shape, w_shape, strides, padding, dilation_rate, groups, op):
    """The _ConvGeom of conv_forward/conv_backward's arguments; ValueError on an inconsistent set."""
    _check_conv_args(x_shape, w_shape, padding, op)
    rank = len(x_shape) - 2
    s, d = _per_axis(strides, rank, "strides", op), _per_axis(dilation_rate, rank, "dilation_rate", op)
    (groups,) = _per_axis(groups, 1, "groups", op)
    kshape = _kernel_2d_shape(w_shape)
    c = x_shape[-1]
    if c % groups or kshape[3] % groups or kshape[2] * groups != c:
        raise ValueError(f"{op}: the kernel must be (..., C / groups, F) with groups dividing C and F. "
                         f"Received: x.shape={tuple(x_shape)}, w.shape={tuple(w_shape)}, groups={groups}")
    s2, d2 = (1,) * (2 - rank) + s, (1,) * (2 - rank) + d
    spatial = (1,) * (2 - rank) + tuple(x_shape[1:-1])
    axes = [_conv_axis(spatial[i], kshape[i], s2[i], d2[i], padding if i >= 2 - rank else "valid") for i in range(2)]
    return _ConvGeom(tuple(a[0] for a in axes), s2, tuple(a[1] for a in axes), d2, groups)


def _depthwise_geometry(x_shape, w_shape, strides, padding, dilation_rate, op):
    """The _ConvGeom (groups = C) of depthwise_conv_forward/backward's arguments; kernel ([KH,] KW, C, M)."""
    _check_conv_args(x_shape, w_shape, padding, op)
    if w_shape[-2] != x_shape[-1] or min(w_shape[:-2]) < 1:
        raise ValueError(f"{op}: the kernel must be ([KH,] KW, C, depth_multiplier) with C the input's channels "
                         f"and nonzero kernel sizes. Received: x.shape={tuple(x_shape)}, w.shape={tuple(w_shape)}")
    rank = len(x_shape) - 2
    s, d = _per_axis(strides, rank, "strides", op), _per_axis(dilation_rate, rank, "dilation_rate", op)
    s2, d2 = (1,) * (2 - rank) + s, (1,) * (2 - rank) + d
    spatial, kshape = (1,) * (2 - rank) + tuple(x_shape[1:-1]), _kernel_2d_shape(w_shape)
    axes = [_conv_axis(spatial[i], kshape[i], s2[i], d2[i], padding if i >= 2 - rank else "valid") for i in range(2)]
    return _ConvGeom(tuple(a[0] for a in axes), s2, tuple(a[1] for a in axes), d2, x_shape[-1])


def _transpose_axis(size, k, s, d, padding, output_padding):
    """(output length, pad before of the equivalent convolution) of one transposed axis, as Keras."""
    k_eff = (k - 1) * d + 1
    if padding == "valid":
        op = max(k_eff, s) - k_eff if output_padding is None else output_padding
        left, right = k_eff - 1, k_eff - 1 + op
    else:
        pad_len = s + k_eff - 2 if output_padding is None else k_eff + k_eff % 2 - 2 + output_padding
        left = min(pad_len // 2 + pad_len % 2, k_eff - 1)
        right = pad_len - left
    return (size - 1) * s + left + right - k_eff + 2, k_eff - 1 - left


def _conv_transpose_geometry(x_shape, w_shape, strides, padding, output_padding, dilation_rate, op):
    """(_ConvGeom of the convolution from the output to x, the output's 4-D shape)."""
    _check_conv_args(x_shape, w_shape, padding, op)
    if padding == "causal":
        raise ValueError(f"{op}: `padding` must be 'valid' or 'same'. Received: padding={padding!r}")
    rank = len(x_shape) - 2
    s, d = _per_axis(strides, rank, "strides", op), _per_axis(dilation_rate, rank, "dilation_rate", op)
    opad = None if output_padding is None else _per_axis(output_padding, rank, "output_padding", op, 0)
    kshape = _kernel_2d_shape(w_shape)
    if x_shape[-1] != kshape[3]:
        raise ValueError(f"{op}: x's channels must equal the kernel's last axis (KH, KW, out, in). "
                         f"Received: x.shape={tuple(x_shape)}, w.shape={tuple(w_shape)}")
    s2, d2 = (1,) * (2 - rank) + s, (1,) * (2 - rank) + d
    spatial = (1,) * (2 - rank) + tuple(x_shape[1:-1])
    axes = []
    for i in range(2):
        if i < 2 - rank:
            axes.append((1, 0))
        else:
            axes.append(_transpose_axis(spatial[i], kshape[i], s2[i], d2[i], padding,
                                        None if opad is None else opad[i - (2 - rank)]))
    out_shape = (x_shape[0], axes[0][0], axes[1][0], kshape[2])
    return _ConvGeom(tuple(spatial), s2, tuple(a[1] for a in axes), d2, 1), out_shape


def _pool_out_and_pad(size, k, stride, padding):
    """(output size, leading pad) along one axis: Keras's 'valid' and 'same' (out = ceil(size / stride))."""
    if k < 1 or stride < 1:
        raise ValueError(f"pool_size and strides must be >= 1. Received: pool_size={k}, strides={stride}")
    if padding == "same":
        out = -(-size // stride)
        return out, max((out - 1) * stride + k - size, 0) // 2
    if padding != "valid":
        raise ValueError(f"padding must be 'valid' or 'same'. Received: padding={padding!r}")
    return (size - k) // stride + 1 if size >= k else 0, 0
