// norm_isa.h — entry points of the per-ISA copies of norm_impl.h.
//
// norm_avx2.cpp and norm_avx512.cpp each define these in their namespace (avx2::, avx512::)
// with PMD_DEFINE_NORM_ENTRY_POINTS; norm.cpp calls the one that active_isa() (cpu_features.h,
// capped by PYMINIDL_CPU_CAPABILITY) selects.
#pragma once

#include "norm.h"

#define PMD_NORM_ENTRY_POINTS                                                                      \
    void batch_norm_stats(float* mean, float* var, const float* x, int64_t o, int64_t c,           \
        int64_t i);                                                                                \
    void batch_norm_apply(float* y, const float* x, const float* mean, const float* var,           \
        const float* gamma, const float* beta, int64_t o, int64_t c, int64_t i, float eps);        \
    void batch_norm_backward(float* dx, float* dgamma, float* dbeta, const float* dy,              \
        const float* x, const float* gamma, const float* mean, const float* var, int64_t o,        \
        int64_t c, int64_t i, float eps, bool batch_stats);                                        \
    void layer_norm_forward(float* y, float* mean, float* var, const float* x,                     \
        const float* gamma, const float* beta, int64_t r, int64_t d, float eps);                   \
    void layer_norm_backward(float* dx, float* dgamma, float* dbeta, const float* dy,              \
        const float* x, const float* gamma, const float* mean, const float* var, int64_t r,        \
        int64_t d, float eps);

// The definitions: each forwards to this translation unit's copy of the kernel bodies.
#define PMD_DEFINE_NORM_ENTRY_POINTS                                                               \
    void batch_norm_stats(float* mean, float* var, const float* x, int64_t o, int64_t c,           \
        int64_t i) {                                                                               \
        batch_norm_stats_impl(mean, var, x, o, c, i);                                              \
    }                                                                                              \
    void batch_norm_apply(float* y, const float* x, const float* mean, const float* var,           \
        const float* gamma, const float* beta, int64_t o, int64_t c, int64_t i, float eps) {       \
        batch_norm_apply_impl(y, x, mean, var, gamma, beta, o, c, i, eps);                         \
    }                                                                                              \
    void batch_norm_backward(float* dx, float* dgamma, float* dbeta, const float* dy,              \
        const float* x, const float* gamma, const float* mean, const float* var, int64_t o,        \
        int64_t c, int64_t i, float eps, bool batch_stats) {                                       \
        batch_norm_backward_impl(dx, dgamma, dbeta, dy, x, gamma, mean, var, o, c, i, eps,            \
                                 batch_stats);                                                     \
    }                                                                                              \
    void layer_norm_forward(float* y, float* mean, float* var, const float* x,                     \
        const float* gamma, const float* beta, int64_t r, int64_t d, float eps) {                  \
        layer_norm_forward_impl(y, mean, var, x, gamma, beta, r, d, eps);                          \
    }                                                                                              \
    void layer_norm_backward(float* dx, float* dgamma, float* dbeta, const float* dy,              \
        const float* x, const float* gamma, const float* mean, const float* var, int64_t r,        \
        int64_t d, float eps) {                                                                    \
        layer_norm_backward_impl(dx, dgamma, dbeta, dy, x, gamma, mean, var, r, d, eps);           \
    }

namespace pyminidl::kernels {
namespace avx2 {
PMD_NORM_ENTRY_POINTS
}  // namespace avx2
namespace avx512 {
PMD_NORM_ENTRY_POINTS
}  // namespace avx512
}  // namespace pyminidl::kernels
