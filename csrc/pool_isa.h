// pool_isa.h — entry points of the per-ISA copies of pool_impl.h.
//
// pool_avx2.cpp and pool_avx512.cpp each define these in their namespace (avx2::, avx512::)
// with PMD_DEFINE_POOL_ENTRY_POINTS; pool.cpp calls the one that active_isa() (cpu_features.h,
// capped by PYMINIDL_CPU_CAPABILITY) selects.
#pragma once

#include "pool.h"

#define PMD_POOL_ENTRY_POINTS                                                                      \
    void maxpool_forward(float* y, int32_t* argmax, const float* x, const PoolGeom& g);           \
    int64_t maxpool_backward(float* dx, const float* dy, const int32_t* argmax, const PoolGeom& g); \
    void avgpool_forward(float* y, const float* x, const PoolGeom& g);                            \
    void avgpool_backward(float* dx, const float* dy, const PoolGeom& g);

// The definitions: each forwards to this translation unit's copy of the kernel bodies.
#define PMD_DEFINE_POOL_ENTRY_POINTS                                                               \
    void maxpool_forward(float* y, int32_t* argmax, const float* x, const PoolGeom& g) {          \
        maxpool_forward_impl(y, argmax, x, g);                                                     \
    }                                                                                              \
    int64_t maxpool_backward(float* dx, const float* dy, const int32_t* argmax, const PoolGeom& g) { \
        return maxpool_backward_impl(dx, dy, argmax, g);                                           \
    }                                                                                              \
    void avgpool_forward(float* y, const float* x, const PoolGeom& g) {                           \
        avgpool_forward_impl(y, x, g);                                                             \
    }                                                                                              \
    void avgpool_backward(float* dx, const float* dy, const PoolGeom& g) {                        \
        avgpool_backward_impl(dx, dy, g);                                                          \
    }

namespace pyminidl::kernels {
namespace avx2 {
PMD_POOL_ENTRY_POINTS
}  // namespace avx2
namespace avx512 {
PMD_POOL_ENTRY_POINTS
}  // namespace avx512
}  // namespace pyminidl::kernels
