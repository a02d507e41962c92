// activations_isa.h — float32 entry points of the per-ISA copies of activations_impl.h.
//
// activations_avx2.cpp and activations_avx512.cpp each define these in their namespace
// (avx2::, avx512::) with PMD_DEFINE_ACTIVATION_ENTRY_POINTS; activations.cpp calls the
// one that active_isa() (cpu_features.h, capped by PYMINIDL_CPU_CAPABILITY) selects.
#pragma once

#include "activations.h"

#define PMD_ACTIVATION_ENTRY_POINTS                                                                \
    void activation_forward_f32(float* y, const float* x, int64_t n, Activation kind,              \
                                const ActivationParams& p);                                        \
    void activation_backward_f32(float* dx, const float* dy, const float* x, const float* y,       \
                                 int64_t n, Activation kind, const ActivationParams& p);           \
    void softmax_forward_f32(float* y, const float* x, int64_t rows, int64_t cols);                \
    void softmax_backward_f32(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols); \
    void log_softmax_forward_f32(float* y, const float* x, int64_t rows, int64_t cols);            \
    void log_softmax_backward_f32(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols);

// The definitions: each forwards to this translation unit's copy of the kernel bodies.
#define PMD_DEFINE_ACTIVATION_ENTRY_POINTS                                                         \
    void activation_forward_f32(float* y, const float* x, int64_t n, Activation kind,              \
                                const ActivationParams& p) {                                       \
        activation_forward_impl(y, x, n, kind, p);                                                 \
    }                                                                                              \
    void activation_backward_f32(float* dx, const float* dy, const float* x, const float* y,       \
                                 int64_t n, Activation kind, const ActivationParams& p) {          \
        activation_backward_impl(dx, dy, x, y, n, kind, p);                                        \
    }                                                                                              \
    void softmax_forward_f32(float* y, const float* x, int64_t rows, int64_t cols) {               \
        softmax_forward_impl(y, x, rows, cols);                                                    \
    }                                                                                              \
    void softmax_backward_f32(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols) { \
        softmax_backward_impl(dx, dy, y, rows, cols);                                              \
    }                                                                                              \
    void log_softmax_forward_f32(float* y, const float* x, int64_t rows, int64_t cols) {           \
        log_softmax_forward_impl(y, x, rows, cols);                                                \
    }                                                                                              \
    void log_softmax_backward_f32(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols) { \
        log_softmax_backward_impl(dx, dy, y, rows, cols);                                          \
    }

namespace pyminidl::kernels {
namespace avx2 {
PMD_ACTIVATION_ENTRY_POINTS
}  // namespace avx2
namespace avx512 {
PMD_ACTIVATION_ENTRY_POINTS
}  // namespace avx512
}  // namespace pyminidl::kernels
