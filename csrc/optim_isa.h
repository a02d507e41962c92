// optim_isa.h — float32 entry points of the per-ISA copies of optim_impl.h's loops.
//
// optim_avx2.cpp and optim_avx512.cpp each define these in their namespace (avx2::, avx512::)
// with PMD_DEFINE_OPTIM_ENTRY_POINTS; optim.cpp calls the one active_isa() (cpu_features.h,
// capped by PYMINIDL_CPU_CAPABILITY) selects.
#pragma once

#include "optim_impl.h"

#define PMD_OPTIM_ENTRY_POINTS                                                                     \
    void sgd_span_f32(float* param, float* velocity, const float* grad, int64_t n,                 \
                      const SgdStep<float>& s);                                                    \
    void adam_span_f32(float* param, float* m, float* v, float* vhat, const float* grad, int64_t n, \
                       const AdamStep<float>& s);

// The definitions: each forwards to this translation unit's copy of the loop.
#define PMD_DEFINE_OPTIM_ENTRY_POINTS                                                              \
    void sgd_span_f32(float* param, float* velocity, const float* grad, int64_t n,                 \
                      const SgdStep<float>& s) {                                                   \
        sgd_span(param, velocity, grad, n, s);                                                     \
    }                                                                                              \
    void adam_span_f32(float* param, float* m, float* v, float* vhat, const float* grad, int64_t n, \
                       const AdamStep<float>& s) {                                                 \
        adam_span(param, m, v, vhat, grad, n, s);                                                  \
    }

namespace pyminidl::kernels {
namespace avx2 {
PMD_OPTIM_ENTRY_POINTS
}  // namespace avx2
namespace avx512 {
PMD_OPTIM_ENTRY_POINTS
}  // namespace avx512
}  // namespace pyminidl::kernels
