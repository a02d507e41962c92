// activations_impl.h — the bodies of the activation and softmax kernels, compiled once per
// instruction set: activations.cpp (baseline x86-64, and every non-x86 target),
// activations_avx2.cpp and activations_avx512.cpp include this file and nothing else
// defines these functions.
//
// Everything here has internal linkage (an anonymous namespace): each translation unit
// keeps its own copy, compiled with its own -m flags, so the linker can never hand an
// AVX-512 copy to the baseline path (the ODR trap of inline functions built per ISA).
//
// The formulas are those of pyminidl/backend/base.py (the spec), evaluated in the array's
// own type like the reference, with the same branch structure so that NaN and +-Inf give
// the reference's result: sigmoid via exp(-|x|) and softplus via max(x, 0) + log1p(exp(-|x|))
// never overflow. Row sums of softmax accumulate in double, in a fixed order: it costs
// little, keeps float32 within the reference's error for long rows, and gives the same bits
// for every SIMD width and thread count (each row / element is owned by one thread).
// exp, expm1, tanh, softplus's log1p and GELU's Phi come from fastmath.h (vectorisable
// float32 polynomials, <= 2.1 ulp; float64 keeps the std:: functions). All files are built with -fno-math-errno
// -fno-trapping-math -ffp-contract=off: loops vectorise (selects are if-converted) and no
// FMA contraction, so every ISA path returns identical bits. Never -ffast-math.
// References: Keras 3 keras/src/activations/activations.py; Hendrycks & Gimpel, GELU (2016).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "activations.h"
#include "fastmath.h"
#include "parallel.h"

namespace pyminidl::kernels {
namespace {

constexpr double SELU_ALPHA = 1.6732632423543772848170429916717;
constexpr double SELU_SCALE = 1.0507009873554804934193349852946;
constexpr double SQRT_2_OVER_PI = 0.79788456080286535587989211986876;
constexpr double SQRT_2PI = 2.5066282746310005024157652848110;
constexpr double GELU_C = 0.044715;

// The loops every elementwise kernel uses: y[i] = f(x[i]), dx[i] = f(dy[i], a[i]) and
// dx[i] = f(dy[i], x[i], y[i]). Serial on restrict pointers (f captures only scalars) so
// GCC vectorises f, if-converting its selects; parallel_blocks splits them over threads.
// An output may be its first input (y == x, dx == dy: the in-place calls); that case runs
// its own loop on one pointer, since restrict promises the two never alias.
template <typename T, typename F>
void map1_block(T* PMD_RESTRICT y, const T* PMD_RESTRICT x, int64_t n, F f) {
    for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

template <typename T, typename F>
void map1_inplace_block(T* PMD_RESTRICT y, int64_t n, F f) {
    for (int64_t i = 0; i < n; ++i) y[i] = f(y[i]);
}

template <typename T, typename F>
void map2_block(T* PMD_RESTRICT dx, const T* PMD_RESTRICT dy, const T* PMD_RESTRICT a, int64_t n, F f) {
    for (int64_t i = 0; i < n; ++i) dx[i] = f(dy[i], a[i]);
}

template <typename T, typename F>
void map2_inplace_block(T* PMD_RESTRICT dx, const T* PMD_RESTRICT a, int64_t n, F f) {
    for (int64_t i = 0; i < n; ++i) dx[i] = f(dx[i], a[i]);
}

template <typename T, typename F>
void map3_block(T* PMD_RESTRICT dx, const T* PMD_RESTRICT dy, const T* PMD_RESTRICT x,
                const T* PMD_RESTRICT y, int64_t n, F f) {
    for (int64_t i = 0; i < n; ++i) dx[i] = f(dy[i], x[i], y[i]);
}

template <typename T, typename F>
void map3_inplace_block(T* PMD_RESTRICT dx, const T* PMD_RESTRICT x, const T* PMD_RESTRICT y, int64_t n, F f) {
    for (int64_t i = 0; i < n; ++i) dx[i] = f(dx[i], x[i], y[i]);
}

template <typename T, typename F>
void map1(T* y, const T* x, int64_t n, F f) {
    parallel_blocks(n, 1, [&](int64_t lo, int64_t hi) {
        if (y == x) {
            map1_inplace_block(y + lo, hi - lo, f);
        } else {
            map1_block(y + lo, x + lo, hi - lo, f);
        }
    });
}

template <typename T, typename F>
void map2(T* dx, const T* dy, const T* a, int64_t n, F f) {
    parallel_blocks(n, 1, [&](int64_t lo, int64_t hi) {
        if (dx == dy) {
            map2_inplace_block(dx + lo, a + lo, hi - lo, f);
        } else {
            map2_block(dx + lo, dy + lo, a + lo, hi - lo, f);
        }
    });
}

template <typename T, typename F>
void map3(T* dx, const T* dy, const T* x, const T* y, int64_t n, F f) {
    parallel_blocks(n, 1, [&](int64_t lo, int64_t hi) {
        if (dx == dy) {
            map3_inplace_block(dx + lo, x + lo, y + lo, hi - lo, f);
        } else {
            map3_block(dx + lo, dy + lo, x + lo, y + lo, hi - lo, f);
        }
    });
}

template <typename T>
PMD_ALWAYS_INLINE T sigmoid(T x) {
    // exp(-|x|) <= 1 never overflows; pick the algebraically equal form for each sign.
    const T e = exp_v(-std::abs(x));
    return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}

template <typename T>
PMD_ALWAYS_INLINE T elu(T x, T alpha) {
    // std::min(x, 0) returns x when x is NaN, so NaN propagates like numpy.minimum.
    return x > T(0) ? x : alpha * expm1_v(std::min(x, T(0)));
}

template <typename T>
PMD_ALWAYS_INLINE T relu(T x, T slope, T max_value, bool has_max, T threshold) {
    // Keras 3 ReLU.static_call: x above the threshold (clipped to [0, max_value] when
    // max_value is set), negative_slope * (x - threshold) at or below it.
    T v = x > threshold ? x : T(0);
    if (has_max) v = std::min(std::max(v, T(0)), max_value);
    if (slope != T(0)) v += slope * std::min(x - threshold, T(0));
    return x != x ? x : v;  // the selects above would turn NaN into 0
}

template <typename T>
PMD_ALWAYS_INLINE T gelu_tanh_inner(T x) {
    return tanh_v(T(SQRT_2_OVER_PI) * (x + T(GELU_C) * x * x * x));
}

// y + (hi + lo), hi + lo a constant split so that hi = T(constant): y + hi is exact where
// y ~ -hi (Sterbenz), so the tail keeps lo instead of rounding y + constant to 0.
template <typename T>
PMD_ALWAYS_INLINE T plus_split(T y, T hi, T lo) {
    return (y + hi) + lo;
}

// dy * g, where in `tail` the derivative g is nonzero with the sign `sign` but may have
// underflowed to 0 (its true value below the type's range): an infinite dy then keeps its
// infinity, which the float64 reference returns, instead of 0 * inf = NaN.
template <typename T>
PMD_ALWAYS_INLINE T times_tail(T dy, T g, bool tail, T sign) {
    const bool lost = tail && g == T(0) && std::abs(dy) == std::numeric_limits<T>::infinity();
    return lost ? dy * sign : dy * g;
}

// d/dx of the tanh-form GELU, written with s = sigmoid(2z) = (1 + t) / 2, z = c (x + k x^3),
// t = tanh(z): g = s + 4 s (1 - s) x c (1 + 3 k x^2) / 2. s and s (1 - s) = e / (1 + e)^2,
// e = exp(-2|z|), keep full relative precision in both tails, where 1 + t and 1 - t^2 cancel
// to 0 (float32 from x = -5.3 on, which made dy = inf give NaN instead of -inf).
template <typename T>
PMD_ALWAYS_INLINE T gelu_tanh_derivative(T x) {
    const T z = T(SQRT_2_OVER_PI) * (x + T(GELU_C) * x * x * x);
    const T e = exp_v(T(-2) * std::abs(z));
    const T s = z >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
    const T s1ms = e / ((T(1) + e) * (T(1) + e));
    // e == 0: |z| is so large that the second term is 0 (and x * x may be inf: 0 * inf);
    // 0 * x keeps x = +-inf NaN, as the reference's (1 - t^2) * inf gives.
    const T term = e == T(0) ? T(0) * x : s1ms * (T(2 * SQRT_2_OVER_PI) * x * (T(1) + T(3 * GELU_C) * x * x));
    return s + term;  // NaN x gives NaN through e
}

// y, x: (n,) contiguous. Overwrites y.
template <typename T>
void activation_forward_impl(T* y, const T* x, int64_t n, Activation kind, const ActivationParams& p) {
    const T slope = T(p.negative_slope), alpha = T(p.alpha);
    const T max_value = T(p.max_value), threshold = T(p.threshold);
    const bool has_max = p.has_max_value;
    switch (kind) {
        case Activation::linear: return map1(y, x, n, [](T v) { return v; });
        case Activation::step: return map1(y, x, n, [](T v) { return v > T(0) ? T(1) : T(0); });
        case Activation::sigmoid: return map1(y, x, n, [](T v) { return sigmoid(v); });
        case Activation::hard_sigmoid:  // max/min with the value first keep NaN, like numpy.clip
            return map1(y, x, n, [](T v) { return std::min(std::max(v / T(6) + T(0.5), T(0)), T(1)); });
        case Activation::tanh: return map1(y, x, n, [](T v) { return tanh_v(v); });
        case Activation::relu:
            return map1(y, x, n, [=](T v) { return relu(v, slope, max_value, has_max, threshold); });
        case Activation::leaky_relu:  // v * (1 or slope): a select of factors vectorises, a branch would not
            return map1(y, x, n, [=](T v) { return v * (v >= T(0) ? T(1) : slope); });
        case Activation::elu: return map1(y, x, n, [=](T v) { return elu(v, alpha); });
        case Activation::selu: return map1(y, x, n, [](T v) { return T(SELU_SCALE) * elu(v, T(SELU_ALPHA)); });
        case Activation::softplus:  // log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow
            return map1(y, x, n, [](T v) { return std::max(v, T(0)) + log1p_unit_v(exp_v(-std::abs(v))); });
        case Activation::softsign: return map1(y, x, n, [](T v) { return v / (T(1) + std::abs(v)); });
        case Activation::swish: return map1(y, x, n, [](T v) { return v * sigmoid(v); });
        case Activation::gelu:
            return map1(y, x, n, [](T v) { return v * normal_cdf_v(v); });  // x Phi(x)
        case Activation::gelu_tanh:
            return map1(y, x, n, [](T v) { return T(0.5) * v * (T(1) + gelu_tanh_inner(v)); });
        case Activation::exponential: return map1(y, x, n, [](T v) { return exp_v(v); });
    }
}

// dx, dy: (n,); x, y: (n,) or nullptr when the kind does not read them. Overwrites dx.
template <typename T>
void activation_backward_impl(T* dx, const T* dy, const T* x, const T* y, int64_t n, Activation kind,
                         const ActivationParams& p) {
    const T slope = T(p.negative_slope), alpha = T(p.alpha);
    const T max_value = T(p.max_value), threshold = T(p.threshold);
    const bool has_max = p.has_max_value;
    // y + alpha cancels to 0 in elu's left tail (y -> -alpha); alpha split in two parts keeps
    // the digits of the double constant that T drops, as the float64 reference has them.
    const double alpha_rest = p.alpha - double(alpha);  // inf - inf for an infinite alpha
    const T alpha_lo = std::isfinite(alpha_rest) ? T(alpha_rest) : T(0);
    const T selu_sa = T(SELU_SCALE * SELU_ALPHA), selu_sa_lo = T(SELU_SCALE * SELU_ALPHA - double(selu_sa));
    switch (kind) {
        case Activation::linear: return map1(dx, dy, n, [](T g) { return g; });  // dL/dx = dy
        case Activation::step: return map1(dx, dy, n, [](T) { return T(0); });  // flat a.e.
        case Activation::sigmoid:  // dL/dx = dy * y * (1 - y)
            return map2(dx, dy, y, n, [](T g, T v) { return g * v * (T(1) - v); });
        case Activation::hard_sigmoid:  // dL/dx = dy / 6 inside (-3, 3), else 0
            return map2(dx, dy, x, n, [](T g, T v) { return (v > T(-3) && v < T(3)) ? g / T(6) : T(0); });
        case Activation::tanh:  // dL/dx = dy * (1 - y**2), as (1 - y)(1 + y): 1 - y*y cancels near |y| = 1
            return map2(dx, dy, y, n, [](T g, T v) { return g * ((T(1) - v) * (T(1) + v)); });
        case Activation::relu:  // dL/dx = dy above the threshold inside [0, max_value), slope * dy below
            return map2(dx, dy, x, n, [=](T g, T v) {
                const bool above = v > threshold;
                const bool clipped = has_max && above && (v >= max_value || v < T(0));
                return g * (clipped ? T(0) : above ? T(1) : slope);
            });
        case Activation::leaky_relu:  // dL/dx = dy if x > 0 else slope * dy
            return map2(dx, dy, x, n, [=](T g, T v) { return g * (v > T(0) ? T(1) : slope); });
        case Activation::elu:  // dL/dx = dy if x > 0 else dy * (y + alpha)
            return map3(dx, dy, x, y, n, [=](T g, T v, T w) { return v > T(0) ? g : g * plus_split(w, alpha, alpha_lo); });
        case Activation::selu:  // dL/dx = dy * scale if x > 0 else dy * (y + scale * alpha)
            return map3(dx, dy, x, y, n, [=](T g, T v, T w) {
                return g * (v > T(0) ? T(SELU_SCALE) : plus_split(w, selu_sa, selu_sa_lo));
            });
        case Activation::softplus:  // dL/dx = dy * sigmoid(x); sigmoid > 0 underflows below x = -104
            return map2(dx, dy, x, n, [](T g, T v) { return times_tail(g, sigmoid(v), v < T(0), T(1)); });
        case Activation::softsign:  // dL/dx = dy / (1 + |x|)**2, as two divisions: the square overflows from |x| = 2e19
            return map2(dx, dy, x, n, [](T g, T v) { return g / (T(1) + std::abs(v)) / (T(1) + std::abs(v)); });
        case Activation::swish:  // dL/dx = dy * (s + x s (1 - s)), s = sigmoid(x); < 0 left of x = -1.28
            return map2(dx, dy, x, n, [](T g, T v) {
                const T s = sigmoid(v);
                return times_tail(g, s + v * s * (T(1) - s), v < T(-2), T(-1));
            });
        case Activation::gelu:  // dL/dx = dy * (Phi(x) + x phi(x)); < 0 left of x = -0.75
            return map2(dx, dy, x, n, [](T g, T v) {
                return times_tail(g, normal_cdf_v(v) + v * (exp_v(T(-0.5) * v * v) / T(SQRT_2PI)), v < T(-1), T(-1));
            });
        case Activation::gelu_tanh:  // dL/dx = dy * d/dx [x (1 + tanh(c (x + k x^3))) / 2]; < 0 left of x = -0.75
            return map2(dx, dy, x, n, [](T g, T v) { return times_tail(g, gelu_tanh_derivative(v), v < T(-1), T(-1)); });
        case Activation::exponential:  // dL/dx = dy * y
            return map2(dx, dy, y, n, [](T g, T w) { return g * w; });
    }
}

// One row of each softmax kernel: serial, restrict pointers, exp loops that vectorise and
// sums in double in a fixed order (row_sum, row_dot), so the bits do not depend on the SIMD width.

// y, x: (cols,), cols >= 1.
template <typename T>
void softmax_row(T* PMD_RESTRICT y, const T* PMD_RESTRICT x, int64_t cols) {
    const T mx = row_max(x, cols);  // subtracting the row max keeps every exp <= 1
    for (int64_t j = 0; j < cols; ++j) y[j] = exp_v(x[j] - mx);
    const double inv = 1.0 / row_sum(y, cols);
    for (int64_t j = 0; j < cols; ++j) y[j] = T(y[j] * inv);
}

// dx, dy, y: (cols,).
template <typename T>
void softmax_backward_row(T* PMD_RESTRICT dx, const T* PMD_RESTRICT dy, const T* PMD_RESTRICT y, int64_t cols) {
    // dL/dx = y * (dy - sum(dy * y)) along the row
    const double dot = row_dot(dy, y, cols);
    for (int64_t j = 0; j < cols; ++j) dx[j] = T(y[j] * (dy[j] - dot));
}

// y, x: (cols,), cols >= 1. y doubles as the scratch of the exps.
template <typename T>
void log_softmax_row(T* PMD_RESTRICT y, const T* PMD_RESTRICT x, int64_t cols) {
    const T mx = row_max(x, cols);
    for (int64_t j = 0; j < cols; ++j) y[j] = exp_v(x[j] - mx);
    const double lse = std::log(row_sum(y, cols));
    for (int64_t j = 0; j < cols; ++j) y[j] = T((x[j] - mx) - lse);
}

// dx, dy, y: (cols,).
template <typename T>
void log_softmax_backward_row(T* PMD_RESTRICT dx, const T* PMD_RESTRICT dy, const T* PMD_RESTRICT y,
                              int64_t cols) {
    // dL/dx = dy - exp(y) * sum(dy) along the row
    const double s = row_sum(dy, cols);
    for (int64_t j = 0; j < cols; ++j) dx[j] = T(dy[j] - exp_v(y[j]) * s);
}

// y, x: (rows, cols) contiguous, cols >= 1. Overwrites y.
template <typename T>
void softmax_forward_impl(T* y, const T* x, int64_t rows, int64_t cols) {
    parallel_blocks(rows, cols, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) softmax_row(y + r * cols, x + r * cols, cols);
    });
}

// dx, dy, y: (rows, cols) contiguous. Overwrites dx.
template <typename T>
void softmax_backward_impl(T* dx, const T* dy, const T* y, int64_t rows, int64_t cols) {
    parallel_blocks(rows, cols, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) softmax_backward_row(dx + r * cols, dy + r * cols, y + r * cols, cols);
    });
}

// y, x: (rows, cols) contiguous, cols >= 1. Overwrites y.
template <typename T>
void log_softmax_forward_impl(T* y, const T* x, int64_t rows, int64_t cols) {
    parallel_blocks(rows, cols, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) log_softmax_row(y + r * cols, x + r * cols, cols);
    });
}

// dx, dy, y: (rows, cols) contiguous. Overwrites dx.
template <typename T>
void log_softmax_backward_impl(T* dx, const T* dy, const T* y, int64_t rows, int64_t cols) {
    parallel_blocks(rows, cols, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            log_softmax_backward_row(dx + r * cols, dy + r * cols, y + r * cols, cols);
        }
    });
}

}  // namespace
}  // namespace pyminidl::kernels
