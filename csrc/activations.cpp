// activations.cpp — elementwise activation forward/backward pairs and row-wise softmax:
// the public entry points.
//
// Contents:
//   activation_forward / activation_backward   every kind of base.ACTIVATIONS, float/double
//   softmax_forward / _backward, log_softmax_forward / _backward   over the last axis
//   activation_backward_needs_x / _y           which saved tensors a derivative reads
//
// Layout: every array is contiguous; elementwise kernels see a flat (n,) buffer and the
// softmax kernels a (rows, cols) matrix whose rows are the last axis.
//
// The kernel bodies are in activations_impl.h. This file compiles them for baseline
// x86-64 (and any other target) and sends float32 calls to the AVX2 or AVX-512 copy
// (activations_avx2.cpp, activations_avx512.cpp) when active_isa() allows; float64, which
// exists for gradient checks, always runs the baseline copy. Every path gives the same bits.
#include "activations.h"

#include <type_traits>

#include "activations_impl.h"
#include "activations_isa.h"
#include "cpu_features.h"

namespace pyminidl::kernels {

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
    if constexpr (std::is_same_v<T, float>) {
        PMD_ISA_DISPATCH(activation_forward_f32, y, x, n, kind, p)
    }
    activation_forward_impl(y, x, n, kind, p);
}

// dx, dy: (n,); x, y: (n,) or nullptr when the kind does not read them. Overwrites dx.
template <typename T>
void activation_backward(T* dx, const T* dy, const T* x, const T* y, int64_t n, Activation kind,
                         const ActivationParams& p) {
    if constexpr (std::is_same_v<T, float>) {
        PMD_ISA_DISPATCH(activation_backward_f32, dx, dy, x, y, n, kind, p)
    }
    activation_backward_impl(dx, dy, x, y, n, kind, p);
}

// y, x: (rows, cols) contiguous, cols >= 1. Overwrites y.
template <typename T>
void softmax_forward(T* y, const T* x, int64_t rows, int64_t cols) {
    if constexpr (std::is_same_v<T, float>) {
        PMD_ISA_DISPATCH(softmax_forward_f32, y, x, rows, cols)
    }
    softmax_forward_impl(y, x, rows, cols);
}

// dx, dy, y: (rows, cols) contiguous. Overwrites dx.
template <typename T>
void softmax_backward(T* dx, const T* dy, const T* y, int64_t rows, int64_t cols) {
    if constexpr (std::is_same_v<T, float>) {
        PMD_ISA_DISPATCH(softmax_backward_f32, dx, dy, y, rows, cols)
    }
    softmax_backward_impl(dx, dy, y, rows, cols);
}

// y, x: (rows, cols) contiguous, cols >= 1. Overwrites y.
template <typename T>
void log_softmax_forward(T* y, const T* x, int64_t rows, int64_t cols) {
    if constexpr (std::is_same_v<T, float>) {
        PMD_ISA_DISPATCH(log_softmax_forward_f32, y, x, rows, cols)
    }
    log_softmax_forward_impl(y, x, rows, cols);
}

// dx, dy, y: (rows, cols) contiguous. Overwrites dx.
template <typename T>
void log_softmax_backward(T* dx, const T* dy, const T* y, int64_t rows, int64_t cols) {
    if constexpr (std::is_same_v<T, float>) {
        PMD_ISA_DISPATCH(log_softmax_backward_f32, dx, dy, y, rows, cols)
    }
    log_softmax_backward_impl(dx, dy, y, rows, cols);
}

#undef PMD_DISPATCH_F32

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
