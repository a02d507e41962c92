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

import numpy as np

from pyminidl.backend import _image_ops

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715

ACTIVATIONS = (
    "linear", "step", "sigmoid", "hard_sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu",
    "softplus", "softsign", "swish", "silu", "gelu", "exponential",
)


# erf(x) = x * sum_n c_n x^(2n), c_n = 2/sqrt(pi) (-1)^n / (n! (2n + 1)); 45 terms reach 1e-17 at |x| = 2.5
_ERF_SERIES = tuple(2.0 / math.sqrt(math.pi) * (-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(45))
_ERF_CF_TERMS = 80  # depth of the erfc continued fraction: converged to double precision for z >= 2.5


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

    def dense_forward(self, x, w, b=None):
        """y = x @ w + b. x: (N, I), w: (I, U), b: (U,) or None -> (N, U)."""
        y = self.gemm(x, w)
        return y if b is None else self.bias_add(y, b)

    def dense_backward(self, dy, x, w, has_bias=True, need_dx=True):
        """dx = dy @ w.T, dw = x.T @ dy, db = sum(dy, 0). Returns (dx or None, dw, db or None)."""
        dw = self.gemm(x, dy, trans_a=True)
        db = self.bias_grad(dy) if has_bias else None
        dx = self.gemm(dy, w, trans_b=True) if need_dx else None
        return dx, dw, db

    # ------------------------------------------------------------------ activations
    # Every activation is a pair: <name>_forward(x, **params) -> y and
    # <name>_backward(dy, x, y, **params) -> dx (each uses whichever of x, y is cheaper).

    def activation_forward(self, name, x, **params):
        """Dispatch to ``<name>_forward``; ``name`` is one of ACTIVATIONS."""
        return getattr(self, f"{name}_forward")(x, **params)

    def activation_backward(self, name, dy, x, y, **params):
        """Dispatch to ``<name>_backward``."""
        return getattr(self, f"{name}_backward")(dy, x, y, **params)

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
        from the integer ``seed``. x: any shape. Returns (y, mask)."""
        xp = self.xp
        dtype = x.dtype if x.dtype.kind == "f" else xp.dtype(xp.float32)  # integers: a float mask
        u = xp.random.default_rng(seed).random(x.shape if noise_shape is None else tuple(noise_shape))
        scale = 0.0 if rate >= 1.0 else 1.0 / (1.0 - rate)
        mask = (u >= rate).astype(dtype) * dtype.type(scale)
        return x * mask, mask

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
    # Keras 3 (param -= lr * weight_decay * param, before the update).

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
