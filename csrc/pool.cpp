// pool.cpp — NHWC max and average pooling, forward and backward (1-D pooling is 2-D with
// H = 1; global pooling is one window over the whole image): the public entry points.
//
// The kernel bodies and their layout, padding and determinism rules are in pool_impl.h.
// This file compiles them for baseline x86-64 (and any other target) and sends each call to
// the AVX2 or AVX-512 copy (pool_avx2.cpp, pool_avx512.cpp) when active_isa() allows. Every
// path gives the same bits.
#include "pool.h"

#include "cpu_features.h"
#include "pool_impl.h"
#include "pool_isa.h"

namespace pyminidl::kernels {


void maxpool_forward(float* y, int32_t* argmax, const float* x, const PoolGeom& g) {
    PMD_ISA_DISPATCH(maxpool_forward, y, argmax, x, g)
    maxpool_forward_impl(y, argmax, x, g);
}

int64_t maxpool_backward(float* dx, const float* dy, const int32_t* argmax, const PoolGeom& g) {
    PMD_ISA_DISPATCH(maxpool_backward, dx, dy, argmax, g)
    return maxpool_backward_impl(dx, dy, argmax, g);
}

void avgpool_forward(float* y, const float* x, const PoolGeom& g) {
    PMD_ISA_DISPATCH(avgpool_forward, y, x, g)
    avgpool_forward_impl(y, x, g);
}

void avgpool_backward(float* dx, const float* dy, const PoolGeom& g) {
    PMD_ISA_DISPATCH(avgpool_backward, dx, dy, g)
    avgpool_backward_impl(dx, dy, g);
}

#undef PMD_DISPATCH

// The binding's error message, called only when maxpool_backward routed fewer entries than
// there are: not a hot loop, one copy, baseline ISA.
int64_t maxpool_first_bad_argmax(const int32_t* argmax, const PoolGeom& g) {
    for (int64_t t = 0; t < g.n * g.oh * g.ow; ++t) {
        const int64_t oh = (t / g.ow) % g.oh, ow = t % g.ow;
        const Range r = window(oh, g.sh, g.pt, g.kh, g.h), q = window(ow, g.sw, g.pl, g.kw, g.w);
        for (int64_t j = 0; j < g.c; ++j) {
            const int64_t k = argmax[t * g.c + j];
            const int64_t ih = k >= 0 ? k / g.w : -1, iw = k >= 0 ? k % g.w : -1;
            if (ih < r.lo || ih >= r.hi || iw < q.lo || iw >= q.hi) return t * g.c + j;
        }
    }
    return -1;
}

}  // namespace pyminidl::kernels
