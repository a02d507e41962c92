// activations.cpp — elementwise activation forward/backward pairs and row-wise softmax.
//
// Contents:
//   activation_forward / activation_backward   every kind of base.ACTIVATIONS, float/double
//   softmax_forward / _backward, log_softmax_forward / _backward   over the last axis
//
// Layout: every array is contiguous; elementwise kernels see a flat (n,) buffer and the
// softmax kernels a (rows, cols) matrix whose rows are the last axis.
//
// The formulas are those of pyminidl/backend/base.py (the spec), evaluated in the array's
// own type like the reference, with the same branch structure so that NaN and +-Inf give
// the reference's result: sigmoid via exp(-|x|) and softplus via max(x, 0) + log1p(exp(-|x|))
// never overflow. Row sums of softmax accumulate in double: it costs little and keeps
// float32 within the reference's error for long rows. Each row / element is computed by
// one thread in a fixed order, so results do not depend on the thread count.
//
// Built with -fno-math-errno (CMakeLists.txt) so std::sqrt/std::abs inline and the
// simple loops vectorise; never -ffast-math (it would break NaN/Inf propagation).
// References: Keras 3 keras/src/activations/activations.py; Hendrycks & Gimpel, GELU (2016).
#include "activations.h"

#include <algorithm>
#include <cmath>

namespace pyminidl::kernels {

namespace {

constexpr double SELU_ALPHA = 1.6732632423543772848170429916717;
constexpr double SELU_SCALE = 1.0507009873554804934193349852946;
constexpr double SQRT_2 = 1.4142135623730950488016887242097;
constexpr double SQRT_2_OVER_PI = 0.79788456080286535587989211986876;
constexpr double SQRT_2PI = 2.5066282746310005024157652848110;
constexpr double GELU_C = 0.044715;

// out[i] = f(i) for i in [0, n): the one parallel loop every elementwise kernel uses.
template <typename T, typename F>
void fill_each(T* PMD_RESTRICT out, int64_t n, F f) {
#pragma omp parallel for schedule(static) if (n > PARALLEL_GRAIN)
    for (int64_t i = 0; i < n; ++i) out[i] = f(i);
}

template <typename T>
PMD_ALWAYS_INLINE T sigmoid(T x) {
    // exp(-|x|) <= 1 never overflows; pick the algebraically equal form for each sign.
    const T e = std::exp(-std::abs(x));
    return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}

template <typename T>
PMD_ALWAYS_INLINE T elu(T x, T alpha) {
    // std::min(x, 0) returns x when x is NaN, so NaN propagates like numpy.minimum.
    return x > T(0) ? x : alpha * std::expm1(std::min(x, T(0)));
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
    return std::tanh(T(SQRT_2_OVER_PI) * (x + T(GELU_C) * x * x * x));
}

}  // namespace

bool activation_backward_needs_x(Activation kind) {
    switch (kind) {
        case Activation::linear: case Activation::step: case Activation::sigmoid:
        case Activation::tanh: case Activation::exponential:
            return false;
        default:
            return true;
    }
}

bool activation_backward_needs_y(Activation kind) {
    switch (kind) {
        case Activation::sigmoid: case Activation::tanh: case Activation::elu:
        case Activation::selu: case Activation::exponential:
            return true;
        default:
            return false;
    }
}

// y, x: (n,) contiguous. Overwrites y.
template <typename T>
void activation_forward(T* y, const T* x, int64_t n, Activation kind, const ActivationParams& p) {
    const T slope = T(p.negative_slope), alpha = T(p.alpha);
    const T max_value = T(p.max_value), threshold = T(p.threshold);
    const bool has_max = p.has_max_value;
    switch (kind) {
        case Activation::linear: return fill_each(y, n, [=](int64_t i) { return x[i]; });
        case Activation::step:
            return fill_each(y, n, [=](int64_t i) { return x[i] > T(0) ? T(1) : T(0); });
        case Activation::sigmoid: return fill_each(y, n, [=](int64_t i) { return sigmoid(x[i]); });
        case Activation::hard_sigmoid:
            // max/min with the value first keep NaN, like numpy.clip.
            return fill_each(y, n, [=](int64_t i) {
                return std::min(std::max(x[i] / T(6) + T(0.5), T(0)), T(1));
            });
        case Activation::tanh: return fill_each(y, n, [=](int64_t i) { return std::tanh(x[i]); });
        case Activation::relu:
            return fill_each(y, n, [=](int64_t i) {
                return relu(x[i], slope, max_value, has_max, threshold);
            });
        case Activation::leaky_relu:
            return fill_each(y, n, [=](int64_t i) { return x[i] >= T(0) ? x[i] : slope * x[i]; });
        case Activation::elu: return fill_each(y, n, [=](int64_t i) { return elu(x[i], alpha); });
        case Activation::selu:
            return fill_each(y, n, [=](int64_t i) { return T(SELU_SCALE) * elu(x[i], T(SELU_ALPHA)); });
        case Activation::softplus:
            // log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for large |x|.
            return fill_each(y, n, [=](int64_t i) {
                return std::max(x[i], T(0)) + std::log1p(std::exp(-std::abs(x[i])));
            });
        case Activation::softsign:
            return fill_each(y, n, [=](int64_t i) { return x[i] / (T(1) + std::abs(x[i])); });
        case Activation::swish: return fill_each(y, n, [=](int64_t i) { return x[i] * sigmoid(x[i]); });
        case Activation::gelu:
            return fill_each(y, n, [=](int64_t i) {
                return T(0.5) * x[i] * (T(1) + std::erf(x[i] / T(SQRT_2)));
            });
        case Activation::gelu_tanh:
            return fill_each(y, n, [=](int64_t i) { return T(0.5) * x[i] * (T(1) + gelu_tanh_inner(x[i])); });
        case Activation::exponential: return fill_each(y, n, [=](int64_t i) { return std::exp(x[i]); });
    }
}

// dx, dy: (n,); x, y: (n,) or nullptr when the kind does not read them. Overwrites dx.
template <typename T>
void activation_backward(T* dx, const T* dy, const T* x, const T* y, int64_t n, Activation kind,
                         const ActivationParams& p) {
    const T slope = T(p.negative_slope), alpha = T(p.alpha);
    const T max_value = T(p.max_value), threshold = T(p.threshold);
    const bool has_max = p.has_max_value;
    switch (kind) {
        case Activation::linear: return fill_each(dx, n, [=](int64_t i) { return dy[i]; });  // dL/dx = dy
        case Activation::step: return fill_each(dx, n, [=](int64_t) { return T(0); });  // flat a.e.
        case Activation::sigmoid:  // dL/dx = dy * y * (1 - y)
            return fill_each(dx, n, [=](int64_t i) { return dy[i] * y[i] * (T(1) - y[i]); });
        case Activation::hard_sigmoid:  // dL/dx = dy / 6 inside (-3, 3), else 0
            return fill_each(dx, n, [=](int64_t i) {
                return (x[i] > T(-3) && x[i] < T(3)) ? dy[i] / T(6) : T(0);
            });
        case Activation::tanh:  // dL/dx = dy * (1 - y**2)
            return fill_each(dx, n, [=](int64_t i) { return dy[i] * (T(1) - y[i] * y[i]); });
        case Activation::relu:  // dL/dx = dy above the threshold inside (0, max_value), slope * dy below
            return fill_each(dx, n, [=](int64_t i) {
                const bool above = x[i] > threshold;
                T g = above ? T(1) : slope;
                if (has_max && above && (x[i] >= max_value || x[i] < T(0))) g = T(0);
                return dy[i] * g;
            });
        case Activation::leaky_relu:  // dL/dx = dy if x > 0 else slope * dy
            return fill_each(dx, n, [=](int64_t i) { return x[i] > T(0) ? dy[i] : slope * dy[i]; });
        case Activation::elu:  // dL/dx = dy if x > 0 else dy * (y + alpha)
            return fill_each(dx, n, [=](int64_t i) { return x[i] > T(0) ? dy[i] : dy[i] * (y[i] + alpha); });
        case Activation::selu:  // dL/dx = dy * scale if x > 0 else dy * (y + scale * alpha)
            return fill_each(dx, n, [=](int64_t i) {
                return dy[i] * (x[i] > T(0) ? T(SELU_SCALE) : y[i] + T(SELU_SCALE * SELU_ALPHA));
            });
        case Activation::softplus:  // dL/dx = dy * sigmoid(x)
            return fill_each(dx, n, [=](int64_t i) { return dy[i] * sigmoid(x[i]); });
        case Activation::softsign:  // dL/dx = dy / (1 + |x|)**2
            return fill_each(dx, n, [=](int64_t i) {
                const T d = T(1) + std::abs(x[i]);
                return dy[i] / (d * d);
            });
        case Activation::swish:  // dL/dx = dy * (s + x s (1 - s)), s = sigmoid(x)
            return fill_each(dx, n, [=](int64_t i) {
                const T s = sigmoid(x[i]);
                return dy[i] * (s + x[i] * s * (T(1) - s));
            });
        case Activation::gelu:  // dL/dx = dy * (Phi(x) + x phi(x))
            return fill_each(dx, n, [=](int64_t i) {
                const T cdf = T(0.5) * (T(1) + std::erf(x[i] / T(SQRT_2)));
                const T pdf = std::exp(T(-0.5) * x[i] * x[i]) / T(SQRT_2PI);
                return dy[i] * (cdf + x[i] * pdf);
            });
        case Activation::gelu_tanh:  // t = tanh(c (x + k x^3)): dL/dx = dy (0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 k x^2))
            return fill_each(dx, n, [=](int64_t i) {
                const T t = gelu_tanh_inner(x[i]);
                const T dt = (T(1) - t * t) * T(SQRT_2_OVER_PI) * (T(1) + T(3 * GELU_C) * x[i] * x[i]);
                return dy[i] * (T(0.5) * (T(1) + t) + T(0.5) * x[i] * dt);
            });
        case Activation::exponential:  // dL/dx = dy * y
            return fill_each(dx, n, [=](int64_t i) { return dy[i] * y[i]; });
    }
}

// y, x: (rows, cols) contiguous, cols >= 1. Overwrites y.
template <typename T>
void softmax_forward(T* y, const T* x, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols > PARALLEL_GRAIN)
    for (int64_t r = 0; r < rows; ++r) {
        const T* xr = x + r * cols;
        T* yr = y + r * cols;
        // Subtracting the row max keeps every exp <= 1 (no overflow).
        const T mx = row_max(xr, cols);
        double s = 0.0;
        for (int64_t j = 0; j < cols; ++j) {
            yr[j] = std::exp(xr[j] - mx);
            s += yr[j];
        }
        const double inv = 1.0 / s;
        for (int64_t j = 0; j < cols; ++j) yr[j] = T(yr[j] * inv);
    }
}

// dx, dy, y: (rows, cols) contiguous. Overwrites dx.
template <typename T>
void softmax_backward(T* dx, const T* dy, const T* y, int64_t rows, int64_t cols) {
    // dL/dx = y * (dy - sum(dy * y)) along the row
#pragma omp parallel for schedule(static) if (rows * cols > PARALLEL_GRAIN)
    for (int64_t r = 0; r < rows; ++r) {
        const T *dyr = dy + r * cols, *yr = y + r * cols;
        T* dxr = dx + r * cols;
        double dot = 0.0;
        for (int64_t j = 0; j < cols; ++j) dot += double(dyr[j]) * double(yr[j]);
        for (int64_t j = 0; j < cols; ++j) dxr[j] = T(yr[j] * (dyr[j] - dot));
    }
}

// y, x: (rows, cols) contiguous, cols >= 1. Overwrites y.
template <typename T>
void log_softmax_forward(T* y, const T* x, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols > PARALLEL_GRAIN)
    for (int64_t r = 0; r < rows; ++r) {
        const T* xr = x + r * cols;
        T* yr = y + r * cols;
        const T mx = row_max(xr, cols);
        double s = 0.0;
        for (int64_t j = 0; j < cols; ++j) s += std::exp(xr[j] - mx);
        const double lse = std::log(s);
        for (int64_t j = 0; j < cols; ++j) yr[j] = T((xr[j] - mx) - lse);
    }
}

// dx, dy, y: (rows, cols) contiguous. Overwrites dx.
template <typename T>
void log_softmax_backward(T* dx, const T* dy, const T* y, int64_t rows, int64_t cols) {
    // dL/dx = dy - exp(y) * sum(dy) along the row
#pragma omp parallel for schedule(static) if (rows * cols > PARALLEL_GRAIN)
    for (int64_t r = 0; r < rows; ++r) {
        const T *dyr = dy + r * cols, *yr = y + r * cols;
        T* dxr = dx + r * cols;
        double s = 0.0;
        for (int64_t j = 0; j < cols; ++j) s += dyr[j];
        for (int64_t j = 0; j < cols; ++j) dxr[j] = T(dyr[j] - std::exp(yr[j]) * s);
    }
}

#define PMD_INSTANTIATE(T)                                                                     \
    template void activation_forward<T>(T*, const T*, int64_t, Activation, const ActivationParams&); \
    template void activation_backward<T>(T*, const T*, const T*, const T*, int64_t, Activation,  \
                                         const ActivationParams&);                             \
    template void softmax_forward<T>(T*, const T*, int64_t, int64_t);                          \
    template void softmax_backward<T>(T*, const T*, const T*, int64_t, int64_t);               \
    template void log_softmax_forward<T>(T*, const T*, int64_t, int64_t);                      \
    template void log_softmax_backward<T>(T*, const T*, const T*, int64_t, int64_t);
PMD_INSTANTIATE(float)
PMD_INSTANTIATE(double)
#undef PMD_INSTANTIATE

}  // namespace pyminidl::kernels
