// depthwise_isa.h — entry points of the per-ISA copies of depthwise_impl.h.
//
// depthwise_avx2.cpp and depthwise_avx512.cpp each define these in their namespace (avx2::,
// avx512::) with PMD_DEFINE_DEPTHWISE_ENTRY_POINTS; depthwise.cpp calls the one that
// active_isa() (cpu_features.h, capped by PYMINIDL_CPU_CAPABILITY) selects.
#pragma once

#include "depthwise.h"

#define PMD_DEPTHWISE_ENTRY_POINTS                                                                        \
    void depthwise_forward(float* y, const float* x, const float* w, const float* b, const DepthwiseGeom& g, \
                           float* work);                                                                  \
    void depthwise_backward_input(float* dx, const float* dy, const float* w, const DepthwiseGeom& g,     \
                                  float* work);                                                           \
    void depthwise_backward_weight(float* dw, float* db, const float* dy, const float* x,                 \
                                   const DepthwiseGeom& g, float* work);

// The definitions: each forwards to this translation unit's copy of the kernel bodies.
#define PMD_DEFINE_DEPTHWISE_ENTRY_POINTS                                                                 \
    void depthwise_forward(float* y, const float* x, const float* w, const float* b, const DepthwiseGeom& g, \
                           float* work) {                                                                 \
        depthwise_forward_impl(y, x, w, b, g, work);                                                      \
    }                                                                                                     \
    void depthwise_backward_input(float* dx, const float* dy, const float* w, const DepthwiseGeom& g,     \
                                  float* work) {                                                          \
        depthwise_backward_input_impl(dx, dy, w, g, work);                                                \
    }                                                                                                     \
    void depthwise_backward_weight(float* dw, float* db, const float* dy, const float* x,                 \
                                   const DepthwiseGeom& g, float* work) {                                 \
        depthwise_backward_weight_impl(dw, db, dy, x, g, work);                                           \
    }

namespace pyminidl::kernels {
namespace avx2 {
PMD_DEPTHWISE_ENTRY_POINTS
}  // namespace avx2
namespace avx512 {
PMD_DEPTHWISE_ENTRY_POINTS
}  // namespace avx512
}  // namespace pyminidl::kernels
