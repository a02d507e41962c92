// activations.h — see activations.cpp for the contents.
#pragma once

#include <limits>

#include "common.h"

namespace pyminidl::kernels {

// The elementwise activations of pyminidl.backend.base.ACTIVATIONS. swish and silu are
// one function; gelu is split by its `approximate` flag so the inner loop has no branch.
enum class Activation : int {
    linear, step, sigmoid, hard_sigmoid, tanh, relu, leaky_relu, elu, selu,
    softplus, softsign, swish, gelu, gelu_tanh, exponential,
};

// Parameters of the parametrised activations; the others ignore them.
struct ActivationParams {
    double negative_slope = 0.0;  // relu, leaky_relu
    double max_value = std::numeric_limits<double>::infinity();  // relu
    bool has_max_value = false;                                   // relu: max_value is not None
    double threshold = 0.0;       // relu
    double alpha = 1.0;           // elu
};

// Which saved tensors a backward reads (so the binding can demand exactly those).
bool activation_backward_needs_x(Activation kind);
bool activation_backward_needs_y(Activation kind);

// y, x: (n,) contiguous. Overwrites y.
template <typename T>
void activation_forward(T* y, const T* x, int64_t n, Activation kind, const ActivationParams& p);

// dx, dy: (n,); x, y: (n,) or nullptr when the kind does not read them. Overwrites dx.
template <typename T>
void activation_backward(T* dx, const T* dy, const T* x, const T* y, int64_t n, Activation kind,
                         const ActivationParams& p);

// Row-wise over the last axis. y, x, dx, dy: (rows, cols) contiguous. Overwrite y / dx.
template <typename T>
void softmax_forward(T* y, const T* x, int64_t rows, int64_t cols);
template <typename T>
void softmax_backward(T* dx, const T* dy, const T* y, int64_t rows, int64_t cols);
template <typename T>
void log_softmax_forward(T* y, const T* x, int64_t rows, int64_t cols);
template <typename T>
void log_softmax_backward(T* dx, const T* dy, const T* y, int64_t rows, int64_t cols);

}  // namespace pyminidl::kernels
