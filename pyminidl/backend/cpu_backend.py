"""CpuBackend: the reference ops with the C++/OpenMP kernels swapped in.

Each override calls ``_C`` only for the inputs its kernel supports (NumPy arrays of float32,
and float64 where a kernel has it; the last axis for softmax; C-contiguous in-place arrays for
the optimizer updates) and otherwise returns ``super().<op>(...)``; it adds no op of its own.
"""

import math
import os

import numpy as np

from pyminidl.backend._compat import _C
from pyminidl.backend.base import (RNN_ACTIVATIONS, Backend, _conv_geometry, _conv_transpose_geometry,
                                   _depthwise_geometry, _from_2d, _kernel_to_2d, _to_2d, checked_seed)

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
# The activations _C.dense_activation_grad applies in place (their default parameters).
_DENSE_ACTIVATIONS = frozenset(("relu", "sigmoid", "tanh"))


def _fast(*arrays):
    """True when the kernels take these arrays: NumPy, float32 or float64, one dtype (None skipped).

    A plain loop with ``type() is`` checks: it runs several times per training step, where
    generator expressions were a visible share of a small model's step time."""
    dtype = None
    for a in arrays:
        if a is None:
            continue
        if type(a) is not np.ndarray:
            return False
        if dtype is None:
            dtype = a.dtype
            if dtype.char not in "fd" or not dtype.isnative:  # '>f4' takes the reference path
                return False
        elif a.dtype != dtype:
            return False
    return dtype is not None


def _fast_same(*arrays):
    """``_fast`` and one shape for all (None skipped): the kernels do not broadcast, the reference does."""
    if not _fast(*arrays):
        return False
    shape = None
    for a in arrays:
        if a is not None:
            if shape is None:
                shape = a.shape
            elif a.shape != shape:
                return False
    return True


def _last_axis(x, axis):
    """True when ``axis`` names the last axis of ``x`` (the kernels' row axis)."""
    return isinstance(axis, (int, np.integer)) and x.ndim >= 1 and axis in (-1, x.ndim - 1)


# The parameters each parametrised activation takes (the others take none); a call with any
# other keyword goes to the reference, which raises Python's TypeError for it.
_ACTIVATION_PARAMS = {"relu": ("negative_slope", "max_value", "threshold"), "leaky_relu": ("negative_slope",),
                      "elu": ("alpha",), "gelu": ("approximate",)}


def _out_ok(name, params, like, out):
    """True when the kernels take an ``out=`` activation call: a known non-linear kind with its own
    parameters (gelu's ``approximate`` a real bool), ``out`` C-contiguous, of like's dtype and shape,
    and either like itself (in place) or apart from it (the reference serves a partial overlap)."""
    if name == "linear" or name not in _C.ACTIVATIONS or not _fast_same(like, out) or not _inplace(out):
        return False
    if out is not like and np.may_share_memory(like, out):
        return False
    allowed = _ACTIVATION_PARAMS.get(name, ())
    return all(k in allowed for k in params) and type(params.get("approximate", False)) is bool


def _apart(out, *arrays):
    """True when ``out`` shares no memory with any of ``arrays`` (None skipped)."""
    return not any(a is not None and np.may_share_memory(a, out) for a in arrays)


def _inplace(*arrays):
    """True when every in-place argument given is C-contiguous (the kernels update no copies)."""
    for a in arrays:
        if a is not None and not (type(a) is np.ndarray and a.flags.c_contiguous):
            return False
    return True


class CpuBackend(Backend):
    name = "cpu"

    def __init__(self):
        if _C is None:
            raise RuntimeError("The 'cpu' backend needs pyminidl's C++ extension, which did not import.")
        super().__init__()
        # glibc's dynamic thresholds serve an MLP step's temporaries from the heap, but a CNN step
        # frees several MB at once (a 128x28x28x32 activation is 12.8 MB), past the trim threshold
        # glibc derives (twice the largest freed block), so the heap's top goes back to the system
        # and the next step faults it in again: 780-870 page faults per step of the tutorial CNN,
        # and a max pooling over that activation ran 2.3x slower by its median (its two 3.2 MB
        # outputs re-faulted on every call). Fixed thresholds (32 MB mmap, 64 MB trim: glibc's own
        # dynamic ceiling for the first) keep them: the CNN epoch 1.10x faster on one thread (CPU
        # time), the MLP's unchanged. The cost is up to 64 MB of freed heap the process keeps.
        # Process-wide, so PYMINIDL_TUNE_MALLOC=0, or the user's own MALLOC_MMAP_THRESHOLD_ /
        # MALLOC_TRIM_THRESHOLD_, leave glibc as it was. Private: Backend has no such attribute.
        self._allocator_tuned = os.environ.get("PYMINIDL_TUNE_MALLOC", "1") != "0" and _C.tune_allocator()
        # NumPy's OpenBLAS and these kernels each keep a pool of threads that spin after their
        # work and take the cores from the other's (blas_threads.h): NumPy's busy-waits ~0.1 s after
        # each product, so in a loop alternating NumPy and pyminidl products pyminidl's 2-thread
        # GEMMs ran at 0.04-0.4x their speed. OpenBLAS can run its jobs on the caller's threads:
        # handed this team, both run at full speed in that loop (the README's table), with the
        # same jobs and bits as before. Process-wide, so PYMINIDL_SHARE_BLAS_THREADS=0 leaves
        # OpenBLAS its own threads. Private: Backend has no such attribute.
        self._blas_shared = _C.share_blas_threads(True) if blas_sharing_wanted() else []

    def take_rows(self, x, idx):
        """x.take(idx, axis=0) (see Backend.take_rows): C-contiguous numeric x, 1-D int64 idx."""
        if (type(x) is np.ndarray and type(idx) is np.ndarray and x.ndim >= 1 and idx.ndim == 1
                and idx.dtype == np.int64 and x.dtype.kind in "biufc" and x.flags.c_contiguous
                and idx.flags.c_contiguous):
            return _C.take_rows(x, idx)
        return super().take_rows(x, idx)

    def dropout_forward(self, x, rate, seed, noise_shape=None):
        """The reference's mask (Philox keyed by ``seed``, see Backend.dropout_forward), bit for bit,
        drawn by every thread in one pass with the product: float x, a mask of x's own shape."""
        if not _fast(x) or (noise_shape is not None and tuple(noise_shape) != x.shape) or not 0.0 <= rate <= 1.0:
            return super().dropout_forward(x, rate, seed, noise_shape)
        seed = checked_seed(seed)
        return _C.dropout_forward(x, float(rate), seed & 0xFFFFFFFFFFFFFFFF, seed >> 64)

    # ------------------------------------------------------------------ gemm / dense
    # _C takes 2-D float32/float64 arrays of one dtype (any strides); everything else (N-D,
    # integer or mixed dtypes) goes to the reference, which promotes like NumPy.

    def _c_matrices(self, *arrays):
        """True when every array is a 2-D float32/float64 ndarray, all of one dtype."""
        if not _fast(*arrays):
            return False
        for a in arrays:
            if a is None or a.ndim != 2:
                return False
        return True

    def _c_vector(self, like, v):
        """True when ``v`` is a 1-D ndarray of ``like``'s dtype and last-axis length (no broadcasting)."""
        return type(v) is self.xp.ndarray and v.ndim == 1 and v.dtype == like.dtype and v.shape[0] == like.shape[-1]

    def gemm(self, a, b, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, c=None):
        """alpha * op(a) @ op(b) + beta * c. op(a): (M, K), op(b): (K, N), c: (M, N). Returns a new array."""
        if self._c_matrices(a, b) if c is None else self._c_matrices(a, b, c) and c.shape == (
                a.shape[1 if trans_a else 0], b.shape[0 if trans_b else 1]):  # a broadcast c: reference
            return _C.gemm(a, b, trans_a, trans_b, alpha, beta, c)
        return super().gemm(a, b, trans_a, trans_b, alpha, beta, c)

    def bias_add(self, x, b):
        """y = x + b broadcast over the last axis. x: (..., U), b: (U,)."""
        if self._c_matrices(x) and self._c_vector(x, b):
            return _C.bias_add(x, b)
        return super().bias_add(x, b)

    def bias_grad(self, dy):
        """db = sum of dy over every axis but the last. dy: (..., U) -> (U,)."""
        if self._c_matrices(dy):
            return _C.bias_grad(dy)
        return super().bias_grad(dy)

    def dense_forward(self, x, w, b=None, activation=None):
        """y = activation(x @ w + b) (see Backend.dense_forward). x: (N, I), w: (I, U), b: (U,) or None."""
        if self._c_matrices(x, w) and (b is None or self._c_vector(w, b)) and (  # b: one per column of w
                activation is None or activation in _DENSE_ACTIVATIONS):
            return _C.dense_forward(x, w, b, activation)
        return super().dense_forward(x, w, b, activation)

    def dense_backward(self, dy, x, w, has_bias=True, need_dx=True, activation=None, y=None):
        """dx = dy @ w.T, dw = x.T @ dy, db = sum(dy, 0) (see Backend.dense_backward: ``activation``
        first turns dy into dL/dz in place, fused here with db in one pass over dy)."""
        if not self._c_matrices(dy, x, w):
            return super().dense_backward(dy, x, w, has_bias, need_dx, activation, y)
        db = None
        if activation is not None:
            if has_bias and self._activation_in_place(activation, dy, y):
                dy, db = _C.dense_activation_grad(activation, dy, y, bias_grad=True)
            else:
                dy = self.dense_activation_backward(activation, dy, y, y)
        dw = _C.gemm(x, dy, True, False)
        if has_bias and db is None:
            db = _C.bias_grad(dy)
        dx = _C.gemm(dy, w, False, True) if need_dx else None
        return dx, dw, db

    def dense_activation_backward(self, name, dz, z, y):
        """dz <- dz * f'(z or y) in place (see Backend.dense_activation_backward). Returns dz."""
        saved = z if name == "relu" else y
        if self._activation_in_place(name, dz, saved):
            return _C.dense_activation_grad(name, dz, saved)
        return super().dense_activation_backward(name, dz, z, y)

    @staticmethod
    def _activation_in_place(name, dz, saved):
        """True when _C.dense_activation_grad takes (name, dz, saved): dz written in place."""
        return (name in _DENSE_ACTIVATIONS and _fast_same(dz, saved) and _inplace(dz) and dz.flags.writeable
                and not np.may_share_memory(dz, saved))

    # ------------------------------------------------------------------ convolution
    # The kernels take 4-D NHWC arrays and explicit pads; the shared geometry helpers of base.py
    # turn Keras's paddings into them (and raise the same ValueErrors as the reference).

    def conv_forward(self, x, w, b, strides, padding, dilation_rate, groups=1):
        if not _fast(x, w, b) or x.ndim != w.ndim:
            return super().conv_forward(x, w, b, strides, padding, dilation_rate, groups)
        g = _conv_geometry(x.shape, w.shape, strides, padding, dilation_rate, groups, "conv_forward")
        y = _C.conv_forward(_to_2d(x), _kernel_to_2d(w), b, g.strides, g.pads, g.out, g.dilation, g.groups)
        return _from_2d(y, x.ndim)

    def conv_maxpool_forward(self, x, w, b, strides, padding, dilation_rate, groups, pool_size, pool_strides,
                             pool_padding="valid"):
        if not (_f32(x, w, b) and x.ndim == w.ndim == 4):
            return super().conv_maxpool_forward(x, w, b, strides, padding, dilation_rate, groups, pool_size,
                                                pool_strides, pool_padding)
        g = _conv_geometry(x.shape, w.shape, strides, padding, dilation_rate, groups, "conv_maxpool_forward")
        return _C.conv_maxpool_forward(x, w, b, g.strides, g.pads, g.out, g.dilation, g.groups, tuple(pool_size),
                                       tuple(pool_strides), pool_padding)

    def conv_maxpool_backward(self, dp, argmax, x, w, strides, padding, dilation_rate, groups, pool_size,
                              pool_strides, pool_padding="valid", has_bias=True):
        if not (_f32(dp, x, w) and x.ndim == w.ndim == 4 and type(argmax) is np.ndarray and argmax.dtype == np.int32):
            return super().conv_maxpool_backward(dp, argmax, x, w, strides, padding, dilation_rate, groups, pool_size,
                                                 pool_strides, pool_padding, has_bias)
        g = _conv_geometry(x.shape, w.shape, strides, padding, dilation_rate, groups, "conv_maxpool_backward")
        return _C.conv_maxpool_backward(dp, argmax, x, w, g.strides, g.pads, g.out, g.dilation, g.groups,
                                        tuple(pool_size), tuple(pool_strides), pool_padding, bool(has_bias))

    def conv_backward(self, dy, x, w, strides, padding, dilation_rate, groups=1, has_bias=True, need_dx=True):
        if not _fast(dy, x, w) or not dy.ndim == x.ndim == w.ndim:
            return super().conv_backward(dy, x, w, strides, padding, dilation_rate, groups, has_bias, need_dx)
        g = _conv_geometry(x.shape, w.shape, strides, padding, dilation_rate, groups, "conv_backward")
        dx, dw, db = _C.conv_backward(_to_2d(dy), _to_2d(x), _kernel_to_2d(w), g.strides, g.pads, g.dilation,
                                      g.groups, bool(has_bias), bool(need_dx))
        return (None if dx is None else _from_2d(dx, x.ndim)), dw.reshape(w.shape), db

    def conv_transpose_forward(self, x, w, b, strides, padding, output_padding=None, dilation_rate=1):
        if not _fast(x, w, b) or x.ndim != w.ndim:
            return super().conv_transpose_forward(x, w, b, strides, padding, output_padding, dilation_rate)
        g, out = _conv_transpose_geometry(x.shape, w.shape, strides, padding, output_padding, dilation_rate,
                                          "conv_transpose_forward")
        y = _C.conv_transpose_forward(_to_2d(x), _kernel_to_2d(w), b, g.strides, g.pads, out[1:3], g.dilation)
        return _from_2d(y, x.ndim)

    def conv_transpose_backward(self, dy, x, w, strides, padding, output_padding=None, dilation_rate=1,
                                has_bias=True, need_dx=True):
        if not _fast(dy, x, w) or not dy.ndim == x.ndim == w.ndim:
            return super().conv_transpose_backward(dy, x, w, strides, padding, output_padding, dilation_rate,
                                                   has_bias, need_dx)
        g, _ = _conv_transpose_geometry(x.shape, w.shape, strides, padding, output_padding, dilation_rate,
                                        "conv_transpose_backward")
        dx, dw, db = _C.conv_transpose_backward(_to_2d(dy), _to_2d(x), _kernel_to_2d(w), g.strides, g.pads,
                                                g.dilation, bool(has_bias), bool(need_dx))
        return (None if dx is None else _from_2d(dx, x.ndim)), dw.reshape(w.shape), db

    # The depthwise kernels are float32 only (float64 runs the reference, for gradient checks).

    def depthwise_conv_forward(self, x, w, b, strides, padding, dilation_rate):
        if not _fast(x, w, b) or x.dtype != np.float32 or x.ndim != w.ndim:
            return super().depthwise_conv_forward(x, w, b, strides, padding, dilation_rate)
        g = _depthwise_geometry(x.shape, w.shape, strides, padding, dilation_rate, "depthwise_conv_forward")
        y = _C.depthwise_conv_forward(_to_2d(x), _kernel_to_2d(w), b, g.strides, g.pads, g.out, g.dilation)
        return _from_2d(y, x.ndim)

    def depthwise_conv_backward(self, dy, x, w, strides, padding, dilation_rate, has_bias=True, need_dx=True):
        if not _fast(dy, x, w) or x.dtype != np.float32 or not dy.ndim == x.ndim == w.ndim:
            return super().depthwise_conv_backward(dy, x, w, strides, padding, dilation_rate, has_bias, need_dx)
        g = _depthwise_geometry(x.shape, w.shape, strides, padding, dilation_rate, "depthwise_conv_backward")
        dx, dw, db = _C.depthwise_conv_backward(_to_2d(dy), _to_2d(x), _kernel_to_2d(w), g.strides, g.pads,
                                                g.dilation, bool(has_bias), bool(need_dx))
        return (None if dx is None else _from_2d(dx, x.ndim)), dw.reshape(w.shape), db

    # ------------------------------------------------------------------ activations / softmax
    # linear keeps the reference (it returns x itself: nothing to compute). The step's
    # gradient is zeros, computed by the kernel too so every kind has one code path.

    def activation_forward(self, name, x, *, out=None, **params):
        if out is None or not _out_ok(name, params, x, out):
            return super().activation_forward(name, x, out=out, **params)
        return _C.activation_forward(name, x, out=out, **params)

    def activation_backward(self, name, dy, x, y, *, out=None, **params):
        if out is None or not (_out_ok(name, params, dy, out) and _fast_same(dy, x, y) and _apart(out, x, y)):
            return super().activation_backward(name, dy, x, y, out=out, **params)
        return _C.activation_backward(name, dy, x, y, out=out, **params)

    def step_forward(self, x):
        return _C.activation_forward("step", x) if _fast(x) else super().step_forward(x)

    def step_backward(self, dy, x, y):
        return _C.activation_backward("step", dy) if _fast_same(dy) else super().step_backward(dy, x, y)

    def sigmoid_forward(self, x):
        return _C.activation_forward("sigmoid", x) if _fast(x) else super().sigmoid_forward(x)

    def sigmoid_backward(self, dy, x, y):
        return _C.activation_backward("sigmoid", dy, y=y) if _fast_same(dy, y) else super().sigmoid_backward(dy, x, y)

    def hard_sigmoid_forward(self, x):
        return _C.activation_forward("hard_sigmoid", x) if _fast(x) else super().hard_sigmoid_forward(x)

    def hard_sigmoid_backward(self, dy, x, y):
        if not _fast_same(dy, x):
            return super().hard_sigmoid_backward(dy, x, y)
        return _C.activation_backward("hard_sigmoid", dy, x)

    def tanh_forward(self, x):
        return _C.activation_forward("tanh", x) if _fast(x) else super().tanh_forward(x)

    def tanh_backward(self, dy, x, y):
        return _C.activation_backward("tanh", dy, y=y) if _fast_same(dy, y) else super().tanh_backward(dy, x, y)

    def relu_forward(self, x, negative_slope=0.0, max_value=None, threshold=0.0):
        if not _fast(x):
            return super().relu_forward(x, negative_slope, max_value, threshold)
        return _C.activation_forward("relu", x, negative_slope=negative_slope, max_value=max_value,
                                     threshold=threshold)

    def relu_backward(self, dy, x, y, negative_slope=0.0, max_value=None, threshold=0.0):
        if not _fast_same(dy, x):
            return super().relu_backward(dy, x, y, negative_slope, max_value, threshold)
        return _C.activation_backward("relu", dy, x, negative_slope=negative_slope, max_value=max_value,
                                      threshold=threshold)

    def leaky_relu_forward(self, x, negative_slope=0.2):
        if not _fast(x):
            return super().leaky_relu_forward(x, negative_slope)
        return _C.activation_forward("leaky_relu", x, negative_slope=negative_slope)

    def leaky_relu_backward(self, dy, x, y, negative_slope=0.2):
        if not _fast_same(dy, x):
            return super().leaky_relu_backward(dy, x, y, negative_slope)
        return _C.activation_backward("leaky_relu", dy, x, negative_slope=negative_slope)

    def elu_forward(self, x, alpha=1.0):
        return _C.activation_forward("elu", x, alpha=alpha) if _fast(x) else super().elu_forward(x, alpha)

    def elu_backward(self, dy, x, y, alpha=1.0):
        if not _fast_same(dy, x, y):
            return super().elu_backward(dy, x, y, alpha)
        return _C.activation_backward("elu", dy, x, y, alpha=alpha)

    def selu_forward(self, x):
        return _C.activation_forward("selu", x) if _fast(x) else super().selu_forward(x)

    def selu_backward(self, dy, x, y):
        return _C.activation_backward("selu", dy, x, y) if _fast_same(dy, x, y) else super().selu_backward(dy, x, y)

    def softplus_forward(self, x):
        return _C.activation_forward("softplus", x) if _fast(x) else super().softplus_forward(x)

    def softplus_backward(self, dy, x, y):
        return _C.activation_backward("softplus", dy, x) if _fast_same(dy, x) else super().softplus_backward(dy, x, y)

    def softsign_forward(self, x):
        return _C.activation_forward("softsign", x) if _fast(x) else super().softsign_forward(x)

    def softsign_backward(self, dy, x, y):
        return _C.activation_backward("softsign", dy, x) if _fast_same(dy, x) else super().softsign_backward(dy, x, y)

    def swish_forward(self, x):
        return _C.activation_forward("swish", x) if _fast(x) else super().swish_forward(x)

    def swish_backward(self, dy, x, y):
        return _C.activation_backward("swish", dy, x) if _fast_same(dy, x) else super().swish_backward(dy, x, y)

    def silu_forward(self, x):
        return _C.activation_forward("silu", x) if _fast(x) else super().silu_forward(x)

    def silu_backward(self, dy, x, y):
        return _C.activation_backward("silu", dy, x) if _fast_same(dy, x) else super().silu_backward(dy, x, y)

    def gelu_forward(self, x, approximate=False):
        if not _fast(x):
            return super().gelu_forward(x, approximate)
        return _C.activation_forward("gelu", x, approximate=bool(approximate))

    def gelu_backward(self, dy, x, y, approximate=False):
        if not _fast_same(dy, x):
            return super().gelu_backward(dy, x, y, approximate)
        return _C.activation_backward("gelu", dy, x, approximate=bool(approximate))

    def exponential_forward(self, x):
        return _C.activation_forward("exponential", x) if _fast(x) else super().exponential_forward(x)

    def exponential_backward(self, dy, x, y):
        if not _fast_same(dy, y):
            return super().exponential_backward(dy, x, y)
        return _C.activation_backward("exponential", dy, y=y)

    def softmax_forward(self, x, axis=-1):
        if not (_fast(x) and _last_axis(x, axis)):
            return super().softmax_forward(x, axis)
        return _C.softmax_forward(x)

    def softmax_backward(self, dy, y, axis=-1):
        if not (_fast_same(dy, y) and _last_axis(y, axis)):
            return super().softmax_backward(dy, y, axis)
        return _C.softmax_backward(dy, y)

    def log_softmax_forward(self, x, axis=-1):
        if not (_fast(x) and _last_axis(x, axis)):
            return super().log_softmax_forward(x, axis)
        return _C.log_softmax_forward(x)

    def log_softmax_backward(self, dy, y, axis=-1):
        if not (_fast_same(dy, y) and _last_axis(y, axis)):
            return super().log_softmax_backward(dy, y, axis)
        return _C.log_softmax_backward(dy, y)


    # ------------------------------------------------------------------ image geometry

    def resize_forward(self, x, size, interpolation="bilinear"):
        if not (_fast(x) and x.dtype == np.float32 and x.ndim == 4 and interpolation in ("bilinear", "nearest")):
            return super().resize_forward(x, size, interpolation)
        return _C.resize_forward(x, int(size[0]), int(size[1]), interpolation)

    def affine_transform_forward(self, x, transforms, interpolation="bilinear", fill_mode="reflect",
                                 fill_value=0.0):
        t = np.asarray(transforms, dtype=np.float32).reshape(-1, 8)
        if not (_fast(x) and x.dtype == np.float32 and x.ndim == 4 and math.isfinite(fill_value)
                and np.isfinite(t).all()):  # the kernel refuses non-finite parameters: the reference takes them
            return super().affine_transform_forward(x, transforms, interpolation, fill_mode, fill_value)
        return _C.affine_transform_forward(x, t, interpolation, fill_mode, float(fill_value))

    # ------------------------------------------------------------------ fused losses

    def _ce_labels(self, logits, labels, sparse):
        """Labels as the kernels take them (the reference's own casts), or None to fall back."""
        if not isinstance(labels, np.ndarray) or not _fast(logits) or logits.ndim != 2:
            return None
        if sparse:
            return labels if labels.dtype in (np.int32, np.int64) else labels.astype(np.int64)
        return labels.astype(logits.dtype, copy=False)

    def softmax_cross_entropy_forward(self, logits, labels, sparse=False, label_smoothing=0.0):
        lab = self._ce_labels(logits, labels, sparse)
        if lab is None:
            return super().softmax_cross_entropy_forward(logits, labels, sparse, label_smoothing)
        return _C.softmax_cross_entropy_forward(logits, lab, bool(sparse), float(label_smoothing))

    def softmax_cross_entropy_backward(self, dloss, probs, labels, sparse=False, label_smoothing=0.0):
        lab = self._ce_labels(probs, labels, sparse)
        if lab is None or not _fast(dloss, probs):
            return super().softmax_cross_entropy_backward(dloss, probs, labels, sparse, label_smoothing)
        return _C.softmax_cross_entropy_backward(dloss, probs, lab, bool(sparse), float(label_smoothing))

    # ------------------------------------------------------------------ optimizer updates
    # The kernels update param and slots in place and so need them C-contiguous; strided
    # views take the reference path. A read-only param or aliased slots reach the kernel's
    # binding, which raises a ValueError naming them.

    def sgd_update(self, param, grad, velocity, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        if not (_fast_same(param, grad, velocity) and _inplace(param, velocity)):
            return super().sgd_update(param, grad, velocity, lr, momentum, nesterov, weight_decay)
        _C.sgd_update(param, grad, velocity, lr, momentum, bool(nesterov), weight_decay or 0.0)

    def adam_update(self, param, grad, m, v, vhat, lr, step, beta_1=0.9, beta_2=0.999,
                    epsilon=1e-7, amsgrad=False, weight_decay=0.0):
        if not (_fast_same(param, grad, m, v, vhat) and _inplace(param, m, v, vhat)):
            return super().adam_update(param, grad, m, v, vhat, lr, step, beta_1, beta_2, epsilon,
                                       amsgrad, weight_decay)
        _C.adam_update(param, grad, m, v, vhat, lr, int(step), beta_1, beta_2, epsilon, bool(amsgrad),
                       weight_decay or 0.0)

    def _multi_fast(self, params, grads, *slot_lists):
        """True when one multi-tensor kernel takes every tensor: ndarrays of params[0]'s float dtype,
        each slot and grad of its param's shape, the in-place ones C-contiguous. Plain loops: this
        runs every training step."""
        if not params or len(grads) != len(params) or type(params[0]) is not np.ndarray:
            return False
        dtype = params[0].dtype
        if dtype.char not in "fd" or not dtype.isnative:
            return False
        slots = [s for s in slot_lists if s is not None]
        for j, p in enumerate(params):
            g = grads[j]
            if type(p) is not np.ndarray or type(g) is not np.ndarray or p.dtype != dtype or g.dtype != dtype \
                    or g.shape != p.shape or not p.flags.c_contiguous:
                return False
            for group in slots:
                a = group[j]
                if type(a) is not np.ndarray or a.dtype != dtype or a.shape != p.shape or not a.flags.c_contiguous:
                    return False
        return True

    def sgd_update_multi(self, params, grads, velocities, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        if not self._multi_fast(params, grads, velocities):
            return super().sgd_update_multi(params, grads, velocities, lr, momentum, nesterov, weight_decay)
        _C.sgd_update_multi(params, grads, velocities, lr, momentum, bool(nesterov), weight_decay or 0.0)

    def adam_update_multi(self, params, grads, ms, vs, vhats, lr, step, beta_1=0.9, beta_2=0.999,
                          epsilon=1e-7, amsgrad=False, weight_decay=0.0):
        if not self._multi_fast(params, grads, ms, vs, vhats):
            return super().adam_update_multi(params, grads, ms, vs, vhats, lr, step, beta_1, beta_2, epsilon,
                                             amsgrad, weight_decay)
        _C.adam_update_multi(params, grads, ms, vs, vhats, lr, int(step), beta_1, beta_2, epsilon, bool(amsgrad),
                             weight_decay or 0.0)

    def rmsprop_update(self, param, grad, velocity, momentum_buf, average_grad, lr, rho=0.9,
                       momentum=0.0, epsilon=1e-7, centered=False, weight_decay=0.0):
        if not (_fast_same(param, grad, velocity, momentum_buf, average_grad)
                and _inplace(param, velocity, momentum_buf, average_grad)):
            return super().rmsprop_update(param, grad, velocity, momentum_buf, average_grad, lr, rho,
                                          momentum, epsilon, centered, weight_decay)
        _C.rmsprop_update(param, grad, velocity, momentum_buf, average_grad, lr, rho, momentum, epsilon,
                          bool(centered), weight_decay or 0.0)

    def adagrad_update(self, param, grad, accumulator, lr, epsilon=1e-7, weight_decay=0.0):
        if not (_fast_same(param, grad, accumulator) and _inplace(param, accumulator)):
            return super().adagrad_update(param, grad, accumulator, lr, epsilon, weight_decay)
        _C.adagrad_update(param, grad, accumulator, lr, epsilon, weight_decay or 0.0)

    # ------------------------------------------------------------------ embedding and recurrent layers
    # _C runs float32 sequences with a bool (or no) mask; float64 (gradient checks) and anything
    # else take the reference. Both check ids and activation names with the same errors.

    def embedding_forward(self, ids, table):
        if _f32(table) and type(ids) is np.ndarray and ids.dtype.char in "il" and ids.dtype.isnative:
            return _C.embedding_forward(ids, table)
        return super().embedding_forward(ids, table)

    def embedding_backward(self, dy, ids, input_dim):
        if _f32(dy) and type(ids) is np.ndarray and ids.dtype.char in "il" and ids.dtype.isnative:
            return _C.embedding_backward(dy, ids, int(input_dim))
        return super().embedding_backward(dy, ids, input_dim)

    def simple_rnn_forward(self, x, kernel, recurrent_kernel, bias=None, h0=None, mask=None, activation="tanh"):
        if _rnn_fast((x, kernel, recurrent_kernel, bias, h0), mask, activation):
            return _C.simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0, mask, activation)
        return super().simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0, mask, activation)

    def simple_rnn_inference(self, x, kernel, recurrent_kernel, bias=None, h0=None, mask=None, activation="tanh"):
        if _rnn_fast((x, kernel, recurrent_kernel, bias, h0), mask, activation):
            return _C.simple_rnn_inference(x, kernel, recurrent_kernel, bias, h0, mask, activation)
        return super().simple_rnn_inference(x, kernel, recurrent_kernel, bias, h0, mask, activation)

    def simple_rnn_backward(self, dy, dh, x, kernel, recurrent_kernel, mask, gates, hprev, has_bias=True,
                            activation="tanh", need_dx=True):
        if _rnn_fast((dy, dh, x, kernel, recurrent_kernel, gates, hprev), mask, activation):
            return _C.simple_rnn_backward(dy, dh, x, kernel, recurrent_kernel, mask, gates, hprev, has_bias,
                                          activation, need_dx)
        return super().simple_rnn_backward(dy, dh, x, kernel, recurrent_kernel, mask, gates, hprev, has_bias,
                                           activation, need_dx)

    def lstm_forward(self, x, kernel, recurrent_kernel, bias=None, h0=None, c0=None, mask=None,
                     activation="tanh", recurrent_activation="sigmoid"):
        if _rnn_fast((x, kernel, recurrent_kernel, bias, h0, c0), mask, activation, recurrent_activation):
            return _C.lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask, activation, recurrent_activation)
        return super().lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask, activation, recurrent_activation)

    def lstm_inference(self, x, kernel, recurrent_kernel, bias=None, h0=None, c0=None, mask=None,
                       activation="tanh", recurrent_activation="sigmoid"):
        if _rnn_fast((x, kernel, recurrent_kernel, bias, h0, c0), mask, activation, recurrent_activation):
            return _C.lstm_inference(x, kernel, recurrent_kernel, bias, h0, c0, mask, activation, recurrent_activation)
        return super().lstm_inference(x, kernel, recurrent_kernel, bias, h0, c0, mask, activation,
                                      recurrent_activation)

    def lstm_backward(self, dy, dh, dc, x, kernel, recurrent_kernel, mask, gates, hprev, cprev, has_bias=True,
                      activation="tanh", recurrent_activation="sigmoid", need_dx=True):
        if _rnn_fast((dy, dh, dc, x, kernel, recurrent_kernel, gates, hprev, cprev), mask, activation,
                     recurrent_activation):
            return _C.lstm_backward(dy, dh, dc, x, kernel, recurrent_kernel, mask, gates, hprev, cprev, has_bias,
                                    activation, recurrent_activation, need_dx)
        return super().lstm_backward(dy, dh, dc, x, kernel, recurrent_kernel, mask, gates, hprev, cprev, has_bias,
                                     activation, recurrent_activation, need_dx)

    def gru_forward(self, x, kernel, recurrent_kernel, bias=None, h0=None, mask=None, activation="tanh",
                    recurrent_activation="sigmoid", reset_after=True):
        if _rnn_fast((x, kernel, recurrent_kernel, bias, h0), mask, activation, recurrent_activation):
            return _C.gru_forward(x, kernel, recurrent_kernel, bias, h0, mask, activation, recurrent_activation,
                                  reset_after)
        return super().gru_forward(x, kernel, recurrent_kernel, bias, h0, mask, activation, recurrent_activation,
                                   reset_after)

    def gru_inference(self, x, kernel, recurrent_kernel, bias=None, h0=None, mask=None, activation="tanh",
                      recurrent_activation="sigmoid", reset_after=True):
        if _rnn_fast((x, kernel, recurrent_kernel, bias, h0), mask, activation, recurrent_activation):
            return _C.gru_inference(x, kernel, recurrent_kernel, bias, h0, mask, activation, recurrent_activation,
                                    reset_after)
        return super().gru_inference(x, kernel, recurrent_kernel, bias, h0, mask, activation, recurrent_activation,
                                     reset_after)

    def gru_backward(self, dy, dh, x, kernel, recurrent_kernel, mask, gates, hprev, extra, has_bias=True,
                     activation="tanh", recurrent_activation="sigmoid", reset_after=True, need_dx=True):
        if _rnn_fast((dy, dh, x, kernel, recurrent_kernel, gates, hprev, extra), mask, activation,
                     recurrent_activation):
            return _C.gru_backward(dy, dh, x, kernel, recurrent_kernel, mask, gates, hprev, extra, has_bias,
                                   activation, recurrent_activation, reset_after, need_dx)
        return super().gru_backward(dy, dh, x, kernel, recurrent_kernel, mask, gates, hprev, extra, has_bias,
                                    activation, recurrent_activation, reset_after, need_dx)

    # ------------------------------------------------------------------ pooling and normalization (issue 9)
    # float32 NumPy arrays only (the kernels have no float64 path); the pools want 4-D NHWC and
    # layer norm the trailing axes, anything else takes the reference.

    def maxpool_forward(self, x, pool_size, strides, padding="valid"):
        if not (_f32(x) and x.ndim == 4):
            return super().maxpool_forward(x, pool_size, strides, padding)
        return _C.maxpool_forward(x, tuple(pool_size), tuple(strides), padding)

    def maxpool_backward(self, dy, argmax, input_shape, pool_size, strides, padding="valid"):
        if not (_f32(dy) and type(argmax) is np.ndarray and argmax.dtype == np.int32):
            return super().maxpool_backward(dy, argmax, input_shape, pool_size, strides, padding)
        return _C.maxpool_backward(dy, argmax, tuple(input_shape), tuple(pool_size), tuple(strides), padding)

    def avgpool_forward(self, x, pool_size, strides, padding="valid"):
        if not (_f32(x) and x.ndim == 4):
            return super().avgpool_forward(x, pool_size, strides, padding)
        return _C.avgpool_forward(x, tuple(pool_size), tuple(strides), padding)

    def avgpool_backward(self, dy, input_shape, pool_size, strides, padding="valid"):
        if not _f32(dy):
            return super().avgpool_backward(dy, input_shape, pool_size, strides, padding)
        return _C.avgpool_backward(dy, tuple(input_shape), tuple(pool_size), tuple(strides), padding)

    def batch_norm_forward(self, x, gamma, beta, axis=-1, epsilon=1e-3, mean=None, variance=None):
        if not _f32(x, gamma, beta, mean, variance):
            return super().batch_norm_forward(x, gamma, beta, axis, epsilon, mean, variance)
        return _C.batch_norm_forward(x, gamma, beta, int(axis), float(epsilon), mean, variance)

    def batch_norm_backward(self, dy, x, gamma, mean, variance, axis=-1, epsilon=1e-3, training=True):
        if not _f32(dy, x, gamma, mean, variance):
            return super().batch_norm_backward(dy, x, gamma, mean, variance, axis, epsilon, training)
        return _C.batch_norm_backward(dy, x, gamma, mean, variance, int(axis), float(epsilon), bool(training))

    def layer_norm_forward(self, x, gamma, beta, axis=-1, epsilon=1e-3):
        axes = _trailing_axes(x, axis)
        if axes is None or not _f32(x, gamma, beta):
            return super().layer_norm_forward(x, gamma, beta, axis, epsilon)
        return _C.layer_norm_forward(x, gamma, beta, axes, float(epsilon))

    def layer_norm_backward(self, dy, x, gamma, mean, variance, axis=-1, epsilon=1e-3):
        axes = _trailing_axes(x, axis)
        if axes is None or not _f32(dy, x, gamma, mean, variance):
            return super().layer_norm_backward(dy, x, gamma, mean, variance, axis, epsilon)
        return _C.layer_norm_backward(dy, x, gamma, mean, variance, axes, float(epsilon))


def blas_sharing_wanted():
    """False where the user keeps NumPy's OpenBLAS on its own threads (PYMINIDL_SHARE_BLAS_THREADS=0)."""
    return os.environ.get("PYMINIDL_SHARE_BLAS_THREADS", "1") != "0"


def _f32(*arrays):
    """``_fast`` for float32 only (None skipped): the recurrent, embedding, pooling and normalization kernels' one dtype."""
    return _fast(*arrays) and next(a for a in arrays if a is not None).dtype == np.float32


def _rnn_fast(arrays, mask, *activations):
    """float32 arrays, a bool ndarray mask or None, and activations the kernels have."""
    if mask is not None and not (type(mask) is np.ndarray and mask.dtype == np.bool_):
        return False
    return _f32(*arrays) and all(a in RNN_ACTIVATIONS for a in activations)


def _trailing_axes(x, axis):
    """``axis`` (an int or a sequence) as a list when it names the trailing axes of ``x`` once each, else None."""
    axes = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
    if type(x) is not np.ndarray or not axes or any(not -x.ndim <= int(a) < x.ndim for a in axes):
        return None
    axes = sorted(int(a) % x.ndim for a in axes)
    return axes if axes == list(range(x.ndim - len(axes), x.ndim)) else None
