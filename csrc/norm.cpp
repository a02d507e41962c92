// norm.cpp — batch normalization (any axis) and layer normalization (the trailing axes),
// each a fused forward and a fused backward: the public entry points.
//
// The kernel bodies and their layout and determinism rules are in norm_impl.h. This file
// compiles them for baseline x86-64 (and any other target) and sends each call to the AVX2
// or AVX-512 copy (norm_avx2.cpp, norm_avx512.cpp) when active_isa() allows. Every path
// gives the same bits.
#include "norm.h"

#include "cpu_features.h"
#include "norm_impl.h"
#include "norm_isa.h"

namespace pyminidl::kernels {


void batch_norm_stats(float* mean, float* var, const float* x, int64_t o, int64_t c, int64_t i) {
    PMD_ISA_DISPATCH(batch_norm_stats, mean, var, x, o, c, i)
    batch_norm_stats_impl(mean, var, x, o, c, i);
}

void batch_norm_apply(float* y, const float* x, const float* mean, const float* var, const float* gamma,
        const float* beta, int64_t o, int64_t c, int64_t i, float eps) {
    PMD_ISA_DISPATCH(batch_norm_apply, y, x, mean, var, gamma, beta, o, c, i, eps)
    batch_norm_apply_impl(y, x, mean, var, gamma, beta, o, c, i, eps);
}

void batch_norm_forward(float* y, float* mean, float* var, const float* x, const float* gamma,
        const float* beta, int64_t o, int64_t c, int64_t i, float eps) {
    batch_norm_stats(mean, var, x, o, c, i);
    batch_norm_apply(y, x, mean, var, gamma, beta, o, c, i, eps);
}

void batch_norm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
        const float* gamma, const float* mean, const float* var, int64_t o, int64_t c, int64_t i, float eps,
        bool batch_stats) {
    PMD_ISA_DISPATCH(batch_norm_backward, dx, dgamma, dbeta, dy, x, gamma, mean, var, o, c, i, eps, batch_stats)
    batch_norm_backward_impl(dx, dgamma, dbeta, dy, x, gamma, mean, var, o, c, i, eps, batch_stats);
}

void layer_norm_forward(float* y, float* mean, float* var, const float* x, const float* gamma,
        const float* beta, int64_t r, int64_t d, float eps) {
    PMD_ISA_DISPATCH(layer_norm_forward, y, mean, var, x, gamma, beta, r, d, eps)
    layer_norm_forward_impl(y, mean, var, x, gamma, beta, r, d, eps);
}

void layer_norm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
        const float* gamma, const float* mean, const float* var, int64_t r, int64_t d, float eps) {
    PMD_ISA_DISPATCH(layer_norm_backward, dx, dgamma, dbeta, dy, x, gamma, mean, var, r, d, eps)
    layer_norm_backward_impl(dx, dgamma, dbeta, dy, x, gamma, mean, var, r, d, eps);
}

#undef PMD_DISPATCH

}  // namespace pyminidl::kernels
